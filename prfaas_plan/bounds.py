"""Bounds on every numeric command-line option and simulation parameter, in one table.

Each entry: name -> :class:`Bound` (smallest and largest value, unit, why). The library checks
its inputs here (:func:`check`), the command line names the option in the message, and a value
out of range is one PlanError line naming the option, the bound and why it is there, e.g.

    --link-drop-frac: must be in [0.001, 1000] x the planned link, got 0 (a cut link (0) never
    drains the transfers in flight, ...)

The bounds that keep a run finite are here too: lower bounds on periods, upper bounds on sweep
points, simulated requests and simulated events (each a whole run's worth of work a command can
do within minutes on a laptop). Some bounds depend on another input (a link drop inside the
simulated run, a decode batch that fits memory): :func:`check` takes that bound as an argument
and the table says what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import PlanError


@dataclass(frozen=True)
class Bound:
    """[min, max] (or open at an end: ``min_open``, ``max_open``), in ``unit``; ``why`` says
    where the bound comes from; ``whole``: a whole number."""

    min: float | None
    max: float | None
    unit: str
    why: str
    min_open: bool = False
    max_open: bool = False
    whole: bool = False

    def text(self, max_value: float | None = None) -> str:
        hi = self.max if max_value is None else max_value
        lo_b = "(" if self.min_open else "["
        hi_b = ")" if self.max_open else "]"
        lo_t = "-inf" if self.min is None else f"{self.min:,g}"
        hi_t = "inf" if hi is None else f"{hi:,g}"
        return f"{'a whole number ' if self.whole else ''}in {lo_b}{lo_t}, {hi_t}{hi_b}{' ' + self.unit if self.unit else ''}"


#: Seconds of simulated time per observation window (the simulator's tick); no period is shorter.
SIMULATION_WINDOW_S = 1.0

BOUNDS: dict[str, Bound] = {
    # -- planning ------------------------------------------------------------------------------
    "budget_usd_per_hour": Bound(0, 1e15, "$/hour", "10^15 $/hour rents ~10^14 GPUs, far beyond any fleet; up to it a plan takes ~1 s",
                                 min_open=True),
    "target_req_per_s": Bound(0, 1e9, "req/s", "10^9 req/s is ~10^4 x the largest published serving fleets", min_open=True),
    # -- sweep ---------------------------------------------------------------------------------
    "sweep_axis_points": Bound(1, 1_000, "values per --vary", "each value is one optimizer run (~0.1 s)", whole=True),
    "sweep_points": Bound(1, 10_000, "points in the grid", "each point is one optimizer run (~0.1 s); 10,000 is ~15 min", whole=True),
    # -- simulate ------------------------------------------------------------------------------
    "load": Bound(0, 100, "x Lambda_max", "above 100x its capacity a deployment only builds queues", min_open=True),
    "arrival_req_per_s": Bound(0, 1e7, "req/s", "the simulated requests are bounded anyway (simulated_requests)", min_open=True),
    "duration_s": Bound(0, 1e7, "s", "about 116 days of arrivals", min_open=True),
    "link_drop_at_s": Bound(0, None, "s", "the drop must happen inside the simulated run (at most its duration)"),
    "link_drop_frac": Bound(1e-3, 1e3, "x the planned link",
                            "a cut link (0) never drains the transfers in flight, and below 0.1% they outlast any run; a cut is not modelled"),
    "burst_cv2": Bound(0, 1e4, "(squared coefficient of variation)", "gamma gaps wider than this are a handful of bursts", min_open=True),
    "ttft_slo_s": Bound(0, 1e6, "s", "a TTFT SLO is a positive time", min_open=True),
    "warmup_s": Bound(0, None, "s", "the warm-up is left out of the results, so it must end before the run does", max_open=True),
    "replan_period_s": Bound(SIMULATION_WINDOW_S, 1e7, "s", f"the simulation observes the load in {SIMULATION_WINDOW_S:g}-s windows"),
    "switch_s": Bound(0, 86_400, "s", "a node changes role within a day"),
    "seed": Bound(0, 2**63 - 1, "", "numpy's seed range", whole=True),
    "simulated_requests": Bound(1, 2_000_000, "requests (rate x duration)",
                                "the simulator handles ~10^4 requests/s, so this is a few minutes; shorten --duration-s or lower the rate", whole=True),
    "simulated_events": Bound(1, 25_000_000, "events",
                              "a run that has not drained by then cannot keep up (a link too small, an overload); ~10^5 events/s", whole=True),
    "replans": Bound(0, 100_000, "re-plans (duration / --replan-period-s)", "each re-plan prices every split of the fleet", whole=True),
    # -- estimate ------------------------------------------------------------------------------
    "batch": Bound(1, None, "requests per instance", "the decode batch must fit memory beside the weights (memory_max_batch)", whole=True),
}


def option(name: str) -> str:
    """The command-line spelling of a table name (``link_drop_frac`` -> ``--link-drop-frac``)."""
    return "--" + name.replace("_", "-")


def check(name: str, value, label: str | None = None, max_value: float | None = None):
    """``value`` if it lies inside ``BOUNDS[name]`` (with ``max_value`` replacing a maximum that
    depends on another input), else a PlanError naming ``label`` (default: the option), the
    bound, the value and why. None passes (an option not given)."""
    if value is None:
        return None
    b = BOUNDS[name]
    hi = b.max if max_value is None else max_value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok and b.whole:
        ok = float(value).is_integer()
    if ok and b.min is not None:
        ok = value > b.min if b.min_open else value >= b.min
    if ok and hi is not None:
        ok = value < hi if b.max_open else value <= hi
    if not ok:
        shown = f"{value:,g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
        raise PlanError(f"{label or option(name)}: must be {b.text(max_value)}, got {shown} ({b.why})")
    return value
