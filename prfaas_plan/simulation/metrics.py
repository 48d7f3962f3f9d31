"""Results of a simulation, every one derived from the recorded per-request timestamps (the
definitions first, as vidur's docs/metrics.md does):

- a request's timestamps: arrival a, prefill queue join, prefill start s, instance free,
  KV complete (prefill end), ready for decode r, decode admission d, last token e;
- TTFT = d + T_step - a (first token one decode step after admission); TPOT = T_step / accepted
  tokens per step;
- the measured requests are those arriving in [warm-up, duration); the warm-up (default
  min(10% of the duration, 300 s)) lets queues, decode occupancy and caches fill. Every measured
  request is followed to its end (the run drains), so late arrivals are not dropped from the
  percentiles. Sums and percentiles are streamed (:mod:`.stream`): exact percentiles up to a
  million measured requests, past that a sketch within 0.1% (``ttft_quantiles`` says which);
- throughput: requests completing (last token) inside [warm-up, duration), per second;
- utilisation of a pool: busy instance-seconds ([s, free] per request; decode: slot-seconds
  [d, e]) inside the window over the instance-seconds (slot-seconds) available in it;
- queue depth: requests waiting (prefill: joined, not started; decode: ready, not admitted):
  time-average over the window and maximum;
- egress: bytes sent on the PrfaaS-to-local direction per 1-s window, in Gbit/s (mean and P99
  of the windows inside [warm-up, duration)); ingress the same for local-to-PrfaaS cache copies;
- SLO attainment: share of measured requests with TTFT <= the SLO;
- conservation: at the end of arrivals and at the end of the drain, arrived = completed + in
  flight (per stage), and prompt tokens arrived = prefilled + reused from a cache + waiting for
  prefill; output tokens generated = those of the completed requests.
"""

from __future__ import annotations

import math

import numpy as np

from .. import units
from ..errors import PlanError
from .engine import Simulation
from .stream import Tally

#: Default TTFT SLO, s, for the attainment figure: [PRFAAS] states none; Table 6's P90 TTFTs are
#: 3.51 s (PrfaaS, naive) and 9.73 s (homogeneous). Override per run.
DEFAULT_TTFT_SLO_S = 5.0


def default_warmup_s(duration_s: float) -> float:
    return min(0.1 * duration_s, 300.0)


def _depth_max(enter: np.ndarray, leave: np.ndarray, w0: float, w1: float) -> int:
    """Maximum number of intervals [enter, leave) open inside [w0, w1) (at one time, leaving
    before entering)."""
    ok = ~np.isnan(enter)
    enter, leave = enter[ok], np.where(np.isnan(leave[ok]), np.inf, leave[ok])
    t = np.concatenate([enter, leave])
    step = np.concatenate([np.ones(len(enter), np.int32), -np.ones(len(leave), np.int32)])
    order = np.lexsort((step, t))
    t, level = t[order], np.cumsum(step[order])
    at_start = level[t <= w0][-1] if np.any(t <= w0) else 0
    inside = level[(t > w0) & (t < w1)]
    return int(max(at_start, inside.max() if inside.size else 0))


def _capacity_seconds(log: list, col: int, w0: float, w1: float) -> float:
    times = [r[0] for r in log] + [math.inf]
    return sum(log[k][col] * max(min(times[k + 1], w1) - max(times[k], w0), 0.0) for k in range(len(log)))


def conservation(sim: Simulation) -> list[dict]:
    """Each snapshot's books, checked against the records; raises PlanError if they disagree
    (a simulator bug: a request lost or counted twice)."""
    out, rec, req = [], sim.rec, sim.req
    for snap in sim.snapshots:
        t = snap.time_s
        expected = len(req) if snap is sim.snapshots[-1] else int(np.sum(req.arrival_s < t))
        arrived = np.arange(len(req)) < snap.arrived
        done = rec.done <= t
        in_flight = sum(snap.stages.values())
        waiting = arrived & ~(rec.kv <= t)  # routed, prefill not yet complete
        prompt_waiting = float(np.sum(rec.uncached[waiting]))
        out_done = float(np.sum(req.output_tokens[done]))
        row = {"time_s": t, "arrived": snap.arrived, "completed": snap.completed, "in_flight": in_flight, "stages": snap.stages,
               "prompt_tokens_arrived": snap.prompt_tokens_arrived, "prompt_tokens_prefilled": snap.prompt_tokens_prefilled,
               "prompt_tokens_cached": snap.prompt_tokens_cached, "prompt_tokens_waiting": prompt_waiting,
               "output_tokens_generated": snap.output_tokens_generated}
        checks = {
            "requests": snap.arrived == snap.completed + in_flight == expected,
            "completed": snap.completed == int(done.sum()),
            "prompt tokens": math.isclose(snap.prompt_tokens_arrived, snap.prompt_tokens_prefilled + snap.prompt_tokens_cached + prompt_waiting,
                                          rel_tol=1e-9, abs_tol=1e-6),
            "output tokens": math.isclose(snap.output_tokens_generated, out_done, rel_tol=1e-9, abs_tol=1e-6),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PlanError(f"simulation books do not balance at t = {t:.3f} s ({', '.join(bad)}): {row}")
        row["ok"] = True
        out.append(row)
    return out


#: Requests per slice when the event loop's records are tallied (bounds the results' temporaries).
RESULT_CHUNK = 1 << 20


def tally(sim: Simulation, warmup_s: float, ttft_slo_s: float) -> Tally:
    """The event loop's records, fed to a :class:`~.stream.Tally` in slices of :data:`RESULT_CHUNK`."""
    t, req, rec = Tally(warmup_s, sim.duration_s, ttft_slo_s, sim.dep.decode_step_s), sim.req, sim.rec
    for lo in range(0, len(req), RESULT_CHUNK):
        s = slice(lo, lo + RESULT_CHUNK)
        t.add({"arrival": req.arrival_s[s], "input": req.input_tokens[s], "output": req.output_tokens[s], "route": rec.route[s],
               "uncached": rec.uncached[s], "cached": rec.cached[s], "moved_bytes": rec.moved_bytes[s], "join": rec.join[s],
               "start": rec.start[s], "free": rec.free[s], "kv": rec.kv[s], "ready": rec.ready[s], "admit": rec.admit[s], "done": rec.done[s]})
    return t


def _fast_books(run) -> list[dict]:
    """The fast path's books (:class:`~.stream.Tally`): at the duration, requests per stage from
    the timestamps (they add up only if every request's timestamps are in order) and tokens; at
    the end, every request completed."""
    b, n = run.tally.books, run.tally.n
    row = {"time_s": run.duration_s, **b, "in_flight": sum(b["stages"].values())}
    tokens = b["prompt_tokens_prefilled"] + b["prompt_tokens_cached"] + b["prompt_tokens_waiting"]
    end = {"time_s": run.end_s, "arrived": n, "completed": run.tally.completed, "in_flight": n - run.tally.completed,
           "stages": dict.fromkeys(b["stages"], 0)}
    checks = {"requests": b["arrived"] == b["completed"] + row["in_flight"],
              "prompt tokens": math.isclose(b["prompt_tokens_arrived"], tokens, rel_tol=1e-9, abs_tol=1e-6),
              "all completed": run.tally.completed == n}
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise PlanError(f"simulation books do not balance ({', '.join(bad)}): {row}")
    return [{**row, "ok": True}, {**end, "ok": True}]


def results(sim, warmup_s: float | None = None, ttft_slo_s: float = DEFAULT_TTFT_SLO_S) -> dict:
    """The run's results as a flat, unit-named dict (see the module docstring). ``sim``: a
    :class:`~.engine.Simulation` (its records are tallied here) or a
    :class:`~.fcfs.FcfsRun` (tallied as it ran, for the warm-up and SLO it was given)."""
    d = sim.dep
    w1 = sim.duration_s
    w0 = default_warmup_s(w1) if warmup_s is None else float(warmup_s)
    if not 0 <= w0 < w1:
        raise PlanError(f"warm-up must be in [0, duration {w1:g} s), got {w0:g} s")
    if isinstance(sim, Simulation):
        books = conservation(sim)
        tl = tally(sim, w0, ttft_slo_s)
        rec = sim.rec
        qmax = {name: _depth_max(rec.join[rec.route == k], rec.start[rec.route == k], w0, w1) for name, k in (("pd-prefill", 0), ("prfaas", 1))}
        qmax["decode"] = _depth_max(rec.ready, rec.admit, w0, w1)
    else:
        tl = sim.tally
        if (tl.w0, tl.slo_s) != (w0, float(ttft_slo_s)):
            raise PlanError(f"this run was tallied for warm-up {tl.w0:g} s and TTFT SLO {tl.slo_s:g} s, not {w0:g} s and {ttft_slo_s:g} s")
        books, qmax = _fast_books(sim), sim.queue_max
    step = d.decode_step_s
    n_meas = tl.measured
    span = w1 - w0
    caps = sim.capacity_log
    pools = {}
    for name, col in (("pd-prefill", 1), ("prfaas", 2)):
        cap_s = _capacity_seconds(caps, col, w0, w1)
        pools[name] = {"instances": caps[0][col], "utilisation_frac": tl.busy_s[name] / cap_s if cap_s > 0 else None,
                       "queue_mean": tl.waiting_s[name] / span, "queue_max": qmax[name]}
    cap_s = _capacity_seconds(caps, 3, w0, w1)
    pools["decode"] = {"instances": d.decode_instances, "slots": caps[0][3],
                       "utilisation_frac": tl.busy_s["decode"] / cap_s if cap_s > 0 else None,
                       "queue_mean": tl.waiting_s["decode"] / span, "queue_max": qmax["decode"]}
    eg = _window_gbit(sim.egress.windows, sim.window_s, w0, w1)
    ig = _window_gbit(sim.ingress.windows, sim.window_s, w0, w1)
    link = units.bytes_per_s_to_gbit_per_s(d.link_bytes_per_s)
    th = np.asarray(sim.thresholds[int(w0 // sim.window_s): int(w1 // sim.window_s)], float)
    served = tl.ttft.n
    per_path = {name: {"share_frac": tl.by_path[name].n / served if served else None, **tl.by_path[name].stats()}
                for name in ("prfaas", "local")}
    inp = tl.input_measured
    return {
        "duration_s": w1, "warmup_s": w0, "drained_at_s": sim.end_s,
        "requests_arrived": tl.n, "requests_measured": n_meas, "requests_completed": tl.completed,
        "arrival_req_per_s": n_meas / span,
        "throughput_req_per_s": tl.completed_in / span,
        "ttft": tl.ttft.stats(), "ttft_by_path": per_path,
        "ttft_quantiles": tl.quantiles_kind,
        "engine": getattr(sim, "engine", "event loop"),
        "tpot_s": step / getattr(d, "decode_accepted_tokens", 1.0),
        "ttft_slo_s": ttft_slo_s,
        "slo_attainment_frac": tl.slo_ok / n_meas if n_meas else None,
        "offload_frac": tl.offloaded / n_meas if n_meas else None,
        "cache_hit_frac": tl.cached_measured / inp if inp > 0 else 0.0,
        "prefix_copied_gbit": units.bytes_per_s_to_gbit_per_s(tl.moved_measured),
        "pools": pools,
        "link_gbit_per_s": link,
        "egress_mean_gbit_per_s": float(eg.mean()) if eg.size else 0.0,
        "egress_p99_gbit_per_s": float(np.percentile(eg, 99)) if eg.size else 0.0,
        "egress_utilisation_frac": float(eg.mean()) / link if link > 0 and eg.size else None,
        "ingress_mean_gbit_per_s": float(ig.mean()) if ig.size else 0.0,
        "egress_gbit_per_s_by_minute": _per_minute(sim.egress.windows, sim.window_s, w1),
        "threshold_over_time_tokens": {"start": sim.thresholds[0] if sim.thresholds else None,
                             "mean": float(th[np.isfinite(th)].mean()) if np.any(np.isfinite(th)) else None,
                             "min": float(th.min()) if th.size else None, "max": float(th.max()) if th.size else None},
        "replans": [{"time_s": t, "threshold_tokens": c.threshold_tokens, "n_pd_prefill": c.n_pd_prefill, "n_pd_decode": c.n_pd_decode}
                    for t, c in sim.changes_applied],
        "conservation": books,
    }


def _window_gbit(windows: list, window_s: float, w0: float, w1: float) -> np.ndarray:
    """Gbit/s of each whole window inside [w0, w1) (windows with no traffic count as 0)."""
    k0, k1 = int(math.ceil(w0 / window_s)), int(w1 // window_s)
    arr = np.zeros(max(k1 - k0, 0))
    src = np.asarray(windows[k0:k1], float)
    arr[: len(src)] = src
    return units.bytes_per_s_to_gbit_per_s(arr / window_s)


def _per_minute(windows: list, window_s: float, w1: float) -> list[float]:
    per = _window_gbit(windows, window_s, 0.0, w1)
    m = max(int(round(60 / window_s)), 1)
    n = len(per) // m * m
    return [float(x) for x in per[:n].reshape(-1, m).mean(axis=1)] if n else []
