"""Reading a request-rate shape: how the arrival rate moves over a day or a week (e.g. the
shipped ``servegen_m-large_rate_10min.csv``, Alibaba Bailian's m-large traffic summed over
clients, 14 days in 600 s steps).

The CSV needs columns ``t_s`` (seconds; strictly increasing) and ``rate_req_per_s`` (finite,
>= 0); other columns are ignored. Each row is the mean rate from its ``t_s`` to the next row's.
Read through :func:`prfaas_plan.catalog.files.read_text_maybe_gzip` (plain or gzip).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..catalog.files import MAX_TRACE_BYTES, read_text_maybe_gzip, show_path
from ..errors import PlanError
from .readers import _column, _csv_rows, _need


class RateShape(NamedTuple):
    """Arrival rate over time: ``rate_req_per_s[i]`` from ``t_s[i]`` until ``t_s[i + 1]``."""

    t_s: np.ndarray
    rate_req_per_s: np.ndarray

    @property
    def mean_rate_req_per_s(self) -> float:
        """Mean of the rows (equal to the time average when the steps are equal)."""
        return float(np.mean(self.rate_req_per_s))


def _number(text: str, path, line: int, key: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise PlanError(f"{show_path(path)}: line {line}: {key!r}: not a number: {text.strip()[:40]!r}") from None
    if not math.isfinite(v):
        raise PlanError(f"{show_path(path)}: line {line}: {key!r}: must be finite, got {text.strip()[:40]}")
    return v


def read_rate_shape(path: str | Path) -> RateShape:
    """The ``t_s`` and ``rate_req_per_s`` columns of the CSV at ``path`` as float arrays.
    Refused (one line naming the file, line and column): no rows, a missing column, a value that
    is not a finite number, a negative rate or time, a ``t_s`` not greater than the previous row's."""
    text = read_text_maybe_gzip(path, "rate CSV file", MAX_TRACE_BYTES)
    header, rows = _csv_rows(text, path)
    _column(header, ("t_s",), path)
    _column(header, ("rate_req_per_s",), path)
    t_s, rate = [], []
    for line, row in rows:
        t = _number(_need(row, "t_s", path, line), path, line, "t_s")
        r = _number(_need(row, "rate_req_per_s", path, line), path, line, "rate_req_per_s")
        if r < 0:
            raise PlanError(f"{show_path(path)}: line {line}: 'rate_req_per_s': must be >= 0, got {r:g}")
        if t < 0:
            raise PlanError(f"{show_path(path)}: line {line}: 't_s': must be >= 0 (seconds from the start of the shape), got {t:g}")
        if t_s and t <= t_s[-1]:
            what = "repeats" if t == t_s[-1] else "is earlier than"
            raise PlanError(f"{show_path(path)}: line {line}: 't_s': {t:g} {what} the previous row's {t_s[-1]:g}; times must increase")
        t_s.append(t)
        rate.append(r)
    if not t_s:
        raise PlanError(f"{show_path(path)}: empty rate shape (no rows)")
    return RateShape(np.asarray(t_s, float), np.asarray(rate, float))
