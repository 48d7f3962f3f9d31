"""Short-term routing policies ([PRFAAS] section 3): where each request prefills.

Every policy sees, per request, its prompt length l_total and the cached prefix each cluster holds
(l_pd in the local PD cluster, l_prfaas in the PrfaaS cluster; without per-cluster caches both are
l_total minus the request's given uncached length), and the current threshold t.

- ``static``: offload iff l_total - l_pd > t (the local cluster's uncached length against the
  plan's t; [PRFAAS]'s rule when bandwidth is scarce). An offloaded request prefills its own
  uncached part at PrfaaS, l_total - l_prfaas; no cache moves between clusters.
- ``bandwidth-aware``: the static rule, with t re-searched when the link or the PrfaaS queue nears
  a limit ([PRFAAS] section 3: "re-search t over the current incremental-length distribution").
  Watched per 1-s window and smoothed (exponential mean over ``smoothing_s``, 30 s): the egress
  utilisation u (bytes sent / (bandwidth x time)), the PrfaaS pool's waiting requests per
  instance q_prfaas (and the local pool's, q_local), and the arrival rate (the means corrected
  for their start at 0). Every ``period_s`` (10 s), if u > ``u_high`` (0.9), or q_prfaas or
  q_local > ``queue_factor`` (2), or the link's bandwidth changed since the last search (the
  router's congestion monitor is taken to know it), t is re-searched over the last ``history``
  (2,000) requests' uncached lengths (local view x, which routing compares with t, and PrfaaS
  view, which its prefill and KV transfer cost): every split of them by a threshold on x is
  priced at the observed rate lambda by the mean delay it adds,
      share_r W_r + share_l W_l + share_r X,
  W the wait of each prefill pool (M/G/c, Sakasegawa's approximation
  rho^sqrt(2(c+1)) / (c (1 - rho)) E[S] (1 + cv^2) / 2 with the slice's service times) and X the
  exposed KV transfer on a processor-sharing link at utilisation rho_link,
  max(E[S_kv] / (B (1 - rho_link)) - E[T_prefill], E[S_kv] / (layers B (1 - rho_link))), B the
  link's current bandwidth; splits with a pool or the link at rho >= ``u_high`` are excluded
  (if every split is, the one with the lowest highest utilisation is taken). t moves to the
  cheapest split, clamped to [``t_min_tokens``, ``t_max_tokens``] (512, 131,072). Otherwise t
  stays. A re-plan's t replaces it; an infinite t (nothing offloaded) stays.
  Why not a blind multiplicative step (t x 1.25 on pressure, / 1.25 on relief): one KV transfer
  is 0.2-2.4 GB, so at 10 Gbit/s a lone transfer fills a 1-s window, and once the link is
  saturated its backlog keeps u near 1 for a while after t has moved; in the case study such a
  rule drove t to 47K (local prefill overloaded) after a drop to 10%, and at 80% load with the
  full link swung t between 512 and 59K on queue noise. Why not the capacity-maximising t (Eq. 7
  with the link): it loads local prefill to ~95% to keep the link below u_high, while a
  processor-sharing link at 85% costs far less delay than an FCFS prefill pool at 95%.
- ``cache-aware``: the paper's two rules, switched by the egress utilisation of the last window:
  bandwidth scarce (u >= ``u_abundant``, 0.5): as static; abundant (u < u_abundant):
  l_prefix = max(l_prfaas, l_pd), offload iff l_total - l_prefix > t, and where the longer
  prefix lives in the other cluster its missing blocks (l_prefix - the chosen cluster's own
  prefix tokens) are copied over the link first (local to PrfaaS on the reverse direction of the
  link, PrfaaS to local on the egress), with bytes S_kv(end) - S_kv(start) + the fixed
  request-level state (linear-attention state at the prefix boundary). t stays the plan's.

A request is never sent to a pool with no instances planned (it goes to the other one).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields

import numpy as np

from ..errors import PlanError

POLICIES = ("static", "bandwidth-aware", "cache-aware")


@dataclass(frozen=True)
class Route:
    """A routing decision: ``offload`` (prefill at PrfaaS), ``uncached_tokens`` to prefill there,
    and the prefix tokens to copy in from the other cluster first (``move_from``..``move_to``;
    equal when nothing moves)."""

    offload: bool
    uncached_tokens: float
    move_from_tokens: float = 0.0
    move_to_tokens: float = 0.0


def _scarce(l_total: float, l_pd: float, l_prfaas: float, t: float) -> Route:
    if l_total - l_pd > t:
        return Route(True, l_total - l_prfaas)
    return Route(False, l_total - l_pd)


class Static:
    name = "static"

    def __init__(self, threshold_tokens: float):
        self.threshold_tokens = threshold_tokens

    def reset(self, threshold_tokens: float) -> None:
        self.threshold_tokens = threshold_tokens

    def route(self, l_total: float, l_pd: float, l_prfaas: float) -> Route:
        return _scarce(l_total, l_pd, l_prfaas, self.threshold_tokens)

    def tick(self, dt_s: float, egress_utilisation: float, queue_prfaas: float, queue_local: float) -> None:
        """After each window of ``dt_s``: the egress utilisation of the window and the waiting
        requests per instance of each pool (inf where a pool has no instances but a queue)."""


@dataclass(frozen=True)
class BandwidthParams:
    u_high: float = 0.9
    queue_factor: float = 2.0
    smoothing_s: float = 30.0
    period_s: float = 10.0
    history: float = 2000
    t_min_tokens: float = 512.0
    t_max_tokens: float = 131_072.0

    def __post_init__(self):
        checks = (
            (0 < self.u_high <= 1, "u_high must be in (0, 1]"),
            (0 < self.queue_factor < math.inf, "queue_factor must be > 0"),
            (0 <= self.smoothing_s <= 86_400, "smoothing_s must be in [0, 86400]"),
            (0 < self.period_s <= 86_400, "period_s must be in (0, 86400]"),
            (10 <= self.history <= 10**6 and float(self.history).is_integer(), "history must be a whole number of requests in [10, 10^6]"),
            (0 <= self.t_min_tokens < self.t_max_tokens < math.inf, "needs 0 <= t_min_tokens < t_max_tokens (finite)"),
        )
        for ok, why in checks:
            if not ok:
                raise PlanError(f"bandwidth-aware policy parameters out of range: {why} (got {_show(self)})")


class BandwidthAware(Static):
    name = "bandwidth-aware"

    def __init__(self, threshold_tokens: float, params: BandwidthParams | None = None):
        super().__init__(threshold_tokens)
        self.params = params or BandwidthParams()
        self.recent: deque = deque(maxlen=int(self.params.history))
        self.ewma = {"u": 0.0, "q_prfaas": 0.0, "q_local": 0.0, "rate": 0.0}
        self.weight = 0.0
        self.arrived = 0
        self.since_s = 0.0
        self.searches = 0
        self.sim = None
        self._bandwidth = None

    def attach(self, sim) -> None:
        """The simulation whose pools, link and deployment the re-search reads."""
        self.sim = sim
        self._bandwidth = sim.egress.bandwidth_bytes_per_s

    def route(self, l_total: float, l_pd: float, l_prfaas: float) -> Route:
        self.recent.append((l_total - l_pd, l_total - l_prfaas))
        self.arrived += 1
        return _scarce(l_total, l_pd, l_prfaas, self.threshold_tokens)

    def tick(self, dt_s: float, egress_utilisation: float, queue_prfaas: float, queue_local: float) -> None:
        p = self.params
        a = 1.0 - math.exp(-dt_s / p.smoothing_s) if p.smoothing_s > 0 else 1.0
        self.weight += a * (1.0 - self.weight)  # bias correction: the means start at 0
        for k, v in (("u", egress_utilisation), ("q_prfaas", queue_prfaas), ("q_local", queue_local), ("rate", self.arrived / dt_s)):
            self.ewma[k] += a * (min(v, 1e9) - self.ewma[k])
        self.arrived = 0
        self.since_s += dt_s
        if self.since_s < p.period_s * (1 - 1e-9) or math.isinf(self.threshold_tokens) or self.sim is None:
            return
        self.since_s = 0.0
        u, qr, ql, rate = (self.ewma[k] / self.weight for k in ("u", "q_prfaas", "q_local", "rate"))
        b = self.sim.egress.bandwidth_bytes_per_s
        if u > p.u_high or qr > p.queue_factor or ql > p.queue_factor or b != self._bandwidth:
            self._bandwidth = b
            t = self.search(rate, b)
            if t is not None:
                self.threshold_tokens = min(max(t, p.t_min_tokens), p.t_max_tokens)
                self.searches += 1

    def search(self, rate_req_per_s: float, bandwidth_bytes_per_s: float) -> float | None:
        """The threshold whose split of the recent lengths adds the least mean delay at the
        rate (see the module docstring); None without enough history or a pool to route to."""
        sim, p = self.sim, self.params
        local, remote = sim.pools
        if len(self.recent) < 10 or remote.model is None or local.model is None or not rate_req_per_s > 0:
            return None
        pairs = np.array(self.recent, float)
        pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
        x, xr = pairs[:, 0], pairs[:, 1]  # local-view uncached length (routing), PrfaaS-view (its prefill)
        m = len(x)
        suffix = lambda v: np.concatenate([np.cumsum(v[::-1])[::-1], [0.0]]) / m  # noqa: E731  mean of v[k:] x (m - k) / m
        prefix = lambda v: np.concatenate([[0.0], np.cumsum(v)]) / m  # noqa: E731
        sr, lr = np.asarray(remote.model.service_s(xr), float), np.asarray(remote.model.latency_s(xr), float)
        sl = np.asarray(local.model.service_s(x), float)
        kv = np.asarray(sim.dep.kv_bytes(xr), float)
        share_r = suffix(np.ones(m))
        share_l = 1.0 - share_r
        with np.errstate(divide="ignore", invalid="ignore"):
            w_r, rho_r = _wait(rate_req_per_s, share_r, suffix(sr), suffix(sr * sr), remote.capacity)
            w_l, rho_l = _wait(rate_req_per_s, share_l, prefix(sl), prefix(sl * sl), local.capacity)
            s_kv = np.where(share_r > 0, suffix(kv) / share_r, 0.0)
            t_p = np.where(share_r > 0, suffix(lr) / share_r, 0.0)
            rho_x = rate_req_per_s * suffix(kv) / bandwidth_bytes_per_s if bandwidth_bytes_per_s > 0 else np.where(share_r > 0, np.inf, 0.0)
            eff = bandwidth_bytes_per_s * np.clip(1.0 - rho_x, 1e-12, None)
            x_s = np.where(share_r > 0, np.maximum(s_kv / eff - t_p, s_kv / (sim._layers * eff)), 0.0)
            cost = share_r * w_r + share_l * w_l + share_r * x_s
        worst = np.maximum.reduce([rho_r, rho_l, rho_x])
        ok = (worst < p.u_high) & np.isfinite(cost)
        k = int(np.argmin(np.where(ok, cost, np.inf))) if np.any(ok) else int(np.argmin(worst))
        if k == 0:
            return 0.0
        return float(x[k - 1]) if k == m else 0.5 * (float(x[k - 1]) + float(x[k]))


def _wait(rate: float, share: np.ndarray, s1: np.ndarray, s2: np.ndarray, servers: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean wait, utilisation) of an M/G/c pool fed ``share`` of ``rate`` with service-time
    sums s1 = E[S 1{slice}], s2 = E[S^2 1{slice}] (Sakasegawa with the Allen-Cunneen factor)."""
    if servers <= 0:
        return np.where(share > 0, np.inf, 0.0), np.where(share > 0, np.inf, 0.0)
    mean = np.where(share > 0, s1 / share, 0.0)
    cv2 = np.where(mean > 0, (s2 / np.where(share > 0, share, 1.0)) / np.where(mean > 0, mean * mean, 1.0) - 1.0, 0.0)
    rho = rate * s1 / servers
    w = np.where(rho < 1, rho ** math.sqrt(2 * (servers + 1)) / (servers * np.clip(1 - rho, 1e-12, None)) * mean * (1 + cv2) / 2, np.inf)
    return np.where(share > 0, w, 0.0), rho


@dataclass(frozen=True)
class CacheParams:
    u_abundant: float = 0.5

    def __post_init__(self):
        if not 0 < self.u_abundant <= 1:
            raise PlanError(f"cache-aware policy parameters out of range: u_abundant must be in (0, 1] (got {_show(self)})")


class CacheAware(Static):
    name = "cache-aware"

    def __init__(self, threshold_tokens: float, params: CacheParams | None = None):
        super().__init__(threshold_tokens)
        self.params = params or CacheParams()
        self.abundant = True  # no egress yet
        self.abundant_windows = 0
        self.windows = 0

    def tick(self, dt_s: float, egress_utilisation: float, queue_prfaas: float, queue_local: float) -> None:
        self.abundant = egress_utilisation < self.params.u_abundant
        self.windows += 1
        self.abundant_windows += self.abundant

    def route(self, l_total: float, l_pd: float, l_prfaas: float) -> Route:
        if not self.abundant:
            return _scarce(l_total, l_pd, l_prfaas, self.threshold_tokens)
        prefix = max(l_pd, l_prfaas)
        offload = l_total - prefix > self.threshold_tokens
        own = l_prfaas if offload else l_pd
        if prefix > own:
            return Route(offload, l_total - prefix, own, prefix)
        return Route(offload, l_total - own)


def _show(params) -> str:
    return ", ".join(f"{f.name}={getattr(params, f.name)!r}" for f in fields(params))


def make_policy(name: str, threshold_tokens: float, params: dict | None = None):
    """The policy ``name`` starting at ``threshold_tokens``; ``params`` (policy parameters by
    name) are checked: an unknown name or a value out of range is one PlanError line."""
    params = dict(params or {})
    if name == "static":
        kind, cls = None, Static
    elif name == "bandwidth-aware":
        kind, cls = BandwidthParams, BandwidthAware
    elif name == "cache-aware":
        kind, cls = CacheParams, CacheAware
    else:
        raise PlanError(f"policy must be one of {', '.join(POLICIES)}, got {name!r}")
    if kind is None:
        if params:
            raise PlanError(f"policy static takes no parameters, got {', '.join(sorted(params))}")
        return cls(threshold_tokens)
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise PlanError(f"policy {name}: unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
    try:
        values = {k: float(v) for k, v in params.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError
    except (TypeError, ValueError):
        raise PlanError(f"policy {name}: parameters must be numbers, got {params}") from None
    return cls(threshold_tokens, kind(**values))
