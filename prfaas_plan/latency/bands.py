"""A plan under the engine model's error band: Lambda_max and the TTFT P90 at the arrival rate
when the engine model's times are at the slow and at the fast end of their 80% bands.

The engine model publishes, per metric kind, a band of measured / predicted
(:mod:`prfaas_plan.roofline.bands`: ``ttft`` of a single request's prefill time, ``prefill`` of
saturated prefill tokens/s, ``decode`` of decode tokens/s). :func:`time_band` turns one into a
band of a *time* factor (actual / predicted time), [low_t, high_t]: a time kind's band as it is,
a rate kind's reciprocal, [1 / high, 1 / low] (`risk` draws its engine-error factors from the
same, :mod:`prfaas_plan.risk.model_error`).

:func:`plan_band` holds the plan as planned (threshold t, PrfaaS / local prefill / decode
instances, link) and scales each time the engine model predicts by its own kind's factor:

- a pool's occupancy under load (``service``): ``prefill`` in distribution mode (the
  throughput regime), ``ttft`` in paper mode (capacity priced by a single request's latency);
- a request's own prefill once started (``alone``, the latency regime): ``ttft``;
- the decode step at BS_max: ``decode``.

Which times a band scales is one rule, :func:`model_time_kinds`, which `risk` uses as well: only
the times the engine model predicts, because the band is the spread of its predictions against
measurements; a time from a measured profile keeps factor 1.

The slow end takes every factor at its high_t, the fast end at its low_t (all ends at once: a
joint corner, wider than an 80% band of the plan). A time that comes from a measured profile
is not the engine model's prediction and keeps factor 1 (the block names which times were
scaled). Lambda_max at an end is Eq. 3-6 at t with the instance counts divided by their
factors (a time a x longer is a capacity a x smaller; the link's capacity does not move), and
the TTFT P90 is :func:`~.ttft.ttft` of the deployment with its times scaled; a queue unstable
at the arrival rate at an end is reported in words, not as a number.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import PlanError
from ..planning.planner import bottleneck
from ..planning.scenario import Scenario
from ..planning.throughput import ThroughputModel
from ..roofline.bands import band
from .deployment import Deployment, PrefillPool, deployment
from .ttft import ttft

#: The metric kinds whose residuals are of a time (the others are of a rate, tokens/s); see
#: roofline/bands.py: Table 3 cells are r = ln(T_measured / T_predicted).
TIME_KINDS = frozenset({"ttft"})

ENDS = ("slow", "fast")


def time_band(kind: str) -> tuple[float, float]:
    """[low_t, high_t]: the band of actual / predicted *time* of metric ``kind`` (module docstring)."""
    b = band(kind)
    return (b.low_factor, b.high_factor) if kind in TIME_KINDS else (1.0 / b.high_factor, 1.0 / b.low_factor)


class TimeScaled:
    """A prefill model whose times are ``factor`` times those of ``inner`` (the engine model's error)."""

    def __init__(self, inner, factor: float):
        self.inner, self.factor = inner, float(factor)

    @property
    def source(self) -> str:
        return f"{self.inner.source} x {self.factor:g}"

    def time_s(self, input_tokens) -> np.ndarray:
        return self.factor * self.inner.time_s(input_tokens)


def _is_model(pm) -> bool:
    """True where ``pm`` (a PrefillModel) predicts with the engine model, not a measured profile."""
    return pm is not None and getattr(pm, "profile", None) is None


def decode_is_model(model, hardware_name: str, gpus: int, use_profile: bool) -> bool:
    """True where the decode step of ``model`` on (part, GPUs) is the engine model's, not a profile's."""
    return not (use_profile and model.decode_profile(hardware_name, gpus) is not None)


def _decode_is_model(sc: Scenario) -> bool:
    return decode_is_model(sc.model, sc.local.hardware.name, sc.local.gpus_per_instance, sc.local.use_profile)


def prefill_kinds(service, alone) -> tuple[str | None, str | None]:
    """(kind of the pool's occupancy under load, kind of a request's own prefill) of one prefill
    pool's PrefillModels ``service`` and ``alone`` (``alone`` None: ``service`` is both): the rule of
    :func:`model_time_kinds` for one pool of one part; None where the time is a profile's."""
    s_kind = ("ttft" if getattr(service, "regime", None) == "latency" else "prefill") if _is_model(service) else None
    return s_kind, "ttft" if _is_model(alone if alone is not None else service) else None


def end_factor(kind: str | None, end: str) -> float:
    """The time factor of a time of metric ``kind`` at band end ``end`` ("slow": high_t, "fast":
    low_t); 1 where ``kind`` is None (a profile's time)."""
    if end not in ENDS:
        raise PlanError(f"band end must be one of {', '.join(ENDS)}, got {end!r}")
    return 1.0 if kind is None else time_band(kind)[1 if end == "slow" else 0]


#: The times of a plan a band can scale, and the uncertain factor of `risk` that stands for each.
TIME_FACTORS = {"prfaas_service": "prefill_time_factor", "prfaas_alone": "prefill_time_factor", "local_service": "prefill_time_factor",
                "local_alone": "prefill_time_factor", "decode_step": "decode_time_factor"}


def model_time_kinds(sc: Scenario, tm: ThroughputModel, dep: Deployment) -> dict[str, str | None]:
    """Which band scales each time of the plan (:data:`TIME_FACTORS`' keys): the metric kind of
    the engine model's band that covers it, or None where the time is a measured profile's.

    The one rule for the engine model's error, used by `optimize`'s band (:func:`end_factors`:
    each time at its kind's band end) and by `risk`'s default time factors
    (:mod:`prfaas_plan.risk.evaluate`: each time at its kind's band, one quantile per sample for
    all prefill kinds, as the corner takes one end for all): a band is the spread
    of the engine model's *predictions* against measurements, so it scales only times the engine
    model predicts; a profile's time is itself a measurement (the paper's Table 5) and keeps
    factor 1. Kinds: a pool's occupancy under load ``prefill`` (the throughput regime), or
    ``ttft`` where capacity is priced by a single request's latency (paper mode); a request's
    own prefill ``ttft``; the decode step at BS_max ``decode``."""
    out: dict[str, str | None] = {}
    for name, service in (("prfaas", tm.remote), ("local", tm.local)):
        pool = getattr(dep, name)
        out[f"{name}_service"], out[f"{name}_alone"] = prefill_kinds(service, pool.alone if pool is not None else None)
    out["decode_step"] = "decode" if _decode_is_model(sc) else None
    return out


def end_factors(sc: Scenario, tm: ThroughputModel, dep: Deployment, end: str) -> dict[str, float]:
    """The time factor of each time of the plan at band end ``end`` ("slow" or "fast"): its
    kind's band end (:func:`model_time_kinds`), 1 where the time is a profile's. Keys:
    ``prfaas_service``, ``prfaas_alone``, ``local_service``, ``local_alone``, ``decode_step``."""
    return {key: end_factor(kind, end) for key, kind in model_time_kinds(sc, tm, dep).items()}


def scaled_deployment(dep: Deployment, factors: dict[str, float]) -> Deployment:
    """``dep`` with each time multiplied by its factor (:func:`end_factors`' keys)."""
    def pool(p: PrefillPool | None, name: str) -> PrefillPool | None:
        if p is None:
            return None
        return PrefillPool(p.name, p.instances, TimeScaled(p.service, factors[f"{name}_service"]), TimeScaled(p.alone, factors[f"{name}_alone"]))

    return replace(dep, prfaas=pool(dep.prfaas, "prfaas"), local=pool(dep.local, "local"), decode_step_s=dep.decode_step_s * factors["decode_step"])


def capacity_at(tm: ThroughputModel, plan: dict, link_bytes_per_s: float, factors: dict[str, float]) -> tuple[float, str]:
    """(Lambda_max req/s, what binds) of ``plan``'s counts at its threshold with the service times
    scaled: Eq. 3-6 with N_prfaas / a_prfaas, N_p / a_local, N_d / a_decode (:meth:`ThroughputModel.evaluate`)."""
    t = plan["threshold_tokens"]
    needs = tm.needs_at([math.inf if t is None else float(t)])
    m = tm.evaluate(needs, plan["n_prfaas"] / factors["prfaas_service"], plan["n_pd_prefill"] / factors["local_service"],
                    plan["n_pd_decode"] / factors["decode_step"], link_bytes_per_s)
    return float(m["throughput_req_per_s"][0]), bottleneck(m, float(needs.offload_frac[0]))


def plan_band(sc: Scenario, plan: dict, mode: str, tm: ThroughputModel) -> dict:
    """Lambda_max and the TTFT P90 at the arrival rate (zero load without one) of ``plan`` (the
    PrfaaS plan of :func:`~prfaas_plan.planning.planner.optimize`, counts and t held) at the
    slow and fast ends of the engine model's error band (module docstring). Keys:
    ``throughput_req_per_s_low`` / ``_high`` (the slow / fast end), ``ttft_p90_s_low`` / ``_high``
    (the fast / slow end; None where unstable, ``ttft_p90_s_low_error`` / ``_high_error`` then
    say why), ``arrival_req_per_s``, ``coverage``, ``ends`` (per end: the factors, Lambda_max,
    what binds, the TTFT P90 or the instability), ``scaled`` / ``from_profile`` (which times the
    band moved, which it left) and ``method``."""
    dep = deployment(sc, plan, "prfaas", mode, tm)
    usable = sc.link.max_utilisation * sc.link.available_frac * dep.link_bytes_per_s
    lam = sc.workload.arrival_req_per_s
    ends = {}
    for end in ENDS:
        factors = end_factors(sc, tm, dep, end)
        cap, binds = capacity_at(tm, plan, usable, factors)
        row = {"factors": factors, "throughput_req_per_s": cap, "bottleneck": binds, "ttft_p90_s": None, "ttft_error": None}
        try:
            row["ttft_p90_s"] = ttft(scaled_deployment(dep, factors), lam or 0.0, quantiles=("p90",)).ttft_p90_s
        except PlanError as exc:  # unstable at the arrival rate at this end
            row["ttft_error"] = str(exc)
        ends[end] = row
    slow, fast = ends["slow"], ends["fast"]
    moved = {k: v != 1.0 for k, v in slow["factors"].items()}
    used = {"prfaas_service": dep.prfaas is not None, "prfaas_alone": dep.prfaas is not None,
            "local_service": dep.local is not None, "local_alone": dep.local is not None, "decode_step": True}
    return {
        "coverage": band("prefill").coverage,
        "arrival_req_per_s": lam,
        "throughput_req_per_s_low": slow["throughput_req_per_s"], "throughput_req_per_s_high": fast["throughput_req_per_s"],
        "ttft_p90_s_low": fast["ttft_p90_s"], "ttft_p90_s_high": slow["ttft_p90_s"],
        "ttft_p90_s_low_error": fast["ttft_error"], "ttft_p90_s_high_error": slow["ttft_error"],
        "ends": ends,
        "scaled": [k for k, v in moved.items() if v and used[k]],
        "from_profile": [k for k, v in moved.items() if not v and used[k]],
        "method": ("the plan as planned (t, instance counts, link) with each time the engine model predicts scaled by the ends of its "
                   "kind's band (roofline/bands.py; prefill occupancy: prefill tokens/s, or single-request TTFT in paper mode; a request's "
                   "own prefill: single-request TTFT; decode step: decode tokens/s); all at the slow end, then all at the fast end; "
                   "times from a measured profile keep factor 1"),
    }


def band_columns(plan: dict) -> dict:
    """Flat band columns for CSV/XLSX rows (NaN where the plan has no band: the baselines; an
    unstable end's TTFT is NaN and ``ttft_p90_band_unstable`` says which end and why)."""
    b = plan.get("model_error_band") or {}
    nan = math.nan
    pick = lambda k: nan if b.get(k) is None else b[k]  # noqa: E731
    unstable = "; ".join(f"{k} ({end} end): {b[f'ttft_p90_s_{k}_error']}" for k, end in (("low", "fast"), ("high", "slow"))
                         if b.get(f"ttft_p90_s_{k}_error"))
    return {"throughput_req_per_s_low": pick("throughput_req_per_s_low"), "throughput_req_per_s_high": pick("throughput_req_per_s_high"),
            "ttft_p90_s_at_arrival_rate_low": pick("ttft_p90_s_low"), "ttft_p90_s_at_arrival_rate_high": pick("ttft_p90_s_high"),
            "ttft_p90_band_unstable": unstable}
