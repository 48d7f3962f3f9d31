"""Sweeps: the scenario's question answered at every point of one or two varied keys
(``--vary link.bandwidth_gbit_per_s=10:400:40``), the plan's keys per point.

Speed. Each point is the scenario with its overrides applied to the YAML mapping read once, so
every value is checked as in a file. Points that share a throughput model (the model, parts,
latency sources, workload, SLO and mode) share it; only link, price, fleet and objective keys
differ. Their Lambda_max bisections run together: the feasibility check of
:func:`optimizer.maximise` (cheapest integer deployment at each candidate threshold) is evaluated
for a block of points at once, with the same bisection sequence per point, so each point's
Lambda is the one ``maximise`` finds; the counts and the continuous threshold then come from the
optimizer itself. Baselines are not computed per point (``optimize`` shows them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..catalog.fields import open_catalog_file
from ..errors import PlanError
from . import optimizer as opt
from .overrides import Override, with_price_sources
from .planner import PLAN_KEYS, _problem, load_report, plan_dict, throughput_model
from .scenario import Scenario, scenario_from_mapping
from .verdict import verdict

BLOCK = 64  # points per vectorised bisection block (keeps arrays ~1 MB)


def _objective(sc: Scenario, budget: float | None, target: float | None) -> tuple[str, float | None, float | None]:
    if budget is not None:
        return "budget", budget, None
    if target is not None:
        return "target", None, target
    return sc.objective, sc.budget_usd_per_hour, sc.target_req_per_s


def _tm_key(sc: Scenario, mode: str) -> tuple:
    c = lambda x: (x.hardware.path, x.hardware.name, x.gpus_per_instance, x.use_profile)  # noqa: E731
    wl = sc.workload
    return (sc.model.path, sc.model.name, c(sc.prfaas), c(sc.local), sc.tpot_s, repr(wl.input), wl.output_tokens_mean,
            wl.prefix_cache_hit_frac, mode)


class _Block:
    """A block of problems sharing one throughput model, with their scalar parameters as columns."""

    def __init__(self, problems: list[opt.Problem]):
        col = lambda f: np.array([f(p) for p in problems], float)[:, None]  # noqa: E731
        inf = np.inf
        self.problems = problems
        self.tm = problems[0].model
        self.r_min = col(lambda p: p.prfaas.min)
        self.l_min = col(lambda p: p.local.min)
        self.r_max = col(lambda p: inf if p.prfaas.max is None else p.prfaas.max)
        self.l_max = col(lambda p: inf if p.local.max is None else p.local.max)
        self.r_price = col(lambda p: p.remote_instance_usd_per_hour())
        self.l_price = col(lambda p: p.local_instance_usd_per_hour())
        self.budget = col(lambda p: inf if p.budget_usd_per_hour is None else p.budget_usd_per_hour * (1 + 1e-12))
        shapes, prices = zip(*(_link_shape(p.link) for p in problems))
        self.link_price = np.array(prices, float)[:, None]
        self.link_group = np.empty(len(problems), int)
        self.links = []
        for g, (link, idx) in enumerate(_groups(list(shapes))):
            self.link_group[idx] = g
            self.links.append(link)
        self.allowed = opt._allowed(problems[0], len(self.tm.needs.offload_frac))

    def feasible(self, sel: np.ndarray, lam: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """For the points ``sel`` and candidate thresholds ``cols``: is ``lam`` reachable there?
        The check of :func:`optimizer._deploy` (cheapest integer deployment at each threshold)
        for many points at once; returns the (points x thresholds) matrix."""
        needs, tm = self.tm.needs, self.tm
        lam2 = lam[:, None]
        n_r = np.maximum(opt._ceil(lam2 * needs.remote_s[cols]), self.r_min[sel])
        n_p = opt._ceil(lam2 * needs.local_s[cols])
        n_d = opt._ceil(lam2 / tm.decode_req_per_s_per_instance)
        n_l = np.maximum(n_p + n_d, self.l_min[sel])  # spare local nodes decode
        ok = self.allowed[cols] & (n_r <= self.r_max[sel]) & (n_l <= self.l_max[sel])
        cost = n_r * self.r_price[sel] + n_l * self.l_price[sel]
        link_bytes = needs.link_bytes[cols]
        groups = self.link_group[sel]
        for g in np.unique(groups):
            hit = np.flatnonzero(groups == g)
            cost[hit] += self.links[g].buy(lam2[hit] * link_bytes)[1] * self.link_price[sel][hit]
        return ok & np.isfinite(cost) & (cost <= self.budget[sel])


def _link_shape(link: opt.Link) -> tuple[opt.Link, float]:
    """(the link at a unit price, its price): links that differ only in price per Gbit/s share
    one purchase computation. A link whose port prices are not proportional to their sizes is
    its own shape (price 1)."""
    from dataclasses import replace

    price = link.usd_per_gbit_per_s_hour
    proportional = all(abs(u - s * price) <= 1e-12 * max(u, 1.0) for s, u in zip(link.sizes_gbit_per_s, link.sizes_usd_per_hour))
    if price > 0 and proportional:
        return replace(link, usd_per_gbit_per_s_hour=1.0, sizes_usd_per_hour=link.sizes_gbit_per_s), price
    return link, 1.0


def _groups(items: list) -> list[tuple[object, np.ndarray]]:
    out: dict = {}
    for i, x in enumerate(items):
        out.setdefault(x, []).append(i)
    return [(x, np.array(ix)) for x, ix in out.items()]


def maximise_block(problems: list[opt.Problem], refine_cache: dict | None = None) -> list[opt.Plan | PlanError]:
    """:func:`optimizer.maximise` for a block of problems sharing one throughput model: the same
    bisection sequence per point, run for all points at once."""
    blk = _Block(problems)
    k, m = len(problems), len(blk.allowed)
    out: list = [None] * k
    ok_lo = blk.feasible(np.arange(k), np.full(k, 1e-12), np.arange(m))  # feasibility at lo, per point
    start = ok_lo.any(axis=1)
    for i in np.flatnonzero(~start):
        try:
            out[i] = opt.maximise(problems[i])  # raises the optimizer's own message
        except PlanError as exc:
            out[i] = exc
    lo, hi = np.zeros(k), np.ones(k)

    def step(active: np.ndarray, lam: np.ndarray) -> np.ndarray:
        # A threshold infeasible at lo is infeasible at any larger Lambda (every need grows with
        # Lambda), so only thresholds feasible at some active point's lo are checked.
        idx = np.flatnonzero(active)
        cols = np.flatnonzero(ok_lo[idx].any(axis=0))
        ok = blk.feasible(idx, lam, cols)
        f = ok.any(axis=1)
        rows = idx[f]
        ok_lo[rows] = False
        ok_lo[np.ix_(rows, cols)] = ok[f]
        return f

    grow = start.copy()
    while np.any(grow):  # the doubling phase, per point
        idx = np.flatnonzero(grow)
        f = step(grow, hi[idx])
        lo[idx] = np.where(f, hi[idx], lo[idx])
        hi[idx] = np.where(f, hi[idx] * 2, hi[idx])
        grow[idx] = f
        for i in np.flatnonzero(grow & (hi > 1e12)):
            out[i] = PlanError("throughput is unbounded: give a budget, a fixed fleet or instance maxima")
            grow[i] = False
    active = start & np.array([o is None for o in out])
    for _ in range(200):
        if not np.any(active):
            break
        idx = np.flatnonzero(active)
        mid = (lo[idx] + hi[idx]) / 2
        f = step(active, mid)
        lo[idx] = np.where(f, mid, lo[idx])
        hi[idx] = np.where(f, hi[idx], mid)
        active[idx] = ~(hi[idx] - lo[idx] <= 1e-12 * hi[idx])
    for i in range(k):
        if out[i] is None:
            out[i] = _finish(problems[i], lo[i], blk.allowed, {} if refine_cache is None else refine_cache)
    return out


def _finish(problem: opt.Problem, lam: float, allowed: np.ndarray, cache: dict) -> opt.Plan:
    """:func:`optimizer._finish`, with the threshold refinement remembered per deployment (points
    of a sweep that end on the same counts and link share it)."""
    tm = problem.model
    dep = opt._deploy(problem, tm.needs, lam)
    cost = np.where(dep["ok"] & allowed, dep["cost"], np.inf)
    j = int(np.argmin(cost))
    n_r, n_p, n_d = int(dep["n_r"][j]), int(dep["n_p"][j]), int(dep["n_d"][j])
    link = float(dep["link"][j])
    key = (n_r, n_p, n_d, link, j, problem.thresholds)
    if key not in cache:
        cache[key] = opt.refine_threshold(problem, n_r, n_p, n_d, link, j, allowed)
    t, needs = cache[key]
    return opt.Plan(t, n_r, n_p, n_d, link, needs, tm.evaluate(needs, n_r, n_p, n_d, link), float(dep["cost"][j]))


def sweep(sc: Scenario, axes: list[tuple[str, list]], mode: str | None = None, budget_usd_per_hour: float | None = None,
          target_req_per_s: float | None = None, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """One row per point of the grid of ``axes`` (1 or 2 (key, values) pairs): the varied values,
    the plan's keys, cost per 1k requests, and the load and verdict where the scenario has an
    arrival rate. An infeasible point is a row with ``error``; a bad value stops the sweep."""
    if not 1 <= len(axes) <= 2:
        raise PlanError("--vary: give one or two keys")
    if len(axes) == 2 and axes[0][0] == axes[1][0]:
        raise PlanError(f"--vary: {axes[0][0]} given twice")
    path, f, name = open_catalog_file("scenarios", sc.path)
    points = list(itertools.product(*(vals for _, vals in axes)))
    scenarios = []
    for pt in points:
        point = tuple(Override(k, v) for (k, _), v in zip(axes, pt))
        try:
            scenarios.append(scenario_from_mapping(f.data, Path(path), name, sc.overrides + with_price_sources(point)))
        except PlanError as exc:
            raise PlanError(f"--vary at {', '.join(o.label for o in point)}: {exc}") from None
    rows: list[dict | None] = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    tms: dict[tuple, object] = {}
    for i, s in enumerate(scenarios):
        m = mode or s.mode
        key = _tm_key(s, m)
        if key not in tms:
            tms[key] = throughput_model(s, m)
        groups.setdefault(key, []).append(i)
    done = 0
    for key, idx in groups.items():
        tm = tms[key]
        refine_cache: dict = {}
        for b in range(0, len(idx), BLOCK):
            block = idx[b : b + BLOCK]
            probs, plans = {}, {}
            for i in block:
                objective, budget, target = _objective(scenarios[i], budget_usd_per_hour, target_req_per_s)
                try:
                    problem = _problem(scenarios[i], tm, objective, budget)
                    if objective == "target":
                        plans[i] = opt.cheapest_for(problem, target)
                    else:
                        probs[i] = problem
                except PlanError as exc:
                    plans[i] = exc
            if probs:
                plans.update(zip(probs, maximise_block(list(probs.values()), refine_cache)))
            for i in block:
                rows[i] = _row(axes, points[i], scenarios[i], mode or scenarios[i].mode, plans[i])
            done += len(block)
            if progress:
                progress(done, len(points))
    return rows  # type: ignore[return-value]


def _row(axes, point, sc: Scenario, mode: str, plan) -> dict:
    row = {k: v for (k, _), v in zip(axes, point)}
    if isinstance(plan, PlanError):
        return {**row, **{k: None for k in PLAN_KEYS}, "usd_per_1k_requests": None, "verdict": None, "error": str(plan)}
    d = plan_dict(plan, sc)
    lam = d["throughput_req_per_s"]
    out = {**row, **{k: d[k] for k in PLAN_KEYS}, "usd_per_1k_requests": d["cost_usd_per_hour"] / (lam * 3.6) if lam > 0 else None}
    result = {**d, "baselines": {}}
    if sc.workload.arrival_req_per_s is not None:
        result["load"] = load_report(d, sc.workload.arrival_req_per_s)
        out["utilisation_frac"] = result["load"]["utilisation_frac"]
    out["verdict"] = verdict(result)["text"]
    out["error"] = None
    return out
