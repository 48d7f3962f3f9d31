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
option a single threshold) it is exact for those thresholds, a feasible plan. Each round solves
both; the relaxation's chosen segments are split - at t*, the largest threshold at which the
relaxation's local prefill counts still carry the site's rate (the optimum of fixed counts
lies there: above it local prefill is short, below it the PrfaaS and link needs are larger), or
at the middle - and t*, t_lo and t_hi join the points. The search stops when the best point plan
meets the relaxation's bound to a relative 1e-9 (HiGHS's dual bound is used, so the bound holds
whatever the MILP gap), which proves that no threshold anywhere does better; the rounds and the
wall-clock time are capped, and a plan stopped by a cap reports its gap (status "gap").

How it is kept small. The segments start as the length distribution's cells (2,048, as the
one-pair optimizer); a cell whose fractional bound (:class:`Bounds`: each pool at its cheapest
part, the link at its cheapest $ per Gbit/s) cannot beat the best plan found is dropped, the
survivors are joined into at most MAX_SEGMENTS per (site, PrfaaS site), and only the segments a
relaxation chooses are cut again. The first plan comes from the point MILP with continuous counts,
rounded up; each MILP is solved to a tenth of the search's gap so far. For one site, one PrfaaS
site and one part per role this is the one-pair question, and tests/test_fleet.py checks the two
optimizers agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from ..planning.sites import Fleet
from .constraints import Milp, _usable_gbit as _usable, build
from .model import Option
from .needs import SiteNeeds, site_needs
from .solve import Solution, solve

GAP_RTOL = 1e-9  # stop when the best plan is within this of the relaxation's bound
TIME_LIMIT_S = 30.0  # the search's wall-clock budget: past it, the best plan with its gap
MAX_ROUNDS = 80
INITIAL_POINTS = 4  # grid thresholds per (site, PrfaaS site) in the first point MILP
MAX_SEGMENTS = 8  # segments per (site, PrfaaS site) in a relaxation (neighbours joined beyond)
_END_SPLIT = 1e-3  # a balance at a segment's end cuts this share of it off next to that end
_SPLIT_PASSES = 12  # passes of 16 points: the balance to 16^-12 of its segment


@dataclass
class FleetSolution:
    milp: Milp  # the point MILP of the plan
    solution: Solution
    bound: float  # the relaxation's bound of the objective (cost, or alpha)
    gap_frac: float
    rounds: int
    status: str  # "optimal" or "gap" (rounds or MILP time limit)
    alpha: float | None = None  # budget question: the multiple of every site's rate served


def _options(sn: SiteNeeds, segments: dict[str, list[tuple[float, float]]]) -> list[Option]:
    """All-local, then per linked PrfaaS site one option per segment (a point where t_lo == t_hi)."""
    last = float(sn.grid_tokens[-1])
    out = [Option(None, last, last, sn.local_s([last])[:, 0], np.zeros(0), 0.0, 0.0)]
    for r, segs in segments.items():
        lo = np.array([a for a, _ in segs])
        hi = np.array([b for _, b in segs])
        loc, rem, link, p = sn.local_s(lo), sn.remote_s(r, hi), sn.link_gbit(hi), sn.offload_frac(hi)
        out += [Option(r, float(lo[i]), float(hi[i]), loc[:, i], rem[:, i], float(link[i]), float(p[i])) for i in range(len(segs))]
    return out


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

    def of(self, options: list[Option]) -> np.ndarray:
        out = np.empty(len(options))
        for i, o in enumerate(options):
            c = float(np.min(self.local * o.local_s)) + self.decode
            if o.prfaas is not None:
                c += float(np.min(self.remote[o.prfaas] * o.remote_s)) + self.link[o.prfaas] * o.link_gbit
            out[i] = c
        return out


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


def _capacities(sn: SiteNeeds, r: str, local_n: np.ndarray, remote_avail: np.ndarray, link_gbit: float, t: np.ndarray):
    """(local prefill, PrfaaS + link) capacity of site s in req/s at thresholds t, for local
    counts ``local_n``, PrfaaS instances ``remote_avail`` left to this site (per part) and a
    usable link of ``link_gbit``: sum_k n_k / a_k(t) (falls with t) and min(sum_j A_j / r_j(t),
    B / b(t)) (rises with t); a zero need gives an unbounded capacity."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sn.local_s(t)
        cap_l = np.sum(np.where(a > 0, local_n[:, None] / np.where(a > 0, a, 1.0), np.inf), axis=0)
        rr = sn.remote_s(r, t)
        cap_r = np.sum(np.where(rr > 0, remote_avail[:, None] / np.where(rr > 0, rr, 1.0), np.inf), axis=0)
        b = sn.link_gbit(t)
        cap_b = np.where(b > 0, link_gbit / np.where(b > 0, b, 1.0), np.inf)
    return cap_l, np.minimum(cap_r, cap_b)


def _split_at(sn: SiteNeeds, r: str, local_n, remote_avail, link_gbit: float, rate: float, lo: float, hi: float) -> float:
    """Where to cut the chosen segment [lo, hi] for the relaxation's own counts and rate.

    t_L, the largest t at which the local counts carry the rate (local capacity falls with t),
    if the PrfaaS instances and link carry it there too: the counts' best threshold (the PrfaaS
    and link needs are smallest there), so the part left of it prices them exactly and the part
    right of it needs more local prefill. Otherwise no t in the segment serves the rate with these
    counts, and the cut goes where the falling local capacity meets the rising PrfaaS/link one
    (Eq. 7's balance): on either side one of them is short."""
    def bisect(pred) -> float:
        a, b = lo, hi  # pred holds at a (or nowhere), fails at b: the last t where it holds
        for _ in range(_SPLIT_PASSES):
            ts = np.linspace(a, b, 17)
            good = np.flatnonzero(pred(ts))
            if not len(good):
                return a
            j = int(good[-1])
            if j == 16:
                return float(ts[16])
            a, b = float(ts[j]), float(ts[j + 1])
            if b - a <= 1e-12 * max(b, 1.0):
                break
        return a

    def caps(ts):
        return _capacities(sn, r, local_n, remote_avail, link_gbit, ts)

    t_local = bisect(lambda ts: caps(ts)[0] >= rate * (1 - 1e-12))
    if caps(np.array([t_local]))[1][0] >= rate * (1 - 1e-12):
        return t_local
    return bisect(lambda ts: np.greater_equal(*caps(ts)))


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
    MILP is solved to a relative gap of a tenth of the search's own gap so far (HiGHS's dual
    bound keeps the relaxation's bound valid), down to 1e-9."""
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
            pts = _options(needs[s], {r: [(float(t), float(t)) for t in g]})[1:]
            best = np.argsort(bounds[s].of(pts))[:INITIAL_POINTS]
            points[s][r] = sorted(float(g[i]) for i in best)

    def milp(opts, integer: bool = True) -> Milp:
        return build(Milp(fleet, needs, opts, objective, demand_req_per_s, budget_usd_per_hour, alpha_max, integer_counts=integer, slo=slo))

    def point_options(s):
        return _options(needs[s], {r: [(t, t) for t in ts] for r, ts in points[s].items()})

    best, best_val, bound = None, math.inf, -math.inf
    sense = 1.0 if objective == "target" else -1.0  # minimised: cost, or -alpha
    status = "gap"
    rounds = 0
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
        exact = milp({s: point_options(s) for s in needs})
        try:
            inc = solve(exact, max(left, 1.0), rel)
        except PlanError:
            inc = None
        if inc is not None and inc.objective < best_val:
            best, best_val = (exact, inc), inc.objective
        opts = {s: _prune(s, needs, bounds, segments, objective, demand_req_per_s, budget_usd_per_hour, best_val, rounds == 1)
                for s in needs}
        if any(not o for o in opts.values()):  # some site has no option that could beat the best plan
            bound = best_val
        else:
            relax = milp(opts)
            try:
                sol = solve(relax, max(left, 1.0), rel)
                bound = max(bound, min(sol.bound, best_val))
            except PlanError:
                if best is None:
                    raise
                bound = best_val  # nothing in the remaining segments is feasible
        if best is not None and best_val - bound <= GAP_RTOL * max(abs(best_val), 1e-12):
            status = "optimal" if best[1].status == "optimal" else "gap"
            break
        for s, o, t in _split_points(relax, sol, needs):
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


def _prune(s: str, needs, bounds, segments, objective: str, demand: dict, budget: float | None, best_val: float,
           join: bool) -> list[Option]:
    """Site s's options (all-local, then its segments) whose fractional bound, with every other
    site at its cheapest option, could still beat the best plan; ``segments`` keeps the
    survivors (the first time, ``join``, the cells that survive are joined into at most
    MAX_SEGMENTS per PrfaaS site for the MILP)."""
    cheapest = {}
    per_site = {}
    for site in needs:
        opts = _options(needs[site], segments[site])
        per_site[site] = (opts, bounds[site].of(opts))
        cheapest[site] = float(np.min(per_site[site][1]))
    opts, unit = per_site[s]
    rest = sum(demand[o] * cheapest[o] for o in needs if o != s)
    if not math.isfinite(best_val):
        keep = np.ones(len(opts), bool)
    elif objective == "target":
        keep = demand[s] * unit + rest <= best_val * (1 + GAP_RTOL) + 1e-9
    else:  # best_val = -alpha of the best plan; alpha <= budget / (fractional cost per unit alpha)
        keep = budget >= -best_val * (demand[s] * unit + rest) * (1 - GAP_RTOL)
    kept = [o for o, k in zip(opts, keep) if k]
    for r in list(segments[s]):
        segs = [(o.t_lo, o.t_hi) for o in kept if o.prfaas == r]
        segments[s][r] = _merge(segs, MAX_SEGMENTS) if join else segs
    local_only = [o for o in kept if o.prfaas is None]
    return local_only + _options(needs[s], segments[s])[1:]


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


def _chosen(m: Milp, sol: Solution) -> dict[str, tuple[int, float]]:
    """Each site's chosen option and its served rate, req/s."""
    choose, rate = m.lay.values(sol.x, "choose"), m.lay.values(sol.x, "rate")
    out = {}
    for s, opts in m.options.items():
        i = max(range(len(opts)), key=lambda j: choose[s, j])
        out[s] = (i, sum(rate[s, j] for j in range(len(opts))))
    return out


def _split_points(m: Milp, sol: Solution, needs: dict[str, SiteNeeds]):
    """(site, chosen segment, t) for every site whose relaxation chose a segment: t is the
    balance of the relaxation's own counts (its local prefill, the PrfaaS instances the other
    sites leave, its link), where both halves of the segment price those counts exactly."""
    lay, x = m.lay, sol.x
    n_p, n_r = lay.values(x, "n_prefill"), lay.values(x, "n_prfaas")
    flow = lay.values(x, "remote_flow")
    used: dict = {}
    for (s, i, j), f in flow.items():
        o = m.options[s][i]
        used[s, o.prfaas, j] = used.get((s, o.prfaas, j), 0.0) + f * o.remote_s[j]
    for s, (i, rate) in _chosen(m, sol).items():
        o = m.options[s][i]
        if o.prfaas is None or o.is_point:
            continue
        parts = range(len(o.remote_s))
        avail = np.array([n_r[o.prfaas, j] - sum(v for (s2, r2, j2), v in used.items() if r2 == o.prfaas and j2 == j and s2 != s)
                          for j in parts], float)
        link = next(lk for lk in m.fleet.links if lk.src == o.prfaas and lk.dst == s)
        bought = link.link.sizes_gbit_per_s or link.link.fixed_gbit_per_s is not None  # continuous: any need is bought
        usable = sum(x[col] * v for col, v in _usable(m, link).items()) if bought else math.inf
        local = np.array([n_p[s, k] for k in range(len(needs[s].prefill_parts))], float)
        yield s, o, _split_at(needs[s], o.prfaas, local, np.maximum(avail, 0.0), usable, rate, o.t_lo, o.t_hi)


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
