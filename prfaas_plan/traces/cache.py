"""A prefix cache of KV blocks, keyed by the block hashes a trace carries (Mooncake ``hash_ids``).

Mooncake's traces give each request a list of *prefix-chained* block hashes: block ``i``'s hash
covers tokens ``[i * 512, (i + 1) * 512)`` *and* everything before them, so two requests share
block ``i`` only if they share the whole prefix up to its end. A request can therefore reuse the
cached KV of its leading run of present blocks; the first miss ends the reusable prefix.

The cache holds block hashes with least-recently-used eviction. Within one request the blocks are
touched tail first, so the leading block is the most recent: when space runs out, a request's
tail blocks go before its head (the order vLLM frees blocks in), and what stays cached is a usable
prefix. ``capacity_blocks=None`` is an unlimited cache (nothing is ever evicted); 0 caches nothing.

What this models and what it does not: a cache shared by every request (one global pool, as a
Mooncake-style store), hits decided when a request arrives (lookup) and its blocks added right
away (insert) - no time for the prefill to finish, no per-instance locality.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import PlanError

#: Tokens per block of Mooncake's ``hash_ids`` (FAST'25 trace release: 512-token blocks).
BLOCK_TOKENS = 512


class PrefixCache:
    """LRU prefix cache of block hashes; ``capacity_blocks`` None = unlimited.

    ``lookup(hash_ids)`` counts the leading blocks present (stopping at the first miss) and
    refreshes them; ``insert(hash_ids)`` adds every block (refreshing those present) and evicts
    least-recently-used blocks beyond the capacity. Both touch a request's blocks tail first.
    """

    __slots__ = ("capacity_blocks", "_blocks")

    def __init__(self, capacity_blocks: int | None = None):
        if capacity_blocks is not None and (isinstance(capacity_blocks, bool) or not isinstance(capacity_blocks, (int, np.integer)) or capacity_blocks < 0):
            raise PlanError(f"prefix cache capacity_blocks must be a whole number >= 0 or None (unlimited), got {capacity_blocks!r}")
        self.capacity_blocks = None if capacity_blocks is None else int(capacity_blocks)
        self._blocks: OrderedDict = OrderedDict()  # hash -> None; last = most recently used

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, block_hash) -> bool:
        return block_hash in self._blocks

    def lookup(self, hash_ids: Sequence) -> int:
        """Number of leading blocks of ``hash_ids`` in the cache (stops at the first miss);
        those blocks become the most recently used (the first block most recent of all)."""
        blocks = self._blocks
        hits = 0
        for h in hash_ids:
            if h not in blocks:
                break
            hits += 1
        if hits and self.capacity_blocks is not None:
            move = blocks.move_to_end
            for i in range(hits - 1, -1, -1):
                move(hash_ids[i])
        return hits

    def insert(self, hash_ids: Sequence) -> None:
        """Add every block of ``hash_ids`` (refreshing the ones present, the first block the most
        recent), then evict least-recently-used blocks until at most ``capacity_blocks`` remain."""
        blocks = self._blocks
        cap = self.capacity_blocks
        if cap is None:
            for h in hash_ids:
                blocks[h] = None
            return
        if cap == 0:
            return
        move = blocks.move_to_end
        for i in range(len(hash_ids) - 1, -1, -1):
            h = hash_ids[i]
            if h in blocks:
                move(h)
            else:
                blocks[h] = None
        while len(blocks) > cap:
            blocks.popitem(last=False)

    def blocks_lru_first(self) -> list:
        """The cached block hashes, least recently used first (for tests and inspection)."""
        return list(self._blocks)


def cached_tokens(hit_blocks: int, input_tokens: int, block_tokens: int = BLOCK_TOKENS) -> int:
    """Prompt tokens whose KV is reused: ``min(hit_blocks * block_tokens, input_tokens)`` (the
    last block of a prompt may be partial, so a hit on it covers only the tokens it holds)."""
    return min(int(hit_blocks) * int(block_tokens), int(input_tokens))


def replay_hits(hash_ids: Iterable[Sequence], capacity_blocks: int | None = None) -> np.ndarray:
    """Leading-block hits of each request, replayed in the given order through one
    :class:`PrefixCache` (lookup, then insert). Returns an int64 array, one entry per request."""
    cache = PrefixCache(capacity_blocks)
    lookup, insert = cache.lookup, cache.insert
    out = []
    for ids in hash_ids:
        out.append(lookup(ids))
        insert(ids)
    return np.asarray(out, dtype=np.int64)


def uncached_lengths(trace, capacity_blocks: int | None = None, block_tokens: int = BLOCK_TOKENS) -> np.ndarray:
    """Uncached (incremental) prompt tokens of each request of ``trace``: input tokens minus the
    tokens of its leading cached blocks, replaying the trace in arrival order through one
    :class:`PrefixCache` of ``capacity_blocks`` blocks (None = unlimited).

    ``trace`` is anything with ``input_tokens`` (int array) and ``hash_ids`` (a sequence of
    per-request hash sequences, in arrival order), e.g. a :class:`prfaas_plan.traces.readers.Trace`.
    A request whose every block hits gets 0 uncached tokens (an engine would recompute one token
    to get logits; that token is ignored here). Int64 array, one entry per request.
    """
    hash_ids = getattr(trace, "hash_ids", None)
    name = getattr(trace, "name", "trace")
    if hash_ids is None:
        raise PlanError(f"{name}: no hash_ids (block hashes), so a prefix cache cannot be replayed; only Mooncake-style traces carry them")
    input_tokens = np.asarray(trace.input_tokens, dtype=np.int64)
    if len(hash_ids) != len(input_tokens):
        raise PlanError(f"{name}: {len(hash_ids)} hash_ids lists for {len(input_tokens)} requests")
    hit_tokens = replay_hits(hash_ids, capacity_blocks) * int(block_tokens)
    return input_tokens - np.minimum(hit_tokens, input_tokens)
