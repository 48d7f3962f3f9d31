"""Long-timescale scheduling ([PRFAAS] section 3): as traffic moves over the day, convert local
nodes between prefill and decode (the PrfaaS cluster stays prefill-only) and re-choose t.

Every split of the local fleet (N_p + N_d = N fixed, N_d >= 1) is an option at two thresholds:
its best one (:func:`~prfaas_plan.planning.threshold.best_threshold`: the most throughput for
those counts) and the planned one (where decode binds, every t gives the same throughput and
the planned t usually the lower latency). For a period of arrival rate lambda the re-planner takes the option
with the lowest analytic P90 TTFT at lambda among those that are stable there; when none is
(lambda above every option's Lambda_max) it takes the one with the most throughput. The best
*static* plan is the optimizer's (the most throughput), held all day.

This greedy rule pays nothing for a switch and, in the simulation, is given each period's true
rate (``--replan-rule greedy``); over the ServeGen day it flips roles 30 times and worsens the
P99 TTFT by 18%. :mod:`.switching` prices a switch (its transit charged, a dead band from the
rate forecast's error) and is the default (``simulation/replanner.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from ..planning.threshold import best_threshold
from ..planning.planner import fleet_problem, throughput_model
from ..planning.scenario import Scenario
from .deployment import Deployment, deployment
from .ttft import ttft


@dataclass(frozen=True)
class SplitOption:
    """One way to use the fleet: counts, the threshold that suits them, Lambda_max, deployment."""

    n_pd_prefill: int
    n_pd_decode: int
    threshold_tokens: float
    throughput_req_per_s: float
    deployment: Deployment


@dataclass(frozen=True)
class Period:
    start_s: float
    arrival_req_per_s: float
    option: SplitOption
    ttft_p90_s: float  # analytic at the period's rate; inf where unstable


def split_options(sc: Scenario, plan: dict, mode: str | None = None) -> list[SplitOption]:
    """Every local split of ``plan``'s fleet (PrfaaS instances and link as planned)."""
    mode = mode or sc.mode
    tm = throughput_model(sc, mode)
    problem = fleet_problem(sc, tm, plan)
    link = float(problem.link.buy(np.array([0.0]))[0][0])  # the usable bandwidth of the planned link
    total = plan["n_pd_prefill"] + plan["n_pd_decode"]
    out = []
    planned_t = math.inf if plan["threshold_tokens"] is None else plan["threshold_tokens"]
    for n_p in range(total):
        n_d = total - n_p
        best_lam, best_t = best_threshold(problem, plan["n_prfaas"], n_p, n_d, link)
        for t in dict.fromkeys((best_t, planned_t)):
            lam = best_lam if t == best_t else float(tm.evaluate(tm.needs_at(t), plan["n_prfaas"], n_p, n_d, link)["throughput_req_per_s"][0])
            if not lam > 0:
                continue
            counts = {"threshold_tokens": t, "n_prfaas": plan["n_prfaas"], "n_pd_prefill": n_p, "n_pd_decode": n_d,
                      "link_gbit_per_s": plan["link_gbit_per_s"]}
            out.append(SplitOption(n_p, n_d, t, lam, deployment(sc, counts, "prfaas", mode, tm)))
    if not out:
        raise PlanError("no split of the local fleet serves any traffic")
    return out


def _p90(option: SplitOption, rate: float) -> float:
    try:
        return ttft(option.deployment, rate).ttft_p90_s
    except PlanError:  # unstable at this rate
        return math.inf


def choose(options: list[SplitOption], rate_req_per_s: float) -> tuple[SplitOption, float]:
    """The option with the lowest P90 TTFT at the rate (the most throughput if none is stable)."""
    scored = [(_p90(o, rate_req_per_s), o) for o in options]
    finite = [s for s in scored if math.isfinite(s[0])]
    if finite:
        return min(finite, key=lambda s: s[0])[1], min(s[0] for s in finite)
    return max(options, key=lambda o: o.throughput_req_per_s), math.inf


def replan(options: list[SplitOption], start_s: np.ndarray, rate_req_per_s: np.ndarray) -> list[Period]:
    """One decision per period (period k starts at ``start_s[k]`` with mean rate ``rate[k]``)."""
    periods = []
    for t0, rate in zip(np.asarray(start_s, float), np.asarray(rate_req_per_s, float)):
        option, p90 = choose(options, float(rate))
        periods.append(Period(float(t0), float(rate), option, p90))
    return periods


def static_option(options: list[SplitOption]) -> SplitOption:
    """The best static plan: the split with the most throughput (what `optimize` picks)."""
    return max(options, key=lambda o: o.throughput_req_per_s)
