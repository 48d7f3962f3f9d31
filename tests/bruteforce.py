"""An independent reference for the optimizer: every integer deployment, a continuous threshold.

It shares only the model (``ThroughputModel.needs_at`` and ``evaluate``, i.e. Eq. 3-6) with the
optimizer, not its method: no ceilings, no bisection on Lambda, no candidate crossings. For each
deployment (N_prfaas, N_p, N_d and a link) it maximises Lambda over t on a fine log grid of its own
(plus t = 0 and t = infinity), then refines the best grid points by golden-section search. The
link is either fixed, one of the purchasable sizes, or bought continuously: then it is part of the
deployment's cost and Lambda is also capped by what the rest of the budget buys at that t.
Used by tests/test_optimizer.py (a few dozen random problems) and scripts/brute_force.py
(thousands).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from prfaas_plan import units
from prfaas_plan.planning.problem import Problem

FINE_POINTS = 4000
GOLDEN_STEPS = 80
REFINE_TOP = 4


def fine_thresholds(problem: Problem) -> np.ndarray:
    """A log grid over the support, every atom of a trace and the mid-point between neighbouring
    atoms (where the needs are constant between atoms, a grid alone could step over a gap)."""
    lengths = problem.model.lengths
    lo, hi = lengths.support()
    atoms = lengths.atoms()
    mids = (atoms[:-1] + atoms[1:]) / 2 if len(atoms) > 1 else np.empty(0)
    return np.concatenate([[0.0], np.unique(np.concatenate([np.geomspace(lo, hi, FINE_POINTS), atoms, mids])), [math.inf]])


def _links(problem: Problem):
    """(bandwidth bytes/s, or None where bought at need; its $/hour, or $/hour per byte/s where
    bought at need; the cap in bytes/s)."""
    link = problem.link
    if link.fixed_gbit_per_s is not None:
        return [(units.gbit_per_s_to_bytes_per_s(link.fixed_gbit_per_s), link.fixed_gbit_per_s * link.usd_per_gbit_per_s_hour, None)]
    if link.sizes_gbit_per_s:
        return [(0.0, 0.0, None)] + [(units.gbit_per_s_to_bytes_per_s(s), c, None) for s, c in zip(link.sizes_gbit_per_s, link.sizes_usd_per_hour)]
    cap = units.gbit_per_s_to_bytes_per_s(link.max_gbit_per_s) if link.max_gbit_per_s is not None else math.inf
    return [(None, link.usd_per_gbit_per_s_hour * units.bytes_per_s_to_gbit_per_s(1.0), cap)]


def _lambda(problem: Problem, needs, n_r, n_p, n_d, link, spare_usd_per_hour):
    """Lambda at each threshold of ``needs`` for one deployment; ``link`` is (have, price, cap)."""
    tm = problem.model
    have, price, cap = link
    if have is None:  # bought at need: as much as the spare budget buys, up to the cap
        have = min(spare_usd_per_hour / price if price > 0 else math.inf, cap)
    lam = tm.evaluate(needs, n_r, n_p, n_d, have)["throughput_req_per_s"]
    if problem.thresholds == "local-only":
        lam = np.where(needs.offload_frac > 0, 0.0, lam)
    if problem.thresholds == "remote-only":
        lam = np.where(needs.offload_frac < 1, 0.0, lam)
    if tm.remote is None or n_r == 0:
        lam = np.where(needs.offload_frac > 0, 0.0, lam)
    return np.nan_to_num(lam, nan=0.0, posinf=0.0)


def _refine(problem: Problem, ts: np.ndarray, lam: np.ndarray, f) -> float:
    """Golden-section search of f (Lambda at one t) around the best grid points."""
    best = float(np.max(lam))
    inner = np.flatnonzero(np.isfinite(ts) & (ts > 0))
    if problem.thresholds != "any" or not len(inner):
        return best
    order = inner[np.argsort(-lam[inner])][:REFINE_TOP]
    g = (math.sqrt(5) - 1) / 2
    for i in order:
        a, b = ts[max(i - 1, 1)], ts[min(i + 1, len(ts) - 2)]
        c, d = b - g * (b - a), a + g * (b - a)
        fc, fd = f(c), f(d)
        for _ in range(GOLDEN_STEPS):
            if fc >= fd:
                b, d, fd = d, c, fc
                c = b - g * (b - a)
                fc = f(c)
            else:
                a, c, fc = c, d, fd
                d = a + g * (b - a)
                fd = f(d)
        best = max(best, fc, fd)
    return best


def deployments(problem: Problem, local_max: int, prfaas_max: int):
    """Every (n_r, n_p, n_d, link) within the ranges and, with a budget, within it."""
    if problem.prfaas.max is not None:
        prfaas_max = min(prfaas_max, problem.prfaas.max)
    if problem.local.max is not None:
        local_max = min(local_max, problem.local.max)
    for n_r, n_p, n_d in itertools.product(range(problem.prfaas.min, prfaas_max + 1), range(local_max + 1), range(1, local_max + 1)):
        if not problem.local.min <= n_p + n_d <= local_max:
            continue
        inst = n_r * problem.remote_instance_usd_per_hour() + (n_p + n_d) * problem.local_instance_usd_per_hour()
        for link in _links(problem):
            fixed_cost = link[1] if link[0] is not None else 0.0
            spare = math.inf if problem.budget_usd_per_hour is None else problem.budget_usd_per_hour - inst - fixed_cost
            if spare < -1e-9 * max(inst, 1.0):
                continue
            yield n_r, n_p, n_d, link, inst + fixed_cost, max(spare, 0.0)


def best_throughput(problem: Problem, local_max: int, prfaas_max: int) -> tuple[float, tuple]:
    """The largest Lambda any deployment reaches at any threshold (fixed fleet or budget)."""
    tm = problem.model
    ts = fine_thresholds(problem)
    needs = tm.needs_at(ts)
    scored = []
    for n_r, n_p, n_d, link, _, spare in deployments(problem, local_max, prfaas_max):
        lam = _lambda(problem, needs, n_r, n_p, n_d, link, spare)
        scored.append((float(np.max(lam)), (n_r, n_p, n_d, link, spare), lam))
    scored.sort(key=lambda x: -x[0])
    best, arg = 0.0, None
    for grid_best, dep, lam in scored[:REFINE_TOP]:
        f = lambda t, dep=dep: float(_lambda(problem, tm.needs_at([t]), *dep)[0])  # noqa: E731
        got = _refine(problem, ts, lam, f)
        if got > best:
            best, arg = got, dep
    return best, arg


def cheapest_cost(problem: Problem, target: float, local_max: int, prfaas_max: int) -> float:
    """The least $/hour of a deployment reaching ``target`` req/s at some threshold; the link,
    where bought at need, costs target x p S_r at the threshold (refined by bisection on the edge
    of the feasible thresholds, where the link need is smallest)."""
    tm = problem.model
    ts = fine_thresholds(problem)
    needs = tm.needs_at(ts)
    best = math.inf
    for n_r, n_p, n_d, link, cost, _ in sorted(deployments(problem, local_max, prfaas_max), key=lambda d: d[4]):
        if cost >= best:
            break  # sorted by the cost before any link bought at need: nothing later is cheaper
        if link[0] is not None:
            lam = _lambda(problem, needs, n_r, n_p, n_d, link, math.inf)
            ok = lam >= target * (1 - 1e-12)
            if np.any(ok):
                best = cost
            elif np.max(lam) >= 0.95 * target:  # the grid may miss a narrow window near it: search it
                f = lambda t, dep=(n_r, n_p, n_d, link, math.inf): float(_lambda(problem, tm.needs_at([t]), *dep)[0])  # noqa: E731
                if _refine(problem, ts, lam, f) >= target * (1 - 1e-12):
                    best = cost
            continue
        _, price, cap = link
        inf_link = (math.inf, 0.0, None)
        lam = _lambda(problem, needs, n_r, n_p, n_d, inf_link, math.inf)
        link_need = target * needs.link_bytes
        ok = (lam >= target * (1 - 1e-12)) & (link_need <= cap * (1 + 1e-12))
        if not np.any(ok):
            continue
        j = int(np.flatnonzero(ok)[np.argmin(link_need[ok])])
        need = float(link_need[j])
        if j + 1 < len(ts) and not ok[j + 1] and math.isfinite(ts[j + 1]):  # push t up to the edge
            a, b = ts[j], ts[j + 1]
            for _ in range(80):
                m = (a + b) / 2
                nm = tm.needs_at([m])
                lm = float(_lambda(problem, nm, n_r, n_p, n_d, inf_link, math.inf)[0])
                if lm >= target * (1 - 1e-12) and target * float(nm.link_bytes[0]) <= cap * (1 + 1e-12):
                    a, need = m, min(need, target * float(nm.link_bytes[0]))
                else:
                    b = m
        best = min(best, cost + price * need)
    return best


# -- random problems (tests/test_optimizer.py, scripts/brute_force.py) ---------------------------
PRFAAS_MAX, LOCAL_MAX = 4, 8


def random_lengths(rng: np.random.Generator):
    """A log-normal (wide or tight), a small trace, or a mixture of the two."""
    from prfaas_plan.planning.workload import Empirical, Mixture, TruncatedLogNormal

    def lognormal():
        return TruncatedLogNormal(float(rng.uniform(7.5, 11.0)), float(rng.choice([0.05, 0.1, 0.3, 0.7, 1.0, 1.5])), 128, 131072)

    def trace():
        n = int(rng.integers(1, 30))
        return Empirical.from_arrays(np.round(np.exp(rng.uniform(5, 11.7, n))), rng.integers(1, 20, n))

    kind = rng.choice(["lognormal", "trace", "mixture"], p=[0.5, 0.25, 0.25])
    if kind == "lognormal":
        return lognormal()
    if kind == "trace":
        return trace()
    return Mixture.of([lognormal(), trace()], rng.uniform(0.1, 1.0, 2))


def random_problem(rng: np.random.Generator, objective: str):
    """(problem, target or None): a small problem the brute force can enumerate, on a coarse cell
    grid so that the best thresholds often lie inside cells."""
    from prfaas_plan.catalog.hardware import load_hardware
    from prfaas_plan.catalog.model import load_model
    from prfaas_plan.planning.problem import Link, Range
    from prfaas_plan.planning.throughput import ThroughputModel
    from prfaas_plan.roofline.decode import decode_capacity
    from prfaas_plan.roofline.prefill import PrefillModel

    model, h200, h20 = load_model("prfaas-1t-hybrid"), load_hardware("h200"), load_hardware("h20")
    lengths = random_lengths(rng)
    use_profile = bool(rng.integers(2))
    tpot_s = 1 / rng.uniform(20, 40) if use_profile else 1 / rng.uniform(20, 60)
    decode = decode_capacity(model, h20, 8, tpot_s, lengths.mean() + 512, use_profile)
    tm = ThroughputModel(model, lengths, PrefillModel(model, h200, 8, use_profile), PrefillModel(model, h20, 8, use_profile),
                         decode, float(rng.integers(128, 4096)), str(rng.choice(["paper", "distribution"])), n_cells=int(rng.choice([16, 64, 256])))
    base = dict(model=tm, remote_gpus_per_instance=8, local_gpus_per_instance=8,
                remote_usd_per_gpu_hour=float(rng.uniform(2, 6)), local_usd_per_gpu_hour=float(rng.uniform(0.8, 3)))
    if objective == "fixed-fleet":
        link = Link(fixed_gbit_per_s=float(rng.choice([0.5, 2.0, 10.0, 100.0])))
        return Problem(prfaas=Range.exactly(int(rng.integers(0, PRFAAS_MAX + 1))), local=Range.exactly(int(rng.integers(2, LOCAL_MAX + 1))), link=link, **base), None
    price = float(rng.choice([0.0, 0.05, 0.5, 5.0]))
    if rng.integers(2):
        sizes = tuple(sorted(rng.choice([1.0, 5.0, 10.0, 25.0, 100.0], size=int(rng.integers(1, 4)), replace=False)))
        link = Link(usd_per_gbit_per_s_hour=price, sizes_gbit_per_s=sizes, sizes_usd_per_hour=tuple(s * price for s in sizes))
    else:
        link = Link(usd_per_gbit_per_s_hour=price, max_gbit_per_s=float(rng.choice([5.0, 50.0, 1e6])))
    ranges = dict(prfaas=Range(0, PRFAAS_MAX), local=Range(int(rng.integers(0, 3)), LOCAL_MAX))
    if objective == "budget":
        full = PRFAAS_MAX * 8 * base["remote_usd_per_gpu_hour"] + LOCAL_MAX * 8 * base["local_usd_per_gpu_hour"]
        return Problem(link=link, budget_usd_per_hour=float(rng.uniform(0.05, 1.0) * full), **ranges, **base), None
    probe = Problem(link=link, prfaas=Range.exactly(2), local=Range.exactly(5), **base)
    lam, _ = best_throughput(probe, 5, 2)
    return Problem(link=link, **ranges, **base), float(rng.uniform(0.05, 1.2)) * max(lam, 1e-3)
