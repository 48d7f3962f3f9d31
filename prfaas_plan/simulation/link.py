"""The cross-datacenter link as a shared pipe: processor sharing among the transfers in flight,
with a bandwidth that may change during the run, and the layer-wise pipelining rule.

Sharing. With n transfers sending, each gets min(B(t) / n, cap) bytes/s (processor sharing: what
many TCP connections on one bottleneck converge to), cap the rate one transfer's TCP connections
carry over the link's RTT and loss (:func:`~prfaas_plan.latency.wan.transfer_cap_bytes_per_s`;
inf by default). Every transfer has the same cap, so this is capped processor sharing exactly:
when B / n > cap every flow is at its cap and the unused B - n cap stays idle (there is no flow
below its cap to give it to). A transfer that is held (below) does not send and takes no share.

Layer-wise pipelining ([PRFAAS] section 3). A KV transfer of S bytes starts when its prefill
starts; the cache streams layer by layer while the prefill computes. The rule implemented: the
first S (1 - 1/layers) bytes may be sent from the prefill's start; the last layer's S / layers
bytes only after the prefill ends (a transfer that reaches them earlier is held, taking no
bandwidth, until then). A transfer alone on a link of bandwidth B therefore finishes at

    start + max(S / B, T_prefill + S / (B * layers)),

i.e. its exposed part after the prefill is max(S / B - T_prefill, S / (B * layers)), exactly
:func:`~prfaas_plan.latency.deployment.exposed_transfer_s` with B replaced by min(B, cap). (Bytes of earlier layers are taken as
ready when sent; the engine produces them about S / T_prefill bytes/s, which only binds when the
link is faster than the prefill, where the last-layer term dominates anyway.) Cache copies
between clusters (the cache-aware policy) have no hold: every byte is ready at once.

Accounting. Bytes sent are added to windows of ``window_s`` (1 s): egress over time.

Implementation: virtual time. V(t) is the bytes a transfer that was sending throughout would have
received, dV/dt = r(t) = min(B(t) / n(t), cap); a sending transfer finishes its current stretch when V reaches its
tag (V when it began the stretch + the bytes of the stretch). The next event is the smallest tag,
at now + (tag - V) / r. A heap of tags with lazy deletion (a version per transfer).
"""

from __future__ import annotations

import heapq
import math

from ..errors import PlanError

#: Relative tolerance when a transfer's tag is reached (floating-point residue of V).
_TAG_RTOL = 1e-12


class Pipe:
    """One direction of the link. ``add`` a transfer, ``release`` its hold when the prefill ends,
    ``set_bandwidth``; the owner calls ``next_time`` and, at that time, ``pop_done``."""

    __slots__ = ("bandwidth_bytes_per_s", "cap_bytes_per_s", "window_s", "windows", "_v", "_t", "_n", "_heap", "_flows", "_seq", "_next")

    def __init__(self, bandwidth_bytes_per_s: float, window_s: float = 1.0, cap_bytes_per_s: float = math.inf):
        if not (bandwidth_bytes_per_s >= 0 and math.isfinite(bandwidth_bytes_per_s)):
            raise PlanError(f"link bandwidth must be a finite number >= 0 bytes/s, got {bandwidth_bytes_per_s}")
        if not cap_bytes_per_s > 0:
            raise PlanError(f"per-transfer rate cap must be > 0 bytes/s, got {cap_bytes_per_s}")
        self.bandwidth_bytes_per_s = float(bandwidth_bytes_per_s)
        self.cap_bytes_per_s = float(cap_bytes_per_s)
        self.window_s = window_s
        self.windows: list[float] = []  # bytes sent in [k w, (k + 1) w)
        self._v = 0.0  # virtual time, bytes
        self._t = 0.0  # time V was last brought up to date
        self._n = 0  # transfers sending
        self._heap: list = []  # (tag, seq, key, version)
        self._flows: dict = {}  # key -> [bytes left beyond this stretch (held), released?, version, sending?, tag]
        self._seq = 0
        self._next: float | None = None  # cached next event time

    # -- bookkeeping -------------------------------------------------------------------------
    def _account(self, t0: float, t1: float, rate: float) -> None:
        w, win = self.window_s, self.windows
        while t1 > t0:
            k = int(t0 // w)
            end = min((k + 1) * w, t1)
            if end <= t0:  # t0 sits on a boundary within rounding: move to the next window
                end = min(t0 + w * 1e-9, t1)
            while len(win) <= k:
                win.append(0.0)
            win[k] += rate * (end - t0)
            t0 = end

    def rate_bytes_per_s(self) -> float:
        """What each sending transfer gets now: min(B / n, cap) (0 with none sending)."""
        return min(self.bandwidth_bytes_per_s / self._n, self.cap_bytes_per_s) if self._n else 0.0

    def advance(self, now: float) -> None:
        """Bring V and the byte counts up to ``now``."""
        dt = now - self._t
        if dt > 0:
            rate = self.rate_bytes_per_s()
            if rate > 0:
                self._v += rate * dt
                self._account(self._t, now, rate * self._n)
            self._t = now

    def _push(self, key, stretch_bytes: float) -> None:
        f = self._flows[key]
        f[2] += 1
        f[4] = self._v + stretch_bytes
        self._seq += 1
        heapq.heappush(self._heap, (f[4], self._seq, key, f[2]))

    # -- the owner's interface -----------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Transfers not yet finished (sending or held)."""
        return len(self._flows)

    def add(self, key, size_bytes: float, now: float, hold_bytes: float = 0.0) -> None:
        """Start a transfer of ``size_bytes``; its last ``hold_bytes`` wait for :meth:`release`."""
        self.advance(now)
        hold = min(max(hold_bytes, 0.0), size_bytes)
        self._flows[key] = [hold, hold == 0.0, 0, True, 0.0]
        self._n += 1
        self._push(key, size_bytes - hold)
        self._next = None

    def release(self, key, now: float) -> None:
        """The prefill of ``key`` has ended: its held bytes may go."""
        f = self._flows.get(key)
        if f is None or f[1]:
            return
        self.advance(now)
        f[1] = True
        held, f[0] = f[0], 0.0
        if f[3]:  # still sending its first stretch: extend it by the held bytes
            remaining = f[4] - self._v
            self._push(key, max(remaining, 0.0) + held)
        else:  # waiting at the hold: send the rest
            f[3] = True
            self._n += 1
            self._push(key, held)
        self._next = None

    def set_bandwidth(self, bandwidth_bytes_per_s: float, now: float) -> None:
        if not (bandwidth_bytes_per_s >= 0 and math.isfinite(bandwidth_bytes_per_s)):
            raise PlanError(f"link bandwidth must be a finite number >= 0 bytes/s, got {bandwidth_bytes_per_s}")
        self.advance(now)
        self.bandwidth_bytes_per_s = float(bandwidth_bytes_per_s)
        self._next = None

    def next_time(self) -> float:
        """When the next transfer finishes a stretch (inf if none can)."""
        if self._next is None:
            heap, flows = self._heap, self._flows
            while heap and (heap[0][2] not in flows or flows[heap[0][2]][2] != heap[0][3]):
                heapq.heappop(heap)
            if not heap or self._n == 0 or self.bandwidth_bytes_per_s <= 0:
                self._next = math.inf
            else:
                left, n, b = max(heap[0][0] - self._v, 0.0), self._n, self.bandwidth_bytes_per_s
                self._next = self._t + (left * n / b if b <= n * self.cap_bytes_per_s else left / self.cap_bytes_per_s)
        return self._next

    def pop_done(self, now: float) -> list:
        """At ``now`` (= :meth:`next_time`): the keys of transfers that finished; transfers that
        reached their hold stop sending until released."""
        self.advance(now)
        done, heap, flows = [], self._heap, self._flows
        limit = self._v * (1 + _TAG_RTOL) + 1e-9
        due = True  # the first valid tag is due now (next_time said so), whatever the rounding
        while heap and (due or heap[0][0] <= limit):
            _, _, key, version = heapq.heappop(heap)
            f = flows.get(key)
            if f is None or f[2] != version:
                continue
            due = False
            self._n -= 1
            if f[1]:
                del flows[key]
                done.append(key)
            else:
                f[3] = False  # held until release
        self._next = None
        return done
