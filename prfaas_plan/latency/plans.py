"""Latency beside every plan ``optimize`` makes: TTFT at zero load (what [PRFAAS] Table 6
reports), at the scenario's arrival rate, and the goodput under a TTFT SLO.

Goodput is the highest arrival rate (req/s) whose analytic TTFT meets every stated level
(``slo.ttft_p90_s``, ``ttft_p99_s``, ``ttft_mean_s``; :func:`~prfaas_plan.latency.ttft.slo_excess`);
TTFT rises with load, so it is found by bisection between 0 and Lambda_max. A plan whose zero-load
TTFT already misses the SLO has goodput 0.

:func:`optimize` is what ``prfaas-plan optimize`` prints, from Python: the plan, baselines and
verdict of :func:`prfaas_plan.planning.planner.optimize` with this latency beside each.
"""

from __future__ import annotations

import math

from .. import units
from ..errors import PlanError
from ..planning import planner
from ..planning.planner import throughput_model
from ..planning.problem import TtftSlo
from ..planning.scenario import Scenario
from ..planning.verdict import verdict
from . import slo_plan
from .bands import plan_band
from .deployment import Deployment, deployment
from .ttft import slo_excess, ttft

#: Relative precision of the goodput bisection (0.1% of Lambda_max).
GOODPUT_RTOL = 1e-3


def goodput_req_per_s(dep: Deployment, lambda_max_req_per_s: float, slo: TtftSlo | float, floor_req_per_s: float | None = None) -> float:
    """Highest load (req/s) at which TTFT meets every stated level of ``slo`` (a number: a P90
    level, s); 0 if even an idle deployment misses it. ``floor_req_per_s``: a rate the plan was
    made for; where it meets the SLO there the bisection starts from it, so the goodput is never
    reported below it."""
    slo = slo if isinstance(slo, TtftSlo) else TtftSlo(p90_s=float(slo))

    def meets(lam: float) -> bool:
        return slo_excess(dep, lam, slo) <= 0  # inf (not met) where unstable

    if not meets(0.0):
        return 0.0
    lo, hi = 0.0, lambda_max_req_per_s
    if floor_req_per_s is not None and 0 < floor_req_per_s and meets(min(floor_req_per_s, hi)):
        lo = min(floor_req_per_s, hi)  # (a plan made for a rate has Lambda_max >= it, up to rounding)
    if meets(hi * (1 - GOODPUT_RTOL)):
        return max(lo, hi * (1 - GOODPUT_RTOL))
    while hi - lo > GOODPUT_RTOL * lambda_max_req_per_s:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return lo


def plan_latency(sc: Scenario, plan: dict, kind: str, mode: str, tm=None, floor_req_per_s: float | None = None) -> dict:
    """TTFT/TPOT of one plan at zero load and at the scenario's arrival rate, and its goodput
    (with a TTFT SLO; ``floor_req_per_s`` as in :func:`goodput_req_per_s`)."""
    dep = deployment(sc, plan, kind, mode, tm)
    out = {"zero_load": ttft(dep, 0.0).as_dict(), "at_arrival_rate": None, "at_arrival_rate_error": None,
           **transfer_cap(dep)}
    lam = sc.workload.arrival_req_per_s
    if lam is not None:
        try:
            out["at_arrival_rate"] = ttft(dep, lam).as_dict()
        except PlanError as exc:
            out["at_arrival_rate_error"] = str(exc)
    if sc.ttft_slo.stated:
        good = goodput_req_per_s(dep, plan["throughput_req_per_s"], sc.ttft_slo, floor_req_per_s)
        out["goodput_req_per_s"] = good
        out["goodput_frac_of_lambda_max"] = good / plan["throughput_req_per_s"] if plan["throughput_req_per_s"] > 0 else 0.0
    return out


def transfer_cap(dep: Deployment) -> dict:
    """The per-transfer rate cap of ``dep``'s TCP connections (:mod:`.wan`), Gbit/s (None:
    unlimited connections), and whether it binds: below the link, so that even a transfer alone
    on the link cannot use all of it."""
    cap = dep.transfer_cap_bytes_per_s
    if not math.isfinite(cap):
        return {"transfer_cap_gbit_per_s": None, "transfer_cap_binds": False}
    return {"transfer_cap_gbit_per_s": units.bytes_per_s_to_gbit_per_s(cap), "transfer_cap_binds": bool(cap < dep.link_bytes_per_s)}


def add_latency(sc: Scenario, result: dict) -> dict:
    """``result`` of :func:`~prfaas_plan.planning.planner.optimize` with a ``latency`` block in
    the plan and in every baseline, and its verdict re-read with the latencies (each stated
    TTFT level at the arrival rate, the goodput against a target). In ``paper`` mode capacities
    are N / T(E[L]) while a queue serves E[T(L)]: loaded latencies there can be unstable below
    Lambda_max (reported, not raised). The plan (not the baselines) also gets
    ``model_error_band``: its Lambda_max and TTFT P90 at the arrival rate at the two ends of the
    engine model's error band (:func:`~.bands.plan_band`)."""
    mode = result["mode"]
    tm = throughput_model(sc, mode)
    rate = result.get("target_req_per_s") or (sc.workload.arrival_req_per_s if result.get("objective") == "slo" else None)
    result["latency"] = plan_latency(sc, result, "prfaas", mode, tm, rate)
    result["model_error_band"] = plan_band(sc, result, mode, tm)
    for name, base in result["baselines"].items():
        if base is not None:
            kind = "naive" if name == "naive" else "homogeneous"
            base["latency"] = plan_latency(sc, base, kind, mode, tm)
    result["ttft_p90_slo_s"] = sc.ttft_p90_slo_s
    result["verdict"] = verdict(result)
    return result


def optimize(sc: Scenario, mode: str | None = None, budget_usd_per_hour: float | None = None,
             target_req_per_s: float | None = None, compare_modes: bool = True) -> dict:
    """Everything ``prfaas-plan optimize`` prints for ``sc``: the plan, its baselines, verdict,
    prices, cost per million tokens and the other mode (:func:`~prfaas_plan.planning.planner.optimize`
    with the SLO-aware solver :func:`~prfaas_plan.latency.slo_plan.solve`: objective ``slo``, and
    budget / target with an SLO), with a ``latency`` block (TTFT mean/P50/P90/P99 idle and at the
    arrival rate, goodput under the TTFT SLO) in the plan and every baseline (:func:`add_latency`),
    the plan's Lambda_max and TTFT P90 at the ends of the engine model's error band
    (``model_error_band``, :func:`~.bands.plan_band`), ``ttft_p90_slo_s``, and the verdict over
    every stated demand."""
    result = planner.optimize(sc, mode, budget_usd_per_hour, target_req_per_s, compare_modes, solver=slo_plan.solve)
    return add_latency(sc, result)


def latency_columns(plan: dict) -> dict:
    """Flat TTFT columns for CSV/XLSX rows: zero load, at the arrival rate, goodput."""
    lat = plan.get("latency") or {}
    zero, at = lat.get("zero_load") or {}, lat.get("at_arrival_rate") or {}
    nan = math.nan
    return {
        "ttft_mean_s_zero_load": zero.get("ttft_mean_s", nan), "ttft_p90_s_zero_load": zero.get("ttft_p90_s", nan),
        "ttft_mean_s_at_arrival_rate": at.get("ttft_mean_s", nan), "ttft_p90_s_at_arrival_rate": at.get("ttft_p90_s", nan),
        "goodput_req_per_s": lat.get("goodput_req_per_s", nan),
    }
