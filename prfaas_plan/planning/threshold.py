"""The threshold for given counts and link ([PRFAAS] Eq. 7): the balance of the PrfaaS and local
prefill capacities inside a grid interval, the best threshold of a fixed fleet, and placing a
returned threshold between the atoms of the length distribution, never on one (issue 14)."""

from __future__ import annotations

import numpy as np

from .problem import Problem
from .throughput import Needs

ROOT_STEPS = 40  # Illinois steps to a root (a handful are used; the bracket ends the search)


def balance(problem: Problem, t: float, n_r: float, n_p: float, n_d: float, link_bytes_per_s: float) -> tuple[float, float]:
    """(Lambda, t): the threshold in the grid interval around ``t`` that gives these counts and
    link the most throughput, the Eq. 7 balance Theta_prfaas / p = Theta_pd_p / (1 - p) where it
    lies inside the interval (the PrfaaS capacity rises with t, the local prefill one falls), else
    the better end. Illinois regula falsi on the difference of the two capacities."""
    tm = problem.model
    grid_t = tm.needs.threshold_tokens
    k = int(np.clip(np.searchsorted(grid_t, t, side="left"), 1, len(grid_t) - 1))
    ends = np.array([grid_t[k - 1], grid_t[k]])

    def caps(ts):
        _, _, cap_r, cap_p, theta_d = tm.capacities(tm.needs_at(ts), n_r, n_p, n_d, link_bytes_per_s)
        return cap_r - cap_p, np.minimum(np.minimum(cap_r, cap_p), theta_d)  # as evaluate()

    h, lam = caps(ends)
    best_i = int(np.argmax(lam))
    best = (float(lam[best_i]), float(ends[best_i]))
    if not (h[0] < 0 < h[1]) or not np.all(np.isfinite(h)):
        return best
    a, b, ha, hb, last = ends[0], ends[1], h[0], h[1], 0
    for _ in range(ROOT_STEPS):
        c = b - hb * (b - a) / (hb - ha)
        c = c if a < c < b else (a + b) / 2
        hc, lc = caps(np.array([c]))
        if float(lc[0]) > best[0]:
            best = (float(lc[0]), float(c))
        if abs(float(hc[0])) <= 1e-12 * best[0] or b - a <= 1e-15 * b:
            break
        if hc[0] < 0:
            a, ha, hb, last = c, float(hc[0]), hb / 2 if last < 0 else hb, -1
        else:
            b, hb, ha, last = c, float(hc[0]), ha / 2 if last > 0 else ha, 1
    return best


def best_threshold(problem: Problem, n_r: int, n_p: int, n_d: int, link_bytes_per_s: float) -> tuple[float, float]:
    """(Lambda, t): the most throughput of fixed counts and link over every threshold, and the t
    that gives it (the grid threshold with the most throughput, refined to the Eq. 7 balance in
    the grid intervals on either side of it)."""
    tm = problem.model
    lam = tm.evaluate(tm.needs, n_r, n_p, n_d, link_bytes_per_s)["throughput_req_per_s"]
    k = int(np.argmax(lam))
    grid_t = tm.needs.threshold_tokens
    best = (float(lam[k]), float(grid_t[k]))
    for t in (grid_t[k], grid_t[min(k + 1, len(grid_t) - 1)]):
        best = max(best, balance(problem, float(t), n_r, n_p, n_d, link_bytes_per_s))
    t, needs = placed(tm, best[1])
    return float(tm.throughput_req_per_s(needs, n_r, n_p, n_d, link_bytes_per_s)[0]), t


def placed(tm, t: float, needs: Needs | None = None) -> tuple[float, Needs]:
    """(t, its needs) for a threshold the planner returns: moved clear of every atom of the
    length distribution (:meth:`~prfaas_plan.planning.workload.LengthDistribution.clear_threshold`:
    between two trace lengths, never on one) and its needs evaluated there. ``needs``: those
    already known at ``t``."""
    clear = tm.lengths.clear_threshold(t)
    if needs is None or clear != t:
        needs = tm.needs_at([clear])
    return clear, needs
