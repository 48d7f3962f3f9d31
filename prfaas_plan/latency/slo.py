"""A latency SLO as a lower bound on the instance count of one pool (issue #16).

A pool of ``c`` identical instances (prefill, or decode slots) receives ``arrival_req_per_s`` of
the traffic, a fraction ``share_frac`` of all requests. Each of its requests waits W for an
instance (M/G/c FCFS, Allen-Cunneen: :func:`~prfaas_plan.latency.queueing.pool_wait`; W is 0 with
probability C and exponential with mean theta otherwise) and then spends a time d outside the
queue: its own prefill in the latency regime, and any fixed delay the caller adds (RTT, the
first decode step). d is a distribution over the pool's requests: values ``delay_s`` with masses
``delay_mass`` (summing to 1 over the pool). The SLO is on the TTFT of *all* requests.

For each stated percentile q with bound S (``TtftSlo.quantiles``) the whole traffic must have
P(TTFT > S) <= 1 - q. Over the paths, P(TTFT > S) = sum_i share_i P_i(TTFT > S), and for a
request of this pool TTFT >= W + d (the other terms - the other queues, the exposed KV
transfer - are >= 0). So a plan can only meet the SLO if

    share * sum_j mass_j P(W > S - d_j) <= 1 - q                           (tail)

(P(W > x) = 1 for x < 0), and for the mean, share * (E[W] + E[d]) <= S_mean (mean). Both left
sides fall monotonically as c grows (C(c, a) and theta fall with c), so the smallest c meeting
them is found by galloping from the smallest stable count and bisecting.

What it is: a *necessary* bound, not a sufficient one. The mixture of paths couples the pools:
each pool alone may use the whole tail allowance (1 - q) / share, the other pools' waits, the
decode wait and the link's exposed transfer add to TTFT, and a plan at every pool's bound can
still miss the SLO. A planner therefore uses the bounds to prune its search, checks the plan it
returns with the full analytic model (:func:`~prfaas_plan.latency.ttft.ttft`) and adds capacity
until that holds (see :mod:`prfaas_plan.latency.slo_plan`).

``max_utilisation_frac`` (the ``slo.max_utilisation_frac`` rule of thumb) adds c >= a / u_max,
a = lambda E[S] the offered load in instances.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import PlanError
from ..planning.problem import TtftSlo
from .queueing import Wait, pool_wait

#: Relative tolerance of the SLO comparisons (a tail within 1e-9 of the allowance meets it).
SLO_RTOL = 1e-9

#: The most instances the galloping search probes before it gives up (a pool this large for one
#: SLO means the SLO is met only in the limit; the caller's max_instances is usually far lower).
MAX_SEARCH_INSTANCES = 10**7


def pool_slo_excess(wait: Wait, delay_s, delay_mass, slo: TtftSlo, share_frac: float = 1.0) -> float:
    """How far one pool's requests alone are from the SLO, as the largest relative excess over
    the stated levels: (share * tail(S_q) - (1 - q)) / (1 - q) for each percentile and
    (share * (E[W] + E[d]) - S_mean) / S_mean for the mean (see the module docstring). <= 0
    means this pool alone does not break the SLO."""
    d = np.asarray(delay_s, float)
    m = np.asarray(delay_mass, float)
    worst = -math.inf
    theta = wait.mean_if_waiting_s
    p = wait.p_wait if theta > 0 else 0.0
    for q, bound_s in slo.quantiles():
        x = bound_s - d  # P(W > x): 1 below 0, else p exp(-x / theta)
        surv = np.where(x < 0, 1.0, p * np.exp(-np.maximum(x, 0.0) / theta) if p > 0 else 0.0)
        tail = share_frac * float(np.sum(m * surv))
        worst = max(worst, (tail - (1 - q)) / (1 - q))
    if slo.mean_s is not None:
        mean = share_frac * (wait.mean_s + float(np.sum(m * d)))
        worst = max(worst, (mean - slo.mean_s) / slo.mean_s)
    return worst


def min_instances_for_slo(arrival_req_per_s: float, mean_service_s: float, service_cv2: float, delay_s, delay_mass,
                          slo: TtftSlo, *, arrival_cv2: float = 1.0, share_frac: float = 1.0,
                          max_utilisation_frac: float | None = None, servers_per_instance: int = 1,
                          max_instances: int | None = None) -> int | None:
    """The smallest instance count of a pool that can meet ``slo`` (the necessary bound of the
    module docstring), or None if no count can (the delays alone break it) or it would exceed
    ``max_instances``.

    - ``arrival_req_per_s``: the pool's routed arrivals; ``arrival_cv2`` their squared
      coefficient of variation (1: Poisson; a thinned stream: :func:`~prfaas_plan.latency.ttft.split_cv2`).
    - ``mean_service_s``, ``service_cv2``: the time a request holds one server (throughput
      regime for prefill: ``PrefillPool.service_s``), mean and squared coefficient of variation.
    - ``delay_s``, ``delay_mass``: the pool's requests' time outside the queue (latency regime
      prefill plus fixed delays), values and masses (normalised here).
    - ``share_frac``: the pool's share of all requests (its tail allowance is (1 - q) / share).
    - ``servers_per_instance``: servers per instance (decode: BS_max slots per instance).

    0 for a pool without arrivals. Raises PlanError on inputs out of range."""
    lam = float(arrival_req_per_s)
    if not (lam >= 0 and math.isfinite(lam)):
        raise PlanError(f"pool arrival rate must be a finite number >= 0 req/s, got {arrival_req_per_s}")
    if not 0 < share_frac <= 1 + SLO_RTOL and lam > 0:
        raise PlanError(f"pool share of requests must be in (0, 1], got {share_frac}")
    if max_utilisation_frac is not None and not 0 < max_utilisation_frac <= 1:
        raise PlanError(f"max_utilisation_frac must be in (0, 1], got {max_utilisation_frac}")
    if servers_per_instance < 1:
        raise PlanError(f"servers per instance must be >= 1, got {servers_per_instance}")
    if lam == 0:
        return 0
    if not (mean_service_s > 0 and math.isfinite(mean_service_s)):
        raise PlanError(f"pool service time must be a positive number of seconds, got {mean_service_s}")
    d = np.asarray(delay_s, float)
    mass = np.asarray(delay_mass, float)
    if d.shape != mass.shape or not len(d) or np.any(mass < 0) or not mass.sum() > 0 or not np.all(np.isfinite(d)):
        raise PlanError("pool delays need finite values and non-negative masses of the same length, summing to > 0")
    mass = mass / mass.sum()
    offered = lam * mean_service_s  # servers' worth of work
    spi = int(servers_per_instance)
    lo = math.floor(offered / spi) + 1  # stable: servers > offered load
    if max_utilisation_frac is not None:
        need = offered / max_utilisation_frac / spi
        lo = max(lo, math.ceil(need - min(need * SLO_RTOL, 1e-6)))
    if pool_slo_excess(Wait(0.0, 0.0), d, mass, slo, share_frac) > SLO_RTOL:
        return None  # even without waiting this pool's own delays break the SLO

    def meets(n: int) -> bool:
        w = pool_wait(n * spi, lam, mean_service_s, service_cv2, arrival_cv2)
        return pool_slo_excess(w, d, mass, slo, share_frac) <= SLO_RTOL

    cap = MAX_SEARCH_INSTANCES if max_instances is None else max_instances
    if lo > cap:
        return None
    if meets(lo):
        return lo
    step, bad = 1, lo
    while True:  # gallop: bad fails, find a count that meets
        n = min(bad + step, cap)
        if meets(n):
            good = n
            break
        if n >= cap:
            return None
        bad, step = n, step * 2
    while good - bad > 1:
        mid = (bad + good) // 2
        bad, good = (bad, mid) if meets(mid) else (mid, good)
    return good
