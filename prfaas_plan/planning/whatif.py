"""What-if reports: re-plan a scenario under changed conditions (link, prices, prompts, cache)."""

from __future__ import annotations

from dataclasses import replace

from ..errors import PlanError
from .planner import PLAN_KEYS, optimize
from .scenario import Scenario
from .workload import Scaled


def vary(sc: Scenario, *, link_scale: float = 1.0, prompt_scale: float = 1.0, cache_hit_frac: float | None = None,
         prfaas_price_scale: float = 1.0, local_price_scale: float = 1.0) -> Scenario:
    """A copy of ``sc`` with the link bandwidth, prompt lengths, prefix-cache hit rate or GPU prices changed."""
    for name, v in (("link_scale", link_scale), ("prompt_scale", prompt_scale), ("prfaas_price_scale", prfaas_price_scale), ("local_price_scale", local_price_scale)):
        if not v > 0:
            raise PlanError(f"{name} must be > 0, got {v}")
    link = sc.link
    if link.fixed_gbit_per_s is not None:
        link = replace(link, fixed_gbit_per_s=link.fixed_gbit_per_s * link_scale)
    if link.max_gbit_per_s is not None:
        link = replace(link, max_gbit_per_s=link.max_gbit_per_s * link_scale)
    if link_scale != 1.0 and link.sizes_gbit_per_s:
        link = replace(link, sizes_gbit_per_s=tuple(s * link_scale for s in link.sizes_gbit_per_s))
    wl = sc.workload
    if prompt_scale != 1.0:
        wl = replace(wl, input=Scaled(wl.input, prompt_scale))
    if cache_hit_frac is not None:
        wl = replace(wl, prefix_cache_hit_frac=cache_hit_frac)
    return replace(
        sc,
        link=link,
        workload=wl,
        prfaas=replace(sc.prfaas, usd_per_gpu_hour=sc.prfaas.usd_per_gpu_hour * prfaas_price_scale),
        local=replace(sc.local, usd_per_gpu_hour=sc.local.usd_per_gpu_hour * local_price_scale),
    )


#: The standard questions of a design review: (label, keyword arguments of :func:`vary`).
STANDARD_VARIANTS: tuple[tuple[str, dict], ...] = (
    ("as planned", {}),
    ("link halves", {"link_scale": 0.5}),
    ("link at 10%", {"link_scale": 0.1}),
    ("prompts 2x longer", {"prompt_scale": 2.0}),
    ("prompts 2x shorter", {"prompt_scale": 0.5}),
    ("prefix-cache hit 50%", {"cache_hit_frac": 0.5}),
    ("PrfaaS GPUs +50% price", {"prfaas_price_scale": 1.5}),
    ("local GPUs +50% price", {"local_price_scale": 1.5}),
)


def whatif_rows(sc: Scenario, mode: str | None = None, budget_usd_per_hour: float | None = None,
                target_req_per_s: float | None = None, variants=STANDARD_VARIANTS) -> list[dict]:
    """One re-optimised plan per variant, with its throughput and cost relative to the first."""
    rows = []
    for label, kwargs in variants:
        try:
            r = optimize(vary(sc, **kwargs), mode, budget_usd_per_hour, target_req_per_s, compare_modes=False)
            row = {"variant": label, **{k: r[k] for k in PLAN_KEYS}, "homogeneous_req_per_s": r["baselines"]["homogeneous"]["throughput_req_per_s"], "error": None}
        except PlanError as exc:  # an infeasible variant is an answer, not a crash
            row = {"variant": label, **{k: None for k in PLAN_KEYS}, "homogeneous_req_per_s": None, "error": str(exc)}
        rows.append(row)
    base = rows[0]
    for row in rows:
        for key in ("throughput_req_per_s", "cost_usd_per_hour"):
            ok = row[key] is not None and base[key]
            row[f"{key.split('_')[0]}_vs_planned"] = row[key] / base[key] if ok else None
    return rows
