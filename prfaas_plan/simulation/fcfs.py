"""The FCFS fast path: the same system as :mod:`.engine`, computed stage by stage in chunks of
requests with numpy, for the runs where nothing feeds back.

When (:func:`ineligible` says why not): the ``static`` policy, no per-cluster prefix caches (no
``hash_ids``), no link schedule (the bandwidth never changes), no re-plans and no re-planning
rule, a link bandwidth > 0 where requests are offloaded, and instances in every pool that gets
requests. Then routing is a fixed function of each request (offload iff uncached length > t),
and the deployment is a feed-forward tandem: prefill pool -> (link) -> decode pool, each
consuming its inputs in time order. Every request's timestamps are the event loop's (a test,
tests/test_fcfs.py, runs both on the same seed and compares them to 1e-9):

- Each pool (local prefill, PrfaaS prefill, decode slots) is c servers, FCFS: the
  Kiefer-Wolfowitz recursion with a heap of the c next-free times, start_n = max(A_n, min F),
  F <- F - {min F} + {start_n + S_n} (for c = 1 the Lindley recursion
  W_{n+1} = max(0, W_n + S_n - A_{n+1})). Vectorised per chunk: first the guess that nobody
  waits (start = arrival), exact when every request finds fewer than c requests in service
  (#{F > A_n} + #{m < n: A_m + S_m > A_n} < c, one sort and two searchsorted); F is then the c
  latest departures. A chunk where someone waits runs the heap recursion in Python.
- The link is processor sharing with the layer-wise hold (:mod:`.link`): a transfer's rate
  depends on the others in flight, so it is simulated event by event, link events only (a
  transfer's start at its prefill's start, its release at the prefill's end, its stretches'
  ends), with the :class:`~.link.Pipe`'s virtual-time arithmetic. A request is ready for decode
  one RTT after its last byte (offloaded) or at its prefill's end (local).
- Chunks are consumed up to a horizon, the next chunk's first arrival (nothing later can start
  before it); link transfers and decode admissions after it wait for the next round.

Results stream into a :class:`~.stream.Tally` as requests finish, so memory holds the chunk and
the requests in flight, not the run (``keep_records=True`` keeps every request's timestamps, for
tests). Queue depth maxima are the depths seen at each join inside (warm-up, duration) and the
depth at the warm-up's start; queue means are waiting time over the window.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from .link import _TAG_RTOL, Pipe
from .records import Records
from .stream import Tally

#: Requests per chunk (memory: ~15 float arrays of this length at a time).
CHUNK_REQUESTS = 1 << 18
#: Link events handed to the Python loop at a time (as Python lists: ~32 bytes a number).
LINK_BATCH = 1 << 16


def ineligible(dep, requests, policy, link_schedule=(), changes=(), decide=None) -> str | None:
    """Why the fast path does not apply (None when it does)."""
    if getattr(policy, "name", None) != "static":
        return f"policy {getattr(policy, 'name', policy)} routes by the system's state"
    if requests.hash_ids is not None:
        return "per-cluster prefix caches"
    if tuple(link_schedule) or tuple(changes) or decide is not None:
        return "the link or the plan changes during the run"
    off = _offload(dep, requests.uncached_tokens, policy.threshold_tokens)
    if off.any() and not dep.link_bytes_per_s > 0:
        return "no link bandwidth"
    n_local = dep.local.instances if dep.local else 0
    if (off.any() and not dep.prfaas.instances) or (not off.all() and not n_local) or (len(requests) and not dep.decode_slots):
        return "a pool with requests has no instances"
    return None


def _offload(dep, uncached: np.ndarray, t: float) -> np.ndarray:
    """The static rule with the engine's fallbacks: l > t, never to a pool with no instances."""
    n_r = dep.prfaas.instances if dep.prfaas else 0
    n_l = dep.local.instances if dep.local else 0
    if n_r == 0:
        return np.zeros(len(uncached), bool)
    if n_l == 0:
        return np.ones(len(uncached), bool)
    return np.asarray(uncached, float) > t


class Servers:
    """c FCFS servers fed in time order (module docstring); ``qmax``: the most requests waiting
    seen at a join inside (w0, w1)."""

    def __init__(self, c: int, w0: float, w1: float):
        self.free = np.zeros(c)  # sorted; values <= the next arrival mean idle
        self.c, self.w0, self.w1 = c, w0, w1
        self.tail = np.empty(0)  # starts of earlier requests after the last join (still waiting)
        self.qmax = 0

    def serve(self, a: np.ndarray, svc: np.ndarray) -> np.ndarray:
        """Start times of requests joining at ``a`` (non-decreasing) needing ``svc`` each."""
        n, c = len(a), self.c
        if n == 0:
            return np.empty(0)
        d = a + svc
        busy = (c - np.searchsorted(self.free, a, side="right")) + np.arange(n) - np.searchsorted(np.sort(d), a, side="right")
        if np.all(svc > 0) and np.all(busy < c) and not self.tail.size:
            start = a
            both = np.concatenate((self.free, d))
            self.free = np.sort(np.partition(both, len(both) - c)[len(both) - c:])
            return start
        heap = self.free.tolist()  # sorted, so a heap
        out = np.empty(n)
        replace = heapq.heapreplace
        for i, (ai, si) in enumerate(zip(a.tolist(), svc.tolist())):
            f = heap[0]
            s = ai if ai > f else f
            out[i] = s
            replace(heap, s + si)
        self.free = np.sort(np.array(heap))
        starts = np.concatenate((self.tail, out))
        level = np.maximum(len(self.tail) + np.arange(1, n + 1) - np.searchsorted(starts, a, side="right"), 0)
        inside = (a > self.w0) & (a < self.w1)
        if inside.any():
            self.qmax = max(self.qmax, int(level[inside].max()))
        self.tail = starts[starts > a[-1]]
        return out


class LinkPS:
    """One direction of the link, link events only: :class:`~.link.Pipe`'s processor sharing and
    virtual time in one loop (see the module docstring)."""

    def __init__(self, bandwidth_bytes_per_s: float, cap_bytes_per_s: float, window_s: float):
        Pipe(bandwidth_bytes_per_s, window_s, cap_bytes_per_s)  # the same checks
        self.b, self.cap, self.w = float(bandwidth_bytes_per_s), float(cap_bytes_per_s), window_s
        self.v = self.t = 0.0
        self.n = self.seq = 0
        self.heap: list = []
        self.flows: dict = {}
        self.windows: list[float] = []
        self.pending = (np.empty(0), np.empty(0, np.int8), np.empty(0, np.int64), np.empty(0), np.empty(0))

    @property
    def window_s(self) -> float:
        return self.w

    def run(self, add_t, add_id, size, hold, rel_t, rel_id, horizon: float) -> tuple[list, list]:
        """Take the new transfers (start ``add_t``, ``size`` bytes, last ``hold`` bytes released
        at ``rel_t``), simulate up to ``horizon``; returns (ids, finish times) of those done."""
        pt, pk, pid, psz, phd = self.pending
        t = np.concatenate((pt, add_t, rel_t))
        kind = np.concatenate((pk, np.zeros(len(add_t), np.int8), np.ones(len(rel_t), np.int8)))
        ids = np.concatenate((pid, add_id, rel_id))
        sz = np.concatenate((psz, size, np.zeros(len(rel_t))))
        hd = np.concatenate((phd, hold, np.zeros(len(rel_t))))
        order = np.argsort(t, kind="stable")
        now = int(np.searchsorted(t[order], horizon, side="left"))
        go, keep = order[:now], order[now:]
        self.pending = (t[keep], kind[keep], ids[keep], sz[keep], hd[keep])
        t, kind, ids, sz, hd = t[go], kind[go], ids[go], sz[go], np.clip(hd[go], 0.0, sz[go])
        done_id, done_t = [], []
        for lo in range(0, len(go), LINK_BATCH):  # a batch's events as Python lists, up to the next batch's first
            hi = min(lo + LINK_BATCH, len(go))
            d_id, d_t = self._loop(t[lo:hi].tolist(), kind[lo:hi].tolist(), ids[lo:hi].tolist(), sz[lo:hi].tolist(), hd[lo:hi].tolist(),
                                   float(t[hi]) if hi < len(go) else horizon)
            done_id += d_id
            done_t += d_t
        if not len(go):
            done_id, done_t = self._loop([], [], [], [], [], horizon)
        return done_id, done_t

    def _loop(self, ts, kinds, ids, sizes, holds, horizon):
        b, cap, flows, heap, w, win = self.b, self.cap, self.flows, self.heap, self.w, self.windows
        last = max(ts[-1] if ts else self.t, self.t)
        if len(win) < last / w + 2:
            win.extend([0.0] * int(last / w + 2 - len(win)))
        nw = len(win)
        push, pop, get = heapq.heappush, heapq.heappop, flows.get
        done_id, done_t = [], []
        v, t, n, seq = self.v, self.t, self.n, self.seq
        for te, k, i, s, h in zip([*ts, horizon], [*kinds, 2], [*ids, -1], [*sizes, 0.0], [*holds, 0.0]):
            while heap:  # stretches that end first (at a tie: before the event, as in the engine)
                tag, _, key, ver = heap[0]
                f = get(key)
                if f is None or f[2] != ver:
                    pop(heap)
                    continue
                left = tag - v
                if left < 0:
                    left = 0.0
                tn = t + (left * n / b if b <= n * cap else left / cap)
                if tn > te or (k == 2 and tn >= te):
                    break
                if tn > t:  # advance V and the byte windows to tn
                    r = b / n
                    if r > cap:
                        r = cap
                    v += r * (tn - t)
                    kw = int(t // w)
                    if kw + 1 < nw and tn <= (kw + 1) * w:
                        win[kw] += r * n * (tn - t)
                    else:
                        Pipe._account(self, t, tn, r * n)
                        nw = len(win)
                    t = tn
                pop(heap)  # the one due now, then any other within rounding of it (Pipe.pop_done)
                limit = v * (1 + _TAG_RTOL) + 1e-9
                while True:
                    n -= 1
                    if f[1]:
                        del flows[key]
                        done_id.append(key)
                        done_t.append(tn)
                    else:
                        f[3] = False
                    f = None
                    while heap and heap[0][0] <= limit:
                        _, _, key, ver = pop(heap)
                        f = get(key)
                        if f is not None and f[2] == ver:
                            break
                        f = None
                    if f is None:
                        break
            if k == 2:
                break
            if te > t:
                if n:
                    r = b / n
                    if r > cap:
                        r = cap
                    v += r * (te - t)
                    kw = int(t // w)
                    if kw + 1 < nw and te <= (kw + 1) * w:
                        win[kw] += r * n * (te - t)
                    else:
                        Pipe._account(self, t, te, r * n)
                        nw = len(win)
                t = te
            if k == 0:  # a transfer starts: its first stretch is all but the held bytes
                f = flows[i] = [h, h == 0.0, 1, True, v + s - h]  # 0 <= h <= s (run() clips it)
                n += 1
                seq += 1
                push(heap, (f[4], seq, i, 1))
            else:  # its prefill ended: the held bytes may go
                f = get(i)
                if f is None or f[1]:
                    continue
                f[1] = True
                held, f[0] = f[0], 0.0
                if f[3]:
                    rem = f[4] - v
                    stretch = (rem if rem > 0 else 0.0) + held
                else:
                    f[3] = True
                    n += 1
                    stretch = held
                f[2] += 1
                f[4] = v + stretch
                seq += 1
                push(heap, (f[4], seq, i, f[2]))
        self.v, self.t, self.n, self.seq = v, t, n, seq
        return done_id, done_t


_COLS = ("arrival", "input", "output", "route", "uncached", "cached", "moved_bytes", "kv_bytes", "join", "start", "free", "kv", "ready",
         "admit", "done", "id")


class FcfsRun:
    """A finished fast-path run, read by :func:`~prfaas_plan.simulation.metrics.results` as it
    reads a :class:`~.engine.Simulation`: the :class:`~.stream.Tally`, the queue maxima, the
    link's byte windows, the threshold per window; ``rec`` with ``keep_records``."""

    engine = "fcfs fast path"

    def __init__(self, dep, requests, policy, duration_s: float, window_s: float, warmup_s: float, ttft_slo_s: float,
                 keep_records: bool = False, chunk: int = CHUNK_REQUESTS, progress=None):
        self.dep, self.policy, self.duration_s, self.window_s = dep, policy, float(duration_s), float(window_s)
        self.tally = Tally(warmup_s, duration_s, ttft_slo_s, dep.decode_step_s)
        n_l, n_r = (dep.local.instances if dep.local else 0), (dep.prfaas.instances if dep.prfaas else 0)
        self.capacity_log = [(0.0, n_l, n_r, dep.decode_slots)]
        self.changes_applied: list = []
        self.cache_blocks = None
        w0, w1 = self.tally.w0, self.tally.w1
        self.pools = (Servers(n_l, w0, w1), Servers(n_r, w0, w1))
        self.decode = Servers(dep.decode_slots, w0, w1)
        self.egress = LinkPS(dep.link_bytes_per_s, dep.transfer_cap_bytes_per_s, window_s)
        self.ingress = Pipe(dep.link_bytes_per_s, window_s)  # no cache copies on this path: stays empty
        self.rec = Records.empty(len(requests)) if keep_records else None
        self.progress = progress  # as the event loop's: (i, n) at every 1,024th arrival (after its chunk), then (n, n)
        self._run(requests, max(int(chunk), 1))
        if progress is not None:
            progress(len(requests), len(requests))
        self.end_s = max(self.duration_s, self.tally.last_done_s)
        self.thresholds = [policy.threshold_tokens] * int(math.ceil(self.end_s / window_s))

    @property
    def queue_max(self) -> dict:
        t = self.tally.queued_at_w0
        return {"pd-prefill": max(self.pools[0].qmax, t["pd-prefill"]), "prfaas": max(self.pools[1].qmax, t["prfaas"]),
                "decode": max(self.decode.qmax, t["decode"])}

    def _chunk(self, req, lo: int, hi: int) -> dict:
        dep = self.dep
        a = np.asarray(req.arrival_s[lo:hi], float)
        unc = np.asarray(req.uncached_tokens[lo:hi], float)
        inp = np.asarray(req.input_tokens[lo:hi], float)
        n = hi - lo
        nan = np.full(n, np.nan)
        c = {"arrival": a, "input": inp, "output": np.asarray(req.output_tokens[lo:hi], float), "uncached": unc, "cached": inp - unc,
             "moved_bytes": np.zeros(n), "join": a, "id": np.arange(lo, hi), "ready": nan, "admit": nan.copy(), "done": nan.copy()}
        off = _offload(dep, unc, self.policy.threshold_tokens)
        c["route"] = off.astype(np.int8)
        start, free, kv = np.empty(n), np.empty(n), np.empty(n)
        for k, pool in enumerate((dep.local, dep.prfaas)):
            sel = off if k else ~off
            if not sel.any():
                continue
            u = unc[sel]
            svc = np.asarray(pool.service_s(u), float)
            s = self.pools[k].serve(a[sel], svc)
            start[sel], free[sel] = s, s + svc
            kv[sel] = s + np.asarray(pool.latency_s(u), float)
        c["start"], c["free"], c["kv"] = start, free, kv
        c["kv_bytes"] = np.where(off, dep.kv_bytes(unc), 0.0) if off.any() else np.zeros(n)
        c["ready"] = np.where(off, np.nan, kv)
        return c

    def _run(self, req, chunk: int) -> None:
        n, dep = len(req), self.dep
        layers = max(int(dep.model.num_layers), 1)
        pending = None
        for lo in range(0, max(n, 1), chunk):
            hi = min(lo + chunk, n)
            horizon = float(req.arrival_s[hi]) if hi < n else math.inf
            c = self._chunk(req, lo, hi) if hi > lo else None
            if c is not None:
                off = c["route"] == 1
                ids = c["id"][off]
                size = c["kv_bytes"][off]
                done_id, done_t = self.egress.run(c["start"][off], ids, size, size / layers, c["kv"][off], ids, horizon)
            else:
                done_id, done_t = self.egress.run(*(np.empty(0),) * 6, horizon)
            cols = c if pending is None else {k: np.concatenate((pending[k], c[k])) if c is not None else pending[k] for k in _COLS}
            if cols is None:
                break
            if done_id:
                pos = np.searchsorted(cols["id"], np.asarray(done_id, np.int64))
                cols["ready"][pos] = np.asarray(done_t) + dep.rtt_s
            ready = cols["ready"]
            go = np.flatnonzero(ready < horizon)
            go = go[np.argsort(ready[go], kind="stable")]
            hold = np.maximum(cols["output"][go], 1.0) * dep.decode_step_s
            admit = self.decode.serve(ready[go], hold)
            cols["admit"][go], cols["done"][go] = admit, admit + hold
            fin = np.isfinite(cols["done"])
            out = {k: v[fin] for k, v in cols.items()}
            self.tally.add(out)
            if self.rec is not None:
                for k in ("route", "uncached", "cached", "kv_bytes", "moved_bytes", "join", "start", "free", "kv", "ready", "admit", "done"):
                    getattr(self.rec, k)[out["id"]] = out[k]
            pending = {k: v[~fin] for k, v in cols.items()}
            if self.progress is not None:
                for i in range(-(-lo // 1024) * 1024, hi, 1024):
                    self.progress(i, n)
        self.n_requests = n
