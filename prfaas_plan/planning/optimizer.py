"""Choose the threshold t, instance counts and link bandwidth ([PRFAAS] Eq. 7-8 and beyond).

One engine serves the three questions:
- fixed fleet (the paper's problem): N_prfaas and N_p + N_d given, pick t and the N_p / N_d split;
- budget: pick N_prfaas, N_p, N_d, link bandwidth and t to maximise Lambda_max within $/hour;
- target: the cheapest plan that reaches a required req/s.

Method. For a throughput Lambda and a threshold t, the cheapest integer deployment is exact:
each resource at the ceiling of its need (N_prfaas = ceil(Lambda p T_r), N_p = ceil(Lambda (1-p)
T_p), N_d = ceil(Lambda / theta_d), B_out = Lambda p S_r; see :mod:`throughput`), and at least one
of each where its need is positive, because Lambda_max is the minimum of independent per-resource
capacities and every cost grows with each count. Whether Lambda is reachable is monotone in
Lambda, so bisection finds the best Lambda; the target question evaluates the cost directly.

Exact in t. As t moves, the counts are piecewise constant and change only where Lambda times a
need crosses an integer; between two such points the link need p S_r only falls as t rises (the
KV size is concave in length), so the cheapest deployment of a piece is at its right end. The
candidates are therefore the grid thresholds (the cell boundaries of the length distribution) and,
inside each grid interval, every t where Lambda (1-p) T_p or Lambda p T_r crosses an integer
(found by bisection; each need is monotone within an interval). Intervals whose optimistic
deployment (each need at its smaller end value) cannot be feasible, or cannot beat the best cost
found, are skipped, which keeps the search to a few intervals near the optimum. Brute-force tests
(tests/test_optimizer.py, scripts/brute_force.py) search t on a fine continuous grid with
refinement and check that no deployment beats the optimizer. The search is plain numpy: importing
scipy.optimize alone would cost more than twice the whole planning run.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import fields, replace

import numpy as np

from .. import units
from ..errors import PlanError
from .problem import CAPACITY_RTOL, Plan, Problem, Range
from .threshold import ROOT_STEPS, balance, placed
from .throughput import Needs

_CEIL_RTOL, _CEIL_ATOL = CAPACITY_RTOL, 1e-6  # 3.0000000001 instances of need is 3 instances (never 1e-6 below)
_LAMBDA_RTOL = 1e-9  # bisection on Lambda stops at this relative width (the ceiling's tolerance)
_LAMBDA_PROBE = 1e-12  # req/s: "can this problem serve any traffic at all"


def _ceil(x: np.ndarray) -> np.ndarray:
    """Instances for a need: the ceiling (a relative 1e-9 over an integer rounds down), and at
    least one for any positive need, however small."""
    # For x > 0 the argument of the ceiling is > 0 (x less a billionth of itself, or less 1e-6
    # where x > 1000), so the ceiling is already >= 1.
    if isinstance(x, float) and math.isfinite(x):  # one number: the same steps in Python floats
        return float(math.ceil(x - min(x * _CEIL_RTOL, _CEIL_ATOL))) if x > 0 else 0.0
    x = np.asarray(x, float)
    return np.where(x > 0, np.ceil(x - np.minimum(x * _CEIL_RTOL, _CEIL_ATOL)), 0.0)


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


def _grid(problem: Problem) -> tuple[Needs, np.ndarray]:
    """The grid thresholds the search works on and which of them are allowed: all of them, or
    only the allowed ones where the problem restricts the thresholds (local-only, remote-only,
    no PrfaaS cluster): every quantity of a threshold is computed element-wise, so the subset
    gives the same values as the whole grid, at a 2,000th of the cost."""
    tm = problem.model
    allowed = _allowed(problem, len(tm.needs.offload_frac))
    if allowed.all():
        return tm.needs, allowed
    idx = np.flatnonzero(allowed)
    return tm.needs.select(idx), allowed[idx]


def _deploy(problem: Problem, needs: Needs, lam: float) -> dict[str, np.ndarray]:
    """The cheapest integer deployment sustaining ``lam`` at each threshold, its cost and
    whether it respects the ranges, the link and the budget."""
    tm = problem.model
    n_r = np.maximum(_ceil(lam * needs.remote_s), problem.prfaas.min)
    n_p = _ceil(lam * needs.local_s)
    d = _ceil(lam / tm.decode_req_per_s_per_instance)
    if problem.local.min > 0:  # spare local nodes decode (with no minimum there are none: counts are >= 0)
        n_d = d + np.maximum(problem.local.min - (n_p + d), 0)
    else:
        n_d = np.full_like(n_p, d)
    n_local = n_p + n_d
    ok = n_r <= problem.prfaas.max if problem.prfaas.max is not None else np.ones_like(n_p, bool)
    if problem.local.max is not None:
        ok &= n_local <= problem.local.max
    link_have, link_cost = problem.link.buy(lam * needs.link_bytes)
    ok &= (needs.link_bytes <= 0) | (link_have > 0)
    cost = n_r * problem.remote_instance_usd_per_hour() + n_local * problem.local_instance_usd_per_hour() + link_cost
    ok &= np.isfinite(cost)
    if problem.budget_usd_per_hour is not None:
        ok &= cost <= problem.budget_usd_per_hour
    return {"n_r": n_r, "n_p": n_p, "n_d": n_d, "link": link_have, "cost": cost, "ok": ok}


def _optimistic(lo: Needs, hi: Needs) -> Needs:
    """Optimistic needs of the intervals between thresholds ``lo`` and ``hi``: each need at the
    smaller of its two end values (exact lower bounds, each need being monotone in between)."""
    m = lambda name: np.minimum(getattr(lo, name), getattr(hi, name))  # noqa: E731
    return Needs(lo.threshold_tokens, lo.offload_frac, lo.long_tokens, lo.short_tokens, m("remote_s"), m("link_bytes"), m("local_s"))


_FLOORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # throughput model -> its intervals' optimistic needs


def _interval_floor(problem: Problem) -> Needs:
    """``_optimistic(*interval ends)``, made once per throughput model (it does not depend on Lambda)."""
    tm = problem.model
    floor = _FLOORS.get(tm)
    if floor is None:
        floor = _FLOORS[tm] = _optimistic(*tm.interval_ends)
    return floor


_NEEDS_CROSSING = ("local_s", "remote_s")  # the needs whose ceilings change the counts along t
_MAX_CROSSINGS = 64  # an interval with more integer crossings than this is subdivided first


def _crossings(problem: Problem, lam: float, lo: Needs, hi: Needs, cost_cap: float) -> Needs | None:
    """Needs at every t inside the intervals (lo, hi) (aligned Needs of their ends) where
    lam * (1-p) T_p or lam * p T_r crosses an integer k, on the side where the count is still k:
    the right end of a piece of thresholds with constant counts (there the count is within 1e-10
    of k, inside the ceiling's tolerance). Intervals whose optimistic deployment is infeasible or
    costs more than ``cost_cap`` are dropped first; one with more than _MAX_CROSSINGS crossings is
    cut into _MAX_CROSSINGS pieces and screened again (branch and bound), so that a plan with
    millions of instances still searches only the pieces that can hold its optimum."""
    tm = problem.model
    found = []
    for _ in range(64):
        opt = _deploy(problem, _optimistic(lo, hi), lam)
        keep = np.flatnonzero(opt["ok"] & (opt["cost"] <= cost_cap * (1 + 1e-12)))
        if not len(keep):
            break
        lo, hi = lo.select(keep), hi.select(keep)
        ends = {name: (lam * getattr(lo, name), lam * getattr(hi, name)) for name in _NEEDS_CROSSING}
        count = {name: np.clip(np.ceil(np.maximum(a, b)) - np.floor(np.minimum(a, b)) - 1, 0, None) for name, (a, b) in ends.items()}
        big = sum(count.values()) > _MAX_CROSSINGS
        small = np.flatnonzero(~big)
        for name, (a, b) in ends.items():
            c = count[name][small].astype(int)
            if c.sum():
                rep = np.repeat(small, c)
                step = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
                found.append(((lo.threshold_tokens[rep], hi.threshold_tokens[rep], np.floor(np.minimum(a, b))[rep] + 1 + step,
                               (b > a)[rep], np.full(len(rep), name), a[rep], b[rep]), lo.select(rep)))
        if not np.any(big):
            break
        t_lo, t_hi = lo.threshold_tokens[big], hi.threshold_tokens[big]
        cuts = t_lo[:, None] + (t_hi - t_lo)[:, None] * np.linspace(0.0, 1.0, _MAX_CROSSINGS + 1)[None, :]
        pts = tm.needs_at(cuts.ravel())
        n = _MAX_CROSSINGS + 1
        first = (np.arange(len(t_lo))[:, None] * n + np.arange(n - 1)[None, :]).ravel()
        lo, hi = pts.select(first), pts.select(first + 1)
    if not found:
        return None
    t_lo, t_hi, target, up, name, lam_need_lo, lam_need_hi = (np.concatenate(x) for x in zip(*(f for f, _ in found)))
    at_lo = Needs.concat([n for _, n in found])  # the needs at t_lo, kept as t_lo moves
    is_local, sign = name == "local_s", np.where(up, 1.0, -1.0)

    def g(t):  # rises through 0 at the crossing: lam * need - target, oriented; and the needs at t
        nd = tm.needs_at(t)
        return sign * (lam * np.where(is_local, nd.local_s, nd.remote_s) - target), nd

    # Illinois regula falsi on the bracket (g(t_lo) <= 0 < g(t_hi)) until t_lo sits on the
    # crossing; w_lo, w_hi are the end values the secant uses (one halved when it goes stale).
    # At the bracket's ends g comes from the needs already known there (needs_at is
    # element-wise, so they are the values it would give).
    g_lo = w_lo = sign * (lam_need_lo - target)
    w_hi, last = sign * (lam_need_hi - target), np.zeros(len(t_lo))
    for _ in range(ROOT_STEPS):
        if np.all((-g_lo <= 1e-10 * np.maximum(target, 1.0)) | (t_hi - t_lo <= 1e-15 * t_hi)):
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            c = t_hi - w_hi * (t_hi - t_lo) / (w_hi - w_lo)
        c = np.where(np.isfinite(c) & (c > t_lo) & (c < t_hi), c, (t_lo + t_hi) / 2)
        g_c, at_c = g(c)
        left = g_c <= 0
        at_lo = Needs(*(np.where(left, getattr(at_c, f.name), getattr(at_lo, f.name)) for f in fields(Needs)))
        w_hi = np.where(left, np.where(last > 0, w_hi / 2, w_hi), g_c)
        w_lo = np.where(left, g_c, np.where(last < 0, w_lo / 2, w_lo))
        g_lo = np.where(left, g_c, g_lo)
        t_lo, t_hi = np.where(left, c, t_lo), np.where(left, t_hi, c)
        last = np.where(left, 1.0, -1.0)
    return at_lo


def _candidates(problem: Problem, lam: float, grid_allowed: tuple[Needs, np.ndarray], cost_cap: float = math.inf) -> tuple[Needs, np.ndarray]:
    """Thresholds at which the cheapest deployment for ``lam`` is found (see the module
    docstring): the grid, plus the integer crossings inside every grid interval whose optimistic
    deployment is feasible and costs at most ``cost_cap``. Returns (needs, allowed)."""
    (grid, allowed), ends = grid_allowed, _intervals(problem)
    extra = _crossings(problem, lam, *ends, cost_cap) if ends is not None else None
    if extra is None:
        return grid, allowed
    return Needs.concat([grid, extra]), np.concatenate([allowed, np.ones(len(extra.offload_frac), bool)])


def _intervals(problem: Problem) -> tuple[Needs, Needs] | None:
    """The grid intervals' end needs (lo, hi), or None where only grid thresholds are allowed."""
    if problem.thresholds != "any" or problem.model.remote is None:
        return None
    return problem.model.interval_ends


def _reach(problem: Problem, lam: float, grid: tuple[Needs, np.ndarray], level: str) -> float:
    """Whether ``lam`` can be sustained, as the largest throughput of a deployment found for it
    (>= lam), or 0.0 if none. ``level``: "grid" (grid thresholds only: a lower bound), "relaxed"
    (also any interval's optimistic deployment, returning lam: an upper bound) or "exact"."""
    tm = problem.model
    ends = _intervals(problem)
    if level == "relaxed" and ends is not None:  # optimistic needs are below both ends' needs
        return lam if np.any(_deploy(problem, _interval_floor(problem), lam)["ok"]) else 0.0
    needs, allowed = grid
    dep = _deploy(problem, needs, lam)
    ok = dep["ok"] & allowed
    if level != "grid" and not np.any(ok):
        if ends is None:
            return 0.0
        extra = _crossings(problem, lam, *ends, math.inf)
        if extra is None:
            return 0.0
        needs = extra
        dep = _deploy(problem, needs, lam)
        ok = dep["ok"]
    if not np.any(ok):
        return 0.0
    idx = np.flatnonzero(ok)
    got = tm.throughput_req_per_s(needs.select(idx), dep["n_r"][idx], dep["n_p"][idx], dep["n_d"][idx], dep["link"][idx])
    best = float(np.max(got))
    if level == "exact" and ends is not None:
        j = int(idx[np.argmax(got)])
        counts = (dep["n_r"][j], dep["n_p"][j], dep["n_d"][j], dep["link"][j])
        best = max(best, balance(problem, float(needs.threshold_tokens[j]), *counts)[0])
    return max(lam, best)


def _upper_bound(problem: Problem, grid: tuple[Needs, np.ndarray]) -> float:
    """A Lambda no deployment can reach: decode alone on every allowed local instance, and the
    budget spent on instances at the optimistic needs of the best interval (link cost ignored)."""
    tm = problem.model
    bound = math.inf
    if problem.local.max is not None:
        bound = problem.local.max * tm.decode_req_per_s_per_instance
    if problem.budget_usd_per_hour is not None:
        ends = _intervals(problem)
        lb = _interval_floor(problem) if ends is not None else grid[0]
        usd_per_req_per_s = (problem.remote_instance_usd_per_hour() * lb.remote_s + problem.local_instance_usd_per_hour() * lb.local_s)
        if lb is grid[0]:
            usd_per_req_per_s = np.where(grid[1], usd_per_req_per_s, np.inf)
        floor = float(np.min(usd_per_req_per_s)) + problem.local_instance_usd_per_hour() / tm.decode_req_per_s_per_instance
        if floor > 0:
            bound = min(bound, problem.budget_usd_per_hour / floor)
    if not math.isfinite(bound):
        raise PlanError("throughput is unbounded: give a budget (with non-zero prices), a fixed fleet or instance maxima")
    return bound * (1 + 1e-6)


def _bisect(problem: Problem, lo: float, hi: float, grid: tuple[Needs, np.ndarray], level: str, rtol: float = _LAMBDA_RTOL) -> tuple[float, float]:
    """Narrow [lo, hi] (lo reachable, hi not) around the largest reachable Lambda at ``level``
    (see :func:`_reach`), to a relative ``rtol``. A reachable probe moves lo up to what the
    deployment found really sustains; after such a jump the next probe sits just above it, since
    that deployment is usually the optimum."""
    jumped = False
    while hi > lo * (1 + rtol):
        if jumped:  # just past the ceiling's tolerance, once per jump: repeated, a large fleet
            mid = min(lo * (1 + 4 * _LAMBDA_RTOL), (lo + hi) / 2)  # would creep up an instance a probe
            jumped = False
        else:
            mid = math.sqrt(lo * hi) if hi > 4 * lo else (lo + hi) / 2
            jumped = None  # marks a bisection step
        got = _reach(problem, mid, grid, level)
        jumped = jumped is None and got > mid * (1 + 2 * _LAMBDA_RTOL)
        if got > 0:
            lo = min(got, hi)
        else:
            hi = mid
    return lo, hi


def maximise(problem: Problem) -> Plan:
    """Largest Lambda_max reachable within the ranges, link and budget (fixed fleet or budget).

    Three bisections on Lambda: over the grid thresholds (fast, a lower bound), with optimistic
    intervals (fast, an upper bound), then exact between the two."""
    grid = _grid(problem)
    if not _reach(problem, _LAMBDA_PROBE, grid, "exact"):
        dep = _deploy(problem, grid[0], _LAMBDA_PROBE)
        cheapest = float(np.min(np.where(grid[1], dep["cost"], np.inf)))
        if problem.budget_usd_per_hour is not None and math.isfinite(cheapest) and cheapest > problem.budget_usd_per_hour:
            raise PlanError(f"budget {problem.budget_usd_per_hour:,.2f} $/hour is below the cheapest deployment that serves any traffic ({cheapest:,.2f} $/hour)")
        raise PlanError("no deployment within the instance ranges and link can serve any traffic")
    hi = _upper_bound(problem, grid)
    for _ in range(64):  # the bound holds up to the ceiling's relative tolerance: widen if reached
        if not _reach(problem, hi, grid, "relaxed"):
            break
        hi *= 2
    lo, _ = _bisect(problem, _LAMBDA_PROBE, hi, grid, "grid")
    _, hi = _bisect(problem, lo, hi, grid, "relaxed", rtol=1e-6)  # an upper bound needs no more
    lo, _ = _bisect(problem, lo, hi, grid, "exact")
    # lo may be a balance point, where every need binds: pick at a hair below it, within the
    # ceiling's tolerance, so the candidate thresholds next to it are feasible too
    return _pick(problem, lo * (1 - _LAMBDA_RTOL), grid, prefer="throughput")


def cheapest_for(problem: Problem, target_req_per_s: float) -> Plan:
    """The cheapest deployment sustaining ``target_req_per_s``; among equally cheap ones the one
    with the most throughput, and its t and P/D split re-chosen for the most throughput."""
    if not (target_req_per_s > 0 and math.isfinite(target_req_per_s)):
        raise PlanError(f"target must be a positive, finite req/s, got {target_req_per_s}")
    try:
        plan = _pick(problem, target_req_per_s, _grid(problem), prefer="cost")
    except PlanError:
        raise PlanError(f"target {target_req_per_s:g} req/s cannot be reached within the instance ranges, link and budget") from None
    fleet = replace(problem, prfaas=Range.exactly(plan.n_prfaas), local=Range.exactly(plan.n_pd_prefill + plan.n_pd_decode),
                    link=replace(problem.link, fixed_gbit_per_s=units.bytes_per_s_to_gbit_per_s(problem.link.bought_bytes_per_s(plan.link_bytes_per_s)),
                                 sizes_gbit_per_s=(), sizes_usd_per_hour=(), max_gbit_per_s=None),
                    budget_usd_per_hour=None)
    best = maximise(fleet)
    if best.throughput_req_per_s >= plan.throughput_req_per_s:
        best.cost_usd_per_hour = plan.cost_usd_per_hour
        return best
    return plan


def _pick(problem: Problem, lam: float, grid: tuple[Needs, np.ndarray], prefer: str) -> Plan:
    """The deployment for ``lam`` among all candidate thresholds: the most throughput, then the
    least cost (``prefer="throughput"``), or the least cost, then the most throughput."""
    tm = problem.model
    grid_dep = _deploy(problem, grid[0], lam)
    grid_cost = np.where(grid_dep["ok"] & grid[1], grid_dep["cost"], np.inf)
    needs, ok_t = _candidates(problem, lam, grid, cost_cap=float(np.min(grid_cost)) if prefer == "cost" else math.inf)
    dep = _deploy(problem, needs, lam)
    ok = dep["ok"] & ok_t
    if not np.any(ok):
        raise PlanError(f"{lam:g} req/s cannot be reached within the instance ranges, link and budget")
    idx = np.flatnonzero(ok)
    got = tm.throughput_req_per_s(needs.select(idx), dep["n_r"][idx], dep["n_p"][idx], dep["n_d"][idx], dep["link"][idx])
    got = np.round(got / np.max(got), 12)  # equal up to rounding: let the cost decide
    cost = dep["cost"][idx]
    order = np.lexsort((cost, -got)) if prefer == "throughput" else np.lexsort((-got, cost))
    j = int(idx[order[0]])
    t, chosen = placed(tm, float(needs.threshold_tokens[j]), needs.select(j))
    if chosen.offload_frac[0] <= 0:
        t = math.inf
    n_r, n_p, n_d, link = int(dep["n_r"][j]), int(dep["n_p"][j]), int(dep["n_d"][j]), float(dep["link"][j])
    return Plan(t, n_r, n_p, n_d, link, chosen, tm.evaluate(chosen, n_r, n_p, n_d, link), float(dep["cost"][j]))
