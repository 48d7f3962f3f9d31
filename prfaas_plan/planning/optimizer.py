"""Choose the threshold t, instance counts and link bandwidth ([PRFAAS] Eq. 7-8 and beyond).

One engine serves the three questions:
- fixed fleet (the paper's problem): N_prfaas and N_p + N_d given, pick t and the N_p / N_d split;
- budget: pick N_prfaas, N_p, N_d, link bandwidth and t to maximise Lambda_max within $/hour;
- target: the cheapest plan that reaches a required req/s.

Method. For a throughput Lambda and a threshold t, the cheapest integer deployment is exact:
each resource at the ceiling of its need (N_prfaas = ceil(Lambda p T_r), N_p = ceil(Lambda (1-p)
T_p), N_d = ceil(Lambda / theta_d), B_out = Lambda p S_r; see :mod:`throughput`), because
Lambda_max is the minimum of independent per-resource capacities and every cost grows with each
count. Whether Lambda is reachable is then a vectorised check over all candidate thresholds
(2,048 cell boundaries of the length distribution), and it is monotone in Lambda, so bisection
finds the best Lambda; the target question evaluates the cost directly. Finally, with the counts
fixed, t is refined continuously (bounded Brent search between neighbouring boundaries) to the
point where the two prefill paths balance (Eq. 7); Eq. 8's producer/consumer balance is what the
ceilings produce. Integers are exact; t is continuous (bisection on the Eq. 7 crossing, to 1e-7
in log t). Brute-force tests (tests/test_optimizer.py) check that no integer deployment and no
candidate threshold beats it. The search is plain numpy: importing scipy.optimize alone would cost
more than twice the whole planning run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import PlanError
from .throughput import Needs, ThroughputModel

_CEIL_RTOL = 1e-9  # 3.0000000001 instances of need is 3 instances


def _ceil(x: np.ndarray) -> np.ndarray:
    return np.ceil(np.asarray(x) * (1 - _CEIL_RTOL) - 1e-12).clip(min=0)


@dataclass(frozen=True)
class Range:
    """Allowed instance counts, inclusive; ``max`` None means unbounded."""

    min: int = 0
    max: int | None = None

    @classmethod
    def exactly(cls, n: int) -> Range:
        return cls(n, n)

    def __post_init__(self):
        if self.min < 0 or (self.max is not None and self.max < self.min):
            raise PlanError(f"instance range needs 0 <= min <= max, got min={self.min}, max={self.max}")


@dataclass(frozen=True)
class Link:
    """The cross-datacenter link: fixed, bought continuously at a price per Gbit/s-hour, or bought
    in purchasable sizes (each with its $/hour); ``max_gbit_per_s`` caps continuous purchases."""

    fixed_gbit_per_s: float | None = None
    usd_per_gbit_per_s_hour: float = 0.0
    sizes_gbit_per_s: tuple[float, ...] = ()
    sizes_usd_per_hour: tuple[float, ...] = ()
    max_gbit_per_s: float | None = None
    rtt_s: float = 0.0

    def buy(self, need_bytes_per_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bandwidth bought in bytes/s, $/hour) for each need; inf cost where not purchasable."""
        need = np.asarray(need_bytes_per_s, float)
        if self.fixed_gbit_per_s is not None:
            have = units.gbit_per_s_to_bytes_per_s(self.fixed_gbit_per_s)
            cost = self.fixed_gbit_per_s * self.usd_per_gbit_per_s_hour
            return np.full_like(need, have), np.where(need <= have * (1 + 1e-12), cost, np.inf)
        if self.sizes_gbit_per_s:
            sizes = np.array([0.0, *self.sizes_gbit_per_s])
            prices = np.array([0.0, *self.sizes_usd_per_hour])
            idx = np.searchsorted(units.gbit_per_s_to_bytes_per_s(sizes) * (1 + 1e-12), need, side="left")
            ok = idx < len(sizes)
            idx = np.minimum(idx, len(sizes) - 1)
            return units.gbit_per_s_to_bytes_per_s(sizes[idx]), np.where(ok, prices[idx], np.inf)
        gbit = units.bytes_per_s_to_gbit_per_s(need)
        over = self.max_gbit_per_s is not None and np.any(gbit > self.max_gbit_per_s * (1 + 1e-12))
        cost = gbit * self.usd_per_gbit_per_s_hour
        if over:
            cost = np.where(gbit > self.max_gbit_per_s * (1 + 1e-12), np.inf, cost)
        return need, cost


@dataclass(frozen=True)
class Problem:
    """What may be chosen and what it costs. ``thresholds``: "any", "local-only" (no offload,
    t = infinity) or "remote-only" (every request prefilled remotely, the naive baseline)."""

    model: ThroughputModel
    remote_gpus_per_instance: int
    local_gpus_per_instance: int
    remote_usd_per_gpu_hour: float
    local_usd_per_gpu_hour: float
    prfaas: Range
    local: Range  # N_p + N_d (local nodes switch roles freely)
    link: Link
    budget_usd_per_hour: float | None = None
    thresholds: str = "any"

    def remote_instance_usd_per_hour(self) -> float:
        return self.remote_gpus_per_instance * self.remote_usd_per_gpu_hour

    def local_instance_usd_per_hour(self) -> float:
        return self.local_gpus_per_instance * self.local_usd_per_gpu_hour


@dataclass
class Plan:
    threshold_tokens: float  # inf: no offload; 0: everything offloaded
    n_prfaas: int
    n_pd_prefill: int
    n_pd_decode: int
    link_bytes_per_s: float
    needs: Needs
    metrics: dict
    cost_usd_per_hour: float

    @property
    def throughput_req_per_s(self) -> float:
        return float(self.metrics["throughput_req_per_s"][0])


def _allowed(problem: Problem, n_options: int) -> np.ndarray:
    mask = np.ones(n_options, bool)
    if problem.thresholds == "local-only":
        mask[:] = False
        mask[-1] = True
    elif problem.thresholds == "remote-only":
        mask[:] = False
        mask[0] = True
    if problem.model.remote is None:
        mask[:-1] = False
    return mask


def _deploy(problem: Problem, needs: Needs, lam: float) -> dict[str, np.ndarray]:
    """The cheapest integer deployment sustaining ``lam`` at each threshold, its cost and
    whether it respects the ranges, the link and the budget."""
    tm = problem.model
    n_r = np.maximum(_ceil(lam * needs.remote_s), problem.prfaas.min)
    n_p = _ceil(lam * needs.local_s)
    n_d = np.full_like(n_p, _ceil(lam / tm.decode_req_per_s_per_instance))
    n_d = n_d + np.maximum(problem.local.min - (n_p + n_d), 0)  # spare local nodes decode
    ok = np.ones_like(n_p, bool)
    if problem.prfaas.max is not None:
        ok &= n_r <= problem.prfaas.max
    if problem.local.max is not None:
        ok &= n_p + n_d <= problem.local.max
    link_have, link_cost = problem.link.buy(lam * needs.link_bytes)
    cost = n_r * problem.remote_instance_usd_per_hour() + (n_p + n_d) * problem.local_instance_usd_per_hour() + link_cost
    ok &= np.isfinite(cost)
    if problem.budget_usd_per_hour is not None:
        ok &= cost <= problem.budget_usd_per_hour * (1 + 1e-12)
    return {"n_r": n_r, "n_p": n_p, "n_d": n_d, "link": link_have, "cost": cost, "ok": ok}


def _feasible(problem: Problem, lam: float, allowed: np.ndarray) -> bool:
    return bool(np.any(_deploy(problem, problem.model.needs, lam)["ok"] & allowed))


def maximise(problem: Problem) -> Plan:
    """Largest Lambda_max reachable within the ranges, link and budget (fixed fleet or budget)."""
    tm = problem.model
    allowed = _allowed(problem, len(tm.needs.offload_frac))
    if not _feasible(problem, 1e-12, allowed):
        cheapest = float(np.min(np.where(allowed, _deploy(problem, tm.needs, 1e-12)["cost"], np.inf)))
        if problem.budget_usd_per_hour is not None and math.isfinite(cheapest) and cheapest > problem.budget_usd_per_hour:
            raise PlanError(f"budget {problem.budget_usd_per_hour:,.2f} $/hour is below the cheapest deployment that serves any traffic ({cheapest:,.2f} $/hour)")
        raise PlanError("no deployment within the instance ranges and link can serve any traffic")
    lo, hi = 0.0, 1.0
    while _feasible(problem, hi, allowed):
        lo, hi = hi, hi * 2
        if hi > 1e12:
            raise PlanError("throughput is unbounded: give a budget, a fixed fleet or instance maxima")
    for _ in range(200):
        mid = (lo + hi) / 2
        if _feasible(problem, mid, allowed):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return _finish(problem, lo, allowed)


def cheapest_for(problem: Problem, target_req_per_s: float) -> Plan:
    """The cheapest deployment sustaining ``target_req_per_s``."""
    if not target_req_per_s > 0:
        raise PlanError(f"target must be > 0 req/s, got {target_req_per_s}")
    allowed = _allowed(problem, len(problem.model.needs.offload_frac))
    dep = _deploy(problem, problem.model.needs, target_req_per_s)
    if not np.any(dep["ok"] & allowed):
        raise PlanError(f"target {target_req_per_s:g} req/s cannot be reached within the instance ranges, link and budget")
    return _finish(problem, target_req_per_s, allowed)


def _finish(problem: Problem, lam: float, allowed: np.ndarray) -> Plan:
    """Counts at the cheapest feasible threshold for ``lam``, then t refined for those counts."""
    tm = problem.model
    dep = _deploy(problem, tm.needs, lam)
    cost = np.where(dep["ok"] & allowed, dep["cost"], np.inf)
    j = int(np.argmin(cost))
    n_r, n_p, n_d = int(dep["n_r"][j]), int(dep["n_p"][j]), int(dep["n_d"][j])
    link = float(dep["link"][j])
    t, needs = refine_threshold(problem, n_r, n_p, n_d, link, j, allowed)
    return Plan(t, n_r, n_p, n_d, link, needs, tm.evaluate(needs, n_r, n_p, n_d, link), float(dep["cost"][j]))


def refine_threshold(problem: Problem, n_r: int, n_p: int, n_d: int, link: float, j_hint: int, allowed: np.ndarray) -> tuple[float, Needs]:
    """For fixed counts, the threshold that maximises the prefill capacity
    min(Theta_prfaas / p, Theta_pd_p / (1 - p)) (Eq. 7), searched over all candidate boundaries
    and then continuously between the neighbours of the best one."""
    tm = problem.model
    n = tm.needs

    def prefill_cap(needs: Needs) -> np.ndarray:
        m = tm.evaluate(needs, n_r, n_p, n_d, link)
        return np.minimum(m["cap_prfaas_req_per_s"], m["cap_pd_prefill_req_per_s"])

    caps = np.where(allowed, prefill_cap(n), -np.inf)
    j = int(np.argmax(caps)) if np.any(np.isfinite(caps)) else j_hint
    thresholds = n.threshold_tokens
    last = len(thresholds) - 1
    if j == last:
        return math.inf, n.select(j, math.inf)
    if j == 0 or not tm.lengths.continuous or problem.thresholds != "any":
        return float(thresholds[j]), n.select(j, thresholds[j])
    # Between the neighbouring boundaries the PrfaaS capacity rises with t and the local one falls:
    # bisect (in log t) for the crossing of Eq. 7, and keep it if it beats the boundary.
    def gap(t: float) -> float:
        m = tm.evaluate(tm.needs_at(t), n_r, n_p, n_d, link)
        return math.log(m["cap_prfaas_req_per_s"][0]) - math.log(m["cap_pd_prefill_req_per_s"][0])

    lo, hi = math.log(thresholds[max(j - 1, 1)]), math.log(thresholds[min(j + 1, last)])
    if not gap(math.exp(lo)) < 0 < gap(math.exp(hi)):
        return float(thresholds[j]), n.select(j, thresholds[j])
    while hi - lo > 1e-7:  # t to a relative 1e-7 (a fraction of a token)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(math.exp(mid)) < 0 else (lo, mid)
    t_best = math.exp(hi)
    needs = tm.needs_at(t_best)
    if prefill_cap(needs)[0] >= caps[j]:
        return t_best, needs
    return float(thresholds[j]), n.select(j, thresholds[j])
