"""Streaming results: running sums and fixed-size quantile sketches, fed with chunks of
per-request records, so the memory of the results step does not grow with the run.

- :class:`Quantiles`: exact (numpy's linear percentile over the stored values) while it holds at
  most :data:`EXACT_VALUES` values; past that it folds them into a log-bucket sketch (DataDog's
  DDSketch: bucket k holds the values in (gamma^(k-1), gamma^k], gamma = (1 + a) / (1 - a), and
  answers 2 gamma^k / (gamma + 1)), so a quantile is within relative error a =
  :data:`RELATIVE_ACCURACY` of the order statistic x_(floor(q (n - 1))) (numpy's
  ``method="lower"``). Values below :data:`SKETCH_MIN` count as that minimum, above
  :data:`SKETCH_MAX` as that maximum (neither happens for a TTFT in seconds). Fixed size:
  ~15,000 counts (120 kB). Means are running sums, exact either way.
- :class:`Tally`: everything :func:`prfaas_plan.simulation.metrics.results` reports that is a sum
  or a quantile over requests: counts, TTFT quantiles (all, per path), SLO attainment, offload
  share, cache hits, busy and waiting time per pool inside the measured window, the queues' depth
  at the warm-up's start, and the books (requests per stage and tokens) at the run's duration.
  :meth:`Tally.add` takes one chunk of requests (any split: the sums add up, the sketches
  merge), so the event loop feeds its records in slices and the FCFS path feeds each chunk as it
  is simulated.
"""

from __future__ import annotations

import math

import numpy as np

from .records import STAGES

#: Values a :class:`Quantiles` keeps exactly before it switches to the sketch.
EXACT_VALUES = 1_000_000
#: Relative accuracy of the sketch's quantiles (0.1%).
RELATIVE_ACCURACY = 1e-3
#: The sketch's range, s: values outside count as its ends.
SKETCH_MIN, SKETCH_MAX = 1e-6, 1e7

_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LN_GAMMA = math.log(_GAMMA)
_K_MIN = math.ceil(math.log(SKETCH_MIN) / _LN_GAMMA)
_K_MAX = math.ceil(math.log(SKETCH_MAX) / _LN_GAMMA)


class Quantiles:
    """Quantiles of a stream of values (module docstring): exact up to :data:`EXACT_VALUES`
    values, then a log-bucket sketch with relative accuracy :data:`RELATIVE_ACCURACY`."""

    def __init__(self, exact_values: int = EXACT_VALUES):
        self.exact_values = exact_values
        self.n, self.total = 0, 0.0
        self._values: list[np.ndarray] | None = []
        self._counts: np.ndarray | None = None

    @property
    def exact(self) -> bool:
        return self._counts is None

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, float)
        if not x.size:
            return
        self.n += x.size
        self.total += float(x.sum())
        if self._counts is None:
            self._values.append(x.copy())
            if self.n <= self.exact_values:
                return
            x, self._values = np.concatenate(self._values), None
            self._counts = np.zeros(_K_MAX - _K_MIN + 1, np.int64)
        k = np.ceil(np.log(np.clip(x, SKETCH_MIN, SKETCH_MAX)) / _LN_GAMMA).astype(np.int64)
        self._counts += np.bincount(np.clip(k, _K_MIN, _K_MAX) - _K_MIN, minlength=len(self._counts))

    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def quantiles(self, pct) -> list[float]:
        """The ``pct`` percentiles (0-100): numpy's linear ones while exact, else the sketch's."""
        if self._counts is None:
            return [float(v) for v in np.percentile(np.concatenate(self._values), pct)]
        cum = np.cumsum(self._counts)
        ranks = np.floor(np.asarray(pct, float) / 100 * (self.n - 1)).astype(np.int64)
        k = np.searchsorted(cum, ranks, side="right") + _K_MIN
        return [float(v) for v in 2 * _GAMMA ** k / (_GAMMA + 1)]

    def stats(self) -> dict:
        if not self.n:
            return {"mean_s": None, "p50_s": None, "p90_s": None, "p99_s": None}
        p = self.quantiles([50, 90, 99])
        return {"mean_s": self.mean(), "p50_s": p[0], "p90_s": p[1], "p99_s": p[2]}


def overlap_s(lo: np.ndarray, hi: np.ndarray, w0: float, w1: float) -> float:
    """Total length of the intervals [lo, hi] inside [w0, w1] (nan hi: still open at w1; nan lo:
    never opened)."""
    hi = np.where(np.isnan(hi), w1, hi)
    ok = ~np.isnan(lo)
    return float(np.sum(np.clip(np.minimum(hi[ok], w1) - np.maximum(lo[ok], w0), 0.0, None)))


def open_at(enter: np.ndarray, leave: np.ndarray, t: float) -> int:
    """Intervals [enter, leave) open at ``t`` (nan leave: never closed; nan enter: never opened)."""
    return int(np.sum((enter <= t) & ~(leave <= t)))


class Tally:
    """The results' sums and quantiles over chunks of requests (module docstring) for a run of
    ``duration_s`` measured over [``warmup_s``, ``duration_s``), TTFT SLO ``ttft_slo_s``, decode
    step ``step_s`` (TTFT = admission + one step - arrival)."""

    def __init__(self, warmup_s: float, duration_s: float, ttft_slo_s: float, step_s: float):
        self.w0, self.w1, self.slo_s, self.step_s = float(warmup_s), float(duration_s), float(ttft_slo_s), float(step_s)
        self.ttft = Quantiles()
        self.by_path = {"prfaas": Quantiles(), "local": Quantiles()}
        self.n = self.measured = self.completed = self.completed_in = self.slo_ok = self.offloaded = 0
        self.input_measured = self.cached_measured = self.moved_measured = 0.0
        self.busy_s = {"pd-prefill": 0.0, "prfaas": 0.0, "decode": 0.0}
        self.waiting_s = {"pd-prefill": 0.0, "prfaas": 0.0, "decode": 0.0}
        self.queued_at_w0 = {"pd-prefill": 0, "prfaas": 0, "decode": 0}
        self.last_done_s = -math.inf
        self.books = {"arrived": 0, "completed": 0, "stages": dict.fromkeys(STAGES, 0), "prompt_tokens_arrived": 0.0,
                          "prompt_tokens_prefilled": 0.0, "prompt_tokens_cached": 0.0, "prompt_tokens_waiting": 0.0,
                          "output_tokens_generated": 0.0}

    def add(self, c: dict) -> None:
        """One chunk: arrays ``arrival``, ``input``, ``output``, ``route`` (1 PrfaaS, 0 local),
        ``uncached``, ``cached``, ``moved_bytes`` and the timestamps ``join``, ``start``, ``free``,
        ``kv``, ``ready``, ``admit``, ``done`` (nan: did not happen)."""
        w0, w1 = self.w0, self.w1
        a, route = c["arrival"], c["route"]
        self.n += len(a)
        measured = (a >= w0) & (a < w1)
        ttft = c["admit"] + self.step_s - a
        served = measured & np.isfinite(ttft)
        tt = ttft[served]
        remote = route == 1
        self.ttft.add(tt)
        self.by_path["prfaas"].add(ttft[served & remote])
        self.by_path["local"].add(ttft[served & ~remote])
        self.measured += int(measured.sum())
        self.slo_ok += int(np.sum(tt <= self.slo_s))
        self.offloaded += int(np.sum(remote & measured))
        done = c["done"]
        finite = np.isfinite(done)
        self.completed += int(finite.sum())
        if finite.any():
            self.last_done_s = max(self.last_done_s, float(done[finite].max()))
        self.completed_in += int(np.sum((done >= w0) & (done < w1)))
        self.input_measured += float(np.sum(c["input"][measured]))
        self.cached_measured += float(np.sum(c["cached"][measured]))
        self.moved_measured += float(np.sum(c["moved_bytes"][measured]))
        for name, sel in (("pd-prefill", route == 0), ("prfaas", remote)):
            self.busy_s[name] += overlap_s(c["start"][sel], c["free"][sel], w0, w1)
            self._queue(name, c["join"][sel], c["start"][sel])
        self.busy_s["decode"] += overlap_s(c["admit"], done, w0, w1)
        self._queue("decode", c["ready"], c["admit"])
        self._add_books(c, w1)

    def _queue(self, name: str, enter: np.ndarray, leave: np.ndarray) -> None:
        ok = ~np.isnan(enter)
        enter, leave = enter[ok], np.where(np.isnan(leave[ok]), np.inf, leave[ok])
        self.waiting_s[name] += overlap_s(enter, np.minimum(leave, self.w1), self.w0, self.w1)
        self.queued_at_w0[name] += open_at(enter, leave, self.w0)

    def _add_books(self, c: dict, t: float) -> None:
        """The books at ``t`` (the duration): requests per stage from the timestamps, tokens."""
        b, a = self.books, c["arrival"]
        arrived = a < t
        b["arrived"] += int(arrived.sum())
        stamps = [c["join"], c["start"], c["kv"], c["ready"], c["admit"], c["done"]]
        prev = a
        for stage, stamp in zip(STAGES, stamps):
            b["stages"][stage] += open_at(prev[arrived], stamp[arrived], t)
            prev = stamp
        b["completed"] += int(np.sum(c["done"] <= t))
        b["prompt_tokens_arrived"] += float(np.sum(c["input"][arrived]))
        b["prompt_tokens_cached"] += float(np.sum(c["cached"][arrived]))
        prefilled = arrived & (c["kv"] <= t)
        b["prompt_tokens_prefilled"] += float(np.sum(c["uncached"][prefilled]))
        b["prompt_tokens_waiting"] += float(np.sum(c["uncached"][arrived & ~prefilled]))
        b["output_tokens_generated"] += float(np.sum(c["output"][c["done"] <= t]))

    @property
    def quantiles_kind(self) -> str:
        if self.ttft.exact:
            return "exact"
        return f"sketch (relative error <= {RELATIVE_ACCURACY:.1%})"
