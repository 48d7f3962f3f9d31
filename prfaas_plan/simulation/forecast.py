"""The arrival rate over the coming horizon, forecast from the arrivals seen so far (what a
re-planner can know: no rate shape, no future), with its error measured as it goes.

Forecast (persistence): the mean rate over the next ``horizon_s`` is the mean rate of the last
``history_s``, lambda_hat = n(now - history, now) / history.

Error band sigma: the root mean square of this forecaster's own past errors, each forecast
compared with the rate that then arrived over its horizon (known ``horizon_s`` later), never
below the Poisson noise of the two counts, sqrt(lambda_hat / history + lambda_hat / horizon).
No forecast until one error is known (``history_s + horizon_s`` into the run): the Poisson term
alone is far narrower than the rate's real swings, and a band that narrow would let the first
decisions chase noise. Measured rather than modelled: the rate's
swings (ServeGen's 10-minute steps jump by up to 2x late in the day) are what the band must
cover, and a model of them would be a guess.

Why not a trend: a line fitted through the last horizon's per-minute rates and extrapolated to
the middle of the next one had a larger error on the ServeGen day (RMS 0.47 req/s against 0.36
for persistence at a mean of 2.1 req/s, `scripts/replan_day.py --forecast-check`): the shape
moves in steps, which a line overshoots.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..errors import PlanError


class RateForecast:
    """Persistence forecast of the mean arrival rate over the next ``horizon_s`` and its measured
    error (module docstring). Call it with non-decreasing ``now_s``."""

    def __init__(self, horizon_s: float, history_s: float):
        if not (horizon_s > 0 and history_s > 0):
            raise PlanError(f"rate forecast needs horizon_s > 0 and history_s > 0, got {horizon_s}, {history_s}")
        self.horizon_s, self.history_s = float(horizon_s), float(history_s)
        self.pending: deque = deque()  # (made at s, forecast req/s), waiting for their horizon to pass
        self.sq_err_sum = 0.0
        self.errors = 0

    def __call__(self, arrival_s: np.ndarray, now_s: float) -> tuple[float, float] | None:
        """(lambda_hat, sigma), req/s, from ``arrival_s`` (sorted arrival times seen by ``now_s``);
        None before ``history_s`` has passed, and until one forecast has met its horizon (it is
        recorded all the same, to be checked)."""
        if now_s < self.history_s * (1 - 1e-9):
            return None
        count = lambda a, b: int(np.searchsorted(arrival_s, b, side="left") - np.searchsorted(arrival_s, a, side="left"))  # noqa: E731
        while self.pending and self.pending[0][0] + self.horizon_s <= now_s + 1e-9:
            made_s, rate = self.pending.popleft()
            self.sq_err_sum += (count(made_s, made_s + self.horizon_s) / self.horizon_s - rate) ** 2
            self.errors += 1
        rate = count(now_s - self.history_s, now_s) / self.history_s
        self.pending.append((now_s, rate))
        poisson = math.sqrt(rate / self.history_s + rate / self.horizon_s)
        if not self.errors:
            return None
        return rate, max(poisson, math.sqrt(self.sq_err_sum / self.errors))
