"""Static routing replayed through one prefix cache per cluster: what each path really prefills.

The deployment has two prefix caches, the local PD cluster's and the PrfaaS cluster's (as the
simulator, :mod:`prfaas_plan.simulation.engine`). Under the static rule a request goes to PrfaaS
iff its uncached length *at the local cluster* exceeds the threshold t,

    x_i = L_i - min(512 h_local(i), L_i),   offload_i = x_i > t,
    prefilled_i = y_i = L_i - min(512 h_prfaas(i), L_i) if offload_i else x_i,

h_c(i) the leading blocks of request i that cluster c's cache holds when it arrives; then the
chosen cluster's cache takes all of its blocks. Routing decides which cache a conversation's
blocks go to, and the caches decide the routing of its later turns: a conversation whose first turn
was long went to PrfaaS, so its next turn finds nothing locally (x = its whole prompt) and is
offloaded again, where one shared cache would have kept it local. For a given t the replay is
fully determined (request i's route depends only on requests before it, routed by the same
rule), so there is nothing to iterate: every candidate t gets its own replay, exact under the
assumptions below.

Assumptions (shared with the simulator, except the first): a request's blocks enter the cache
when it arrives (the simulator inserts them at the end of its prefill, so a later turn that
arrives while its previous turn is still prefilling may miss there; on the Mooncake trace turns
are seconds to minutes apart); the planner's routing is the static rule with the given t
throughout (no bandwidth- or cache-aware policy, no re-planning); a cluster with no instances is
not special-cased (every request is routed by the rule).

Two implementations, which tests hold equal:

- :func:`replay_reference`: one t at a time through :class:`~.cache.PrefixCache` (LRU with a
  capacity per cluster; the chosen cluster's cache is refreshed by the lookup, then takes the
  blocks, as the simulator does). Used whenever a cache has a finite capacity.
- :func:`replay_unlimited`: unlimited caches, many thresholds at once. Blocks are numbered once
  per trace; each cluster keeps, per block, a bit mask with one bit per threshold (bit k set: the
  block is in that cluster's cache in the replay at threshold k). A request's hits at every
  threshold are the running AND of its blocks' masks (prefix-chained hashes: a block is cached
  only after a request holding it, so a present block's predecessors are present too), counted
  per bit; only blocks some earlier request held are looked at. About 10 numpy calls per request,
  whatever the number of thresholds (measured in scripts/cache_locality.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from .cache import BLOCK_TOKENS, PrefixCache

_WORD_BITS = 64
_U64 = np.dtype("<u8")  # the bit layout below assumes little-endian words


@dataclass(frozen=True, eq=False)
class Routes:
    """One replay per threshold (row k: ``thresholds_tokens[k]``), one column per request:
    ``offload`` (bool), ``local_tokens`` x (uncached at the local cluster, what the rule compares
    with t), ``prfaas_tokens`` y (uncached at the PrfaaS cluster); int32 token counts (0 when the
    whole prompt hits). The length a request prefills is y where offloaded, else x."""

    thresholds_tokens: np.ndarray
    offload: np.ndarray
    local_tokens: np.ndarray
    prfaas_tokens: np.ndarray

    def prefill_tokens(self) -> np.ndarray:
        return np.where(self.offload, self.prfaas_tokens, self.local_tokens)


@dataclass(frozen=True, eq=False)
class BlockIndex:
    """A trace's block hashes numbered once: ``nodes`` (flat int64, request i's blocks at
    ``nodes[start[i]:start[i] + count[i]]``), ``seen[i]`` (its leading blocks that some earlier
    request held: only those can hit in any cache), ``input_tokens``."""

    nodes: np.ndarray
    start: np.ndarray
    count: np.ndarray
    seen: np.ndarray
    input_tokens: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.max()) + 1 if len(self.nodes) else 0

    @classmethod
    def build(cls, hash_ids, input_tokens) -> BlockIndex:
        tokens = np.asarray(input_tokens, np.int64)
        if len(hash_ids) != len(tokens):
            raise PlanError(f"{len(hash_ids)} hash_ids lists for {len(tokens)} requests")
        count = np.fromiter((len(ids) for ids in hash_ids), np.int64, len(hash_ids))
        flat = np.fromiter(itertools.chain.from_iterable(hash_ids), np.int64, int(count.sum()))
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        _, first, nodes = np.unique(flat, return_index=True, return_inverse=True)
        req = np.repeat(np.arange(len(tokens)), count)
        earlier = req[first][nodes] < req  # the block was held by an earlier request
        pos = np.arange(len(flat)) - np.repeat(start, count)
        miss = np.flatnonzero(~earlier)
        first_new = count.copy()  # leading run of earlier-held blocks: up to the first new one
        np.minimum.at(first_new, req[miss], pos[miss])
        return cls(nodes.astype(np.int64), start, count, first_new, tokens)


def _hit_tokens(hits, tokens: int) -> np.ndarray:
    return np.minimum(np.asarray(hits, np.int64) * BLOCK_TOKENS, tokens)


def replay_reference(hash_ids, input_tokens, threshold_tokens: float, capacity_blocks=(None, None)) -> Routes:
    """The static rule at one threshold through two :class:`~.cache.PrefixCache` (``capacity_blocks``:
    (local, PrfaaS), None = unlimited), in arrival order."""
    caches = (PrefixCache(capacity_blocks[0]), PrefixCache(capacity_blocks[1]))
    n = len(input_tokens)
    off, x, y = np.zeros(n, bool), np.zeros(n, np.int32), np.zeros(n, np.int32)
    local_blocks = caches[0]._blocks
    remote_blocks = caches[1]._blocks
    for i, ids in enumerate(hash_ids):
        tokens = int(input_tokens[i])
        h0 = h1 = 0
        for h in ids:
            if h not in local_blocks:
                break
            h0 += 1
        for h in ids:
            if h not in remote_blocks:
                break
            h1 += 1
        x[i], y[i] = tokens - min(h0 * BLOCK_TOKENS, tokens), tokens - min(h1 * BLOCK_TOKENS, tokens)
        o = int(x[i] > threshold_tokens)
        off[i] = o
        caches[o].lookup(ids)  # refresh what is reused, as the simulator does
        caches[o].insert(ids)
    t = np.array([float(threshold_tokens)])
    return Routes(t, off[None, :], x[None, :], y[None, :])


def _bitmask_rows(index: BlockIndex, t: np.ndarray):
    """Yield (request, x, y, offload, cached) per request, x, y and offload arrays over the
    thresholds ``t``: the bit-mask replay of the module docstring (unlimited caches). ``cached``
    False: no block of the request was held before, so x = y = its whole prompt everywhere."""
    k = len(t)
    words = max(-(-k // _WORD_BITS), 1)
    masks = (np.zeros((index.n_nodes, words), _U64), np.zeros((index.n_nodes, words), _U64))  # local, PrfaaS
    pad = np.zeros(words * _WORD_BITS, bool)
    pad[:k] = True
    all_bits = np.packbits(pad, bitorder="little").view(_U64)
    nodes, start, count, seen, tokens_all = index.nodes, index.start, index.count, index.seen, index.input_tokens
    and_acc, unpack, pack = np.bitwise_and.accumulate, np.unpackbits, np.packbits
    for i in range(len(tokens_all)):
        tokens = int(tokens_all[i])
        s, g = int(start[i]), int(seen[i])
        if g:
            head = nodes[s:s + g]
            h0 = unpack(and_acc(masks[0][head], axis=0).view(np.uint8), axis=1, bitorder="little").sum(axis=0)[:k]
            h1 = unpack(and_acc(masks[1][head], axis=0).view(np.uint8), axis=1, bitorder="little").sum(axis=0)[:k]
            xi, yi = tokens - _hit_tokens(h0, tokens), tokens - _hit_tokens(h1, tokens)
        else:
            xi = yi = np.full(k, tokens, np.int64)
        oi = xi > t
        yield i, xi, yi, oi, g > 0
        pad[:k] = oi
        bits = pack(pad, bitorder="little").view(_U64)
        blocks = nodes[s:s + int(count[i])]
        masks[1][blocks] |= bits
        masks[0][blocks] |= all_bits & ~bits


def replay_unlimited(index: BlockIndex, thresholds_tokens) -> Routes:
    """The static rule at every threshold of ``thresholds_tokens`` at once, through unlimited
    caches (the bit-mask replay of the module docstring). Equal to :func:`replay_reference` with
    ``capacity_blocks=(None, None)``, threshold by threshold. Dense: (thresholds x requests)
    arrays; :func:`replay_changes` keeps only what changes from one threshold to the next."""
    t = np.asarray(thresholds_tokens, float).ravel()
    k, n = len(t), len(index.input_tokens)
    off, x, y = np.zeros((k, n), bool), np.zeros((k, n), np.int32), np.zeros((k, n), np.int32)
    for i, xi, yi, oi, _ in _bitmask_rows(index, t):
        x[:, i], y[:, i], off[:, i] = xi, yi, oi
    return Routes(t, off, x, y)


@dataclass(frozen=True, eq=False)
class RouteChanges:
    """The replays at ascending thresholds, stored as what changes: row 0 in full
    (``first_offload``, ``first_tokens``: per request, routed to PrfaaS, tokens it prefills), then
    each change of a request's (offload, tokens) at a row k >= 1 (``row``, ``request``, the new
    ``offload`` / ``tokens`` and the ``prev_*`` values of row k - 1). On the Mooncake trace ~13K
    changes for 251 or 953 thresholds (11M cells at 953): a request's route and length change at
    a few thresholds only."""

    thresholds_tokens: np.ndarray
    first_offload: np.ndarray
    first_tokens: np.ndarray
    row: np.ndarray
    request: np.ndarray
    offload: np.ndarray
    tokens: np.ndarray
    prev_offload: np.ndarray
    prev_tokens: np.ndarray

    def row_sums(self, weights: np.ndarray, fn) -> np.ndarray:
        """sum_i weights_i fn(offload_ki, tokens_ki) at every row k: row 0's sum plus the running
        sum of the changes' differences. ``fn(offload bool array, tokens int array)`` is applied
        element-wise."""
        w = np.asarray(weights, float)
        first = float(np.sum(w * fn(self.first_offload, self.first_tokens)))  # not w @ x: a BLAS call costs ~15 ms here
        delta = w[self.request] * (fn(self.offload, self.tokens) - fn(self.prev_offload, self.prev_tokens))
        per_row = np.bincount(self.row, weights=delta, minlength=len(self.thresholds_tokens))
        return first + np.cumsum(per_row)

    def offload_counts(self, counted: np.ndarray) -> np.ndarray:
        """Requests offloaded at every row among those ``counted`` (bool per request), exact
        (integer sums, so "none" is 0 and "all" is all, with no rounding left over)."""
        c = np.asarray(counted, bool)
        first = int(np.count_nonzero(self.first_offload & c))
        delta = (self.offload.astype(np.int64) - self.prev_offload) * c[self.request]
        per_row = np.bincount(self.row, weights=delta, minlength=len(self.thresholds_tokens))  # whole numbers, exact in floats
        return first + np.cumsum(np.rint(per_row).astype(np.int64))

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(offload, tokens) as (thresholds x requests) arrays (for tests and small cases)."""
        k = len(self.thresholds_tokens)
        off, tok = np.repeat(self.first_offload[None, :], k, 0), np.repeat(self.first_tokens[None, :], k, 0)
        for r, i, o, n in zip(self.row, self.request, self.offload, self.tokens):
            off[r:, i], tok[r:, i] = o, n
        return off, tok


def replay_changes(index: BlockIndex, hash_ids, thresholds_tokens, capacity_blocks=(None, None)) -> RouteChanges:
    """:func:`replay` at ascending thresholds, kept as :class:`RouteChanges` (memory in the
    changes, not thresholds x requests)."""
    t = np.asarray(thresholds_tokens, float).ravel()
    if np.any(np.diff(t) <= 0):
        raise PlanError("replay_changes needs strictly ascending thresholds")
    n = len(index.input_tokens)
    first_off, first_tok = np.zeros(n, bool), np.zeros(n, np.int32)
    parts: list[tuple] = []
    if capacity_blocks[0] is None and capacity_blocks[1] is None and len(t) >= BITMASK_MIN_THRESHOLDS:
        tokens, k = index.input_tokens, len(t)
        for i, xi, yi, oi, cached in _bitmask_rows(index, t):
            if not cached:  # the whole prompt at every t: offloaded below t = its length, local from there
                first_off[i], first_tok[i] = oi[0], tokens[i]
                j = int(np.searchsorted(t, tokens[i], side="left"))
                if 0 < j < k:
                    parts.append(([j], [i], [False], [tokens[i]], [True], [tokens[i]]))
                continue
            li = np.where(oi, yi, xi)
            first_off[i], first_tok[i] = oi[0], li[0]
            at = np.flatnonzero((li[1:] != li[:-1]) | (oi[1:] != oi[:-1]))
            if len(at):
                parts.append((at + 1, np.full(len(at), i), oi[at + 1], li[at + 1], oi[at], li[at]))
    else:
        prev = None
        for k, v in enumerate(t):
            r = replay_reference(hash_ids, index.input_tokens, v, capacity_blocks)
            oi, li = r.offload[0], r.prefill_tokens()[0]
            if prev is None:
                first_off[:], first_tok[:] = oi, li
            else:
                at = np.flatnonzero((li != prev[1]) | (oi != prev[0]))
                parts.append((np.full(len(at), k), at, oi[at], li[at], prev[0][at], prev[1][at]))
            prev = (oi, li)
    cols = [np.concatenate([p[j] for p in parts]) if parts else np.zeros(0) for j in range(6)]
    dtypes = (np.int64, np.int64, bool, np.int32, bool, np.int32)
    return RouteChanges(t, first_off, first_tok, *(c.astype(d) for c, d in zip(cols, dtypes)))


#: Below this many thresholds the per-threshold dict replay is faster than the bit-mask one
#: (~0.05 s per threshold against ~0.4-0.7 s for 250-950 on the Mooncake trace).
BITMASK_MIN_THRESHOLDS = 6


def replay(index: BlockIndex, hash_ids, thresholds_tokens, capacity_blocks=(None, None)) -> Routes:
    """The static rule at each threshold: :func:`replay_unlimited` where both caches are
    unlimited and there are many thresholds, else :func:`replay_reference` threshold by threshold."""
    t = np.asarray(thresholds_tokens, float).ravel()
    if capacity_blocks[0] is None and capacity_blocks[1] is None and len(t) >= BITMASK_MIN_THRESHOLDS:
        return replay_unlimited(index, t)
    rows = [replay_reference(hash_ids, index.input_tokens, v, capacity_blocks) for v in t]
    return Routes(t, *(np.concatenate([getattr(r, f) for r in rows]) for f in ("offload", "local_tokens", "prfaas_tokens")))
