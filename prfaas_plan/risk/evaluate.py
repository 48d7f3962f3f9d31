"""One sample of the uncertain world, evaluated on a planned fleet.

The fleet stays as planned (PrfaaS instances, local instances, the link bought); as in
``whatif``'s stress, the threshold t and the local prefill/decode split are re-chosen for the
most throughput under the sample's conditions. A sample is a row of factors
(:data:`~prfaas_plan.planning.uncertainty.QUANTITIES`), applied as follows:

- ``prefill_time_factor`` a multiplies every prefill time (service and latency, both clusters):
  each prefill capacity N / (need) becomes (N / a) / need, so the effective instance counts are
  divided by a; ``decode_time_factor`` b multiplies the decode step at BS_max: decode capacity
  divides by b and a request holds its slot b times longer. Drawn from the engine model's error
  band (the default, ``Question.band_factors``), a time factor multiplies only the times the
  engine model predicts, each by its own kind's band at the drawn quantile (a request's own
  prefill: the single-request TTFT band), and leaves a measured profile's at 1, the rule
  `optimize`'s band follows (:func:`~prfaas_plan.latency.bands.model_time_kinds`); a factor the
  scenario or ``--uncertain`` states multiplies every time it names, as given;
- ``link_bandwidth_factor`` c: the link delivers c x the bandwidth bought (the plan still loads
  it to at most ``link.max_utilisation``);
- ``input_tokens_factor`` multiplies ``workload.input_tokens_scale`` (a new throughput model:
  new length cells, prefill times and decode batch); ``arrival_rate_factor`` multiplies the
  demand; the price factors multiply the $/hour of each part of the bill.

Lambda_max of the fleet, exactly (the ``optimize`` engine's answer for the stressed fleet, to its
1e-9 tolerance: tests/test_risk.py checks it against that path). With local instances N split
N_p + N_d, X(N_p) = max_t min(Theta_prfaas(t) / p, N_p / ((1 - p) T_p)) rises with N_p and decode
D(N_p) = (N - N_p) theta_d falls, so Lambda = max over N_p of min(X, D) sits where they cross:
bisection on N_p with X on the grid thresholds (a lower bound), then X exact (the Eq. 7 balance
inside the grid interval, :func:`~prfaas_plan.planning.threshold.best_threshold`) at the three
splits next to the crossing. The threshold reported (and used for latency) is the Eq. 7 balance
of the chosen split: where decode binds, every t near it gives the same Lambda and the balanced
one loads both prefill paths equally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .. import units
from ..errors import PlanError
from ..latency.bands import TIME_FACTORS, TimeScaled, model_time_kinds
from ..latency.deployment import Deployment, PrefillPool, deployment
from ..latency.plans import goodput_req_per_s
from ..latency.ttft import ttft
from ..planning.threshold import balance
from ..planning.planner import fleet_problem, throughput_model
from ..planning.scenario import Scenario, with_input_scale
from ..planning.uncertainty import QUANTITIES
from .model_error import DEFAULT_KIND, same_quantile

COL = {name: j for j, name in enumerate(QUANTITIES)}


@dataclass(frozen=True)
class Fleet:
    """The planned fleet: PrfaaS instances, local instances (P + D) and the link bought."""

    n_prfaas: int
    n_local: int
    link_gbit_per_s: float

    @classmethod
    def of(cls, plan: dict) -> Fleet:
        return cls(int(plan["n_prfaas"]), int(plan["n_pd_prefill"] + plan["n_pd_decode"]), float(plan["link_gbit_per_s"] or 0.0))

    def as_plan(self, threshold_tokens=None, n_pd_prefill: int = 0) -> dict:
        """The plan-dict keys :func:`~prfaas_plan.latency.deployment.deployment` reads."""
        return {"threshold_tokens": threshold_tokens, "n_prfaas": self.n_prfaas, "n_pd_prefill": n_pd_prefill,
                "n_pd_decode": self.n_local - n_pd_prefill, "link_gbit_per_s": self.link_gbit_per_s}


@dataclass(frozen=True)
class Question:
    """What a sample is judged against: the demand (req/s before the arrival factor; None: no
    rate demand, latency at zero load), the TTFT P90 SLO (s) and the budget ($/hour)."""

    demand_req_per_s: float | None
    ttft_p90_slo_s: float | None
    budget_usd_per_hour: float | None
    latency: bool = True  # False: TTFT only where an SLO needs it, no goodput (a robust search's probes)
    band_factors: frozenset[str] = frozenset()  # time factors drawn from the engine model's band: they scale its times only


class Context:
    """A scenario variant (one ``input_tokens_factor``) with its throughput model, the fleet's
    problem and its deployment at t = 0, reused by every sample that shares the factor."""

    def __init__(self, sc: Scenario, fleet: Fleet, mode: str):
        self.sc, self.fleet, self.mode = sc, fleet, mode
        self.tm = throughput_model(sc, mode)
        self.problem = fleet_problem(sc, self.tm, fleet.as_plan())

    @cached_property
    def base(self) -> Deployment:
        """The fleet's deployment (t = 0, one local prefill instance), built on first use: each
        sample replaces its threshold, counts and factors."""
        return deployment(self.sc, self.fleet.as_plan(0.0, 1), "prfaas", self.mode, self.tm)

    @cached_property
    def model_kinds(self) -> dict[str, str | None]:
        """Per time (:data:`~prfaas_plan.latency.bands.TIME_FACTORS`' keys): the kind of the engine
        model's band that covers it, None for a measured profile's (:func:`~prfaas_plan.latency.bands.model_time_kinds`)."""
        return model_time_kinds(self.sc, self.tm, self.base)

    @property
    def model_times(self) -> dict[str, bool]:
        return {k: kind is not None for k, kind in self.model_kinds.items()}

    def time_factors(self, row: np.ndarray, band_factors: frozenset[str]) -> dict[str, float]:
        """Each time's factor in sample ``row``: its quantity's as stated; where that quantity is
        the engine model's band, 1 for a measured profile's time and otherwise the factor of the
        time's own kind of band at the drawn quantile (module docstring; :func:`.model_error.same_quantile`)."""
        out = {}
        for k, q in TIME_FACTORS.items():
            f = float(row[COL[q]])
            if q in band_factors:
                kind = self.model_kinds[k]
                f = 1.0 if kind is None else same_quantile(f, DEFAULT_KIND[q], kind)
            out[k] = f
        return out


def variant(sc: Scenario, input_factor: float) -> Scenario:
    """``sc`` with every prompt ``input_factor`` times longer (``workload.input_tokens_scale``)."""
    if input_factor == 1.0:
        return sc
    return with_input_scale(sc, (sc.raw.get("workload") or {}).get("input_tokens_scale", 1.0) * input_factor)


def fleet_capacity(ctx: Context, f: dict[str, float], link_f: float) -> tuple[float, float, int]:
    """(Lambda_max, threshold t, N_p) of the fleet under the time factors ``f``
    (:meth:`Context.time_factors`) and the link factor (module docstring)."""
    tm, fleet, n = ctx.tm, ctx.fleet, ctx.fleet.n_local
    usable = units.gbit_per_s_to_bytes_per_s(fleet.link_gbit_per_s * link_f) * ctx.sc.link.max_utilisation * ctx.sc.link.available_frac
    n_r = fleet.n_prfaas / f["prfaas_service"]
    prefill_f = f["local_service"]
    d = tm.decode_req_per_s_per_instance / f["decode_step"]
    _, _, cap_r, _, _ = tm.capacities(tm.needs, n_r, 0.0, 0.0, usable)  # Theta_prfaas / p at every grid t
    with np.errstate(divide="ignore"):
        per_p = np.where(tm.needs.local_s > 0, 1.0 / (prefill_f * tm.needs.local_s), np.inf)  # cap_pd_prefill per instance
    grid_t = tm.needs.threshold_tokens

    finite_p = np.where(np.isinf(per_p), 0.0, per_p)

    def cap_p(n_p: int) -> np.ndarray:
        return np.where(np.isinf(per_p), np.inf, n_p * finite_p)

    def x_grid(n_p: int) -> float:
        return float(np.max(np.minimum(cap_r, cap_p(n_p))))

    def x_exact(n_p: int) -> tuple[float, float]:
        """max over t of min(Theta_prfaas / p, cap_pd_prefill) and its t: the grid's best point,
        then the Eq. 7 balance in the interval beside it where the rising PrfaaS capacity
        crosses the falling local one."""
        cp = cap_p(n_p)
        k = int(np.argmax(np.minimum(cap_r, cp)))
        side = grid_t[min(k + 1, len(grid_t) - 1)] if cap_r[k] < cp[k] else grid_t[k]
        grid_best = (float(min(cap_r[k], cp[k])), float(grid_t[k]))
        return max(grid_best, balance(ctx.problem, float(side), n_r, n_p / prefill_f, math.inf, usable))

    lo, hi = 0, n  # the smallest N_p with X_grid(N_p) >= D(N_p) (at N_p = N, D = 0)
    while lo < hi:
        mid = (lo + hi) // 2
        if x_grid(mid) >= (n - mid) * d:
            hi = mid
        else:
            lo = mid + 1
    # X_exact >= X_grid, so Lambda(lo) = D(lo) and the exact crossing is at lo or below it (in
    # practice one split below at most); below the crossing Lambda = X, which falls with N_p.
    # Where decode binds, t is the grid threshold with the most prefill capacity.
    best, n_p = ((n - lo) * d, None, lo), lo - 1
    while n_p >= 0:
        x, t = x_exact(n_p)
        if min(x, (n - n_p) * d) > best[0]:
            best = min(x, (n - n_p) * d), t, n_p
        if x < (n - n_p) * d:  # prefill binds here: smaller splits only lose
            break
        n_p -= 1
    lam, t, n_p = best
    if t is None:
        t = float(grid_t[int(np.argmax(np.minimum(cap_r, cap_p(n_p))))])
    return lam, t, n_p


def _deployment(ctx: Context, t: float, n_p: int, f: dict[str, float], link_f: float) -> Deployment:
    b, fleet = ctx.base, ctx.fleet

    def pool(p, n: int, name: str):
        if p is None or n <= 0:
            return None
        return PrefillPool(p.name, n, TimeScaled(p.service, f[f"{name}_service"]), TimeScaled(p.alone, f[f"{name}_alone"]))

    return replace(b, threshold_tokens=t, prfaas=pool(b.prfaas, fleet.n_prfaas, "prfaas"), local=pool(b.local, n_p, "local"),
                   link_bytes_per_s=b.link_bytes_per_s * link_f, decode_instances=fleet.n_local - n_p,
                   decode_step_s=b.decode_step_s * f["decode_step"])


def evaluate_sample(ctx: Context, row: np.ndarray, q: Question) -> dict:
    """Every outcome of one sample (a row of factors) on the fleet of ``ctx``."""
    f, lf = ctx.time_factors(row, q.band_factors), row[COL["link_bandwidth_factor"]]
    lam, t, n_p = fleet_capacity(ctx, f, lf)
    demand = None if q.demand_req_per_s is None else q.demand_req_per_s * row[COL["arrival_rate_factor"]]
    out = {"throughput_req_per_s": lam, "threshold_tokens": None if math.isinf(t) else t, "n_pd_prefill": n_p,
           "n_pd_decode": ctx.fleet.n_local - n_p, "demand_req_per_s": demand, "ttft_p90_s": math.inf, "goodput_req_per_s": None,
           "cost_usd_per_hour": cost_usd_per_hour(ctx.sc, ctx.fleet, row)}
    out["meets_rate"] = None if demand is None else bool(lam >= demand * (1 - 1e-9))
    if lam > 0 and (q.latency or q.ttft_p90_slo_s is not None):
        dep = _deployment(ctx, t, n_p, f, lf)
        try:
            out["ttft_p90_s"] = ttft(dep, demand or 0.0, quantiles=("p90",)).ttft_p90_s
        except PlanError:  # unstable at the demand: latency unbounded
            pass
        if q.ttft_p90_slo_s is not None and q.latency:
            out["goodput_req_per_s"] = goodput_req_per_s(dep, lam, q.ttft_p90_slo_s)
    out["meets_ttft_slo"] = None if q.ttft_p90_slo_s is None else bool(out["ttft_p90_s"] <= q.ttft_p90_slo_s)
    out["meets_budget"] = None if q.budget_usd_per_hour is None else bool(out["cost_usd_per_hour"] <= q.budget_usd_per_hour * (1 + 1e-9))
    return out


def cost_usd_per_hour(sc: Scenario, fleet: Fleet, row: np.ndarray) -> float:
    """The fleet's bill under the sample's price factors: GPUs at their $/GPU-hour and the link
    bought at its $/Gbit/s-hour (the bill does not fall when the link delivers less)."""
    return (fleet.n_prfaas * sc.prfaas.gpus_per_instance * sc.prfaas.usd_per_gpu_hour * row[COL["prfaas_price_factor"]]
            + fleet.n_local * sc.local.gpus_per_instance * sc.local.usd_per_gpu_hour * row[COL["local_price_factor"]]
            + fleet.link_gbit_per_s * sc.link.usd_per_gbit_per_s_hour * row[COL["link_price_factor"]])


@dataclass(frozen=True)
class Chunk:
    """Samples ``first`` .. ``first + len(rows) - 1`` for one worker: the scenario itself (it
    pickles: a worker needs no file), the mode, the fleet, the question and the factor rows."""

    scenario: Scenario
    mode: str
    fleet: Fleet
    question: Question
    first: int
    rows: np.ndarray


def evaluate_chunk(chunk: Chunk) -> list[dict]:
    """:func:`evaluate_sample` for every row of ``chunk`` (an executor task; module-level so it pickles)."""
    contexts: dict[float, Context] = {}
    out = []
    for row in chunk.rows:
        f = float(row[COL["input_tokens_factor"]])
        if f not in contexts:
            if len(contexts) > 4:
                contexts.clear()
            contexts[f] = Context(variant(chunk.scenario, f), chunk.fleet, chunk.mode)
        out.append(evaluate_sample(contexts[f], row, chunk.question))
    return out
