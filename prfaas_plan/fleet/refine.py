"""What the threshold search (:mod:`.search`) does with a relaxation's solution: where it cuts a
chosen segment, and whether the relaxation's own counts already make a plan.

A relaxation prices each chosen segment [t_lo, t_hi] at its optimistic ends (local prefill at
t_lo, PrfaaS prefill and link at t_hi), so its counts need not serve the site's rate at any one
threshold. For fixed counts the local prefill capacity sum_k n_k / a_k(t) falls with t and every
other need falls too, so the counts' best threshold is t_L, the largest t at which the local
counts still carry the rate (:func:`local_limit`): if any threshold in the segment serves the
rate with these counts, t_L does, for this site and for every resource it shares. So
:func:`realise` puts every site at its t_L and solves the point MILP with every count and link
choice fixed at the relaxation's (a linear program: only the request flows are free); when it is
feasible, the relaxation's counts are a plan, and its cost meets the relaxation's bound to the
MILP's own gap - often the whole search in one relaxation.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import PlanError
from .constraints import Milp, _usable_gbit, build
from .model import Option
from .needs import SiteNeeds
from .solve import Solution, solve

_SPLIT_PASSES = 12  # passes of 16 points: the balance to 16^-12 of its segment
_COUNTS = ("n_prefill", "n_decode", "n_prfaas")
_LINK_CHOICES = ("link_size", "link_on")


def options(sn: SiteNeeds, segments: dict[str, list[tuple[float, float]]]) -> list[Option]:
    """All-local, then per linked PrfaaS site one option per segment (a point where t_lo == t_hi)."""
    last = float(sn.grid_tokens[-1])
    out = [Option(None, last, last, sn.local_s([last])[:, 0], np.zeros(0), 0.0, 0.0)]
    for r, segs in segments.items():
        lo = np.array([a for a, _ in segs])
        hi = np.array([b for _, b in segs])
        loc, rem, link, p = sn.local_s(lo), sn.remote_s(r, hi), sn.link_gbit(hi), sn.offload_frac(hi)
        out += [Option(r, float(lo[i]), float(hi[i]), loc[:, i], rem[:, i], float(link[i]), float(p[i])) for i in range(len(segs))]
    return out


def capacities(sn: SiteNeeds, r: str, local_n: np.ndarray, remote_avail: np.ndarray, link_gbit: float, t: np.ndarray):
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


def _last_true(pred, lo: float, hi: float) -> float:
    """The last t in [lo, hi] where ``pred`` (vectorised, true then false along t) holds, to
    16^-_SPLIT_PASSES of the interval; ``lo`` if it holds nowhere."""
    a, b = lo, hi
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


def local_limit(sn: SiteNeeds, local_n: np.ndarray, rate: float, lo: float, hi: float) -> float:
    """t_L: the largest t in [lo, hi] at which the local counts ``local_n`` carry ``rate`` req/s
    (sum_k n_k / a_k(t) >= rate, falling in t); ``lo`` if they carry it nowhere."""
    def carries(ts):
        with np.errstate(divide="ignore", invalid="ignore"):
            a = sn.local_s(ts)
            return np.sum(np.where(a > 0, local_n[:, None] / np.where(a > 0, a, 1.0), np.inf), axis=0) >= rate * (1 - 1e-12)

    return _last_true(carries, lo, hi)


def split_at(sn: SiteNeeds, r: str, local_n, remote_avail, link_gbit: float, rate: float, lo: float, hi: float) -> float:
    """Where to cut the chosen segment [lo, hi] for the relaxation's own counts and rate.

    t_L (:func:`local_limit`) if the PrfaaS instances and link carry the rate there too: the
    counts' best threshold (the PrfaaS and link needs are smallest there), so the part left of it
    prices them exactly and the part right of it needs more local prefill. Otherwise no t in the
    segment serves the rate with these counts, and the cut goes where the falling local capacity
    meets the rising PrfaaS/link one (Eq. 7's balance): on either side one of them is short."""
    def caps(ts):
        return capacities(sn, r, local_n, remote_avail, link_gbit, ts)

    t_local = local_limit(sn, local_n, rate, lo, hi)
    if caps(np.array([t_local]))[1][0] >= rate * (1 - 1e-12):
        return t_local
    return _last_true(lambda ts: np.greater_equal(*caps(ts)), lo, hi)


def chosen(m: Milp, sol: Solution) -> dict[str, tuple[int, float]]:
    """Each site's chosen option and its served rate, req/s."""
    choose, rate = m.lay.values(sol.x, "choose"), m.lay.values(sol.x, "rate")
    out = {}
    for s, opts in m.options.items():
        i = max(range(len(opts)), key=lambda j: choose[s, j])
        out[s] = (i, sum(rate[s, j] for j in range(len(opts))))
    return out


def split_points(m: Milp, sol: Solution, needs: dict[str, SiteNeeds]):
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
    for s, (i, rate) in chosen(m, sol).items():
        o = m.options[s][i]
        if o.prfaas is None or o.is_point:
            continue
        parts = range(len(o.remote_s))
        avail = np.array([n_r[o.prfaas, j] - sum(v for (s2, r2, j2), v in used.items() if r2 == o.prfaas and j2 == j and s2 != s)
                          for j in parts], float)
        link = next(lk for lk in m.fleet.links if lk.src == o.prfaas and lk.dst == s)
        bought = link.link.sizes_gbit_per_s or link.link.fixed_gbit_per_s is not None  # continuous: any need is bought
        usable = sum(x[col] * v for col, v in _usable_gbit(m, link).items()) if bought else math.inf
        local = np.array([n_p[s, k] for k in range(len(needs[s].prefill_parts))], float)
        yield s, o, split_at(needs[s], o.prfaas, local, np.maximum(avail, 0.0), usable, rate, o.t_lo, o.t_hi)


def realise(m: Milp, sol: Solution, needs: dict[str, SiteNeeds], time_limit_s: float) -> tuple[Milp, Solution] | None:
    """The relaxation ``m``'s solution ``sol`` as a plan, if its counts make one (see the module
    docstring): each site at its chosen option's point, or at t_L of its chosen segment; the
    point MILP (all-local and that point per site) with the counts, link choices and routing
    fixed at the relaxation's, solved for the flows (with the relaxation's SLO rows, if any, now at
    the point). None when those counts cannot serve the rates (or meet the SLO rows) there."""
    n_p = m.lay.values(sol.x, "n_prefill")
    picks = chosen(m, sol)
    opts = {}
    for s, (i, rate) in picks.items():
        o, sn = m.options[s][i], needs[s]
        if o.prfaas is None:
            opts[s] = options(sn, {})
            continue
        t = o.t_hi
        if not o.is_point:
            local = np.array([n_p[s, k] for k in range(len(sn.prefill_parts))], float)
            t = local_limit(sn, local, rate, o.t_lo, o.t_hi)
        opts[s] = options(sn, {o.prfaas: [(t, t)]})
    p = build(Milp(m.fleet, needs, opts, m.objective, m.demand_req_per_s, m.budget_usd_per_hour, m.alpha_max, slo=m.slo))
    lay = p.lay
    for block in _COUNTS + _LINK_CHOICES:
        for key, col in lay[block].items():
            lay.lb[col] = lay.ub[col] = float(round(sol.x[m.lay[block][key]]))
    for s, (i, _) in picks.items():
        for j in range(len(opts[s])):
            col = lay["choose"][s, j]
            lay.lb[col] = lay.ub[col] = float(j == (0 if m.options[s][i].prfaas is None else 1))
    try:
        return p, solve(p, time_limit_s, explain=False)
    except PlanError:
        return None
