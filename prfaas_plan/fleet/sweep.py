"""Sweeps of a fleet scenario (sites or candidate parts): the fleet MILP re-planned at every point
of one or two varied keys (``--vary 'sites.local[chicago].workload.arrival_req_per_s=6:24:4'``,
``--vary 'links[*].usd_per_gbit_per_s_hour=0.1,0.3'``); each row is what ``optimize`` gives for
its point, read as :func:`~.whatif.reading` (the fleet's cost, throughput, GPUs and $/hour per
role and of the links, the mix and the verdict).

Keys reach into the ``sites:`` and ``links:`` lists by position, by name or all at once
(:mod:`prfaas_plan.planning.overrides`). Each point reads the scenario file's mapping with its
overrides, so every value is checked as in a file; a bad value stops the sweep, an infeasible
point is a row with ``error``. The points run on an executor as the one-pair sweep's do
(:mod:`prfaas_plan.planning.sweep`); a row depends on its point alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..catalog.fields import open_catalog_file
from ..errors import PlanError
from ..execution.executors import Executor
from ..planning.overrides import Override, with_price_sources
from ..planning.scenario import Scenario, scenario_from_mapping
from ..planning.sweep import grid, run_points
from .plan import plan_fleet, question
from .whatif import READING_KEYS, check_fleet_keys, reading

#: Points per task on a serial executor: the progress bar moves every this many points.
SERIAL_TASK_POINTS = 5


@dataclass(frozen=True)
class FleetSweepTask:
    """Points of a fleet sweep for one worker (an executor task: it pickles)."""

    scenario_path: str
    mapping: dict
    name: str
    overrides: tuple[Override, ...]
    axes: tuple[tuple[str, tuple], ...]
    points: tuple[tuple, ...]
    budget_usd_per_hour: float | None
    target_req_per_s: float | None


def fleet_sweep_points(task: FleetSweepTask) -> list[dict]:
    """The rows of ``task``'s points."""
    rows = []
    for pt in task.points:
        point = tuple(Override(k, v) for (k, _), v in zip(task.axes, pt))
        try:
            s = scenario_from_mapping(task.mapping, Path(task.scenario_path), task.name, task.overrides + with_price_sources(point))
        except PlanError as exc:
            raise PlanError(f"--vary at {', '.join(o.label for o in point)}: {exc}") from None
        row = {k: v for (k, _), v in zip(task.axes, pt)}
        if s.fleet is None:
            raise PlanError(f"--vary at {', '.join(o.label for o in point)}: the scenario is no longer a fleet (sites or candidate parts); "
                            "sweep the one-pair scenario instead")
        try:
            rows.append({**row, **reading(plan_fleet(s, task.budget_usd_per_hour, task.target_req_per_s, band=False)), "error": None})
        except PlanError as exc:
            rows.append({**row, **dict.fromkeys(READING_KEYS), "error": str(exc)})
    return rows


def fleet_sweep(sc: Scenario, axes: list[tuple[str, list]], budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
                progress: Callable[[int, int], None] | None = None, executor: Executor | None = None) -> list[dict]:
    """One row per point of the grid of ``axes`` (1 or 2 (key, values) pairs): the varied values,
    then :data:`~.whatif.READING_KEYS` of the re-planned fleet and ``error``."""
    points = grid(axes)
    check_fleet_keys([k for k, _ in axes], "--vary")
    question(sc, budget_usd_per_hour, target_req_per_s)  # its bounds, checked before any worker starts
    path, f, name = open_catalog_file("scenarios", sc.path)
    axes_t = tuple((k, tuple(v)) for k, v in axes)
    return run_points(points, lambda pts: FleetSweepTask(str(path), f.data, name, sc.overrides, axes_t, pts, budget_usd_per_hour, target_req_per_s),
                      fleet_sweep_points, SERIAL_TASK_POINTS, executor, progress)
