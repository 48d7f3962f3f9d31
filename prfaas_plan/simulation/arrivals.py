"""Requests for the simulator: when they arrive (Poisson, bursty, a rate shape, or a trace's own
times) and how long they are (drawn from a length distribution, or a trace's), kept apart and
composed with one seeded ``numpy.random.Generator`` (vidur's split of arrival and length
generators; no module-level random state).

Arrival processes over ``[0, duration_s)``:

- :func:`poisson_times`: a Poisson stream at a constant rate (exponential gaps).
- :func:`gamma_times`: a renewal stream whose gaps are gamma distributed with mean 1 / rate and
  squared coefficient of variation ``cv2`` (1: Poisson; > 1: bursty; < 1: smoother). Gamma gaps
  with shape k = 1 / cv2 and scale cv2 / rate.
- :func:`thinned_times`: a non-homogeneous Poisson stream whose rate is a step function
  (``rate_req_per_s[i]`` from ``t_s[i]`` to ``t_s[i + 1]``, the last step held to the end), by
  thinning (Lewis and Shedler 1979): candidates at the peak rate, each kept with probability
  rate(t) / peak.

Lengths (:func:`sample_lengths`) are inverse-CDF draws from the cells of a
:class:`~prfaas_plan.planning.workload.LengthDistribution`: a cell by its exact mass, then for a
density a point log-uniform inside the cell (the cell boundaries are log-spaced), for a
distribution with atoms (a trace histogram) the cell's mean, which is its atom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from ..planning.workload import LengthDistribution

#: Cells of the length distribution sampled from (the planner's default grid).
SAMPLE_CELLS = 2048
#: Draws transformed at a time by :func:`sample_lengths` (bounds its temporaries).
_SLICE = 1 << 20

#: Most requests one simulation may hold (memory: ~100 bytes per request in the arrays).
MAX_REQUESTS = 50_000_000


@dataclass(frozen=True, eq=False)
class Requests:
    """One row per request, in arrival order: ``arrival_s`` (s, non-decreasing), ``input_tokens``
    (whole prompt), ``uncached_tokens`` (what routing and prefill see when no prefix cache is
    simulated; ignored where ``hash_ids`` drive per-cluster caches), ``output_tokens``; float
    arrays. ``hash_ids``: per request its prefix-chained 512-token block hashes, or None."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    uncached_tokens: np.ndarray
    output_tokens: np.ndarray
    hash_ids: tuple | None = None
    source: str = ""

    def __post_init__(self):
        n = len(self.arrival_s)
        for name in ("input_tokens", "uncached_tokens", "output_tokens"):
            if len(getattr(self, name)) != n:
                raise PlanError(f"requests: {name} has {len(getattr(self, name))} entries for {n} arrivals")
        if self.hash_ids is not None and len(self.hash_ids) != n:
            raise PlanError(f"requests: hash_ids has {len(self.hash_ids)} entries for {n} arrivals")
        if n > MAX_REQUESTS:
            raise PlanError(f"requests: {n:,} requests is more than the {MAX_REQUESTS:,} one simulation holds; shorten the run")
        a = self.arrival_s
        if n and (not np.all(np.isfinite(a)) or a[0] < 0 or np.any(np.diff(a) < 0)):
            raise PlanError("requests: arrival times must be finite, >= 0 and non-decreasing")
        if n and (np.any(self.uncached_tokens < 0) or np.any(self.uncached_tokens > self.input_tokens) or np.any(self.output_tokens < 0)):
            raise PlanError("requests: need 0 <= uncached <= input tokens and output tokens >= 0")

    def __len__(self) -> int:
        return len(self.arrival_s)


def _check_rate(rate_req_per_s: float, duration_s: float) -> None:
    if not (math.isfinite(rate_req_per_s) and rate_req_per_s >= 0):
        raise PlanError(f"arrival rate must be a finite number >= 0 req/s, got {rate_req_per_s}")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise PlanError(f"duration must be a finite number of seconds > 0, got {duration_s}")
    if rate_req_per_s * duration_s > MAX_REQUESTS:
        raise PlanError(f"{rate_req_per_s:g} req/s for {duration_s:g} s is more than {MAX_REQUESTS:,} requests; shorten the run")


def _renewal(gaps_fn, rate: float, duration_s: float) -> np.ndarray:
    """Cumulative sums of gaps drawn in blocks until the stream passes ``duration_s``."""
    if rate == 0:
        return np.empty(0)
    chunks, t = [], 0.0
    block = int(rate * duration_s * 1.05 + 10 * math.sqrt(rate * duration_s) + 16)
    while t < duration_s:
        times = gaps_fn(block)
        np.cumsum(times, out=times)  # in place: a day of a large fleet is tens of millions of arrivals
        times += t
        chunks.append(times)
        t = float(times[-1])
    times = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return times[: int(np.searchsorted(times, duration_s, side="left"))]  # non-decreasing: those < duration_s


def poisson_times(rate_req_per_s: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of a Poisson stream at ``rate_req_per_s`` over [0, duration_s)."""
    _check_rate(rate_req_per_s, duration_s)
    return _renewal(lambda n: rng.exponential(1.0 / rate_req_per_s, n), rate_req_per_s, duration_s)


def gamma_times(rate_req_per_s: float, cv2: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a renewal stream with gamma gaps: mean 1 / rate, squared coefficient of
    variation ``cv2`` (shape 1 / cv2, scale cv2 / rate). cv2 = 1 is Poisson."""
    _check_rate(rate_req_per_s, duration_s)
    if not (math.isfinite(cv2) and 0 < cv2 <= 1e4):
        raise PlanError(f"burstiness cv^2 of the inter-arrival gaps must be in (0, 10^4], got {cv2}")
    return _renewal(lambda n: rng.gamma(1.0 / cv2, cv2 / rate_req_per_s, n), rate_req_per_s, duration_s)


def rate_at(t_s: np.ndarray, shape_t_s: np.ndarray, shape_rate: np.ndarray) -> np.ndarray:
    """The step-function rate at times ``t_s`` (the first step also before its start)."""
    idx = np.clip(np.searchsorted(shape_t_s, t_s, side="right") - 1, 0, len(shape_t_s) - 1)
    return np.asarray(shape_rate)[idx]


def mean_rate(shape_t_s: np.ndarray, shape_rate: np.ndarray, duration_s: float) -> float:
    """Time-average of the step-function rate over [0, duration_s)."""
    edges = np.concatenate([np.clip(shape_t_s, 0, duration_s), [duration_s]])
    edges[0] = 0.0
    return float(np.sum(np.diff(edges) * np.asarray(shape_rate)) / duration_s)


def thinned_times(shape_t_s, shape_rate_req_per_s, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a non-homogeneous Poisson stream with a step-function rate, by thinning."""
    t_s = np.asarray(shape_t_s, float)
    rate = np.asarray(shape_rate_req_per_s, float)
    if len(t_s) == 0 or len(t_s) != len(rate) or np.any(np.diff(t_s) <= 0) or not np.all(np.isfinite(rate)) or np.any(rate < 0):
        raise PlanError("rate shape: needs increasing times and finite rates >= 0, one per time")
    peak = float(rate.max())
    candidates = poisson_times(peak, duration_s, rng)
    keep = rng.random(len(candidates)) * peak < rate_at(candidates, t_s, rate)
    return candidates[keep]


def sample_lengths(lengths: LengthDistribution, n: int, rng: np.random.Generator, cells: int = SAMPLE_CELLS) -> np.ndarray:
    """``n`` lengths (tokens, float) drawn from ``lengths``: a cell by its mass, then log-uniform
    inside it for a density, the atom itself for a trace, the cell's mean for a mixture of both."""
    upper, mass, means = lengths.cells(cells)
    cum = np.cumsum(mass)
    u = rng.random(n) * cum[-1]
    k = np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
    if not lengths.has_density:  # a trace's cells end at its atoms: draw those, exactly as stored
        return np.array(upper[k], float)
    if len(lengths.atoms()):
        return means[k].astype(float)
    lower = np.concatenate([[lengths.cell_edges(cells)[0]], upper[:-1]])
    out = np.empty(n)
    for a in range(0, n, _SLICE):  # in slices: the temporaries stay small for tens of millions of draws
        ks, us = k[a:a + _SLICE], u[a:a + _SLICE]
        frac = np.clip((us - (cum[ks] - mass[ks])) / np.where(mass[ks] > 0, mass[ks], 1.0), 0.0, 1.0)
        out[a:a + _SLICE] = np.exp(np.log(lower[ks]) + frac * (np.log(upper[ks]) - np.log(lower[ks])))
    return out


def synthetic(times_s: np.ndarray, lengths: LengthDistribution, output_tokens: float, rng: np.random.Generator,
              source: str = "synthetic") -> Requests:
    """Requests at ``times_s`` with uncached lengths drawn from ``lengths`` and ``output_tokens``
    each (the workload's mean; [PRFAAS] section 4 uses a fixed 1,024). No prefix identity: the
    drawn length is both the input and the uncached length."""
    if not (math.isfinite(output_tokens) and output_tokens >= 0):
        raise PlanError(f"output tokens must be a finite number >= 0, got {output_tokens}")
    lens = sample_lengths(lengths, len(times_s), rng)
    lens.flags.writeable = False  # shared by input and uncached; output one read-only value broadcast (8 bytes, not 8 per request)
    return Requests(np.asarray(times_s, float), lens, lens, np.broadcast_to(float(output_tokens), (len(times_s),)), None, source)


def from_trace(trace, rate_req_per_s: float | None = None, output_tokens: float | None = None,
               uncached_tokens: np.ndarray | None = None) -> Requests:
    """Requests replayed from a :class:`prfaas_plan.traces.readers.Trace` with arrivals. Its
    times start at 0; with ``rate_req_per_s`` they are scaled (every gap by the same factor) so
    that the mean rate, (n - 1) / span, is that rate. Output tokens: the trace's, else
    ``output_tokens``. ``uncached_tokens`` (default: the whole input) is what routing sees when
    no cache is simulated; with ``hash_ids`` the simulator's per-cluster caches decide instead."""
    if trace.arrival_s is None:
        raise PlanError(f"trace {trace.name}: has no arrival times (a length-only CSV); use it as the scenario's workload, or a Mooncake/Azure trace")
    arrival = np.asarray(trace.arrival_s, float) - float(trace.arrival_s[0])
    if rate_req_per_s is not None:
        own = trace.mean_rate_req_per_s
        if not own:
            raise PlanError(f"trace {trace.name}: all requests arrive at once, so it cannot be scaled to a rate")
        if not (math.isfinite(rate_req_per_s) and rate_req_per_s > 0):
            raise PlanError(f"arrival rate must be a finite number > 0 req/s, got {rate_req_per_s}")
        arrival = arrival * (own / rate_req_per_s)
    inp = np.asarray(trace.input_tokens, float)
    if trace.output_tokens is not None:
        out = np.asarray(trace.output_tokens, float)
    elif output_tokens is not None:
        out = np.full(len(inp), float(output_tokens))
    else:
        raise PlanError(f"trace {trace.name}: no output lengths; give the mean output tokens")
    unc = inp.copy() if uncached_tokens is None else np.asarray(uncached_tokens, float)
    return Requests(arrival, inp, unc, out, trace.hash_ids, f"trace {trace.name}")
