"""What the optimizer is asked: allowed instance counts, the cross-datacenter link and its price,
the budget and the thresholds allowed (:class:`Problem`); and what it answers (:class:`Plan`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import PlanError
from .bandwidth_profile import BandwidthProfile
from .throughput import Needs, ThroughputModel

#: Relative tolerance of every capacity comparison: a need within 1e-9 of an instance count or a
#: link bandwidth fits it (3.0000000001 instances of need is 3 instances).
CAPACITY_RTOL = 1e-9


@dataclass(frozen=True)
class Range:
    """Allowed instance counts, inclusive; ``max`` None means unbounded."""

    min: int = 0
    max: int | None = None

    @classmethod
    def exactly(cls, n: int) -> Range:
        return cls(n, n)

    def __post_init__(self):
        if self.min < 0 or (self.max is not None and self.max < self.min):
            raise PlanError(f"instance range needs 0 <= min <= max, got min={self.min}, max={self.max}")


@dataclass(frozen=True)
class Link:
    """The cross-datacenter link: fixed, bought continuously at a price per Gbit/s-hour, or bought
    in purchasable sizes (each with its $/hour); ``max_gbit_per_s`` caps continuous purchases.

    Plans may load it up to ``max_utilisation`` of its bandwidth on average (headroom for bursts:
    a link near 100% of its mean load queues transfers). Everything the optimizer handles is the
    *usable* bandwidth, bought x max_utilisation; :meth:`bought_bytes_per_s` converts back."""

    fixed_gbit_per_s: float | None = None
    usd_per_gbit_per_s_hour: float = 0.0
    sizes_gbit_per_s: tuple[float, ...] = ()
    sizes_usd_per_hour: tuple[float, ...] = ()
    max_gbit_per_s: float | None = None
    rtt_s: float = 0.0
    max_utilisation: float = 1.0
    connections: int | None = None  # TCP connections per transfer (None: unlimited, no per-transfer cap)
    loss_frac: float = 0.0  # packet-loss probability on the path (Mathis bound per connection)
    bandwidth_profile: BandwidthProfile | None = None  # the available bandwidth over the day (:mod:`.bandwidth_profile`)

    def __post_init__(self):
        if not 0 < self.max_utilisation <= 1:
            raise PlanError(f"link max_utilisation must be in (0, 1], got {self.max_utilisation}")
        if not 0 <= self.loss_frac < 1:
            raise PlanError(f"link loss_frac must be in [0, 1), got {self.loss_frac}")

    @property
    def available_frac(self) -> float:
        """The fraction of the bought bandwidth the plan may count on: the bandwidth profile's
        worst (1 without one)."""
        return self.bandwidth_profile.worst_frac if self.bandwidth_profile is not None else 1.0

    def bought_bytes_per_s(self, usable_bytes_per_s: float) -> float:
        """The bandwidth to buy (or in place) for a usable bandwidth, bytes/s: usable / (max
        utilisation x available fraction)."""
        return usable_bytes_per_s / (self.max_utilisation * self.available_frac)

    def buy(self, need_bytes_per_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(usable bandwidth in bytes/s, $/hour) for each need of usable bandwidth: the link
        bought is need / max_utilisation; inf cost where not purchasable."""
        usable = self.max_utilisation * self.available_frac
        have, cost = self._buy(np.asarray(need_bytes_per_s, float) / usable)
        return have * usable, cost

    def _buy(self, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bandwidth bought in bytes/s, $/hour) for each bandwidth to buy."""
        if self.fixed_gbit_per_s is not None:
            have = units.gbit_per_s_to_bytes_per_s(self.fixed_gbit_per_s)
            cost = self.fixed_gbit_per_s * self.usd_per_gbit_per_s_hour
            return np.full_like(need, have), np.where(need <= have * (1 + CAPACITY_RTOL), cost, np.inf)
        if self.sizes_gbit_per_s:
            sizes = np.array([0.0, *self.sizes_gbit_per_s])
            prices = np.array([0.0, *self.sizes_usd_per_hour])
            idx = np.searchsorted(units.gbit_per_s_to_bytes_per_s(sizes) * (1 + CAPACITY_RTOL), need, side="left")
            ok = idx < len(sizes)
            idx = np.minimum(idx, len(sizes) - 1)
            return units.gbit_per_s_to_bytes_per_s(sizes[idx]), np.where(ok, prices[idx], np.inf)
        gbit = units.bytes_per_s_to_gbit_per_s(need)
        over = self.max_gbit_per_s is not None and np.any(gbit > self.max_gbit_per_s * (1 + CAPACITY_RTOL))
        cost = gbit * self.usd_per_gbit_per_s_hour
        if over:
            cost = np.where(gbit > self.max_gbit_per_s * (1 + CAPACITY_RTOL), np.inf, cost)
        return need, cost


@dataclass(frozen=True)
class TtftSlo:
    """Time-to-first-token service levels over all requests, s (None: not stated): the P90, the
    P99 and the mean of TTFT at the planned arrival rate (scenario keys ``slo.ttft_p90_s``,
    ``slo.ttft_p99_s``, ``slo.ttft_mean_s``)."""

    p90_s: float | None = None
    p99_s: float | None = None
    mean_s: float | None = None

    def __post_init__(self):
        for name in ("p90_s", "p99_s", "mean_s"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise PlanError(f"TTFT SLO {name} must be a positive number of seconds, got {v}")

    @property
    def stated(self) -> bool:
        return any(v is not None for v in (self.p90_s, self.p99_s, self.mean_s))

    def quantiles(self) -> tuple[tuple[float, float], ...]:
        """((q, bound_s), ...) for each stated percentile: P(TTFT > bound_s) <= 1 - q."""
        return tuple((q, s) for q, s in ((0.90, self.p90_s), (0.99, self.p99_s)) if s is not None)

    def describe(self) -> str:
        parts = [f"{label} <= {v:g} s" for label, v in (("P90", self.p90_s), ("P99", self.p99_s), ("mean", self.mean_s)) if v is not None]
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Problem:
    """What may be chosen and what it costs. ``thresholds``: "any", "local-only" (no offload,
    t = infinity) or "remote-only" (every request prefilled remotely, the naive baseline)."""

    model: ThroughputModel
    remote_gpus_per_instance: int
    local_gpus_per_instance: int
    remote_usd_per_gpu_hour: float
    local_usd_per_gpu_hour: float
    prfaas: Range
    local: Range  # N_p + N_d (local nodes switch roles freely)
    link: Link
    budget_usd_per_hour: float | None = None
    thresholds: str = "any"

    def remote_instance_usd_per_hour(self) -> float:
        return self.remote_gpus_per_instance * self.remote_usd_per_gpu_hour

    def local_instance_usd_per_hour(self) -> float:
        return self.local_gpus_per_instance * self.local_usd_per_gpu_hour


@dataclass
class Plan:
    threshold_tokens: float  # inf: no offload; 0: everything offloaded
    n_prfaas: int
    n_pd_prefill: int
    n_pd_decode: int
    link_bytes_per_s: float  # usable: the link bought x its max_utilisation
    needs: Needs
    metrics: dict
    cost_usd_per_hour: float

    @property
    def throughput_req_per_s(self) -> float:
        return float(self.metrics["throughput_req_per_s"][0])
