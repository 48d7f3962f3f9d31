"""Results of a simulation, every one derived from the recorded per-request timestamps (the
definitions first, as vidur's docs/metrics.md does):

- a request's timestamps: arrival a, prefill queue join, prefill start s, instance free,
  KV complete (prefill end), ready for decode r, decode admission d, last token e;
- TTFT = d + T_step - a (first token one decode step after admission); TPOT = T_step / accepted
  tokens per step;
- the measured requests are those arriving in [warm-up, duration); the warm-up (default
  min(10% of the duration, 300 s)) lets queues, decode occupancy and caches fill. Every measured
  request is followed to its end (the run drains), so late arrivals are not dropped from the
  percentiles;
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

#: Default TTFT SLO, s, for the attainment figure: [PRFAAS] states none; Table 6's P90 TTFTs are
#: 3.51 s (PrfaaS, naive) and 9.73 s (homogeneous). Override per run.
DEFAULT_TTFT_SLO_S = 5.0


def default_warmup_s(duration_s: float) -> float:
    return min(0.1 * duration_s, 300.0)


def _overlap(lo: np.ndarray, hi: np.ndarray, w0: float, w1: float) -> float:
    """Total length of the intervals [lo, hi] inside [w0, w1] (nan ends: still open at w1)."""
    hi = np.where(np.isnan(hi), w1, hi)
    ok = ~np.isnan(lo)
    return float(np.sum(np.clip(np.minimum(hi[ok], w1) - np.maximum(lo[ok], w0), 0.0, None)))


def _depth(enter: np.ndarray, leave: np.ndarray, w0: float, w1: float) -> tuple[float, int]:
    """(time-average, maximum) of the number of intervals [enter, leave) open inside [w0, w1)."""
    ok = ~np.isnan(enter)
    enter, leave = enter[ok], np.where(np.isnan(leave[ok]), np.inf, leave[ok])
    mean = _overlap(enter, np.minimum(leave, w1), w0, w1) / (w1 - w0)
    t = np.concatenate([enter, leave])
    step = np.concatenate([np.ones(len(enter), int), -np.ones(len(leave), int)])
    order = np.lexsort((step, t))  # at one time, leaving before entering
    t, level = t[order], np.cumsum(step[order])
    at_start = level[t <= w0][-1] if np.any(t <= w0) else 0
    inside = level[(t > w0) & (t < w1)]
    return mean, int(max(at_start, inside.max() if inside.size else 0))


def _capacity_seconds(log: list, col: int, w0: float, w1: float) -> float:
    times = [r[0] for r in log] + [math.inf]
    return sum(log[k][col] * max(min(times[k + 1], w1) - max(times[k], w0), 0.0) for k in range(len(log)))


def _stats(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"mean_s": None, "p50_s": None, "p90_s": None, "p99_s": None}
    p = np.percentile(x, [50, 90, 99])
    return {"mean_s": float(x.mean()), "p50_s": float(p[0]), "p90_s": float(p[1]), "p99_s": float(p[2])}


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


def results(sim: Simulation, warmup_s: float | None = None, ttft_slo_s: float = DEFAULT_TTFT_SLO_S) -> dict:
    """The run's results as a flat, unit-named dict (see the module docstring)."""
    d, rec, req = sim.dep, sim.rec, sim.req
    w1 = sim.duration_s
    w0 = default_warmup_s(w1) if warmup_s is None else float(warmup_s)
    if not 0 <= w0 < w1:
        raise PlanError(f"warm-up must be in [0, duration {w1:g} s), got {w0:g} s")
    books = conservation(sim)
    measured = (req.arrival_s >= w0) & (req.arrival_s < w1)
    step = d.decode_step_s
    ttft = rec.admit + step - req.arrival_s
    served = measured & np.isfinite(ttft)
    tt = ttft[served]
    n_meas = int(measured.sum())
    remote = rec.route == 1
    span = w1 - w0
    completed_in = int(np.sum((rec.done >= w0) & (rec.done < w1)))
    caps = sim.capacity_log
    pools = {}
    for name, k, col in (("pd-prefill", 0, 1), ("prfaas", 1, 2)):
        sel = rec.route == k
        cap_s = _capacity_seconds(caps, col, w0, w1)
        busy = _overlap(rec.start[sel], rec.free[sel], w0, w1)
        q_mean, q_max = _depth(rec.join[sel], rec.start[sel], w0, w1)
        pools[name] = {"instances": sim.capacity_log[0][col], "utilisation_frac": busy / cap_s if cap_s > 0 else None,
                       "queue_mean": q_mean, "queue_max": q_max}
    cap_s = _capacity_seconds(caps, 3, w0, w1)
    q_mean, q_max = _depth(rec.ready, rec.admit, w0, w1)
    pools["decode"] = {"instances": d.decode_instances, "slots": sim.capacity_log[0][3],
                       "utilisation_frac": _overlap(rec.admit, rec.done, w0, w1) / cap_s if cap_s > 0 else None,
                       "queue_mean": q_mean, "queue_max": q_max}
    eg = _window_gbit(sim.egress.windows, sim.window_s, w0, w1)
    ig = _window_gbit(sim.ingress.windows, sim.window_s, w0, w1)
    link = units.bytes_per_s_to_gbit_per_s(d.link_bytes_per_s)
    th = np.asarray(sim.thresholds[int(w0 // sim.window_s): int(w1 // sim.window_s)], float)
    per_path = {name: {"share_frac": float(np.mean(sel[served])) if tt.size else None, **_stats(ttft[served & sel])}
                for name, sel in (("prfaas", remote), ("local", ~remote))}
    inp = float(np.sum(req.input_tokens[measured]))
    return {
        "duration_s": w1, "warmup_s": w0, "drained_at_s": sim.end_s,
        "requests_arrived": len(req), "requests_measured": n_meas, "requests_completed": int(np.sum(np.isfinite(rec.done))),
        "arrival_req_per_s": n_meas / span,
        "throughput_req_per_s": completed_in / span,
        "ttft": _stats(tt), "ttft_by_path": per_path,
        "tpot_s": step / getattr(d, "decode_accepted_tokens", 1.0),
        "ttft_slo_s": ttft_slo_s,
        "slo_attainment_frac": float(np.sum(tt <= ttft_slo_s) / n_meas) if n_meas else None,
        "offload_frac": float(np.mean(remote[measured])) if n_meas else None,
        "cache_hit_frac": float(np.sum(rec.cached[measured]) / inp) if inp > 0 else 0.0,
        "prefix_copied_gbit": units.bytes_per_s_to_gbit_per_s(float(np.sum(rec.moved_bytes[measured]))),
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
