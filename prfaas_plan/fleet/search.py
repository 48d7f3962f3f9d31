"""The fleet composition: how many instances of which part at which site, which PrfaaS site each
local site offloads to, at which threshold, and which link sizes - by ``scipy.optimize.milp``.

What is linear. For fixed routing thresholds every need is a constant per request
(:mod:`.needs`), so capacities and costs are linear in the integer instance counts, the link
choices and the per-part request flows (:mod:`.constraints`): a pool of mixed parts serves
sum_k n_k / a_k req/s (each part a share of the requests, the dispatcher splitting by
capacity), a PrfaaS site's instance-seconds are shared by the sites routed to it, and in a
budget question the served rates alpha x arrival_s are linear in alpha.

What is enumerated. The threshold of each local site: each site chooses one option (binaries
``choose``), a PrfaaS site and a *segment* [t_lo, t_hi] of thresholds, or nothing offloaded.
Within a segment the local prefill need rises with t and the PrfaaS and link needs fall
(tail and head sums of positive per-cell terms), so the option's coefficients - local at t_lo,
PrfaaS and link at t_hi - are lower bounds of the needs at every t in it.

Why the result is optimal. Over segments that cover every threshold the MILP is a relaxation: its
optimum bounds the true optimum (lower bound of cost; upper bound of alpha). Over *points* (every
option a single threshold) it is exact for those thresholds, a feasible plan. Each round solves the
relaxation and tries its own counts as a plan (:func:`.refine.realise`: each site at the largest
threshold of its chosen segment where its local prefill still carries its rate, every count fixed;
feasible, the plan meets the bound to the MILP's gap); the point MILP is solved only while there is
no plan yet or the last relaxation's counts made none. The chosen segments are split - at t*, the
largest threshold at which the relaxation's local prefill counts still carry the site's rate (the
optimum of fixed counts lies there: above it local prefill is short, below it the PrfaaS and link
needs are larger), or at the middle - and t*, t_lo and t_hi join the points. The search stops when
the best plan (point or realised) meets the relaxation's bound to a relative 1e-9 (HiGHS's dual
bound is used, so the bound holds whatever the MILP gap), which proves that no threshold anywhere
does better; the rounds and the wall-clock time are capped, and a plan stopped by a cap reports its
gap (status "gap").

How it is kept small. The segments start as the length distribution's cells (2,048, as the
one-pair optimizer); a cell whose fractional bound (:class:`Bounds`: each pool at its cheapest
part, the link at its cheapest $ per Gbit/s) cannot beat the best plan found is dropped, the
survivors are joined into at most MAX_SEGMENTS per (site, PrfaaS site), and only the segments a
relaxation chooses are cut again. The first plan comes from the point MILP with continuous counts,
rounded up. A point MILP is solved to a tenth of the search's gap so far; a relaxation, once a
plan exists, to 1e-9 (its time goes to HiGHS's root cuts and restarts whatever the gap, and a
realised relaxation solved that far ends the search: on the bench fleet one round, not two). For
one site, one PrfaaS site and one part per role this is the one-pair question, and tests/test_fleet.py checks the two
optimizers agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from ..planning.sites import Fleet
from .constraints import Milp, build
from .model import Option
from .needs import SiteNeeds, site_needs
from .refine import options as _options, realise, split_points
from .solve import Solution, solve

GAP_RTOL = 1e-9  # stop when the best plan is within this of the relaxation's bound
TIME_LIMIT_S = 30.0  # the search's wall-clock budget: past it, the best plan with its gap
MAX_ROUNDS = 80
INITIAL_POINTS = 4  # grid thresholds per (site, PrfaaS site) in the first point MILP
MAX_SEGMENTS = 8  # segments per (site, PrfaaS site) in a relaxation (neighbours joined beyond)
_END_SPLIT = 1e-3  # a balance at a segment's end cuts this share of it off next to that end


@dataclass
class FleetSolution:
    milp: Milp  # the point MILP of the plan
    solution: Solution
    bound: float  # the relaxation's bound of the objective (cost, or alpha)
    gap_frac: float
    rounds: int
    status: str  # "optimal" or "gap" (rounds or MILP time limit)
    alpha: float | None = None  # budget question: the multiple of every site's rate served


class Bounds:
    """Fractional cost per req/s of a site's options: the cheapest part of each pool at its
    optimistic need, the cheapest link $ per usable Gbit/s, and the cheapest decode part. A lower
    bound of what any fleet pays per req/s served through that option (integer counts, shared
    sites and caps only add), used to drop options that cannot beat the best plan found."""

    def __init__(self, fleet: Fleet, sn: SiteNeeds):
        self.sn = sn
        self.local = np.array([c.instance_usd_per_hour for c in sn.prefill_parts])
        self.decode = float(min(c.instance_usd_per_hour / th for c, th in zip(sn.decode_parts, sn.decode_req_per_s)))
        self.remote, self.link = {}, {}
        for p in fleet.prfaas_sites:
            lk = fleet.link(p.name, sn.site.name)
            if lk is None:
                continue
            self.remote[p.name] = np.array([c.instance_usd_per_hour for c in p.parts])
            link = lk.link
            if link.sizes_gbit_per_s:
                per_gbit = min(u / s for u, s in zip(link.sizes_usd_per_hour, link.sizes_gbit_per_s))
            else:
                per_gbit = link.usd_per_gbit_per_s_hour if link.fixed_gbit_per_s is None else 0.0
            self.link[p.name] = per_gbit / link.max_utilisation

    def unit(self, prfaas: str | None, lo=None, hi=None) -> np.ndarray:
        """The bound per req/s of segments [lo, hi] (arrays) offloading to ``prfaas`` (local prefill
        at lo, PrfaaS and link at hi), or of all-local (``prfaas`` None; one value)."""
        sn = self.sn
        if prfaas is None:
            return np.min(self.local[:, None] * sn.local_s([float(sn.grid_tokens[-1])]), axis=0) + self.decode
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if not len(lo):
            return np.zeros(0)
        return (np.min(self.local[:, None] * sn.local_s(lo), axis=0) + self.decode
                + np.min(self.remote[prfaas][:, None] * sn.remote_s(prfaas, hi), axis=0) + self.link[prfaas] * sn.link_gbit(hi))


def _cells(sn: SiteNeeds) -> list[tuple[float, float]]:
    g = sn.grid_tokens
    return [(float(a), float(b)) for a, b in zip(g[:-1], g[1:])]


def _merge(segs: list[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    """At most ``most`` segments: runs of neighbours joined (a joined segment covers what lies
    between, so it stays a relaxation)."""
    if len(segs) <= most:
        return segs
    groups = np.array_split(np.arange(len(segs)), most)
    return [(segs[g[0]][0], segs[g[-1]][1]) for g in groups if len(g)]


def _split(seg: tuple[float, float], t: float) -> list[tuple[float, float]]:
    """Cut a segment at t if t is inside; at an end, a sliver (_END_SPLIT of the segment) next to
    that end: the counts balance there, so the rest of the segment needs more of them, and the
    sliver's bound is within its width of the plan at the end."""
    lo, hi = seg
    if t <= lo + 1e-9 * hi:
        t = lo + _END_SPLIT * (hi - lo)
    elif t >= hi - 1e-9 * hi:
        t = hi - _END_SPLIT * (hi - lo)
    return [(lo, t), (t, hi)]


def optimise(fleet: Fleet, model, objective: str, demand_req_per_s: dict[str, float], budget_usd_per_hour: float | None = None,
             needs: dict[str, SiteNeeds] | None = None, max_rounds: int = MAX_ROUNDS, time_limit_s: float = TIME_LIMIT_S,
             slo=None) -> FleetSolution:
    """The cheapest fleet serving ``demand_req_per_s`` per local site (``objective="target"``), or
    the fleet within ``budget_usd_per_hour`` serving the largest multiple alpha of every site's
    ``demand_req_per_s`` (``"budget"``; among those, the cheapest). See the module docstring.
    The search stops after ``time_limit_s`` with the best plan and its gap (status "gap"); each
    point MILP (and a relaxation before any plan exists) is solved to a relative gap of a tenth of
    the search's own gap so far, down to 1e-9, a relaxation after that to 1e-9 (HiGHS's dual
    bound keeps the relaxation's bound valid whatever the gap)."""
    start = time.perf_counter()
    needs = needs or {s.name: site_needs(fleet, model, s) for s in fleet.local_sites}
    alpha_max = _alpha_bound(fleet, needs, demand_req_per_s, budget_usd_per_hour) if objective == "budget" else math.inf
    bounds = {s: Bounds(fleet, sn) for s, sn in needs.items()}
    linked = {s: list(bounds[s].remote) for s in needs}
    segments = {s: {r: _cells(needs[s]) for r in linked[s]} for s in needs}
    points: dict = {}
    for s in needs:  # first points: the grid thresholds with the lowest bound per PrfaaS site
        points[s] = {}
        for r in linked[s]:
            g = needs[s].grid_tokens
            best = np.argsort(bounds[s].unit(r, g, g), kind="stable")[:INITIAL_POINTS]
            points[s][r] = sorted(float(g[i]) for i in best)

    def milp(opts, integer: bool = True) -> Milp:
        return build(Milp(fleet, needs, opts, objective, demand_req_per_s, budget_usd_per_hour, alpha_max, integer_counts=integer, slo=slo))

    def point_options(s):
        return _options(needs[s], {r: [(t, t) for t in ts] for r, ts in points[s].items()})

    best, best_val, bound = None, math.inf, -math.inf
    sense = 1.0 if objective == "target" else -1.0  # minimised: cost, or -alpha
    status = "gap"
    rounds, realised = 0, False  # realised: the last relaxation's counts made a plan (refine.realise)
    for rounds in range(1, max_rounds + 1):
        left = time_limit_s - (time.perf_counter() - start)
        if rounds > 1 and left <= 0:
            break
        rel = min(max((best_val - bound) / max(abs(best_val), 1e-12) / 10, GAP_RTOL), 1e-3) if math.isfinite(best_val) else 1e-3
        if rounds == 1 and objective == "target":  # a first plan fast: counts continuous, then rounded up
            first = milp({s: point_options(s) for s in needs}, integer=False)
            try:
                inc = _rounded_up(first, solve(first, max(left, 1.0)))
            except PlanError:
                inc = None
            if inc is not None:
                best, best_val = (first, inc), inc.objective
        if best is None or (rounds > 1 and not realised):  # the points the last relaxation added, priced
            exact = milp({s: point_options(s) for s in needs})
            try:
                inc = solve(exact, max(left, 1.0), rel)
            except PlanError:
                inc = None
            if inc is not None and inc.objective < best_val:
                best, best_val = (exact, inc), inc.objective
        opts = _prune(needs, bounds, segments, objective, demand_req_per_s, budget_usd_per_hour, best_val, rounds == 1)
        if any(not o for o in opts.values()):  # some site has no option that could beat the best plan
            bound = best_val
        else:
            relax = milp(opts)
            try:
                sol = solve(relax, max(left, 1.0), GAP_RTOL if best is not None else rel)
                bound = max(bound, min(sol.bound, best_val))
                plan = realise(relax, sol, needs, max(left, 1.0))
                realised = plan is not None
                if plan is not None and plan[1].objective < best_val:
                    best, best_val = plan, plan[1].objective
            except PlanError:
                realised = False
                if best is None:
                    raise
                bound = best_val  # nothing in the remaining segments is feasible
        if best is not None and best_val - bound <= GAP_RTOL * max(abs(best_val), 1e-12):
            status = "optimal" if best[1].status == "optimal" else "gap"
            break
        for s, o, t in split_points(relax, sol, needs):
            points[s][o.prfaas] = sorted(set(points[s][o.prfaas]) | {o.t_lo, o.t_hi, t})
            segs = segments[s][o.prfaas]
            k = segs.index((o.t_lo, o.t_hi))
            segs[k:k + 1] = _split((o.t_lo, o.t_hi), t)
    if best is None:
        raise PlanError("no fleet found within the rounds of the threshold search")
    gap = max((best_val - bound) / max(abs(best_val), 1e-12), 0.0)
    alpha = None
    if objective == "budget":
        alpha = -best_val
        best = _cheapest_at(best, -best_val, point_options, needs)
    return FleetSolution(best[0], best[1], bound * sense, gap, rounds, status, alpha)


def _prune(needs, bounds, segments, objective: str, demand: dict, budget: float | None, best_val: float,
           join: bool) -> dict[str, list[Option]]:
    """Each site's options (all-local, then its segments) whose fractional bound, with every
    other site at its cheapest option, could still beat the best plan; ``segments`` keeps the
    survivors (the first time, ``join``, the cells that survive are joined into at most
    MAX_SEGMENTS per PrfaaS site for the MILP). Bounds are computed once per site, over all its
    segments at once (a segment's bound is below the cost of every threshold in it, so each site's
    cheapest bound before pruning is a valid floor for the others)."""
    unit = {s: (b.unit(None), {r: b.unit(r, [a for a, _ in segs], [z for _, z in segs]) for r, segs in segments[s].items()})
            for s, b in bounds.items()}
    cheapest = {s: float(min(np.min(np.concatenate([loc, *per.values()])), math.inf)) for s, (loc, per) in unit.items()}
    out = {}
    for s in needs:
        rest = sum(demand[o] * cheapest[o] for o in needs if o != s)

        def keep(u: np.ndarray) -> np.ndarray:
            if not math.isfinite(best_val):
                return np.ones(len(u), bool)
            if objective == "target":
                return demand[s] * u + rest <= best_val * (1 + GAP_RTOL) + 1e-9
            return budget >= -best_val * (demand[s] * u + rest) * (1 - GAP_RTOL)  # best_val = -alpha of the best plan

        loc, per = unit[s]
        for r, u in per.items():
            segs = [seg for seg, k in zip(segments[s][r], keep(u)) if k]
            segments[s][r] = _merge(segs, MAX_SEGMENTS) if join else segs
        opts = _options(needs[s], segments[s])
        out[s] = opts if keep(loc)[0] else opts[1:]
    return out


def _rounded_up(m: Milp, sol: Solution) -> Solution | None:
    """The plan of a solution with continuous counts, every count rounded up: still feasible
    where counts only supply capacity (target questions; a GPU cap can break, then None)."""
    lay = m.lay
    x = sol.x.copy()
    for block in ("n_prefill", "n_decode", "n_prfaas"):
        for col in lay[block].values():
            x[col] = math.ceil(x[col] - 1e-9 * max(x[col], 1.0))
    ax = m.rows.matrix(lay.n) @ x
    tol = 1e-7 * np.maximum(1.0, np.abs(ax))
    if np.any(ax < np.array(m.rows.lo) - tol) or np.any(ax > np.array(m.rows.hi) + tol):
        return None
    cost = sum(v * x[col] for col, v in m.cost.items())
    counts = {c for b in ("n_prefill", "n_decode", "n_prfaas") for c in lay[b].values()}
    lay.integer = [1 if col in counts else i for col, i in enumerate(lay.integer)]  # read back as counts
    return Solution("optimal", x, float(cost), -math.inf, math.inf)


def _cheapest_at(best, alpha: float, point_options, needs) -> tuple[Milp, Solution]:
    """Budget question: the cheapest fleet serving alpha x every site's rate (a hair below alpha,
    within the search's tolerance, so that the plan found is feasible again)."""
    if not alpha > 0:
        raise PlanError("the budget buys no fleet that serves any traffic")
    m0 = best[0]
    target = {s: m0.demand_req_per_s[s] * alpha * (1 - GAP_RTOL) for s in needs}
    m = build(Milp(m0.fleet, needs, {s: point_options(s) for s in needs}, "target", target, m0.budget_usd_per_hour))
    try:
        return m, solve(m)
    except PlanError:
        return best


def _alpha_bound(fleet: Fleet, needs: dict[str, SiteNeeds], weights: dict[str, float], budget: float | None) -> float:
    """An alpha no fleet within the budget reaches: decode alone, at the cheapest part per
    req/s, already costs budget / sum_s weight_s x min_d price_d / theta_d."""
    if budget is None:
        raise PlanError("a budget question needs a budget")
    floor = sum(weights[s] * min(c.instance_usd_per_hour / th for c, th in zip(sn.decode_parts, sn.decode_req_per_s))
                for s, sn in needs.items())
    if not floor > 0:
        raise PlanError("throughput is unbounded: give non-zero prices")
    return budget / floor * (1 + 1e-6)
