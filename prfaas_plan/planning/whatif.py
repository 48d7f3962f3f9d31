"""What-ifs: each change of conditions read twice, side by side.

- *re-plan*: answer the scenario's question again under the changed conditions (buy again);
- *stress*: keep the fleet and link the scenario's plan buys (or has) and change only the
  conditions: the best threshold and prefill/decode split on that hardware, its throughput, cost
  and whether it still carries the demand (the arrival rate, or the target).

A what-if is a list of scenario-key overrides (:mod:`overrides`), so ``--set KEY=VALUE`` and the
standard questions of a design review go through the same checked path. A what-if that sets
``link.bandwidth_gbit_per_s`` fixes the link for its re-plan too, even where the scenario buys
its link in purchasable sizes (:func:`~.scenario.link_is_fixed`); one that scales the link
scales whatever the scenario gives (the fixed bandwidth, the sizes or the cap).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..catalog.paths import catalog_dir
from ..errors import PlanError
from .bandwidth_profile import read_bandwidth_profile
from .overrides import Override, with_price_sources
from .planner import PLAN_KEYS, Solver, optimize
from .scenario import Scenario, load_scenario
from .sweep import plan_only

LINK_KEYS = ("link.bandwidth_gbit_per_s", "link.purchasable_gbit_per_s", "link.max_gbit_per_s")

#: What a what-if's link bandwidth means (:func:`~.scenario.link_is_fixed`), said under its tables.
LINK_OVERRIDE_NOTE = ("A link bandwidth set by a what-if (link.bandwidth_gbit_per_s=...) fixes the link: the re-plan buys its "
                      "fleet around that link at its price, whatever sizes or cap the scenario could otherwise buy.")


@dataclass(frozen=True)
class WhatIf:
    label: str
    overrides: tuple[Override, ...] = ()


def link_scaled(label: str, factor: float) -> WhatIf:
    """The link (fixed, purchasable port sizes or cap) scaled by ``factor`` at the same price per
    Gbit/s: a port of half the size costs half as much."""
    return WhatIf(label, tuple(Override(k, factor, scale=True, optional=True) for k in LINK_KEYS))


def cache_whatif(sc: Scenario) -> WhatIf:
    """Half of every prompt cached; for a trace replayed through a prefix-cache model (which
    excludes prefix_cache_hit_frac), the same trace without the cache instead."""
    if sc.workload.uncached_input is not None:
        return WhatIf("no prefix cache", (Override("workload.input_tokens.cache", {"kind": "none"}),))
    return WhatIf("prefix-cache hit 50%", (Override("workload.prefix_cache_hit_frac", 0.5),))


#: The shipped shape of a leased or VPC link's day (issue 18's "evening sag"): full bandwidth
#: except 18:00-23:00 at half (scenarios/evening-sag.csv, an illustrative shape, not a measurement).
EVENING_SAG_PROFILE = "evening-sag.csv"


def _clock(t_s: float) -> str:
    minutes = int(round(t_s / 60))
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def evening_sag() -> WhatIf:
    """The link's available bandwidth following the shipped evening-sag profile
    (``link.bandwidth_profile``, :mod:`.bandwidth_profile`): the link bought (or in place) is
    paid in full all day, and the planner sizes for the profile's worst fraction, so a plan that
    holds in the evening holds all day. The label says which fraction, when, and that rule. (The
    fleet planner does not model a profile: its what-ifs halve each link instead.)"""
    path = catalog_dir("scenarios") / EVENING_SAG_PROFILE
    prof = read_bandwidth_profile(path)
    worst = prof.worst_frac
    k = prof.frac.index(worst)
    end = prof.t_s[k + 1] if k + 1 < len(prof.t_s) else None
    when = f"{_clock(prof.t_s[k])}-{_clock(end)}" if end is not None else f"from {_clock(prof.t_s[k])}"
    label = f"evening sag: link at {worst:.0%} {when} ({EVENING_SAG_PROFILE}; sized for its worst)"
    return WhatIf(label, (Override("link.bandwidth_profile", str(path)),))

#: Packet loss of the "lossy link" what-if: 1e-4, one packet in 10,000, a chosen stress point (not
#: a measured path): at the shipped scenarios' 10 ms RTT, Mathis et al. give one 1460-byte-MSS
#: connection 1460 / 0.01 x 1.22 / 0.01 = 17.9 MB/s (143 Mbit/s), far below a 100-400 Gbit/s link,
#: so the loss, not the link, sets each transfer's rate (below p ~ 8e-8 the 6 MiB window binds instead).
LOSSY_LINK_LOSS_FRAC = 1e-4


def lossy_link_whatifs(sc: Scenario) -> list[WhatIf]:
    """"lossy link" at :data:`LOSSY_LINK_LOSS_FRAC`, where the scenario states ``link.connections``
    (without which loss bounds nothing, :mod:`~prfaas_plan.latency.wan`). It moves TTFT (each
    transfer's rate), not Lambda_max: the what-if table's throughput columns stay as planned."""
    if sc.link.connections is None:
        return []
    return [WhatIf(f"lossy link (loss {LOSSY_LINK_LOSS_FRAC:g})", (Override("link.loss_frac", LOSSY_LINK_LOSS_FRAC),))]


def standard_whatifs(sc: Scenario) -> tuple[WhatIf, ...]:
    """The standard questions of a design review for ``sc``."""
    price = lambda role, c: WhatIf(f"{role} GPUs +50% price", with_price_sources((Override(f"{role}.usd_per_gpu_hour", c.usd_per_gpu_hour * 1.5),)))  # noqa: E731
    out = [
        WhatIf("as planned"),
        evening_sag(),
        link_scaled("link at 10%", 0.1),
        WhatIf("prompts 2x longer", (Override("workload.input_tokens_scale", 2.0),)),
        WhatIf("prompts 2x shorter", (Override("workload.input_tokens_scale", 0.5),)),
        cache_whatif(sc),
        price("prfaas", sc.prfaas),
        price("local", sc.local),
        *lossy_link_whatifs(sc),
    ]
    if sc.workload.arrival_req_per_s is not None or sc.objective == "target":
        out.append(WhatIf("load +50%", (Override("workload.arrival_req_per_s", 1.5, scale=True, optional=True),
                                        Override("objective.target_req_per_s", 1.5, scale=True, optional=True))))
    return tuple(out)


def stress_link_gbit_per_s(planned_gbit_per_s: float, overrides: tuple[Override, ...]) -> float:
    """The planned link under the what-if: a set bandwidth replaces it; a scaled link key (the
    fixed bandwidth, the port sizes or the cap, in that order of precedence) scales it once."""
    by_key = {o.key: o for o in overrides if o.key in LINK_KEYS}
    for key in LINK_KEYS:
        o = by_key.get(key)
        if o is not None and o.scale:
            return planned_gbit_per_s * o.value
        if o is not None and key == "link.bandwidth_gbit_per_s":
            return float(o.value)
    return planned_gbit_per_s


def stressed(sv: Scenario, plan: dict, link_gbit_per_s: float) -> Scenario:
    """``sv``'s conditions on the fleet and link of ``plan``: a fixed-fleet question."""
    link = replace(sv.link, fixed_gbit_per_s=link_gbit_per_s, sizes_gbit_per_s=(), sizes_usd_per_hour=(), max_gbit_per_s=None)
    return replace(sv, objective="fixed-fleet", budget_usd_per_hour=None, target_req_per_s=None, link=link,
                   prfaas=replace(sv.prfaas, instances=plan["n_prfaas"]),
                   local=replace(sv.local, instances=plan["n_pd_prefill"] + plan["n_pd_decode"]))


def demand_req_per_s(sc: Scenario, target_req_per_s: float | None = None) -> float | None:
    """The load a plan must carry: the target if the question is one, else the arrival rate."""
    if target_req_per_s is not None:
        return target_req_per_s
    if sc.objective == "target":
        return sc.target_req_per_s
    return sc.workload.arrival_req_per_s


def _reading(fn) -> dict:
    try:
        r = fn()
        return {**{k: r[k] for k in PLAN_KEYS}, "error": None}
    except PlanError as exc:  # an infeasible variant is an answer, not a crash
        return {**{k: None for k in PLAN_KEYS}, "error": str(exc)}


def _ratio(a, b):
    return a / b if a is not None and b else None


def whatif_rows(sc: Scenario, mode: str | None = None, budget_usd_per_hour: float | None = None,
                target_req_per_s: float | None = None, whatifs: tuple[WhatIf, ...] | None = None,
                base: dict | None = None, solver: Solver | None = None) -> list[dict]:
    """One row per what-if: its re-plan and its stress reading, each against the plan itself
    (``base``: that plan, if already computed). In a target question every re-plan carries the
    target, so the re-plan is compared by cost; the stress reading by throughput. ``solver``: how
    the question is answered (:func:`~prfaas_plan.planning.planner.optimize`)."""
    whatifs = standard_whatifs(sc) if whatifs is None else whatifs
    if base is None:
        base = optimize(sc, mode, budget_usd_per_hour, target_req_per_s, compare_modes=False, solver=solver)
    target_q = (budget_usd_per_hour is None) and (target_req_per_s is not None or sc.objective == "target")
    rows = []
    for w in whatifs:
        sv = load_scenario(sc.path, sc.overrides + w.overrides) if w.overrides else sc
        demand = demand_req_per_s(sv, moved_target(target_req_per_s, w))
        replan = _reading(lambda: plan_only(sv, mode, budget_usd_per_hour, moved_target(target_req_per_s, w), solver))
        link = stress_link_gbit_per_s(base["link_gbit_per_s"], w.overrides)
        stress = _reading(lambda: plan_only(stressed(sv, base, link), mode))
        lam = stress["throughput_req_per_s"]
        rows.append({
            "variant": w.label,
            "overrides": ", ".join(o.label for o in w.overrides if not o.key.endswith("price_source")),
            "replan": replan,
            "stress": stress,
            "replan_throughput_vs_planned": _ratio(replan["throughput_req_per_s"], base["throughput_req_per_s"]),
            "replan_cost_vs_planned": _ratio(replan["cost_usd_per_hour"], base["cost_usd_per_hour"]),
            "replan_compared_by": "cost" if target_q else "throughput",
            "stress_throughput_vs_planned": _ratio(lam, base["throughput_req_per_s"]),
            "stress_cost_vs_planned": _ratio(stress["cost_usd_per_hour"], base["cost_usd_per_hour"]),
            "demand_req_per_s": demand,
            "stress_utilisation_frac": _ratio(demand, lam),
            "stress_carries_demand": None if demand is None or lam is None else lam >= demand * (1 - 1e-9),
        })
    return rows


def _load_factor(w: WhatIf) -> float:
    """The factor a what-if scales the target by (a --target-req-per-s moves with it)."""
    f = 1.0
    for o in w.overrides:
        if o.key == "objective.target_req_per_s" and o.scale:
            f *= o.value
    return f


def moved_target(target_req_per_s: float | None, w: WhatIf) -> float | None:
    """A --target-req-per-s given on the command line, moved by a what-if that scales the target."""
    return None if target_req_per_s is None else target_req_per_s * _load_factor(w)
