"""Waiting in a pool of identical servers: M/M/c (Erlang C) and M/G/c (Allen-Cunneen).

A pool of ``c`` instances serves requests that arrive as a Poisson stream at ``arrival_req_per_s``,
first come first served, each request holding one instance for its service time. With mean
service time E[S], the offered load is a = lambda E[S] (in instances) and the utilisation
rho = a / c (< 1 for a stable queue).

- M/M/c (exponential service), Erlang C: the probability that a request waits
      C(c, a) = (a^c / c!) / (1 - rho) / (sum_{k<c} a^k / k! + (a^c / c!) / (1 - rho)),
  the wait given that it waits is exponential with rate c / E[S] - lambda, so
      P(W > x) = C exp(-(c / E[S] - lambda) x),   E[W] = C E[S] / (c - a).
- M/G/c, Allen-Cunneen: the same with the waiting time scaled by (1 + cv_s^2) / 2, cv_s the
  coefficient of variation of the service time (exact for c = 1, the Pollaczek-Khinchine mean;
  a standard approximation for c > 1). The tail keeps the exponential shape with the scaled mean.

C(c, a) is computed from the Erlang B formula, C = B / (1 - rho (1 - B)): for up to
ERLANG_RECURSION_SERVERS servers with its stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1));
for more (a fleet of 10^6 decode slots) in its Poisson form B(c, a) = pmf(c) / cdf(c) of a Poisson
variable of mean a, the cdf summed in logs over a +- ERLANG_POISSON_SPAN_SD standard deviations
(the terms beyond are below e^-800 of the largest), so the cost grows with sqrt(a), not with c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError

#: Up to this many servers Erlang B runs its exact recursion (~1 ms); above, the Poisson form.
ERLANG_RECURSION_SERVERS = 10_000
#: Standard deviations (sqrt(a)) either side of the Poisson mode summed by the Poisson form.
ERLANG_POISSON_SPAN_SD = 40.0


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c with ``offered_load`` = lambda E[S] (Erlang B)."""
    if servers <= ERLANG_RECURSION_SERVERS or offered_load <= 0:
        b = 1.0
        for k in range(1, servers + 1):
            b = offered_load * b / (k + offered_load * b)
        return b
    a, c = float(offered_load), int(servers)
    span = ERLANG_POISSON_SPAN_SD * math.sqrt(a) + 50.0
    k_lo, k_top = max(0, math.floor(a - span)), min(c, math.ceil(a + span))
    log_pmf = lambda k: k * math.log(a) - a - math.lgamma(k + 1)  # noqa: E731
    # log pmf(k) for k = k_top, k_top - 1, ..., k_lo: pmf(k - 1) = pmf(k) k / a
    steps = np.log(np.arange(k_top, k_lo, -1, dtype=float) / a)
    logs = log_pmf(k_top) + np.concatenate([[0.0], np.cumsum(steps)])
    top = float(logs.max())
    log_cdf = top + math.log(float(np.sum(np.exp(logs - top))))
    return math.exp(min(log_pmf(c) - log_cdf, 0.0))


def erlang_c(servers: int, offered_load: float) -> float:
    """P(a request waits) in M/M/c at offered load a = lambda E[S] < c (Erlang C)."""
    if servers < 1:
        raise PlanError(f"a queue needs at least one server, got {servers}")
    rho = offered_load / servers
    if not 0 <= rho < 1:
        raise PlanError(f"a queue at utilisation {rho:.3g} is unstable (it needs < 1): lower the load or add instances")
    if offered_load == 0:
        return 0.0
    b = erlang_b(servers, offered_load)
    return b / (1 - rho * (1 - b))


@dataclass(frozen=True)
class Wait:
    """The waiting time of a request in an M/G/c pool (Allen-Cunneen): it waits with probability
    ``p_wait`` and then for an exponential time of mean ``mean_if_waiting_s``."""

    p_wait: float
    mean_if_waiting_s: float

    @property
    def mean_s(self) -> float:
        return self.p_wait * self.mean_if_waiting_s

    def survival(self, x_s: float) -> float:
        """P(W > x)."""
        if x_s < 0:
            return 1.0
        if self.p_wait == 0 or self.mean_if_waiting_s == 0:
            return 0.0
        return self.p_wait * math.exp(-x_s / self.mean_if_waiting_s)

    def quantile_s(self, q: float) -> float:
        """The q-quantile of W: 0 while q <= 1 - p_wait, then the exponential tail's."""
        if not 0 <= q < 1:
            raise PlanError(f"a quantile needs 0 <= q < 1, got {q}")
        if q <= 1 - self.p_wait:
            return 0.0
        return self.mean_if_waiting_s * math.log(self.p_wait / (1 - q))


def pool_wait(servers: int, arrival_req_per_s: float, mean_service_s: float, service_cv2: float = 1.0,
              arrival_cv2: float = 1.0) -> Wait:
    """Waiting time in a pool of ``servers`` instances, FCFS, service times of mean
    ``mean_service_s`` and squared coefficient of variation ``service_cv2`` (1: exponential,
    M/M/c exactly; 0: deterministic), inter-arrival gaps of squared coefficient of variation
    ``arrival_cv2`` (1: Poisson; > 1: bursty). Allen-Cunneen (GI/G/c): the M/M/c wait times
    (arrival_cv2 + service_cv2) / 2."""
    if not (arrival_req_per_s >= 0 and mean_service_s > 0 and service_cv2 >= 0 and arrival_cv2 >= 0):
        raise PlanError(f"queue inputs out of range: arrivals {arrival_req_per_s} req/s (cv^2 {arrival_cv2}), "
                        f"service {mean_service_s} s, cv^2 {service_cv2}")
    a = arrival_req_per_s * mean_service_s
    c = erlang_c(servers, a)
    if c == 0:
        return Wait(0.0, 0.0)
    drain_per_s = servers / mean_service_s - arrival_req_per_s  # the M/M/c tail rate
    return Wait(c, (arrival_cv2 + service_cv2) / 2 / drain_per_s)
