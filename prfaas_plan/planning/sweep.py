"""Sweeps: the scenario's question answered at every point of one or two varied keys
(``--vary link.bandwidth_gbit_per_s=10:400:40``), the plan's keys per point, each point exactly
what ``optimize`` gives for it (baselines are not computed per point; ``optimize`` shows them).

Speed. The scenario file is read once and each point's overrides are applied to its mapping (so
every value is still checked as in a file); points that share a throughput model (model, parts,
latency sources, workload, SLO, mode) share it, and points that pose the same optimisation
problem (e.g. a key that only moves the arrival rate) share its answer. The optimizer itself
runs once per distinct problem.

Executors. The points run as tasks of contiguous points (:class:`SweepTask`: the scenario
file's mapping, its path and overrides, the axes, the points) on an executor
(:mod:`prfaas_plan.execution.executors`): in this process (default), on a process pool or on
Dask. A worker shares throughput models and answers among the points it is given (caches scoped
to the sweep's token); a row depends on its point alone, so every executor gives the same rows.
Paths inside the scenario (a model or trace file) resolve from the scenario's folder, which a
remote Dask worker must see at the same path; catalog names resolve anywhere.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bounds import check
from ..catalog.fields import open_catalog_file
from ..errors import PlanError
from ..execution.executors import Executor, chunks
from . import optimizer as opt
from .overrides import Override, with_price_sources
from .planner import PLAN_KEYS, Solver, load_report, plan_dict, problem_for, question, solve_throughput, throughput_model
from .scenario import Scenario, scenario_from_mapping
from .verdict import verdict

def _tm_key(sc: Scenario, mode: str) -> tuple:
    c = lambda x: (x.hardware.path, x.hardware.name, x.gpus_per_instance, x.use_profile)  # noqa: E731
    wl = sc.workload
    return (sc.model.path, sc.model.name, c(sc.prfaas), c(sc.local), sc.tpot_s, repr(wl.input), wl.output_tokens_mean,
            wl.prefix_cache_hit_frac, repr(wl.uncached_input), mode)


def solve(sc: Scenario, tm, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
          answers: dict | None = None, solver: Solver | None = None) -> opt.Plan:
    """The plan for ``sc``'s question (or the budget / target given here) on throughput model
    ``tm``, as ``optimize`` finds it, without the baselines. ``answers`` remembers solved
    problems; ``solver`` as in :func:`~prfaas_plan.planning.planner.optimize`."""
    objective, budget, target = question(sc, budget_usd_per_hour, target_req_per_s)
    solver = solver or solve_throughput
    if sc.slo_aware and objective != "fixed-fleet":  # the answer depends on more than the problem: the SLO and the rate
        return solver(sc, tm, objective, budget, target)
    problem = problem_for(sc, tm, objective, budget)
    answers = {} if answers is None else answers
    if (problem, objective, target) not in answers:
        answers[problem, objective, target] = solver(sc, tm, objective, budget, target)
    return answers[problem, objective, target]


def plan_only(sc: Scenario, mode: str | None = None, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
              solver: Solver | None = None) -> dict:
    """``optimize``'s plan keys for ``sc`` without baselines or the other mode (what-ifs need no more)."""
    m = mode or sc.mode
    return plan_dict(solve(sc, throughput_model(sc, m), budget_usd_per_hour, target_req_per_s, solver=solver), sc)


@dataclass(frozen=True)
class SweepTask:
    """Points ``first`` .. of a sweep for one worker (module docstring); ``token`` names the sweep."""

    token: str
    scenario_path: str
    mapping: dict  # the scenario file's YAML mapping, read once by the caller
    name: str
    overrides: tuple[Override, ...]
    axes: tuple[tuple[str, tuple], ...]
    points: tuple[tuple, ...]
    mode: str | None
    budget_usd_per_hour: float | None
    target_req_per_s: float | None
    solver: Solver | None = None  # a module-level function (it pickles by name)


_WORKER: dict = {}  # this sweep's file, throughput models and answers, per worker process


def sweep_points(task: SweepTask) -> list[dict]:
    """The rows of ``task``'s points (an executor task: module-level, so it pickles)."""
    if _WORKER.get("token") != task.token:
        _WORKER.clear()
        _WORKER.update(token=task.token, tms={}, answers={})
    tms, answers, rows = _WORKER["tms"], _WORKER["answers"], []
    for pt in task.points:
        point = tuple(Override(k, v) for (k, _), v in zip(task.axes, pt))
        try:
            s = scenario_from_mapping(task.mapping, Path(task.scenario_path), task.name, task.overrides + with_price_sources(point))
        except PlanError as exc:
            raise PlanError(f"--vary at {', '.join(o.label for o in point)}: {exc}") from None
        m = task.mode or s.mode
        key = _tm_key(s, m)
        if key not in tms:
            tms[key] = throughput_model(s, m)
        try:
            plan = solve(s, tms[key], task.budget_usd_per_hour, task.target_req_per_s, answers, task.solver)
        except PlanError as exc:
            plan = exc
        rows.append(_row(task.axes, pt, s, m, plan))
    return rows


#: Points per task on a serial executor: the progress bar moves every this many points.
SERIAL_TASK_POINTS = 25


def sweep(sc: Scenario, axes: list[tuple[str, list]], mode: str | None = None, budget_usd_per_hour: float | None = None,
          target_req_per_s: float | None = None, progress: Callable[[int, int], None] | None = None,
          executor: Executor | None = None, solver: Solver | None = None) -> list[dict]:
    """One row per point of the grid of ``axes`` (1 or 2 (key, values) pairs): the varied values,
    the plan's keys, cost per 1k requests, and the load and verdict where the scenario has an
    arrival rate. An infeasible point is a row with ``error``; a bad value stops the sweep.
    ``executor``: where the points run (default: this process); ``solver``: as in
    :func:`~prfaas_plan.planning.planner.optimize`."""
    points = grid(axes)
    question(sc, budget_usd_per_hour, target_req_per_s)  # its bounds, checked before any worker starts
    path, f, name = open_catalog_file("scenarios", sc.path)
    token = uuid.uuid4().hex
    axes_t = tuple((k, tuple(v)) for k, v in axes)
    return run_points(points, lambda pts: SweepTask(token, str(path), f.data, name, sc.overrides, axes_t, pts, mode, budget_usd_per_hour,
                                                    target_req_per_s, solver),
                      sweep_points, SERIAL_TASK_POINTS, executor, progress)


def grid(axes: list[tuple[str, list]]) -> list[tuple]:
    """The points of the grid of ``axes`` (one or two distinct keys, at most the bounds table's
    ``sweep_points``), in row order: the first key's values outermost."""
    if not 1 <= len(axes) <= 2:
        raise PlanError("--vary: give one or two keys")
    if len(axes) == 2 and axes[0][0] == axes[1][0]:
        raise PlanError(f"--vary: {axes[0][0]} given twice")
    check("sweep_points", math.prod(len(vals) for _, vals in axes), "sweep: the grid's points")
    return list(itertools.product(*(vals for _, vals in axes)))


def run_points(points: list[tuple], make_task: Callable[[tuple], object], run_task: Callable[[object], list[dict]], serial_task_points: int,
               executor: Executor | None, progress: Callable[[int, int], None] | None) -> list[dict]:
    """The rows of ``points``, in order: contiguous runs of points become tasks (``make_task``;
    on a pool, :func:`~prfaas_plan.execution.executors.chunks` sizes them; in this process,
    ``serial_task_points`` each so the progress bar moves), each run by ``run_task`` on
    ``executor`` (default: this process); ``progress(done, total)`` after every task."""
    executor = executor or Executor()
    parts = chunks(len(points), executor) if executor.workers > 1 else [range(a, min(a + serial_task_points, len(points)))
                                                                         for a in range(0, len(points), serial_task_points)]
    rows: list[dict] = []
    for part in executor.imap(run_task, [make_task(tuple(points[r.start:r.stop])) for r in parts]):
        rows.extend(part)
        if progress:
            progress(len(rows), len(points))
    return rows


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
