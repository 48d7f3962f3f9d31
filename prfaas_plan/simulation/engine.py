"""The discrete-event simulation of one deployment: a hand-written event loop (heapq).

The physics is the contract of :mod:`prfaas_plan.latency.deployment`, so that the simulation and
the analytic model (:mod:`prfaas_plan.latency.ttft`) can be compared:

1. Arrival: the policy routes the request (:mod:`.policies`); with per-cluster prefix caches the
   cached prefix of each cluster is looked up first. A cache-aware route may copy a prefix across
   the link first (then one RTT) before the request joins its prefill queue.
2. Prefill: each pool is FCFS over its instances. A request that starts on an instance holds it
   for ``service_s(l)`` (batched prefill: the instance takes the next request after that) and has
   its KV at start + ``latency_s(l)``; l is the uncached length at that cluster.
3. Offloaded requests ship ``kv_bytes(l)`` over the link (:mod:`.link`: processor sharing,
   layer-wise rule), from the prefill's start; the request is ready for decode one RTT after the
   last byte. Local requests are ready when their prefill ends (intra-cluster RDMA never binds,
   [PRFAAS] Eq. 4's assumption). The prefill cluster's cache takes the prompt's blocks at the end
   of its prefill.
4. Decode: ``decode_instances x decode_batch`` slots, FIFO by readiness; a request holds one slot
   for max(output tokens, 1) x ``decode_step_s`` and gets its first token one step after
   admission. TTFT = admission + one step - arrival; TPOT = decode_step_s / accepted tokens per
   step (the step at BS_max, which the TPOT SLO fixes; not batch-dependent).

Re-planning (:class:`Change`): at a given time a new t and/or a new local P/D split (N_p + N_d
fixed, the PrfaaS fleet fixed). A local node changing role stops taking new work, finishes what
it holds (a prefill instance its current request; a decode instance drains its BS_max slots,
which retire as they free, pooled over the decode instances), then is unavailable for
``switch_s`` (60 s default) before it serves in its new role. ``decide(now_s, sim)`` (optional,
every ``decide_every_s``) returns a Change or None: the hook for a re-planning rule.

Every request's timestamps are recorded (:class:`Records`); :mod:`.metrics` derives the results
from them. Live counters (requests per stage, tokens) are snapshotted when arrivals end and at
the end of the drain, and checked against the records (conservation).
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

from ..bounds import check
from ..errors import PlanError
from ..traces.cache import BLOCK_TOKENS
from .arrivals import Requests
from .link import Pipe
from .records import STAGES, Change, Records, Snapshot, scalar

# event kinds (ties at one time: heap order by sequence number, i.e. scheduling order)
FREE, PREFILL_END, READY, DONE, JOIN, TICK, BANDWIDTH, CHANGE, NODE, SNAPSHOT, DECIDE = range(11)


class _Pool:
    __slots__ = ("name", "model", "capacity", "busy", "retiring", "queue", "owed")

    def __init__(self, name: str, model, capacity: int):
        self.name, self.model, self.capacity = name, model, capacity
        self.busy = self.retiring = self.owed = 0
        self.queue: deque = deque()


class Simulation:
    """One run. ``caches``: (local, PrfaaS) :class:`~prfaas_plan.traces.cache.PrefixCache`
    objects (indexed like the pools: 0 local, 1 PrfaaS), used when the requests carry
    ``hash_ids``; ``policy`` from :mod:`.policies`."""

    def __init__(self, dep, requests: Requests, policy, duration_s: float, window_s: float = 1.0, switch_s: float = 60.0,
                 link_schedule=(), changes=(), decide=None, decide_every_s: float | None = None, caches=None):
        if not (window_s > 0 and switch_s >= 0 and duration_s > 0):
            raise PlanError("simulation needs window_s > 0, switch_s >= 0 and duration_s > 0")
        self.dep, self.req, self.policy = dep, requests, policy
        self.duration_s, self.window_s, self.switch_s = float(duration_s), float(window_s), float(switch_s)
        self.pools = (_Pool("pd-prefill", dep.local, dep.local.instances if dep.local else 0),
                      _Pool("prfaas", dep.prfaas, dep.prfaas.instances if dep.prfaas else 0))
        self.batch = dep.decode_batch
        self.dec_capacity, self.dec_busy, self.dec_retiring, self.dec_retired, self.dec_owed = dep.decode_slots, 0, 0, 0, 0
        self.dec_queue: deque = deque()
        self.target = [self.pools[0].capacity, dep.decode_instances]  # N_p, N_d as planned now
        self.egress, self.ingress = (Pipe(dep.link_bytes_per_s, window_s, dep.transfer_cap_bytes_per_s) for _ in range(2))
        self.caches = caches if requests.hash_ids is not None else None
        self.rec = Records.empty(len(requests))
        self.stage = [0] * len(STAGES)
        self.tokens = {"prefilled": 0.0, "cached": 0.0, "output": 0.0}
        self.completed = 0
        self.next_i = 0
        self.thresholds: list[float] = []  # t in force at the end of each window
        self.changes_applied: list[tuple[float, Change]] = []
        self.snapshots: list[Snapshot] = []
        self.capacity_log: list[tuple[float, int, int, int]] = []  # (time, local prefill, PrfaaS, decode slots) from then on
        self._log_capacity(0.0)
        self._heap: list = []
        self._seq = 0
        self._kv0 = scalar(dep.kv_bytes(0.0))
        self._layers = max(int(dep.model.num_layers), 1)
        for t, b in link_schedule:
            self._push(float(t), BANDWIDTH, float(b))
        for ch in changes:
            self._check_change(ch)
            self._push(float(ch.time_s), CHANGE, ch)
        self.decide, self.decide_every_s = decide, decide_every_s
        if decide is not None:
            if not (decide_every_s and decide_every_s > 0):
                raise PlanError("a re-planning rule needs a period decide_every_s > 0")
            self._push(0.0, DECIDE, None)
        self._push(self.window_s, TICK, None)
        heapq.heappush(self._heap, (self.duration_s, math.inf, SNAPSHOT, None))  # after every other event at that time
        self._precompute()
        if hasattr(policy, "attach"):
            policy.attach(self)

    # -- set-up -----------------------------------------------------------------------------------
    def _precompute(self) -> None:
        """Prefill times and KV bytes per request for its given uncached length (used when no
        per-cluster cache changes it)."""
        unc = self.req.uncached_tokens
        self._times = [(p.model.service_s(unc), p.model.latency_s(unc)) if p.model is not None and len(unc) else None for p in self.pools]
        self._kv = self.dep.kv_bytes(unc) if len(unc) else np.empty(0)

    def _check_change(self, ch: Change) -> None:
        ch.check(self.target[0] + self.target[1], self.pools[0].model is not None)  # N_p + N_d as planned now

    def _log_capacity(self, now: float) -> None:
        self.capacity_log.append((now, self.pools[0].capacity, self.pools[1].capacity, self.dec_capacity))

    def _push(self, t: float, kind: int, payload) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, payload))

    # -- request steps ------------------------------------------------------------------------------
    def _prefix(self, cache, ids, total: float) -> float:
        hits = 0
        for h in ids:
            if h not in cache:
                break
            hits += 1
        return min(hits * BLOCK_TOKENS, total)

    def _arrive(self, i: int, now: float) -> None:
        req, rec = self.req, self.rec
        total = float(req.input_tokens[i])
        if self.caches is not None:
            ids = req.hash_ids[i]
            l_pd, l_r = self._prefix(self.caches[0], ids, total), self._prefix(self.caches[1], ids, total)
        else:
            l_r = l_pd = total - float(req.uncached_tokens[i])
        r = self.policy.route(total, l_pd, l_r)
        offload, unc, a, b = r.offload, r.uncached_tokens, r.move_from_tokens, r.move_to_tokens
        if offload and self.pools[1].capacity == 0:  # no PrfaaS instances
            offload, unc, a, b = False, total - l_pd, 0.0, 0.0
        elif not offload and self.target[0] == 0 and self.pools[1].model is not None:
            offload, unc, a, b = True, total - l_r, 0.0, 0.0
        rec.route[i], rec.uncached[i], rec.cached[i] = offload, unc, total - unc
        self.tokens["cached"] += total - unc
        if self.caches is not None:
            self.caches[offload].lookup(req.hash_ids[i])  # refresh what is reused
        if b > a:
            size = scalar(self.dep.kv_bytes(b)) - scalar(self.dep.kv_bytes(a)) + self._kv0
            rec.moved_bytes[i] = size
            self.stage[0] += 1
            (self.ingress if offload else self.egress).add(-1 - i, size, now)
        else:
            self._join(i, now)

    def _join(self, i: int, now: float) -> None:
        pool = self.pools[self.rec.route[i]]
        self.rec.join[i] = now
        self.stage[1] += 1
        if pool.busy < pool.capacity:
            self._start(pool, i, now)
        else:
            pool.queue.append(i)

    def _start(self, pool: _Pool, i: int, now: float) -> None:
        rec, k = self.rec, int(self.rec.route[i])
        pool.busy += 1
        self.stage[1] -= 1
        self.stage[2] += 1
        unc = rec.uncached[i]
        if self.caches is None and unc == self.req.uncached_tokens[i]:
            svc, lat = float(self._times[k][0][i]), float(self._times[k][1][i])
            kv = float(self._kv[i])
        else:
            svc, lat = scalar(pool.model.service_s(unc)), scalar(pool.model.latency_s(unc))
            kv = scalar(self.dep.kv_bytes(unc))
        rec.start[i], rec.free[i], rec.kv[i] = now, now + svc, now + lat
        self._push(now + svc, FREE, k)
        self._push(now + lat, PREFILL_END, i)
        if k == 1:
            rec.kv_bytes[i] = kv
            self.egress.add(i, kv, now, hold_bytes=kv / self._layers)

    def _prefill_end(self, i: int, now: float) -> None:
        rec = self.rec
        self.tokens["prefilled"] += rec.uncached[i]
        self.stage[2] -= 1
        if self.caches is not None:
            self.caches[rec.route[i]].insert(self.req.hash_ids[i])
        if rec.route[i]:
            self.stage[3] += 1
            self.egress.release(i, now)
        else:
            self.stage[3] += 1
            self._ready(i, now)

    def _ready(self, i: int, now: float) -> None:
        self.rec.ready[i] = now
        self.stage[3] -= 1
        self.stage[4] += 1
        if self.dec_busy < self.dec_capacity:
            self._admit(i, now)
        else:
            self.dec_queue.append(i)

    def _admit(self, i: int, now: float) -> None:
        self.dec_busy += 1
        self.stage[4] -= 1
        self.stage[5] += 1
        self.rec.admit[i] = now
        hold = max(float(self.req.output_tokens[i]), 1.0) * self.dep.decode_step_s
        self._push(now + hold, DONE, i)

    def _done(self, i: int, now: float) -> None:
        self.rec.done[i] = now
        self.stage[5] -= 1
        self.completed += 1
        self.tokens["output"] += float(self.req.output_tokens[i])
        self.dec_busy -= 1
        if self.dec_retiring:
            self.dec_retiring -= 1
            self._retired_slots(1, now)
        elif self.dec_queue and self.dec_busy < self.dec_capacity:
            self._admit(self.dec_queue.popleft(), now)

    def _free(self, k: int, now: float) -> None:
        pool = self.pools[k]
        pool.busy -= 1
        if pool.retiring:
            pool.retiring -= 1
            self._push(now + self.switch_s, NODE, "decode")
        elif pool.queue and pool.busy < pool.capacity:
            self._start(pool, pool.queue.popleft(), now)

    # -- re-planning ---------------------------------------------------------------------------------
    def _retired_slots(self, n: int, now: float) -> None:
        self.dec_retired += n
        while self.dec_retired >= self.batch:
            self.dec_retired -= self.batch
            self._push(now + self.switch_s, NODE, "prefill")

    def apply(self, ch: Change, now: float) -> None:
        """Put a re-plan into force at ``now`` (see the module docstring)."""
        self._check_change(ch)
        self.changes_applied.append((now, ch))
        if ch.threshold_tokens is not None:
            self.policy.reset(float(ch.threshold_tokens))
        if ch.n_pd_prefill is None:
            return
        delta = ch.n_pd_prefill - self.target[0]
        self.target = [ch.n_pd_prefill, ch.n_pd_decode]
        local = self.pools[0]
        if delta < 0:  # prefill -> decode
            k = -delta
            avail = min(k, local.capacity)
            local.owed += k - avail
            idle = min(avail, max(local.capacity - local.busy, 0))
            local.capacity -= avail
            local.retiring += avail - idle
            for _ in range(idle):
                self._push(now + self.switch_s, NODE, "decode")
        elif delta > 0:  # decode -> prefill
            slots = delta * self.batch
            avail = min(slots, self.dec_capacity)
            self.dec_owed += (slots - avail) // self.batch
            idle = min(avail, max(self.dec_capacity - self.dec_busy, 0))
            self.dec_capacity -= avail
            self.dec_retiring += avail - idle
            self._retired_slots(idle, now)
        self._log_capacity(now)

    def _node(self, role: str, now: float) -> None:
        if role == "prefill":
            pool = self.pools[0]
            if pool.owed:
                pool.owed -= 1
                self._push(now + self.switch_s, NODE, "decode")
                return
            pool.capacity += 1
            self._log_capacity(now)
            while pool.queue and pool.busy < pool.capacity:
                self._start(pool, pool.queue.popleft(), now)
        else:
            if self.dec_owed:
                self.dec_owed -= 1
                self._push(now + self.switch_s, NODE, "prefill")
                return
            self.dec_capacity += self.batch
            self._log_capacity(now)
            while self.dec_queue and self.dec_busy < self.dec_capacity:
                self._admit(self.dec_queue.popleft(), now)

    # -- the loop --------------------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        check("simulated_events", self._seq, "simulation: events so far (a run that cannot drain stops here)")
        w = self.window_s
        self.egress.advance(now)
        k = int(round(now / w)) - 1
        sent = self.egress.windows[k] if 0 <= k < len(self.egress.windows) else 0.0
        b = self.egress.bandwidth_bytes_per_s
        util = sent / (b * w) if b > 0 else (1.0 if self.egress.in_flight else 0.0)
        per = lambda p: len(p.queue) / p.capacity if p.capacity > 0 else (math.inf if p.queue else 0.0)  # noqa: E731
        self.policy.tick(w, min(util, 1.0), per(self.pools[1]), per(self.pools[0]))
        self.thresholds.append(self.policy.threshold_tokens)
        if now < self.duration_s or self._heap or self.egress.in_flight or self.ingress.in_flight:
            self._push(now + w, TICK, None)

    def _snapshot(self, now: float) -> Snapshot:
        n = self.next_i
        return Snapshot(now, n, self.completed, dict(zip(STAGES, self.stage)), float(np.sum(self.req.input_tokens[:n])),
                        self.tokens["prefilled"], self.tokens["cached"], self.tokens["output"],
                        {"prfaas": self.pools[1].capacity, "pd-prefill": self.pools[0].capacity, "decode_slots": self.dec_capacity})

    progress = None  # optional progress(done, total): called every 1,024 arrivals and once at the end

    def run(self) -> Simulation:
        """Simulate every arrival and drain: the loop ends when nothing is left to happen."""
        heap, pop, progress = self._heap, heapq.heappop, self.progress
        arrivals, n = self.req.arrival_s, len(self.req)
        egress, ingress = self.egress, self.ingress
        inf = math.inf
        while True:
            ta = float(arrivals[self.next_i]) if self.next_i < n else inf
            th = heap[0][0] if heap else inf
            te, ti = egress.next_time(), ingress.next_time()
            now = min(ta, th, te, ti)
            if now == inf:
                break
            if te == now:
                for key in egress.pop_done(now):
                    if key >= 0:
                        self._push(now + self.dep.rtt_s, READY, key)
                    else:
                        self._push(now + self.dep.rtt_s, JOIN, -1 - key)
            elif ti == now:
                for key in ingress.pop_done(now):
                    self._push(now + self.dep.rtt_s, JOIN, -1 - key)
            elif th <= ta:
                _, _, kind, x = pop(heap)
                if kind == FREE:
                    self._free(x, now)
                elif kind == PREFILL_END:
                    self._prefill_end(x, now)
                elif kind == READY:
                    self._ready(x, now)
                elif kind == DONE:
                    self._done(x, now)
                elif kind == JOIN:
                    self.stage[0] -= 1
                    self._join(x, now)
                elif kind == TICK:
                    self._tick(now)
                elif kind == BANDWIDTH:
                    egress.set_bandwidth(x, now)
                    ingress.set_bandwidth(x, now)
                elif kind == CHANGE:
                    self.apply(x, now)
                elif kind == NODE:
                    self._node(x, now)
                elif kind == SNAPSHOT:
                    self.snapshots.append(self._snapshot(now))
                elif kind == DECIDE:
                    ch = self.decide(now, self)
                    if ch is not None:
                        self.apply(Change(now, ch.threshold_tokens, ch.n_pd_prefill, ch.n_pd_decode), now)
                    if now + self.decide_every_s < self.duration_s:
                        self._push(now + self.decide_every_s, DECIDE, None)
            else:
                i = self.next_i
                self.next_i += 1
                self._arrive(i, now)
                if progress is not None and not i & 1023:
                    progress(i, n)
        if progress is not None:
            progress(n, n)
        egress.advance(self.end_s)
        self.snapshots.append(self._snapshot(self.end_s))
        return self

    @property
    def end_s(self) -> float:
        """When the last thing happened (the drain's end), at least the duration."""
        done = self.rec.done[np.isfinite(self.rec.done)]
        return max(self.duration_s, float(done.max()) if done.size else 0.0)
