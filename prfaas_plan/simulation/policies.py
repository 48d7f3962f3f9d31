"""Short-term routing policies ([PRFAAS] section 3): where each request prefills.

Every policy sees, per request, its prompt length l_total and the cached prefix each cluster holds
(l_pd in the local PD cluster, l_prfaas in the PrfaaS cluster; without per-cluster caches both are
l_total minus the request's given uncached length), and the current threshold t.

- ``static``: offload iff l_total - l_pd > t (the local cluster's uncached length against the
  plan's t; [PRFAAS]'s rule when bandwidth is scarce). An offloaded request prefills its own
  uncached part at PrfaaS, l_total - l_prfaas; no cache moves between clusters.
- ``bandwidth-aware``: the static rule with t moved every window (``window_s``, 1 s) by the
  egress utilisation u of the window just ended (bytes sent / (bandwidth x window)) and the
  waiting queues (requests not yet started, per instance) of the two prefill pools:
  if u > ``u_high`` (0.9) or the PrfaaS queue > ``queue_factor`` (2) x its instances:
  t <- t x ``step`` (1.25, offload less); elif u < ``u_low`` (0.5) and the local queue per
  instance exceeds the PrfaaS one: t <- t / ``step`` (offload more); t is clamped to
  [``t_min_tokens``, ``t_max_tokens``] (512 and 131,072 by default) when it moves. A re-plan's
  new t resets it. An infinite t (nothing offloaded) stays.
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
from dataclasses import dataclass, fields

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

    def tick(self, egress_utilisation: float, queue_prfaas: float, queue_local: float) -> None:
        """Per window: the egress utilisation of the window just ended and the waiting requests
        per instance of each pool (inf where a pool has no instances)."""


@dataclass(frozen=True)
class BandwidthParams:
    u_high: float = 0.9
    u_low: float = 0.5
    queue_factor: float = 2.0
    step: float = 1.25
    t_min_tokens: float = 512.0
    t_max_tokens: float = 131_072.0

    def __post_init__(self):
        checks = (
            (0 < self.u_low < self.u_high <= 1, "needs 0 < u_low < u_high <= 1"),
            (0 < self.queue_factor < math.inf, "queue_factor must be > 0"),
            (1 < self.step <= 10, "step must be in (1, 10]"),
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
        self.history: list[float] = []  # t after each window

    def tick(self, egress_utilisation: float, queue_prfaas: float, queue_local: float) -> None:
        p, t = self.params, self.threshold_tokens
        if not math.isinf(t):
            if egress_utilisation > p.u_high or queue_prfaas > p.queue_factor:
                t = min(t * p.step, p.t_max_tokens)
            elif egress_utilisation < p.u_low and queue_local > queue_prfaas:
                t = max(t / p.step, p.t_min_tokens)
            self.threshold_tokens = t
        self.history.append(self.threshold_tokens)


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

    def tick(self, egress_utilisation: float, queue_prfaas: float, queue_local: float) -> None:
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
    except (TypeError, ValueError):
        raise PlanError(f"policy {name}: parameters must be numbers, got {params}") from None
    return cls(threshold_tokens, kind(**values))
