"""`optimize --robust LEVEL`: the cheapest plan found that meets the demands in at least LEVEL of
the samples, beside the point plan and what the margin costs.

Method (a search over a family of plans on common random numbers, not a chance-constrained
integer program):

1. The samples are drawn once (:mod:`.sampling`, the same seed and design as `risk`) and every
   candidate plan is judged on the same rows, so two candidates differ by the plan alone, not by
   sampling noise. A candidate meets the level when the share of samples in which it carries the
   sample's demand (and meets the TTFT SLO, if the scenario sets one) is >= LEVEL; the threshold
   and P/D split are re-chosen per sample as in `risk`.
2. Candidates are the scenario's own cheapest plans for an inflated demand k x D (the optimizer's
   exact ``cheapest_for`` on the free fleet and link, no budget), k >= 1: k doubles until the
   plan meets the level (up to :data:`MAX_DEMAND_FACTOR`), then bisection on k to
   :data:`K_RTOL` keeps the cheapest plan that meets it.
3. Greedy trimming: one PrfaaS instance, one local instance or one link size less (the cheapest
   saving first) while the plan still meets the level.

Limits: the share is not exactly monotone in k (instance counts are integers), so bisection
finds *a* k at the boundary, not always the smallest; trimming only removes one unit at a time
from that plan, so a differently shaped fleet (e.g. fewer PrfaaS and more local instances) that
is cheaper and still meets the level can be missed. The answer is therefore an upper bound on
the cheapest robust cost; the point plan (k = 1) is a lower bound whenever it fails the level.
The budget is judged, not imposed: the result reports how often the robust plan's bill stays
within it (prices may be uncertain) and whether every demand, budget included, is met at LEVEL.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import PlanError
from ..execution.executors import Executor
from ..planning.optimizer import cheapest_for
from ..planning.planner import plan_dict, problem_for, throughput_model
from ..planning.scenario import Scenario
from ..planning.sweep import plan_only
from ..planning.uncertainty import Distribution
from .analysis import distributions, probability, question, run_samples
from .evaluate import Fleet
from .sampling import factors

MAX_DEMAND_FACTOR = 8.0
K_RTOL = 0.005  # bisection on the demand factor stops at this relative width


def _judge(sc, plan, mode, q, rows, executor) -> dict:
    """The shares of samples in which ``plan``'s fleet meets each demand; ``robust`` = the rate
    and the TTFT SLO together (what the level is about), ``all`` adds the budget."""
    out = run_samples(sc, Fleet.of(plan), mode, q, rows, executor)
    shares = {k: probability([o[k] for o in out]) for k in ("meets_rate", "meets_ttft_slo", "meets_budget")}
    robust = [all(o[k] for k in ("meets_rate", "meets_ttft_slo") if o[k] is not None) for o in out]
    every = [r and o["meets_budget"] is not False for r, o in zip(robust, out)]
    return {"robust_frac": float(np.mean(robust)), "all_frac": float(np.mean(every)),
            **{k: (v["probability"] if v else None) for k, v in shares.items()}}


def _fleet_keys(plan: dict) -> dict:
    return {k: plan[k] for k in ("n_prfaas", "n_pd_prefill", "n_pd_decode", "link_gbit_per_s", "threshold_tokens", "throughput_req_per_s", "cost_usd_per_hour")}


def robust_plan(sc: Scenario, level: float = 0.95, samples: int = 1000, seed: int = 0, design: str = "lhs",
                uncertain: dict[str, Distribution] | None = None, mode: str | None = None, budget_usd_per_hour: float | None = None,
                target_req_per_s: float | None = None, executor: Executor | None = None) -> dict:
    """The search of the module docstring: point plan, the plan for the demand, the robust plan
    and the margin's cost, each with the shares of samples meeting each demand."""
    if not 0 < level < 1:
        raise PlanError(f"--robust must be a share of samples in (0, 1), e.g. 0.95; got {level:g}")
    mode = mode or sc.mode
    q = replace(question(sc, budget_usd_per_hour, target_req_per_s, uncertain), latency=False)
    if q.demand_req_per_s is None:
        raise PlanError("--robust needs a demand to meet: workload.arrival_req_per_s in the scenario, or a target (--target-req-per-s)")
    if sc.objective == "fixed-fleet" and budget_usd_per_hour is None and target_req_per_s is None:
        raise PlanError("--robust buys a fleet: give a budget or target question (objective kind budget/target, or --target-req-per-s)")
    rows = factors(distributions(sc, uncertain), samples, seed, design)
    problem = problem_for(sc, throughput_model(sc, mode), "target", None)
    cache: dict[float, tuple[dict, dict]] = {}

    def candidate(k: float) -> tuple[dict, dict]:
        if k not in cache:
            try:
                plan = plan_dict(cheapest_for(problem, k * q.demand_req_per_s), sc)
            except PlanError:
                plan = None
            cache[k] = (plan, _judge(sc, plan, mode, q, rows, executor) if plan else None)
        return cache[k]

    point = plan_only(sc, mode, budget_usd_per_hour, target_req_per_s)
    base, base_j = candidate(1.0)
    if base is None:
        raise PlanError(f"the demand {q.demand_req_per_s:g} req/s cannot be reached within the scenario's instance ranges and link")
    lo, hi = 1.0, 1.0
    while candidate(hi)[1] is None or candidate(hi)[1]["robust_frac"] < level:
        if candidate(hi)[0] is None or hi >= MAX_DEMAND_FACTOR:
            j = candidate(lo)[1]
            raise PlanError(f"no plan for up to {hi:g}x the demand meets it in {level:.0%} of the samples (the plan for {lo:g}x: "
                            f"{j['robust_frac']:.1%}); the uncertainty may exceed what more capacity buys (e.g. a TTFT SLO the prefill time alone misses)")
        lo, hi = hi, min(hi * 2, MAX_DEMAND_FACTOR)
    if hi > 1.0:
        while hi - lo > K_RTOL * hi:
            mid = (lo + hi) / 2
            ok = candidate(mid)[1] is not None and candidate(mid)[1]["robust_frac"] >= level
            lo, hi = (lo, mid) if ok else (mid, hi)
    meeting = [(p["cost_usd_per_hour"], k) for k, (p, j) in cache.items() if j and j["robust_frac"] >= level]
    k_best = min(meeting)[1]
    plan, judged = _trim(sc, problem, cache[k_best][0], cache[k_best][1], level, mode, q, rows, executor)
    at_point = run_samples(sc, Fleet.of(plan), mode, q, np.ones((1, rows.shape[1])))[0]  # its t and split with every factor 1
    plan = {**plan, **{k: at_point[k] for k in ("threshold_tokens", "n_pd_prefill", "n_pd_decode", "throughput_req_per_s")}}
    margin = plan["cost_usd_per_hour"] - base["cost_usd_per_hour"]
    return {
        "level": level, "samples": samples, "seed": seed, "design": design,
        "demand_req_per_s": q.demand_req_per_s, "ttft_p90_slo_s": q.ttft_p90_slo_s, "budget_usd_per_hour": q.budget_usd_per_hour,
        "point": {**_fleet_keys(point), **_judge(sc, point, mode, q, rows, executor)},
        "for_demand": {**_fleet_keys(base), **base_j},
        "robust": {**_fleet_keys(plan), **judged, "demand_factor": k_best},
        "margin_usd_per_hour": margin,
        "margin_frac": margin / base["cost_usd_per_hour"] if base["cost_usd_per_hour"] > 0 else None,
        "robust_vs_point_usd_per_hour": plan["cost_usd_per_hour"] - point["cost_usd_per_hour"],
        "meets_every_demand": judged["all_frac"] >= level,
        "candidates_evaluated": len([1 for p, j in cache.values() if j]),
        "method": "cheapest plans for k x the demand on common random numbers, bisection on k, then greedy trimming (see prfaas_plan/risk/robust.py)",
    }


def _trim(sc, problem, plan, judged, level, mode, q, rows, executor) -> tuple[dict, dict]:
    """Remove one PrfaaS instance, one local instance or one link size at a time (the largest
    saving first) while the fleet still meets ``level``."""
    sizes = sorted(set(problem.link.sizes_gbit_per_s))
    while True:
        options = []
        if plan["n_prfaas"] > max(problem.prfaas.min, 0):
            options.append({**plan, "n_prfaas": plan["n_prfaas"] - 1})
        if plan["n_pd_prefill"] + plan["n_pd_decode"] > max(problem.local.min, 1):
            options.append({**plan, "n_pd_decode": plan["n_pd_decode"] - 1} if plan["n_pd_decode"] > 1 else {**plan, "n_pd_prefill": plan["n_pd_prefill"] - 1})
        smaller = [s for s in sizes if s < (plan["link_gbit_per_s"] or 0.0)]
        if smaller:
            options.append({**plan, "link_gbit_per_s": smaller[-1]})
        elif not sizes and plan["link_gbit_per_s"]:
            options.append({**plan, "link_gbit_per_s": plan["link_gbit_per_s"] * 0.95})
        for o in options:
            o["cost_usd_per_hour"] = (o["n_prfaas"] * problem.remote_instance_usd_per_hour()
                                      + (o["n_pd_prefill"] + o["n_pd_decode"]) * problem.local_instance_usd_per_hour()
                                      + o["link_gbit_per_s"] * problem.link.usd_per_gbit_per_s_hour)
        for o in sorted(options, key=lambda o: o["cost_usd_per_hour"]):
            j = _judge(sc, o, mode, q, rows, executor)
            if j["robust_frac"] >= level:
                plan, judged = o, j
                break
        else:
            return plan, judged
