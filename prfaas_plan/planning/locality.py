"""Planning with one prefix cache per cluster ([PRFAAS] Eq. 3-6 on the lengths each path really
prefills), and the offload share the simulation will see.

A scenario's trace with a cache model (:mod:`.trace_input`) gives the planner a
:class:`CachedTrace`: the uncached lengths of one *shared* cache (what routing sees if every
cluster could reuse every prefix) plus what is needed to replay the trace through the caches the
deployment has, one per cluster (:mod:`prfaas_plan.traces.locality`). With ``scope: per-cluster``
the throughput model is a :class:`LocalityModel`:

    p(t)       = P_w(x > t)                                       (share offloaded)
    remote(t)  = E_w[T_prfaas(y) 1{x > t}],  link(t) = E_w[S_kv(y) 1{x > t}]
    local(t)   = E_w[T_pd(x) 1{x <= t}]

x, y the local and PrfaaS uncached lengths of each request in the replay *at that t* (at least 1
token, as the shared model), E_w the mean over the requests that arrive after the warm-up
(:data:`WARMUP_FRAC`, :data:`WARMUP_MAX_S`: the simulator's default, so cold caches at the
trace's start count in neither). In ``paper`` mode, as Eq. 3-5: T_prfaas(E[y | offloaded]) and so
on. These replace the distribution's needs in Eq. 3-8; everything else (the optimizer, Eq. 7's
balance, decode) is unchanged.

Method and convergence. t decides the routing and the routing fills the caches, so the lengths
depend on t; but for one t the replay is determined request by request (each route depends only on
earlier requests, routed by the same rule), so there is no fixed point to iterate to: each
candidate t is evaluated by its own replay, exactly. The candidates are a grid of
:data:`GRID_THRESHOLDS` thresholds at quantiles of the shared-cache uncached lengths (each
v + 0.5 tokens, v a length: lengths are whole tokens, so the threshold routes exactly as any t in
[v + 0.5, v + 1)), plus 0 (all offloaded) and the longest prompt (all local). Between two
candidates the needs are taken as those of the lower one (as for a trace without a cache, whose
needs only change at its lengths), and every threshold the planner returns is a candidate
(:meth:`_Grid.clear_threshold` moves it down to one), so the plan's numbers are its replay's.
What the grid costs: the best t is found to within one grid step (~1/1,000 of the requests). On
the Mooncake case study's fixed fleet, Lambda_max is 9.230 req/s with 1,024 quantiles (953
candidates), 9.199 with 256 and 9.243 with 4,096 (whose replay takes ~4x as long). The replays
are kept as what changes from one candidate to the next (~13K changes on Mooncake whatever the
grid), so a model for a new scale or mode costs milliseconds once the trace is replayed.

Scaled prompts (``input_tokens_scale``, a risk sample's drift) stretch every x and y by the
scale with the routing of t / scale (the prefix structure is the trace's). Not modelled here:
cache sizes from HBM (a scenario gives ``capacity_blocks``, the same for each cluster, or
unlimited), and TTFT (the latency layer keeps the shared-cache lengths).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..errors import PlanError
from ..roofline.kv import kv_cache_bytes
from ..traces.locality import BlockIndex, RouteChanges, replay, replay_changes
from .throughput import MODES, Needs, ThroughputModel
from .workload import Empirical, Scaled

#: Candidate thresholds of a :class:`LocalityModel` (quantiles of the shared-cache lengths).
GRID_THRESHOLDS = 1024
#: With LRU caches (a dict replay per threshold, ~0.3 s each on Mooncake with evictions): 64
#: quantiles, ~20 s to plan (32: ~10 s but 2.5% less Lambda_max on the case study fleet at 11,759 blocks).
GRID_THRESHOLDS_LRU = 64
#: Requests arriving before min(WARMUP_FRAC x the trace's span, WARMUP_MAX_S) fill the caches and
#: are not counted (the simulator's default warm-up, prfaas_plan/simulation/metrics.py).
WARMUP_FRAC, WARMUP_MAX_S = 0.1, 300.0
SCOPES = ("shared", "per-cluster")
_MEMO_ROUTES = 8  # replays kept per trace (one per grid, as changes: ~1 MB for the Mooncake trace)


class TraceReplay:
    """A trace's block hashes and the caches' capacities, with its replays memoised (keyed by the
    thresholds). Equal (and hashed) by ``key`` - the file's identity and the capacities - so
    that a :class:`CachedTrace` stays a value."""

    def __init__(self, key: tuple, hash_ids, input_tokens, arrival_s, capacity_blocks: tuple):
        self.key, self.hash_ids, self.capacity_blocks = key, hash_ids, tuple(capacity_blocks)
        self.input_tokens = np.asarray(input_tokens, np.int64)
        n = len(self.input_tokens)
        if arrival_s is None or n < 2:
            self.weights = np.full(n, 1.0 / n)
        else:
            t = np.asarray(arrival_s, float) - float(arrival_s[0])
            keep = t >= min(WARMUP_FRAC * float(t[-1]), WARMUP_MAX_S)
            self.weights = keep / keep.sum()
        self._routes: OrderedDict = OrderedDict()

    def __eq__(self, other):
        return isinstance(other, TraceReplay) and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return f"TraceReplay{self.key!r}"

    def __getstate__(self):
        """Without the memoised replays and block index (tens of MB): a process-pool worker
        replays again on first use."""
        state = dict(self.__dict__)
        state.pop("index", None)
        state["_routes"] = OrderedDict()
        return state

    @functools.cached_property
    def index(self) -> BlockIndex:
        return BlockIndex.build(self.hash_ids, self.input_tokens)

    def routes(self, thresholds_tokens) -> RouteChanges:
        """The static rule replayed at each of the ascending thresholds, as
        :class:`~prfaas_plan.traces.locality.RouteChanges` (memoised)."""
        t = np.asarray(thresholds_tokens, float).ravel()
        key = t.tobytes()
        hit = self._routes.get(key)
        if hit is None:
            hit = replay_changes(self.index, self.hash_ids, t, self.capacity_blocks)
            self._routes[key] = hit
            if len(self._routes) > _MEMO_ROUTES:
                self._routes.popitem(last=False)
        else:
            self._routes.move_to_end(key)
        return hit

    def shares(self, threshold_tokens: float, shared_uncached) -> dict:
        """At one threshold: the share offloaded with a cache per cluster (the replay) and with
        one shared cache (``shared_uncached`` > t), and the mean tokens each path prefills, over
        the requests after the warm-up."""
        r = replay(self.index, self.hash_ids, [threshold_tokens], self.capacity_blocks)  # one threshold: the dict replay
        w, off = self.weights, r.offload[0]
        p = float(w @ off)
        prefill = np.maximum(r.prefill_tokens()[0], 1)
        mean = lambda m: float((w * m) @ prefill / (w @ m)) if w @ m > 0 else None  # noqa: E731
        return {"offload_frac": p, "shared_cache_offload_frac": float(w @ (np.asarray(shared_uncached) > threshold_tokens)),
                "mean_offloaded_prefill_tokens": mean(off), "mean_local_prefill_tokens": mean(~off)}


@dataclass(frozen=True)
class CachedTrace(Empirical):
    """The shared-cache uncached lengths of a trace (an :class:`Empirical`, as before) that also
    carries its :class:`TraceReplay` and the scope the scenario plans with."""

    replay: TraceReplay | None = None
    scope: str = "shared"
    shared_uncached: tuple = field(default=(), repr=False, compare=False)  # per request, arrival order

    @property
    def per_cluster(self) -> bool:
        return self.scope == "per-cluster"


def cached_trace(uncached: np.ndarray, replay_: TraceReplay, scope: str, where: str) -> CachedTrace:
    if scope not in SCOPES:
        raise PlanError(f"{where}: cache scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    base = Empirical.from_arrays(np.maximum(uncached, 1), np.ones(len(uncached)), where)
    return CachedTrace(base.values, base.weights, None, replay_, scope, tuple(np.asarray(uncached).tolist()))


class _Grid:
    """The candidate thresholds as the planner's ``tm.lengths``: :meth:`clear_threshold` moves a
    threshold down to the candidate at or below it; everything else is the trace's."""

    def __init__(self, thresholds: np.ndarray, lengths: CachedTrace):
        self.thresholds, self._lengths = thresholds, lengths

    def clear_threshold(self, t: float) -> float:
        k = int(np.searchsorted(self.thresholds, t, side="right")) - 1
        return float(self.thresholds[max(k, 0)])

    def __getattr__(self, name):
        if name.startswith("_"):  # not delegated (and no recursion while unpickling)
            raise AttributeError(name)
        return getattr(self._lengths, name)


def grid_thresholds(lengths: CachedTrace, n: int | None = None) -> np.ndarray:
    """0, v + 0.5 at ``n`` quantiles v of the shared-cache lengths, and the longest prompt. ``n``
    default: :data:`GRID_THRESHOLDS`, or :data:`GRID_THRESHOLDS_LRU` where a cache has a capacity
    (replayed one threshold at a time)."""
    if n is None:
        n = GRID_THRESHOLDS if all(c is None for c in lengths.replay.capacity_blocks) else GRID_THRESHOLDS_LRU
    v = np.asarray(lengths.values)
    cum = np.cumsum(lengths.weights)
    pick = v[np.minimum(np.searchsorted(cum, np.linspace(0, 1, n + 1)[1:-1], side="left"), len(v) - 1)]
    top = float(np.max(lengths.replay.input_tokens))
    return np.unique(np.concatenate([[0.0], np.unique(pick) + 0.5, [top]]))


class LocalityModel(ThroughputModel):
    """:class:`~.throughput.ThroughputModel` whose needs come from the per-cluster replay (module
    docstring) at every candidate threshold; :meth:`needs_at` takes a threshold's needs from the
    candidate at or below it."""

    def __init__(self, model, lengths: CachedTrace, remote, local, decode, output_tokens: float, mode: str = "distribution",
                 scale: float = 1.0):
        # ThroughputModel.__init__ is not called: its cells are the shared cache's lengths
        if mode not in MODES:
            raise PlanError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.model, self.remote, self.local, self.decode, self.output_tokens, self.mode = model, remote, local, decode, output_tokens, mode
        self.decode_req_per_s_per_instance = decode.req_per_s(output_tokens)
        grid = grid_thresholds(lengths)
        self.scale = float(scale)
        self.lengths = _Grid(grid * self.scale, lengths)
        self.needs = self._needs(lengths.replay, grid)

    def _needs(self, rep: TraceReplay, grid: np.ndarray) -> Needs:
        """Eq. 3-5's needs at every candidate: sums over the requests of each replay, taken as
        row 0's sum plus the running sum of what changes from one candidate to the next."""
        ch = rep.routes(grid)
        w, scale = rep.weights, self.scale
        length = lambda n: np.maximum(n, 1) * scale  # noqa: E731  (tokens prefilled, at least 1, scaled)
        sums = lambda fn: ch.row_sums(w, fn)  # noqa: E731
        counted = w > 0  # the weights are equal over the requests after the warm-up
        p = ch.offload_counts(counted) / np.count_nonzero(counted)  # exact: 0 where nothing is offloaded
        q = 1.0 - p
        with np.errstate(divide="ignore", invalid="ignore"):
            long_l = np.where(p > 0, sums(lambda o, n: o * length(n)) / p, np.nan)
            short_l = np.where(q > 0, sums(lambda o, n: ~o * length(n)) / q, np.nan)
        if self.mode == "paper":
            remote_s = p * self._prefill_s(self.remote, np.nan_to_num(long_l, nan=1.0)) if self.remote else np.zeros_like(p)
            link = p * kv_cache_bytes(self.model, np.nan_to_num(long_l))
            local_s = q * self._prefill_s(self.local, np.nan_to_num(short_l, nan=1.0))
        else:
            remote_s = sums(lambda o, n: o * self._prefill_s(self.remote, length(n))) if self.remote else np.zeros_like(p)
            link = sums(lambda o, n: o * kv_cache_bytes(self.model, length(n)))
            local_s = sums(lambda o, n: ~o * self._prefill_s(self.local, length(n)))
        return Needs(grid * scale, p, long_l, short_l, np.where(p > 0, remote_s, 0.0), np.where(p > 0, link, 0.0), np.where(q > 0, local_s, 0.0))

    def needs_at(self, thresholds) -> Needs:
        t = np.atleast_1d(np.asarray(thresholds, float))
        k = np.maximum(np.searchsorted(self.needs.threshold_tokens, t, side="right") - 1, 0)
        rows = self.needs.select(k)
        return Needs(t, *(getattr(rows, f) for f in ("offload_frac", "long_tokens", "short_tokens", "remote_s", "link_bytes", "local_s")))


def per_cluster(lengths) -> tuple[CachedTrace, float] | None:
    """(trace, scale) where ``lengths`` is a :class:`CachedTrace` planned per cluster, possibly
    inside :class:`~.workload.Scaled` (``input_tokens_scale``, a risk sample's prompt drift: every
    length x scale, the prefix structure unchanged, so routing at t is the replay's at t / scale);
    None otherwise."""
    trace, scale = _unscaled(lengths)
    return (trace, scale) if trace is not None and trace.per_cluster else None


def _unscaled(lengths) -> tuple[CachedTrace | None, float]:
    scale = 1.0
    while isinstance(lengths, Scaled):
        scale *= lengths.factor
        lengths = lengths.base
    ok = isinstance(lengths, CachedTrace) and lengths.replay is not None
    return (lengths if ok else None), scale


def locality_report(workload, threshold_tokens: float | None) -> dict | None:
    """What the simulation's static routing will see at the plan's threshold (None without a
    trace replayed through a cache model): the share offloaded with one cache per cluster and
    with one shared cache, the mean tokens each path prefills, and which one the plan used."""
    lengths, scale = _unscaled(workload.uncached_input)
    if lengths is None:
        return None
    t = float("inf") if threshold_tokens is None else float(threshold_tokens) / scale
    out = lengths.replay.shares(t, lengths.shared_uncached)
    caps = lengths.replay.capacity_blocks
    mean = lambda v: None if v is None else v * scale  # noqa: E731
    return {"planned_with": lengths.scope, "threshold_tokens": threshold_tokens, "per_cluster_offload_frac": out["offload_frac"],
            "shared_cache_offload_frac": out["shared_cache_offload_frac"],
            "mean_offloaded_prefill_tokens": mean(out["mean_offloaded_prefill_tokens"]),
            "mean_local_prefill_tokens": mean(out["mean_local_prefill_tokens"]),
            "capacity_blocks": {"local": caps[0], "prfaas": caps[1]}}


#: The keys of a :func:`locality_report`, in the order CSV and XLSX columns show them.
LOCALITY_KEYS = ("planned_with", "threshold_tokens", "per_cluster_offload_frac", "shared_cache_offload_frac",
                 "mean_offloaded_prefill_tokens", "mean_local_prefill_tokens", "capacity_blocks")


def locality_columns(report: dict | None) -> dict:
    """``{"cache_locality": ...}`` for a flat CSV/XLSX row: the report's every key (capacity blocks
    as ``local`` / ``prfaas``), blank where there is no report (a row without a trace's cache
    model, or a baseline), so that every row has the same columns as JSON's ``cache_locality``."""
    blank = {k: ({"local": None, "prfaas": None} if k == "capacity_blocks" else None) for k in LOCALITY_KEYS}
    return {"cache_locality": blank if report is None else {k: report[k] for k in LOCALITY_KEYS}}
