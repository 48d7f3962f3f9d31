"""One call of ``scipy.optimize.milp`` (HiGHS) on a built :class:`~.constraints.Milp`, with its
status handled as scipy's own tests do: branch on ``status``, not ``success``.

- 0 optimal: the solution, rounded (never truncated) in its integer blocks;
- 1 iteration or time limit: the incumbent if HiGHS has one, with its gap, else an error;
- 2 infeasible: an error naming the rows that conflict (:func:`conflicting_rows`);
- 3 unbounded, 4 other: an error.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from .constraints import Milp

#: HiGHS tolerances: a relative MIP gap of 1e-9 (scipy's default 1e-4 would stop 0.01% from the
#: optimum), and feasibility to 1e-9 (default 1e-7) so that a plan never rides on a need 1e-7 over
#: a count, nor sends a few requests to a pool of 0 instances whose need per request is 1e-8 s
#: (the one-pair optimizer counts 3.0000000001 instances of need as 3, and any positive need as 1).
HIGHS_OPTIONS = {"mip_rel_gap": 1e-9}

#: Seconds one MILP may run before HiGHS returns its incumbent (status 1).
TIME_LIMIT_S = 60.0

#: Rows that may be relaxed to explain an infeasible question (limits the user set).
ELASTIC_PREFIXES = ("max-gpus[", "budget", "link[")


@dataclass
class Solution:
    status: str  # "optimal" or "time-limit" (an incumbent with a gap)
    x: np.ndarray
    objective: float  # c @ x: cost ($/hour) or -alpha
    bound: float  # HiGHS's dual bound of the objective (== objective at optimality, to its gap)
    gap_frac: float


def _objective(m: Milp) -> np.ndarray:
    c = np.zeros(m.lay.n)
    if m.objective == "budget":
        c[m.lay["alpha"]["alpha"]] = -1.0
    else:
        for col, v in m.cost.items():
            c[col] = v
    return c


@contextlib.contextmanager
def _quiet_stdout():
    """HiGHS's MIP solver prints debugging lines straight to file descriptor 1 at tight
    tolerances ("transformNewIntegerFeasibleSolution"), which would corrupt ``-f json`` on
    stdout: the descriptor points to the null device while it runs (the status says what happened)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured (pytest, notebooks): nothing to guard
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _call(c, integrality, lb, ub, A, lo, hi, time_limit_s: float, mip_rel_gap: float = HIGHS_OPTIONS["mip_rel_gap"]):
    from scipy.optimize import Bounds, LinearConstraint, milp

    with warnings.catch_warnings(), _quiet_stdout():  # the feasibility tolerances go to HiGHS verbatim, with a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return milp(c, integrality=integrality, bounds=Bounds(lb, ub), constraints=LinearConstraint(A, lo, hi),
                    options={**HIGHS_OPTIONS, "mip_rel_gap": mip_rel_gap, "time_limit": max(time_limit_s, 0.01)})


def solve(m: Milp, time_limit_s: float = TIME_LIMIT_S, mip_rel_gap: float = HIGHS_OPTIONS["mip_rel_gap"], explain: bool = True) -> Solution:
    """Solve ``m`` (built); see the module docstring for each status. A looser ``mip_rel_gap``
    returns sooner; the solution's ``bound`` (HiGHS's dual bound) stays a valid bound.
    ``explain=False``: an infeasible MILP raises without naming its rows (no second solve)."""
    lay, rows = m.lay, m.rows
    c = _objective(m)
    A = rows.matrix(lay.n)
    res = _call(c, np.array(lay.integer), np.array(lay.lb), np.array(lay.ub), A, np.array(rows.lo), np.array(rows.hi), time_limit_s, mip_rel_gap)
    if res.status == 0 or (res.status == 1 and res.x is not None):
        bound = float(getattr(res, "mip_dual_bound", None) or res.fun) if res.x is not None else math.nan
        gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
        return Solution("optimal" if res.status == 0 else "time-limit", np.asarray(res.x), float(res.fun), bound, gap)
    if res.status == 1:
        raise PlanError(f"the fleet MILP hit its {time_limit_s:g} s limit without a feasible plan ({res.message})")
    if res.status == 2:
        rows_named = conflicting_rows(m, c, A) if explain else []
        raise PlanError("no fleet meets every constraint" + (f": these cannot all hold: {'; '.join(rows_named)}" if rows_named else ""))
    if res.status == 3:
        raise PlanError("the fleet MILP is unbounded: give a budget with non-zero prices, or GPU limits")
    raise PlanError(f"the fleet MILP failed: {res.message}")


def conflicting_rows(m: Milp, c: np.ndarray, A) -> list[str]:
    """The user limits (GPU caps, the budget, link capacities) an infeasible question breaks:
    each such row gets a slack variable, the sum of slacks (relative to each row's bound) is
    minimised, and the rows whose slack is positive are named with the shortfall."""
    from scipy.sparse import hstack, csr_array

    rows = m.rows
    soft = [i for i, n in enumerate(rows.names) if n.startswith(ELASTIC_PREFIXES)]
    if not soft:
        return []
    k = len(soft)
    scale = np.array([max(abs(rows.hi[i]), 1.0) if math.isfinite(rows.hi[i]) else 1.0 for i in soft])
    slack = csr_array((-np.ones(k), (soft, np.arange(k))), shape=(len(rows.names), k))
    A2 = hstack([A, slack]).tocsr()
    lay = m.lay
    c2 = np.concatenate([np.zeros(lay.n), 1.0 / scale])
    res = _call(c2, np.concatenate([lay.integer, np.zeros(k)]), np.concatenate([lay.lb, np.zeros(k)]),
                np.concatenate([lay.ub, np.full(k, np.inf)]), A2, np.array(rows.lo), np.array(rows.hi), TIME_LIMIT_S)
    if res.x is None:
        return []
    over = res.x[lay.n:]
    return [f"{rows.names[i]} (over by {v:,.4g})" for i, v in zip(soft, over) if v > 1e-7 * max(scale[soft.index(i)], 1.0)]
