"""Analytic time to first token (TTFT) and time per output token (TPOT) of a deployment at a
load, per path and over the whole traffic.

A request of uncached length l arriving at ``arrival_req_per_s`` (Poisson) takes

    TTFT(l) = W_pool + T_latency(l) [+ T_exposed(l) + RTT if offloaded] + W_decode + T_step

- W_pool: the wait for a prefill instance of its pool (PrfaaS if l > t, else local), M/G/c FCFS
  with Allen-Cunneen (:func:`~prfaas_plan.latency.queueing.pool_wait`); the pool's arrivals are
  its share of the traffic, its service time the routed slice's ``service_s`` (batched prefill),
  with the slice's own mean and coefficient of variation.
- T_latency(l): the request's own prefill once started (the latency regime).
- T_exposed(l): the KV transfer left after the prefill under layer-wise pipelining
  (:func:`~prfaas_plan.latency.deployment.exposed_transfer_s`), at the bandwidth a transfer gets
  on the shared link: B (1 - u) with u the link's utilisation (the mean rate of a
  processor-sharing pipe, M/G/1-PS), and never above the rate the transfer's TCP connections
  carry over the link's RTT and loss (``transfer_cap_bytes_per_s``, :mod:`.wan`: Mathis et al.
  1997; inf with unlimited connections, which leaves B (1 - u)). Requests kept local ship KV over the intra-cluster RDMA
  fabric, taken as never binding ([PRFAAS] Eq. 4's assumption).
- W_decode: the wait for a decode slot (instances x BS_max slots, each held for L_out x T_step;
  M/D/c with the workload's mean output length); T_step: the first decode step.

W_pool and W_decode are independent; each is 0 with probability 1 - C and exponential otherwise,
so P(TTFT > x) is exact in closed form given l, and mean / P50 / P90 / P99 follow by summing over
the cells of the length distribution (exact masses; each cell at its mean) and bisection.
TPOT is the decode step at BS_max over the accepted tokens per step (the SLO the plan meets).

At zero load every wait vanishes and TTFT is the service time of each request, which is what
[PRFAAS] Table 6 reports (see ``paper/validation.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import PlanError
from ..planning.problem import TtftSlo
from ..planning.throughput import cell_edges
from ..planning.workload import cell_means
from .deployment import Deployment, exposed_transfer_s
from .queueing import Wait, pool_wait
from .wan import transfer_rate_bytes_per_s

QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}

#: Cells of the length distribution the sums run over.
LATENCY_CELLS = 1024

#: Relative precision of the percentiles (bisection on the survival function).
QUANTILE_RTOL = 1e-6


@dataclass(frozen=True)
class PathLatency:
    """One prefill path at the load: its share of requests, its pool's utilisation and wait,
    and its mean TTFT."""

    share_frac: float
    utilisation_frac: float
    wait_mean_s: float
    p_wait: float
    ttft_mean_s: float


@dataclass(frozen=True)
class Latency:
    arrival_req_per_s: float
    ttft_mean_s: float
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_s: float
    link_utilisation_frac: float
    decode_utilisation_frac: float
    paths: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("arrival_req_per_s", "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s",
                                              "tpot_s", "link_utilisation_frac", "decode_utilisation_frac")}
        out["paths"] = {name: vars(p).copy() for name, p in self.paths.items()}
        return out


def length_cells(lengths, n: int = LATENCY_CELLS, threshold_tokens: float = math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mass, mean length, lower edge) of the cells of a length distribution that hold mass, with
    ``threshold_tokens`` inserted as a cell boundary (when inside the range) so that every cell
    lies wholly on one side of it."""
    edges = cell_edges(lengths, n)  # made once per distribution
    t = threshold_tokens
    if edges[0] < t < edges[-1]:  # (return_index: plain np.unique imports numpy.ma, ~10 ms)
        edges = np.unique(np.concatenate([edges, [t]]), return_index=True)[0]
    mass = np.clip(np.diff(lengths.cdf(edges)), 0.0, None)
    pm = np.diff(lengths.partial_mean(edges[0], edges))
    means = cell_means(mass, pm, edges[:-1], edges[1:])
    keep = mass > 0
    return mass[keep] / mass[keep].sum(), means[keep], edges[:-1][keep]


def split_cells(dep: Deployment, n: int = LATENCY_CELLS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mass, mean length, offloaded?) of the cells of the uncached-length distribution, with
    the threshold inserted as a cell boundary so that every cell lies wholly on one path."""
    mass, means, lower = length_cells(dep.lengths, n, dep.threshold_tokens)
    return mass, means, lower >= dep.threshold_tokens


def _slice_stats(values: np.ndarray, mass: np.ndarray) -> tuple[float, float]:
    """(mean, squared coefficient of variation) of a per-cell quantity over a slice."""
    w = mass / mass.sum()
    mean = float(np.sum(w * values))
    var = float(np.sum(w * (values - mean) ** 2))
    return mean, var / mean**2 if mean > 0 else 0.0


def _wait_survival(x: np.ndarray, a: Wait, b: Wait) -> np.ndarray:
    """P(A + B > x) for independent waits A, B (each 0 w.p. 1 - p, else exponential)."""
    x = np.asarray(x, float)
    pa, ta, pb, tb = a.p_wait, a.mean_if_waiting_s, b.p_wait, b.mean_if_waiting_s
    pa, pb = (pa if ta > 0 else 0.0), (pb if tb > 0 else 0.0)
    xp = np.maximum(x, 0.0)
    ea = np.exp(-xp / ta) if pa > 0 else 0.0
    eb = np.exp(-xp / tb) if pb > 0 else 0.0
    both = 0.0
    if pa > 0 and pb > 0:
        if abs(ta - tb) > 1e-9 * max(ta, tb):
            both = (ta * ea - tb * eb) / (ta - tb)
        else:
            both = (1 + xp / ta) * ea
    s = pa * (1 - pb) * ea + pb * (1 - pa) * eb + pa * pb * both
    return np.where(x < 0, 1.0, s)


def split_cv2(arrival_cv2: float, share: float) -> float:
    """Squared coefficient of variation of the gaps of a stream thinned to ``share`` at random
    (Bernoulli routing of a renewal stream): share x cv^2 + 1 - share (Poisson stays Poisson)."""
    return share * arrival_cv2 + 1 - share


@dataclass(frozen=True)
class PathCells:
    """One prefill path's cells (``sel`` into the deployment's cells): its share of requests, its
    service time's mean and squared coefficient of variation, each cell's own prefill time
    (latency regime) and, offloaded, its KV bytes."""

    share: float
    sel: np.ndarray
    service_mean_s: float
    service_cv2: float
    alone_s: np.ndarray
    kv_bytes: np.ndarray | None


@dataclass(frozen=True)
class Routing:
    """What a deployment's TTFT needs that does not depend on its counts, link or load: the
    cells (mass, mean length, offloaded?) and each path's :class:`PathCells`. The same for
    every deployment with the same threshold, prefill models and lengths (a planner's search
    reuses it: :func:`routing`)."""

    mass: np.ndarray
    lengths: np.ndarray
    paths: dict


def routing(dep: Deployment, n_cells: int = LATENCY_CELLS) -> Routing:
    """The :class:`Routing` of ``dep`` (its pools' instance counts are not read)."""
    mass, lengths, remote = split_cells(dep, n_cells)
    paths = {}
    for name, pool, sel in (("prfaas", dep.prfaas, remote), ("local", dep.local, ~remote)):
        share = float(mass[sel].sum())
        if share == 0:
            continue
        if pool is None:
            raise PlanError(f"{dep.kind} deployment routes {share:.1%} of requests to a {name} prefill pool it does not have")
        mean_s, cv2 = _slice_stats(pool.service_s(lengths[sel]), mass[sel])
        kv = dep.kv_bytes(lengths[sel]) if name == "prfaas" else None
        paths[name] = PathCells(share, sel, mean_s, cv2, pool.latency_s(lengths[sel]), kv)
    return Routing(mass, lengths, paths)


@dataclass(frozen=True)
class _Model:
    """TTFT of a deployment at one load, per cell: its mass, its delay outside the queues, the
    wait of its pool and the decode wait; and per path (share, utilisation, wait, cells)."""

    mass: np.ndarray
    delay: np.ndarray
    paths: dict
    w_dec: Wait
    link_util: float
    decode_util: float

    @cached_property
    def _slices(self) -> list:
        """Each path's (mass, delay, wait), its cells cut once for the survival's many calls."""
        return [(self.mass[sel], self.delay[sel], wait) for _, _, wait, sel in self.paths.values()]

    def survival(self, x: float) -> float:
        """P(TTFT > x) over all requests (exact given each cell at its mean)."""
        return float(sum(np.sum(m * _wait_survival(x - d, w, self.w_dec)) for m, d, w in self._slices))

    @property
    def mean_s(self) -> float:
        return float(np.sum(self.mass * self.delay)) + self.w_dec.mean_s + sum(share * w.mean_s for share, _, w, _ in self.paths.values())


def _model(dep: Deployment, arrival_req_per_s: float, n_cells: int, arrival_cv2: float, cells: Routing | None = None) -> _Model:
    lam = float(arrival_req_per_s)
    if not (lam >= 0 and math.isfinite(lam)):
        raise PlanError(f"arrival rate must be a finite number >= 0 req/s, got {arrival_req_per_s}")
    cells = cells or routing(dep, n_cells)
    mass = cells.mass
    delay = np.zeros_like(cells.lengths)  # service part of TTFT per cell, before the decode step
    paths = {}
    link_util = 0.0
    for name, path in cells.paths.items():
        pool, share = (dep.prfaas if name == "prfaas" else dep.local), path.share
        if pool is None:
            raise PlanError(f"{dep.kind} deployment routes {share:.1%} of requests to a {name} prefill pool it does not have")
        rate = lam * share
        util = rate * path.service_mean_s / pool.instances
        if util >= 1:
            raise PlanError(f"{name} prefill pool at {util:.1%} utilisation is unstable: lower the load")
        wait = pool_wait(pool.instances, rate, path.service_mean_s, path.service_cv2, split_cv2(arrival_cv2, share))
        alone = path.alone_s
        if path.kv_bytes is not None:
            kv = path.kv_bytes
            mean_kv = float(np.sum(mass[path.sel] * kv) / share)
            link_b = dep.link_bytes_per_s * dep.link_available_frac  # a bandwidth profile: its worst
            link_util = lam * share * mean_kv / link_b if link_b > 0 else math.inf
            if link_util >= 1:
                raise PlanError(f"cross-datacenter link at {link_util:.1%} utilisation is unstable: lower the load or buy bandwidth")
            bandwidth = float(transfer_rate_bytes_per_s(link_b * (1 - link_util), dep.transfer_cap_bytes_per_s))
            alone = alone + exposed_transfer_s(kv, alone, bandwidth, dep.model.num_layers) + dep.rtt_s
        delay[path.sel] = alone
        paths[name] = (share, util, wait, path.sel)
    decode_s = dep.output_tokens_mean * dep.decode_step_s
    decode_util = lam * decode_s / dep.decode_slots if dep.decode_slots > 0 else math.inf
    if decode_util >= 1:
        raise PlanError(f"decode pool at {decode_util:.1%} utilisation is unstable: lower the load")
    w_dec = pool_wait(dep.decode_slots, lam, decode_s, 0.0, arrival_cv2) if lam > 0 else Wait(0.0, 0.0)
    return _Model(mass, delay + dep.decode_step_s, paths, w_dec, link_util, decode_util)


def ttft(dep: Deployment, arrival_req_per_s: float, n_cells: int = LATENCY_CELLS, arrival_cv2: float = 1.0,
         quantiles: tuple[str, ...] = tuple(QUANTILES)) -> Latency:
    """TTFT mean / P50 / P90 / P99 and TPOT of ``dep`` at ``arrival_req_per_s``, Poisson by
    default; ``arrival_cv2`` > 1 for bursty arrivals (GI/G/c, each pool's share thinned by
    :func:`split_cv2`; the decode pool sees the prefill pools' output, taken as the arrivals).
    ``quantiles``: the percentiles to compute (keys of :data:`QUANTILES`; the others are nan,
    which saves their bisections where only one is read, e.g. `risk`'s P90).
    Raises :class:`PlanError` (one line) if any pool, the link or decode is at or over
    utilisation 1: the queue is unstable and the latency unbounded."""
    m = _model(dep, arrival_req_per_s, n_cells, arrival_cv2)
    delay = m.delay
    waits = [m.w_dec.mean_if_waiting_s] + [w.mean_if_waiting_s for _, _, w, _ in m.paths.values()]
    hi = float(delay.max()) + 50 * max(waits) + 1.0
    unknown = set(quantiles) - set(QUANTILES)
    if unknown:
        raise PlanError(f"unknown TTFT quantile(s) {', '.join(sorted(unknown))}; known: {', '.join(QUANTILES)}")
    quantiles = {k: _quantile(m.survival, 1 - q, float(delay.min()), hi) if k in quantiles else math.nan for k, q in QUANTILES.items()}
    path_out = {name: PathLatency(share, util, wait.mean_s, wait.p_wait,
                                  float(np.sum(m.mass[sel] * delay[sel]) / share) + wait.mean_s + m.w_dec.mean_s)
                for name, (share, util, wait, sel) in m.paths.items()}
    return Latency(float(arrival_req_per_s), m.mean_s, quantiles["p50"], quantiles["p90"], quantiles["p99"],
                   dep.decode_step_s / dep.decode_accepted_tokens, m.link_util, m.decode_util, path_out)


def slo_excess(dep: Deployment, arrival_req_per_s: float, slo: TtftSlo, n_cells: int = LATENCY_CELLS, arrival_cv2: float = 1.0,
               cells: Routing | None = None) -> float:
    """How far ``dep`` at the load is from ``slo``, without the percentiles' bisection: the sum
    over the stated levels of the relative excess, max(0, (P(TTFT > S_q) - (1 - q)) / (1 - q)) for
    each percentile (P(TTFT > S_q) <= 1 - q is the same as the q-percentile <= S_q) and
    max(0, (E[TTFT] - S_mean) / S_mean) for the mean. 0 means it meets every level; inf where a
    queue is unstable at the load. ``cells``: ``dep``'s :func:`routing`, if already made."""
    try:
        m = _model(dep, arrival_req_per_s, n_cells, arrival_cv2, cells)
    except PlanError:
        return math.inf
    excess = sum(max(0.0, (m.survival(s) - (1 - q)) / (1 - q)) for q, s in slo.quantiles())
    if slo.mean_s is not None:
        excess += max(0.0, (m.mean_s - slo.mean_s) / slo.mean_s)
    return excess


def slo_miss_frac(dep: Deployment, arrival_req_per_s: float, slo_s: float, n_cells: int = LATENCY_CELLS, cells: Routing | None = None) -> float:
    """P(TTFT > ``slo_s``) of ``dep`` at the load (Poisson): the share of requests that miss the
    SLO, the survival of the model above at one point (no bisection). Raises :class:`PlanError`
    where a queue is unstable at the load, as :func:`ttft` does."""
    return _model(dep, arrival_req_per_s, n_cells, 1.0, cells).survival(float(slo_s))


def _quantile(survival, tail: float, lo: float, hi: float) -> float:
    """Smallest x with P(TTFT > x) <= tail, by bisection (survival is non-increasing)."""
    for _ in range(100):
        if hi - lo <= QUANTILE_RTOL * max(hi, 1e-9):
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if survival(mid) <= tail else (mid, hi)
    return hi
