"""A scenario's ``workload.input_tokens: {kind: trace, ...}``: a trace file read into the
planner's length distributions, optionally through a prefix-cache model.

    input_tokens: {kind: trace, file: mooncake_fast25_conversation_trace.jsonl.gz,   # path or shipped name
                   format: mooncake,                         # optional: mooncake | azure | csv (detected)
                   cache: {kind: unlimited,                  # optional: none (default) | unlimited |
                                                             #   lru with capacity_blocks: N (512-token blocks)
                           scope: per-cluster}}              # optional: shared (default) | per-cluster
    input_tokens: {kind: trace, csv: lengths.csv}            # the older spelling: a length CSV

With a cache model the trace is replayed in arrival order through one shared
:class:`~prfaas_plan.traces.cache.PrefixCache`; each request's *uncached* length (what routing
and prefill see) is its input minus the tokens of its leading cached blocks, at least 1 (an engine
recomputes the last prompt token to get logits when the whole prompt hits). Decode still holds the
whole prompt, so the workload keeps both distributions (:class:`Workload` ``input`` and
``uncached_input``). A cache model needs block hashes (Mooncake); it replaces
``prefix_cache_hit_frac`` (a flat share), so a scenario may not give both.

``scope``: ``shared`` plans with that one cache (what routing sees where every cluster can reuse
every prefix, or under the simulator's cache-aware policy); ``per-cluster`` plans with the caches
the deployment has, one per cluster of the given capacity each, under static routing
(:mod:`.locality`: a conversation that began on PrfaaS is uncached locally). Either way the
uncached lengths carry the trace's replay, so the plan reports the offload share static routing
will see with a cache per cluster (:func:`.locality.locality_report`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..catalog.fields import Fields
from ..catalog.paths import resolve_trace
from ..errors import PlanError
from ..traces.cache import BLOCK_TOKENS, uncached_lengths
from ..traces.readers import FORMATS, read_trace, sniff_format
from .locality import SCOPES, TraceReplay, cached_trace
from .workload import Empirical, load_trace_csv

CACHE_KINDS = ("none", "unlimited", "lru")


@dataclass(frozen=True)
class TraceInput:
    """A scenario trace as the planner uses it. ``full``: every prompt's whole length (decode
    context; ``output_tokens_mean`` from the trace's output column when it has one);
    ``uncached``: the lengths left to prefill under the cache model (None without one);
    ``cache_model``: that model in words; ``source``: the trace's attribution line (None for the
    older ``csv:`` spelling, whose scenario lists its own sources)."""

    full: Empirical
    uncached: Empirical | None
    cache_model: str | None
    source: str | None
    hit_token_frac: float | None  # share of all input tokens served from the cache


def cache_model_text(kind: str, capacity_blocks: int | None, scope: str = "shared") -> str | None:
    if kind == "none":
        return None
    where = "one cache per cluster, static routing" if scope == "per-cluster" else "one shared cache"
    if kind == "unlimited":
        return f"unlimited prefix cache ({BLOCK_TOKENS}-token blocks, {where}, replayed in arrival order)"
    return f"LRU prefix cache of {capacity_blocks:,} blocks of {BLOCK_TOKENS} tokens ({where}, replayed in arrival order)"


@functools.lru_cache(maxsize=16)
def _sniff(path: str, mtime_ns: int, size: int) -> str:
    return sniff_format(path)


@functools.lru_cache(maxsize=16)
def _read(path: str, mtime_ns: int, size: int, fmt: str | None, cache_kind: str, capacity_blocks: int | None, scope: str = "shared") -> TraceInput:
    """The trace at ``path`` read once per content version (what-ifs and sweeps re-read the
    scenario many times); ``mtime_ns`` and ``size`` only key the cache."""
    trace = read_trace(path, fmt)
    ones = np.ones(len(trace))
    full = Empirical.from_arrays(trace.input_tokens, ones, path)
    if trace.output_tokens is not None:
        full = replace(full, output_tokens_mean=float(np.mean(trace.output_tokens)))
    if cache_kind == "none":
        return TraceInput(full, None, None, trace.source, None)
    if trace.hash_ids is None:
        raise PlanError(f"{path}: a prefix-cache model needs block hashes (hash_ids), which only Mooncake traces carry; use cache kind none")
    cap = None if cache_kind == "unlimited" else capacity_blocks
    uncached = uncached_lengths(trace, cap)
    hit = 1.0 - float(uncached.sum()) / float(trace.input_tokens.sum())
    replay = TraceReplay((path, mtime_ns, size, fmt, cap), trace.hash_ids, trace.input_tokens, trace.arrival_s, (cap, cap))
    return TraceInput(full, cached_trace(uncached, replay, scope, path), cache_model_text(cache_kind, capacity_blocks, scope), trace.source, hit)


def trace_input(f: Fields, base: Path, allow_cache: bool = True) -> TraceInput:
    """The ``kind: trace`` mapping ``f`` (its ``kind`` already read) as a :class:`TraceInput`;
    paths are taken from ``base`` (the scenario's folder). ``allow_cache`` False (a trace inside
    a mixture) refuses a cache model other than none."""
    if f.has("csv") == f.has("file"):
        raise f.error("file", "give exactly one of file (any trace format) and csv (a length CSV)")
    if f.has("csv"):
        csv_path = Path(f.str("csv"))
        d = load_trace_csv(csv_path if csv_path.is_absolute() else base / csv_path, f"{f.source}: key '{f.key_path('csv')}'")
        return TraceInput(d, None, None, None, None)
    where = f"{f.source}: key '{f.key_path('file')}'"
    fmt = f.str("format", None, choices=FORMATS)
    cache = f.sub("cache", None)
    kind, capacity, scope = "none", None, "shared"
    if cache is not None:
        kind = cache.str("kind", choices=CACHE_KINDS)
        scope = cache.str("scope", "shared", choices=SCOPES)
        if kind == "lru":
            capacity = cache.int("capacity_blocks", min_value=0)
        elif cache.has("capacity_blocks"):
            raise cache.error("capacity_blocks", f"only for cache kind lru (this cache is {kind})")
        if kind == "none" and cache.has("scope"):
            raise cache.error("scope", "only with a cache model (kind unlimited or lru)")
        cache.done()
    if kind != "none" and not allow_cache:
        raise f.error("cache", "a prefix-cache model is allowed only on a trace that is the whole input_tokens, not inside a mixture")
    if kind != "none" and fmt not in (None, "mooncake"):
        raise f.error("cache", f"a prefix-cache model needs block hashes (hash_ids), which only mooncake traces carry; this one is {fmt}")
    name = f.str("file")
    try:
        path = resolve_trace(name, base)
        st = path.stat()
        fmt = fmt or _sniff(str(path), st.st_mtime_ns, st.st_size)
    except PlanError as exc:
        raise PlanError(f"{where}: {exc}") from None
    except OSError as exc:  # the file went away between resolving and stat
        raise PlanError(f"{where}: {name}: cannot read ({exc.strerror})") from None
    if fmt == "csv":  # the project's length CSV: the planner's own reader (fractional counts too)
        if kind != "none":
            raise f.error("cache", f"a prefix-cache model needs block hashes (hash_ids), which the length CSV {path.name} does not carry")
        return TraceInput(load_trace_csv(path, where), None, None, f"length CSV {path.name}", None)
    try:
        return _read(str(path), st.st_mtime_ns, st.st_size, fmt, kind, capacity, scope)
    except PlanError as exc:
        raise PlanError(f"{where}: {exc}") from None
