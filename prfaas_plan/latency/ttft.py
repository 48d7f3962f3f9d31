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

import numpy as np

from ..errors import PlanError
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


def split_cells(dep: Deployment, n: int = LATENCY_CELLS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mass, mean length, offloaded?) of the cells of the uncached-length distribution, with
    the threshold inserted as a cell boundary so that every cell lies wholly on one path."""
    lengths = dep.lengths
    edges = cell_edges(lengths, n)  # made once per distribution
    t = dep.threshold_tokens
    if edges[0] < t < edges[-1]:  # (return_index: plain np.unique imports numpy.ma, ~10 ms)
        edges = np.unique(np.concatenate([edges, [t]]), return_index=True)[0]
    mass = np.clip(np.diff(lengths.cdf(edges)), 0.0, None)
    pm = np.diff(lengths.partial_mean(edges[0], edges))
    means = cell_means(mass, pm, edges[:-1], edges[1:])
    keep = mass > 0
    return mass[keep] / mass[keep].sum(), means[keep], edges[:-1][keep] >= t


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


def _pool(name: str, pool, rate: float, lengths: np.ndarray, mass: np.ndarray, arrival_cv2: float) -> tuple[Wait, float]:
    """The wait in a prefill pool fed ``rate`` req/s of the slice (lengths, mass)."""
    mean_s, cv2 = _slice_stats(pool.service_s(lengths), mass)
    util = rate * mean_s / pool.instances
    if util >= 1:
        raise PlanError(f"{name} prefill pool at {util:.1%} utilisation is unstable: lower the load")
    return pool_wait(pool.instances, rate, mean_s, cv2, arrival_cv2), util


def ttft(dep: Deployment, arrival_req_per_s: float, n_cells: int = LATENCY_CELLS, arrival_cv2: float = 1.0,
         quantiles: tuple[str, ...] = tuple(QUANTILES)) -> Latency:
    """TTFT mean / P50 / P90 / P99 and TPOT of ``dep`` at ``arrival_req_per_s``, Poisson by
    default; ``arrival_cv2`` > 1 for bursty arrivals (GI/G/c, each pool's share thinned by
    :func:`split_cv2`; the decode pool sees the prefill pools' output, taken as the arrivals).
    ``quantiles``: the percentiles to compute (keys of :data:`QUANTILES`; the others are nan,
    which saves their bisections where only one is read, e.g. `risk`'s P90).
    Raises :class:`PlanError` (one line) if any pool, the link or decode is at or over
    utilisation 1: the queue is unstable and the latency unbounded."""
    lam = float(arrival_req_per_s)
    if not (lam >= 0 and math.isfinite(lam)):
        raise PlanError(f"arrival rate must be a finite number >= 0 req/s, got {arrival_req_per_s}")
    mass, lengths, remote = split_cells(dep, n_cells)
    delay = np.zeros_like(lengths)  # service part of TTFT per cell, before the decode step
    waits = {}
    paths = {}
    no_wait = Wait(0.0, 0.0)
    link_util = 0.0
    for name, pool, sel in (("prfaas", dep.prfaas, remote), ("local", dep.local, ~remote)):
        share = float(mass[sel].sum())
        if share == 0:
            continue
        if pool is None:
            raise PlanError(f"{dep.kind} deployment routes {share:.1%} of requests to a {name} prefill pool it does not have")
        wait, util = _pool(name, pool, lam * share, lengths[sel], mass[sel], split_cv2(arrival_cv2, share))
        waits[name] = wait
        alone = pool.latency_s(lengths[sel])
        if name == "prfaas":
            kv = dep.kv_bytes(lengths[sel])
            mean_kv = float(np.sum(mass[sel] * kv) / share)
            link_util = lam * share * mean_kv / dep.link_bytes_per_s if dep.link_bytes_per_s > 0 else math.inf
            if link_util >= 1:
                raise PlanError(f"cross-datacenter link at {link_util:.1%} utilisation is unstable: lower the load or buy bandwidth")
            bandwidth = float(transfer_rate_bytes_per_s(dep.link_bytes_per_s * (1 - link_util), dep.transfer_cap_bytes_per_s))
            alone = alone + exposed_transfer_s(kv, alone, bandwidth, dep.model.num_layers) + dep.rtt_s
        delay[sel] = alone
        paths[name] = (share, util, wait, sel)
    decode_s = dep.output_tokens_mean * dep.decode_step_s
    decode_util = lam * decode_s / dep.decode_slots if dep.decode_slots > 0 else math.inf
    if decode_util >= 1:
        raise PlanError(f"decode pool at {decode_util:.1%} utilisation is unstable: lower the load")
    w_dec = pool_wait(dep.decode_slots, lam, decode_s, 0.0, arrival_cv2) if lam > 0 else no_wait
    delay = delay + dep.decode_step_s
    slices = [(mass[sel], delay[sel], waits[name]) for name, (_, _, _, sel) in paths.items()]  # each path's cells, cut once

    def survival(x: float) -> float:
        return float(sum(np.sum(m * _wait_survival(x - d, w, w_dec)) for m, d, w in slices))

    mean = float(np.sum(mass * delay)) + w_dec.mean_s + sum(paths[n][0] * waits[n].mean_s for n in paths)
    hi = float(delay.max()) + 50 * max([w_dec.mean_if_waiting_s] + [w.mean_if_waiting_s for w in waits.values()]) + 1.0
    unknown = set(quantiles) - set(QUANTILES)
    if unknown:
        raise PlanError(f"unknown TTFT quantile(s) {', '.join(sorted(unknown))}; known: {', '.join(QUANTILES)}")
    quantiles = {k: _quantile(survival, 1 - q, float(delay.min()), hi) if k in quantiles else math.nan for k, q in QUANTILES.items()}
    path_out = {name: PathLatency(share, util, wait.mean_s, wait.p_wait,
                                  float(np.sum(mass[sel] * delay[sel]) / share) + wait.mean_s + w_dec.mean_s)
                for name, (share, util, wait, sel) in paths.items()}
    return Latency(lam, mean, quantiles["p50"], quantiles["p90"], quantiles["p99"], dep.decode_step_s / dep.decode_accepted_tokens,
                   link_util, decode_util, path_out)


def _quantile(survival, tail: float, lo: float, hi: float) -> float:
    """Smallest x with P(TTFT > x) <= tail, by bisection (survival is non-increasing)."""
    for _ in range(100):
        if hi - lo <= QUANTILE_RTOL * max(hi, 1e-9):
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if survival(mid) <= tail else (mid, hi)
    return hi
