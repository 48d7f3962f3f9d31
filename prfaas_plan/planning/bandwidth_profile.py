"""A link's available bandwidth over the day (``link.bandwidth_profile``): a CSV of
``t_s, gbit_per_s`` rows, a step function (each value holds from its time to the next), whose
*shape* is scaled to the link: the profile's peak is the link's bandwidth (stated, or bought by
the plan), every other row the same fraction of it as in the file. A leased or VPC link whose
available bandwidth sags in the evening is a profile whose evening rows are lower.

Where it is used:

- the analytic model (the planner, :class:`~prfaas_plan.planning.problem.Link`) plans with the
  **worst** fraction, min(gbit_per_s) / max(gbit_per_s): a plan that holds at the trough holds
  all day (the time-weighted mean, :attr:`BandwidthProfile.mean_frac`, is reported beside it and
  would be the right figure only for traffic that can wait for the peak);
- ``simulate`` replays it: the link starts at the first row's fraction of the plan's bandwidth and
  changes at each row's time (times from the first row's; rows past the run are not used; the
  last row's value holds to the end).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..catalog.files import show_path
from ..errors import PlanError

#: Most rows a profile may have (a day at one row per second is 86,400).
MAX_ROWS = 1_000_000
HEADER = ("t_s", "gbit_per_s")


@dataclass(frozen=True)
class BandwidthProfile:
    """Times (s, increasing, the first >= 0) and the bandwidth at each as a fraction of the
    profile's peak (in (0, 1], the peak 1)."""

    t_s: tuple[float, ...]
    frac: tuple[float, ...]
    source: str = ""

    @property
    def worst_frac(self) -> float:
        """The lowest fraction: what the analytic model plans with."""
        return min(self.frac)

    @property
    def mean_frac(self) -> float:
        """Time-weighted mean fraction over the profile's span (the last row lasting as long as
        the step before it; a one-row profile: that row)."""
        if len(self.t_s) == 1:
            return self.frac[0]
        steps = [b - a for a, b in zip(self.t_s, self.t_s[1:])]
        steps.append(steps[-1])
        return sum(f * s for f, s in zip(self.frac, steps)) / sum(steps)

    def schedule(self, peak_bytes_per_s: float, duration_s: float) -> tuple[tuple[float, float], ...]:
        """(time from the first row, bytes/s) for each row inside [0, ``duration_s``): the
        simulator's link schedule for a link of ``peak_bytes_per_s`` at the profile's peak."""
        t0 = self.t_s[0]
        return tuple((t - t0, f * peak_bytes_per_s) for t, f in zip(self.t_s, self.frac) if t - t0 < duration_s)


def read_bandwidth_profile(path: str | Path) -> BandwidthProfile:
    """Read and check a profile CSV (header ``t_s,gbit_per_s``); a bad file is one PlanError line
    naming the file, the line and what is wrong."""
    p = Path(path)
    where = show_path(p)
    if not p.is_file():
        raise PlanError(f"{where}: bandwidth profile file not found")
    t_s: list[float] = []
    gbit: list[float] = []
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            head = next(rows, None)
            if head is None or tuple(c.strip() for c in head) != HEADER:
                raise PlanError(f"{where}: line 1: expected the header {','.join(HEADER)}, got {','.join(head or []) or 'nothing'}")
            for line, row in enumerate(rows, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 2:
                    raise PlanError(f"{where}: line {line}: expected 2 values (t_s, gbit_per_s), got {len(row)}")
                try:
                    t, g = float(row[0]), float(row[1])
                except ValueError:
                    raise PlanError(f"{where}: line {line}: not a number: {','.join(row)[:60]}") from None
                if not (math.isfinite(t) and t >= 0):
                    raise PlanError(f"{where}: line {line}: t_s must be a finite number >= 0, got {row[0].strip()}")
                if t_s and t <= t_s[-1]:
                    raise PlanError(f"{where}: line {line}: t_s must increase, got {t:g} after {t_s[-1]:g}")
                if not (math.isfinite(g) and g > 0):
                    raise PlanError(f"{where}: line {line}: gbit_per_s must be a finite number > 0 (the planner plans with the "
                                    f"lowest), got {row[1].strip()}")
                if len(t_s) >= MAX_ROWS:
                    raise PlanError(f"{where}: line {line}: more than {MAX_ROWS:,} rows")
                t_s.append(t)
                gbit.append(g)
    except UnicodeDecodeError:
        raise PlanError(f"{where}: not a UTF-8 text file") from None
    if not t_s:
        raise PlanError(f"{where}: no rows after the header")
    peak = max(gbit)
    return BandwidthProfile(tuple(t_s), tuple(g / peak for g in gbit), str(p))
