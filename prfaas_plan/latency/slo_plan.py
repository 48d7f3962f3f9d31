"""The cheapest one-pair plan that meets a latency SLO at a rate (issue #16, item 1).

Question: at ``rate`` req/s (Poisson), the cheapest plan ($/hour: GPUs and link) - threshold t,
PrfaaS instances N_r, local prefill N_p and decode N_d, link bandwidth - whose analytic TTFT
(:func:`~prfaas_plan.latency.ttft.ttft`) meets every stated level of ``slo`` (P90, P99, mean),
whose pools stay under ``slo.max_utilisation_frac`` where given, within the scenario's instance
ranges, link and budget. TPOT holds by construction: decode is sized at the step the TPOT SLO
fixes (:func:`~prfaas_plan.roofline.decode.decode_capacity`).

Method (best-first over the thresholds, greedy in the counts):

1. Thresholds: the lower edges of the cells of a ``SLO_CELLS``-cell grid of the uncached lengths
   (each a small slice of the requests) and "no offload"; only those the problem allows.
2. Bounds, per threshold: each pool's smallest count that can meet the SLO on its own
   (:func:`~prfaas_plan.latency.slo.min_instances_for_slo`: its routed rate, the mean and cv^2 of
   its service times in the slice, its requests' own latency-regime prefill plus RTT and the
   first decode step as the delays, its share of the traffic), its utilisation cap, the
   throughput need ceil(rate x need) and the range minimum; the link at the rate's egress /
   ``link.max_utilisation``. Every bound is necessary, so their cost is a lower bound on any plan
   at that threshold meeting the SLO. The SLO bounds are computed lazily: a threshold is first
   priced at its cheap bounds (throughput and caps, all thresholds at once) and gets its SLO
   bounds only when it is the cheapest candidate left.
3. Check and tighten: the cheapest candidate's counts are checked with the full analytic model
   (the mixture of the paths, the decode wait, the link's exposed transfer at its utilisation:
   :func:`~prfaas_plan.latency.ttft.slo_excess`). While it misses, one unit is added where the
   excess falls most per $: one PrfaaS instance, one local prefill instance, one decode
   instance, or the next link size (+10% of a continuous link) - marginal analysis, which is
   optimal when the excess is a separable convex function of the counts (it nearly is: each
   pool's tail falls convexly with its count; the decode wait and the link couple them weakly).
   Every step goes back into the one queue ordered by cost, so no threshold is tightened past
   the cost of a cheaper candidate; the first candidate popped that meets the SLO is the
   answer. It is therefore the cheapest plan on the threshold grid that the greedy tightening
   reaches from the bounds - not a proof of optimality: tests compare it with a brute force over
   every count, threshold and link size on small cases and with the oversized throughput plan
   (:func:`headroom_baseline`), which it must never cost more than.

When no threshold yields a plan (the delays alone miss the SLO, or the ranges or budget cap
the counts below it) the error states the best P90 achievable: the lowest analytic P90 at the
rate over the thresholds with every pool at its range maximum (or large enough that its wait
vanishes) and the largest link.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace

import numpy as np

from .. import units
from ..errors import PlanError
from ..planning.optimizer import _ceil, cheapest_for, maximise
from ..planning.planner import problem_for, solve_throughput
from ..planning.problem import Plan, Problem, TtftSlo
from ..planning.scenario import Scenario
from ..planning.throughput import ThroughputModel
from .deployment import Deployment, deployment
from .slo import min_instances_for_slo
from .ttft import length_cells, routing, slo_excess, split_cv2, ttft

#: Length cells of the threshold grid of the SLO search (the latency model's own grid has 1,024; 256 missed
#: by one instance a plan whose threshold lies between two of its points, Qwen3.5 at 20 req/s, P99 20 s).
SLO_CELLS = 512

#: The most tightening steps at one threshold (each adds one instance or one link step).
MAX_TIGHTEN_STEPS = 400

#: A step must cut the excess by at least this fraction of it to count (a free link would
#: otherwise grow without end for ever smaller gains).
MIN_PROGRESS_FRAC = 1e-3

#: A continuous link grows by this factor per tightening step.
LINK_STEP = 1.10

#: Relative precision of the goodput bisection of a budget question (0.1%).
RATE_RTOL = 1e-3


@dataclass(frozen=True)
class SloTarget:
    """What a plan must meet at ``rate_req_per_s``: the TTFT levels and per-pool utilisation caps
    (pool name -> fraction: prfaas, local_prefill, local_decode)."""

    rate_req_per_s: float
    slo: TtftSlo
    max_utilisation_frac: tuple[tuple[str, float], ...] = ()

    def cap(self, pool: str) -> float | None:
        return dict(self.max_utilisation_frac).get(pool)

    def describe(self) -> str:
        caps = ", ".join(f"{p} <= {u:.0%} utilised" for p, u in self.max_utilisation_frac)
        levels = self.slo.describe() if self.slo.stated else ""
        return " and ".join(x for x in (f"TTFT {levels}" if levels else "", caps) if x) + f" at {self.rate_req_per_s:g} req/s"


@dataclass(frozen=True)
class _Node:
    """A candidate plan in the search: cost ($/hour), its full-model excess over the SLO (None
    until checked), threshold option i, counts (N_r, N_p, N_d), usable link and its $/hour, the
    link's growth factor over the egress, and the tightening steps taken (-1: at the cheap
    bounds, before the SLO bounds)."""

    cost: float
    excess: float | None
    i: int
    counts: tuple[int, int, int]
    usable: float
    link_usd: float
    grow: float
    steps: int


class _Search:
    """Per-cell and per-threshold quantities of one scenario, mode and rate."""

    def __init__(self, sc: Scenario, tm: ThroughputModel, problem: Problem, target: SloTarget, n_cells: int):
        self.sc, self.tm, self.problem, self.target = sc, tm, problem, target
        self.lam = target.rate_req_per_s
        mass, x, lower = length_cells(sc.workload.uncached, n_cells)
        self.mass = mass
        cut = np.concatenate([lower, [math.inf]])  # threshold k: cells k.. offloaded (k = n: none)
        base = {"threshold_tokens": None, "n_prfaas": 1, "n_pd_prefill": 1, "n_pd_decode": 1, "link_gbit_per_s": 0.0}
        self.template = deployment(sc, base, "prfaas", tm.mode, tm)
        dep = self.template
        self.step_s = dep.decode_step_s
        self.local_service = dep.local.service_s(x)
        self.local_delay = dep.local.latency_s(x) + self.step_s
        if dep.prfaas is not None and tm.remote is not None:
            self.remote_service = dep.prfaas.service_s(x)
            self.remote_delay = dep.prfaas.latency_s(x) + dep.rtt_s + self.step_s  # the exposed transfer is >= 0
        else:
            self.remote_service = self.remote_delay = None
        allowed = np.ones(len(cut), bool)
        if problem.thresholds == "local-only" or self.remote_service is None:
            allowed[:-1] = False
        elif problem.thresholds == "remote-only":
            allowed[1:] = False
        self.k = np.flatnonzero(allowed)
        self.t = cut[self.k]
        self.share = np.array([mass[k:].sum() for k in self.k])  # offloaded share per threshold
        kv = dep.kv_bytes(x)
        self.egress = self.lam * np.array([np.sum(mass[k:] * kv[k:]) for k in self.k])  # bytes/s
        self.remote_usd = problem.remote_instance_usd_per_hour()
        self.local_usd = problem.local_instance_usd_per_hour()
        self.decode_min = self._decode_bound()
        self._routing: dict = {}  # threshold option -> the full model's count-independent part

    # -- bounds ---------------------------------------------------------------------------------
    def _decode_bound(self) -> int | None:
        """Decode instances: the slots' SLO bound (every request, its smallest delay on either
        path as the delay), the throughput need and the cap."""
        dep, tm = self.template, self.tm
        delay = self.local_delay if self.remote_delay is None else np.minimum(self.local_delay, self.remote_delay)
        n = min_instances_for_slo(self.lam, dep.output_tokens_mean * self.step_s, 0.0, delay, self.mass, self.target.slo,
                                  share_frac=1.0, max_utilisation_frac=self.target.cap("local_decode"),
                                  servers_per_instance=dep.decode_batch, max_instances=self.problem.local.max)
        if n is None:
            return None
        return int(max(n, _ceil(self.lam / tm.decode_req_per_s_per_instance)))

    def cheap_counts(self) -> dict[str, np.ndarray]:
        """Every threshold's counts at the throughput needs and utilisation caps (no SLO)."""
        needs = self.tm.needs_at(np.where(np.isfinite(self.t), self.t, self.tm.needs.threshold_tokens[-1]))
        caps = {name: self.target.cap(name) or 1.0 for name in ("prfaas", "local_prefill")}
        n_r = _ceil(self.lam * needs.remote_s / caps["prfaas"])
        n_p = _ceil(self.lam * needs.local_s / caps["local_prefill"])
        return {"n_r": np.where(self.share > 0, np.maximum(n_r, 1), 0), "n_p": np.where(self.share < 1, np.maximum(n_p, 1), 0)}

    def slo_counts(self, i: int) -> tuple[int, int] | None:
        """(N_r, N_p) SLO bounds at threshold option ``i`` (None: no count meets the SLO)."""
        k, p = int(self.k[i]), float(self.share[i])
        out = []
        for name, service, delay, cells, share, rng in (
                ("prfaas", self.remote_service, self.remote_delay, slice(k, None), p, self.problem.prfaas),
                ("local_prefill", self.local_service, self.local_delay, slice(0, k), 1 - p, None)):
            if share <= 1e-15:
                out.append(0)
                continue
            m = self.mass[cells]
            s = service[cells]
            mean = float(np.sum(m * s) / share)
            cv2 = max(float(np.sum(m * s * s) / share) / mean**2 - 1.0, 0.0)
            n = min_instances_for_slo(self.lam * share, mean, cv2, delay[cells], m, self.target.slo,
                                      arrival_cv2=split_cv2(1.0, share), share_frac=min(share, 1.0),
                                      max_utilisation_frac=self.target.cap(name), max_instances=rng.max if rng else self.problem.local.max)
            if n is None:
                return None
            out.append(n)
        return out[0], out[1]

    def link(self, i: int, grow: float = 1.0) -> tuple[float, float]:
        """(usable bytes/s, $/hour) of the smallest link carrying threshold option i's egress x ``grow``."""
        have, cost = self.problem.link.buy(np.array([self.egress[i] * grow]))
        return float(have[0]), float(cost[0])

    def cost(self, n_r: int, n_p: int, n_d: int, link_usd: float) -> float:
        n_local = max(n_p + n_d, self.problem.local.min)
        return n_r * self.remote_usd + n_local * self.local_usd + link_usd

    def feasible(self, n_r: int, n_p: int, n_d: int, link_usd: float) -> bool:
        pr, lo = self.problem.prfaas, self.problem.local
        ok = (pr.max is None or n_r <= pr.max) and n_r >= pr.min and (lo.max is None or n_p + n_d <= lo.max) and math.isfinite(link_usd)
        budget = self.problem.budget_usd_per_hour
        return ok and (budget is None or self.cost(n_r, n_p, n_d, link_usd) <= budget * (1 + 1e-12))

    # -- the full check --------------------------------------------------------------------------
    def dep(self, i: int, n_r: int, n_p: int, n_d: int, link_usable: float) -> Deployment:
        d = self.template
        pool = lambda p, n: replace(p, instances=n) if n > 0 and p is not None else None  # noqa: E731
        return replace(d, threshold_tokens=float(self.t[i]), prfaas=pool(d.prfaas, n_r), local=pool(d.local, n_p),
                       link_bytes_per_s=self.problem.link.bought_bytes_per_s(link_usable), decode_instances=n_d)

    def excess(self, i: int, counts: tuple[int, int, int], link_usable: float) -> float:
        """The full model's excess over the SLO (:func:`~prfaas_plan.latency.ttft.slo_excess`)."""
        if i not in self._routing:
            self._routing[i] = routing(replace(self.template, threshold_tokens=float(self.t[i])))
        return slo_excess(self.dep(i, *counts, link_usable), self.lam, self.target.slo, cells=self._routing[i])

    def step(self, node: _Node) -> _Node | None:
        """One tightening step from ``node`` (which misses the SLO): the unit of capacity whose
        excess falls most per $ (see the module docstring); None if nothing can be added or
        nothing helps (the SLO is out of reach at this threshold)."""
        i, counts, v, p = node.i, node.counts, node.excess, float(self.share[node.i])
        best = None  # (gain, node)
        for j, on in enumerate((p > 0, p < 1, True)):  # one more PrfaaS, local prefill, decode instance
            if not on:
                continue
            c = list(counts)
            c[j] += 1
            c = tuple(c)
            if not self.feasible(*c, node.link_usd):
                continue
            v_c = self.excess(i, c, node.usable)
            cost = self.cost(*c, node.link_usd)
            gain = (v - v_c) / (cost - node.cost) if v - v_c > MIN_PROGRESS_FRAC * v else 0.0
            if best is None or gain > best[0]:
                best = (gain, _Node(cost, v_c, i, c, node.usable, node.link_usd, node.grow, node.steps + 1))
        if p > 0 and self.problem.link.fixed_gbit_per_s is None:  # the next link size (or +10%)
            g = node.grow * LINK_STEP if not self.problem.link.sizes_gbit_per_s else node.usable * (1 + 1e-6) / max(self.egress[i], 1e-300)
            u, usd = self.link(i, g)
            if u > node.usable and self.feasible(*counts, usd):
                v_c = self.excess(i, counts, u)
                dc = self.cost(*counts, usd) - node.cost
                gain = 0.0 if v - v_c <= MIN_PROGRESS_FRAC * v else ((v - v_c) / dc if dc > 0 else math.inf)
                if best is None or gain > best[0]:
                    best = (gain, _Node(self.cost(*counts, usd), v_c, i, counts, u, usd, g, node.steps + 1))
        if best is None or not best[0] > 0 or best[1].steps > MAX_TIGHTEN_STEPS:
            return None
        return best[1]

    def plan(self, i: int, counts: tuple[int, int, int], usable: float, cost: float) -> Plan:
        t = float(self.t[i])
        t_needs = t if math.isfinite(t) else float(self.tm.needs.threshold_tokens[-1])
        needs = self.tm.needs_at([t_needs])
        n_r, n_p, n_d = counts
        n_d += max(self.problem.local.min - (n_p + n_d), 0)  # spare local nodes decode
        if needs.offload_frac[0] <= 0:
            t = math.inf
        return Plan(t, n_r, n_p, n_d, usable, needs, self.tm.evaluate(needs, n_r, n_p, n_d, usable), cost)

    def best_p90_s(self) -> float:
        """The lowest P90 at the rate over (at most 64) thresholds, each pool at its range's
        maximum or large enough that its wait vanishes, the link at its largest."""
        pr, lo = self.problem.prfaas, self.problem.local
        big = lambda a, hi: hi if hi is not None else int(a + 10 * math.sqrt(a) + 10)  # noqa: E731
        link = self.problem.link
        gbit = link.fixed_gbit_per_s or (max(link.sizes_gbit_per_s) if link.sizes_gbit_per_s else link.max_gbit_per_s) or 1e9
        best = math.inf
        for i in np.unique(np.linspace(0, len(self.k) - 1, 64).astype(int)):
            p = float(self.share[i])
            a_r = self.lam * float(np.sum(self.mass[self.k[i]:] * self.remote_service[self.k[i]:])) if self.remote_service is not None else 0.0
            a_p = self.lam * float(np.sum(self.mass[:self.k[i]] * self.local_service[:self.k[i]]))
            a_d = self.lam * self.template.output_tokens_mean * self.step_s / self.template.decode_batch
            counts = (big(a_r, pr.max) if p > 0 else 0, big(a_p, lo.max) if p < 1 else 0, big(a_d, lo.max))
            d = replace(self.dep(i, *counts, 0.0), link_bytes_per_s=units.gbit_per_s_to_bytes_per_s(gbit))
            try:
                best = min(best, ttft(d, self.lam).ttft_p90_s)
            except PlanError:
                continue
        return best


def cheapest_meeting_slo(sc: Scenario, tm: ThroughputModel, problem: Problem, target: SloTarget, n_cells: int = SLO_CELLS,
                         explain: bool = True) -> Plan:
    """The cheapest plan meeting ``target`` (see the module docstring for the method and what
    it guarantees). Raises PlanError "no plan within the ranges meets ..." with the best
    achievable P90 when none does (without it when not ``explain``: a search that only asks
    whether a plan exists skips that work).

    One best-first queue ordered by cost holds every threshold: first at its cheap bounds, then
    at its SLO bounds (checked with the full model), then at each tightening step. The first
    entry popped that meets the SLO is the answer: every other entry costs at least as much, and
    costs only grow along a threshold's steps."""
    if not (target.rate_req_per_s > 0 and math.isfinite(target.rate_req_per_s)):
        raise PlanError(f"the rate an SLO is planned at must be a positive number of req/s, got {target.rate_req_per_s}")
    s = _Search(sc, tm, problem, target, n_cells)
    if s.decode_min is None:
        return _refuse(s, explain)
    cheap = s.cheap_counts()
    heap = []  # (cost, excess (inf: not checked yet), order, node)
    for i in range(len(s.k)):
        usable, link_usd = s.link(i)
        c = (int(cheap["n_r"][i]), int(cheap["n_p"][i]), s.decode_min)
        if math.isfinite(link_usd):
            heap.append((s.cost(*c, link_usd), math.inf, i, _Node(s.cost(*c, link_usd), None, i, c, usable, link_usd, 1.0, -1)))
    heapq.heapify(heap)
    order = len(heap)
    while heap:
        _, _, _, node = heapq.heappop(heap)
        i = node.i
        if node.steps < 0:  # at its cheap bounds: raise to its SLO bounds
            bound = s.slo_counts(i)
            if bound is None:
                continue
            c = (max(bound[0], node.counts[0], problem.prfaas.min if s.share[i] > 0 else 0), max(bound[1], node.counts[1]), s.decode_min)
            if not s.feasible(*c, node.link_usd):
                continue
            nxt = replace(node, cost=s.cost(*c, node.link_usd), counts=c, steps=0)
        elif node.excess is None:  # at its SLO bounds: the full check
            nxt = replace(node, excess=s.excess(i, node.counts, node.usable))
        elif node.excess <= 0:
            return s.plan(i, node.counts, node.usable, node.cost)
        else:
            nxt = s.step(node)
            if nxt is None:
                continue
        order += 1
        heapq.heappush(heap, (nxt.cost, math.inf if nxt.excess is None else nxt.excess, order, nxt))
    return _refuse(s, explain)


def _refuse(s: _Search, explain: bool = True):
    head = f"no plan within the ranges{' and budget' if s.problem.budget_usd_per_hour else ''} meets {s.target.describe()}"
    if not explain:
        raise PlanError(head)
    p90 = s.best_p90_s()
    best = f"the best achievable P90 TTFT is {p90:.3g} s" if math.isfinite(p90) else "no plan within them is even stable at that rate"
    raise PlanError(f"{head}: {best}")


def slo_target(sc: Scenario, rate_req_per_s: float) -> SloTarget:
    return SloTarget(rate_req_per_s, sc.ttft_slo, sc.max_utilisation_frac)


def solve(sc: Scenario, tm: ThroughputModel, objective: str, budget: float | None, target: float | None) -> Plan:
    """A :data:`~prfaas_plan.planning.planner.Solver` that plans for the scenario's SLO:

    - ``slo``: the cheapest plan meeting the SLO at ``workload.arrival_req_per_s``;
    - ``target`` with an SLO: the cheapest plan whose goodput reaches the target (meets the SLO
      at the target rate);
    - ``budget`` with an SLO: the most goodput within the budget - the highest rate at which a
      plan within the budget meets the SLO (feasibility falls monotonically with the rate: a
      plan meeting it at a rate meets it at every lower one), found by bisection;
    - anything else (no SLO stated, or a fixed fleet): the throughput answer, as before."""
    if objective == "fixed-fleet" or not sc.slo_aware:
        return solve_throughput(sc, tm, objective, budget, target)
    problem = problem_for(sc, tm, objective if objective != "slo" else "target", budget)
    if objective == "slo":
        return cheapest_meeting_slo(sc, tm, problem, slo_target(sc, sc.workload.arrival_req_per_s))
    if objective == "target":
        return cheapest_meeting_slo(sc, tm, problem, slo_target(sc, target))
    return most_goodput_within_budget(sc, tm, problem)


def most_goodput_within_budget(sc: Scenario, tm: ThroughputModel, problem: Problem) -> Plan:
    """The plan with the most goodput within ``problem``'s budget (see :func:`solve`): bisection
    on the rate between 0 and the budget's Lambda_max, to ``RATE_RTOL``."""
    hi = maximise(problem).throughput_req_per_s
    lo, plan = 0.0, None
    while hi - lo > RATE_RTOL * hi:
        mid = 0.5 * (lo + hi)
        try:
            plan, lo = cheapest_meeting_slo(sc, tm, problem, slo_target(sc, mid), explain=False), mid
        except PlanError:
            hi = mid
    if plan is None:
        raise PlanError(f"no plan within the budget {problem.budget_usd_per_hour:,.2f} $/hour meets TTFT {sc.ttft_slo.describe()} at any rate "
                        f"above {hi:.3g} req/s")
    return plan


def headroom_baseline(sc: Scenario, tm: ThroughputModel, target: SloTarget, step_frac: float = 0.01, max_factor: float = 4.0) -> tuple[Plan, float]:
    """What a user does by hand (issue #16, item 7): the cheapest throughput plan for
    ``rate x h`` (:func:`~prfaas_plan.planning.optimizer.cheapest_for`), h raised from 1 in steps
    of ``step_frac`` until that plan meets the SLO at the rate in the full analytic model.
    Returns (plan, h); PlanError if no h up to ``max_factor`` does."""
    problem = problem_for(sc, tm, "target", None)
    h = 1.0
    while h <= max_factor + 1e-9:
        plan = cheapest_for(problem, target.rate_req_per_s * h)
        counts = {"threshold_tokens": None if math.isinf(plan.threshold_tokens) else plan.threshold_tokens, "n_prfaas": plan.n_prfaas,
                  "n_pd_prefill": plan.n_pd_prefill, "n_pd_decode": plan.n_pd_decode,
                  "link_gbit_per_s": units.bytes_per_s_to_gbit_per_s(problem.link.bought_bytes_per_s(plan.link_bytes_per_s))}
        if slo_excess(deployment(sc, counts, "prfaas", tm.mode, tm), target.rate_req_per_s, target.slo) <= 0:
            return plan, h
        h = round(h + step_frac, 10)
    raise PlanError(f"no throughput plan oversized up to {max_factor:g}x meets {target.describe()}")
