"""`prfaas-plan risk`: how likely the planned fleet meets its demands, by Monte Carlo.

The fleet is the scenario's plan (what ``optimize`` buys: PrfaaS instances, local instances and
the link). Each of N samples draws every uncertain factor (:mod:`.sampling`), re-evaluates the
fleet under it (:mod:`.evaluate`: threshold and split re-chosen, as ``whatif``'s stress) and
records Lambda_max, the P90 TTFT at the sample's demand, the goodput under the TTFT SLO and the
bill. Reported: the probability of meeting each demand (the rate: Lambda_max >= the sample's
demand; each TTFT SLO; the budget) with its binomial standard error sqrt(p (1 - p) / N), all of
them at once, and P10 / P50 / P90 of each metric (order statistics, numpy's ``inverted_cdf``:
an unstable sample's infinite TTFT stays a valid value), beside the point value (every factor 1).

Distributions: the engine model's error band (:mod:`.model_error`) for the two time factors
unless stated otherwise; then the scenario's ``uncertainty:``; then ``--uncertain`` (the last
word). The band, like `optimize`'s, scales only the times the engine model predicts, never a
measured profile's (:func:`~prfaas_plan.latency.bands.model_time_kinds`); a stated time factor
scales every time it names. Samples run in chunks on an executor (:mod:`prfaas_plan.execution.executors`); the
result is the same on any.
"""

from __future__ import annotations

import math

import numpy as np

from ..execution.executors import Executor, chunks
from ..planning.scenario import Scenario
from ..planning.sweep import plan_only
from ..planning.uncertainty import QUANTITIES, Distribution
from ..planning.whatif import demand_req_per_s
from ..latency.bands import TIME_FACTORS
from .evaluate import Chunk, Context, Fleet, Question, evaluate_chunk
from .model_error import DEFAULT_KIND, model_error
from .sampling import factors

METRICS = ("throughput_req_per_s", "goodput_req_per_s", "ttft_p90_s", "cost_usd_per_hour")
DEMANDS = ("meets_rate", "meets_ttft_slo", "meets_budget")


def distributions(sc: Scenario, uncertain: dict[str, Distribution] | None = None) -> dict[str, Distribution]:
    """Every quantity's distribution: the model-error defaults, then the scenario's, then ``uncertain``."""
    out = {q: model_error(kind) for q, kind in DEFAULT_KIND.items()}
    out.update(sc.uncertainty)
    out.update(uncertain or {})
    return out


#: The time factors whose default is the engine model's band (:mod:`.model_error`).
BAND_DEFAULTS = tuple(DEFAULT_KIND)


def question(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
             uncertain: dict[str, Distribution] | None = None) -> Question:
    """The demands a sample is judged against (the question's target or arrival rate, the SLO, the
    budget), and which time factors keep the engine model's band as their distribution (stated
    neither in the scenario nor in ``uncertain``): those scale only the engine model's own times."""
    budget = budget_usd_per_hour if budget_usd_per_hour is not None else (sc.budget_usd_per_hour if sc.objective == "budget" and target_req_per_s is None else None)
    band = frozenset(q for q in BAND_DEFAULTS if q not in sc.uncertainty and q not in (uncertain or {}))
    return Question(demand_req_per_s(sc, target_req_per_s), sc.ttft_p90_slo_s, budget, band_factors=band)


def multiplies(ctx: Context, q: Question) -> dict[str, str]:
    """What each factor multiplies, in words; a time factor drawn from the engine model's band
    names the times it scales here (none where every such time is a measured profile's)."""
    out = dict(QUANTITIES)
    for name in q.band_factors:
        times = [f"{k.replace('_', ' ')} ({ctx.model_kinds[k]} band)" for k, f in TIME_FACTORS.items() if f == name and ctx.model_kinds[k]]
        out[name] = ("the times the engine model predicts, each by its kind's band at this quantile (a measured profile's keep 1): "
                     + (", ".join(times) if times else "none here, every one is a measured profile's"))
    return out


def run_samples(sc: Scenario, fleet: Fleet, mode: str, q: Question, rows: np.ndarray, executor: Executor | None = None) -> list[dict]:
    """Outcomes of every factor row on ``fleet`` (in order), on ``executor`` (default: serial)."""
    executor = executor or Executor()
    tasks = [Chunk(sc, mode, fleet, q, r.start, rows[r.start:r.stop]) for r in chunks(len(rows), executor)]
    return [o for part in executor.map(evaluate_chunk, tasks) for o in part]


def quantile(values, q: float) -> float | None:
    v = np.array([x for x in values if x is not None], float)
    return float(np.quantile(v, q, method="inverted_cdf")) if len(v) else None


def probability(flags: list) -> dict | None:
    """Share of samples meeting a demand, its binomial standard error and the count (None: no such demand)."""
    if not flags or flags[0] is None:
        return None
    met, n = sum(bool(f) for f in flags), len(flags)
    p = met / n
    return {"probability": p, "stderr": math.sqrt(p * (1 - p) / n), "samples_met": met}


def demand_rows(q: Question, outcomes: list[dict]) -> list[dict]:
    """One row per demand the scenario states, and one for all of them at once."""
    labels = {"meets_rate": None if q.demand_req_per_s is None else f"Lambda_max >= {q.demand_req_per_s:g} req/s x arrival_rate_factor",
              "meets_ttft_slo": None if q.ttft_p90_slo_s is None else f"P90 TTFT at the demand <= {q.ttft_p90_slo_s:g} s",
              "meets_budget": None if q.budget_usd_per_hour is None else f"$/hour <= {q.budget_usd_per_hour:,.2f}"}
    rows = [{"demand": key, "condition": label, **probability([o[key] for o in outcomes])} for key, label in labels.items() if label]
    if rows:
        stated = [k for k, label in labels.items() if label]
        rows.append({"demand": "all", "condition": "every demand above at once",
                     **probability([all(o[k] for k in stated) for o in outcomes])})
    return rows


def risk(sc: Scenario, samples: int = 1000, seed: int = 0, design: str = "lhs", uncertain: dict[str, Distribution] | None = None,
         mode: str | None = None, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
         executor: Executor | None = None, plan: dict | None = None) -> dict:
    """The Monte Carlo of the module docstring: everything `prfaas-plan risk` prints.
    ``plan``: the fleet to judge (default: the scenario's plan, as ``optimize`` answers it)."""
    mode = mode or sc.mode
    plan = plan or plan_only(sc, mode, budget_usd_per_hour, target_req_per_s)
    fleet, q = Fleet.of(plan), question(sc, budget_usd_per_hour, target_req_per_s, uncertain)
    dists = distributions(sc, uncertain)
    rows = factors(dists, samples, seed, design)
    outcomes = run_samples(sc, fleet, mode, q, rows, executor)
    point = run_samples(sc, fleet, mode, q, np.ones((1, len(QUANTITIES))))[0]
    said = multiplies(Context(sc, fleet, mode), q)
    metrics = [{"metric": m, "point": point[m], "p10": quantile([o[m] for o in outcomes], 0.1), "p50": quantile([o[m] for o in outcomes], 0.5),
                "p90": quantile([o[m] for o in outcomes], 0.9)} for m in METRICS if point[m] is not None]
    return {
        "scenario": sc.name,
        "mode": mode,
        "samples": samples,
        "seed": seed,
        "design": design,
        "fleet": {"n_prfaas": fleet.n_prfaas, "n_local": fleet.n_local, "link_gbit_per_s": fleet.link_gbit_per_s,
                  "planned_threshold_tokens": plan["threshold_tokens"], "planned_n_pd_prefill": plan["n_pd_prefill"],
                  "planned_n_pd_decode": plan["n_pd_decode"], "planned_cost_usd_per_hour": plan["cost_usd_per_hour"]},
        "demand_req_per_s": q.demand_req_per_s,
        "ttft_p90_slo_s": q.ttft_p90_slo_s,
        "budget_usd_per_hour": q.budget_usd_per_hour,
        "uncertainty": [{"quantity": name, "distribution": dists[name].label if name in dists else "1", "source": dists[name].origin if name in dists else "not uncertain",
                         "multiplies": said[name]} for name in QUANTITIES],
        "demands": demand_rows(q, outcomes),
        "metrics": metrics,
        "point": point,
        "sample_rows": [{"sample": i, **{name: float(rows[i, j]) for j, name in enumerate(QUANTITIES)}, **o} for i, o in enumerate(outcomes)],
    }
