"""The prefix-cache model (prfaas_plan/traces/cache.py) on traces small enough to check by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.traces.cache import BLOCK_TOKENS, PrefixCache, cached_tokens, replay_hits, uncached_lengths


def _trace(inputs, hash_ids):
    return SimpleNamespace(name="tiny", input_tokens=np.array(inputs), hash_ids=tuple(tuple(h) for h in hash_ids))


def test_shared_prefix_hits_only_leading_blocks():
    """B shares A's first two blocks, then diverges; C shares block 0 and a later block of A but
    not block 1: prefix-chained hashes stop at the first miss, so C reuses 1 block, not 2."""
    cache = PrefixCache()
    assert cache.lookup([1, 2, 3]) == 0
    cache.insert([1, 2, 3])
    assert cache.lookup([1, 2, 7]) == 2
    assert cache.lookup([1, 9, 3]) == 1
    assert cache.lookup([5, 1, 2]) == 0
    assert len(cache) == 3


def test_uncached_lengths_shared_prefix_and_partial_last_block():
    """Request 0: 1,200 tokens (blocks 0, 1 full, block 2 holds 176): nothing cached.
    Request 1: same 1,200-token prompt: all three blocks hit, cached = min(3 x 512, 1200) = 1200.
    Request 2: 2,000 tokens extending request 0's first two blocks: 2,000 - 1,024 = 976."""
    trace = _trace([1200, 1200, 2000], [[10, 11, 12], [10, 11, 12], [10, 11, 20, 21]])
    assert uncached_lengths(trace).tolist() == [1200, 0, 976]
    assert cached_tokens(3, 1200) == 1200
    assert cached_tokens(2, 1200) == 2 * BLOCK_TOKENS


def test_lru_eviction_order_is_tail_first_within_a_request():
    """Capacity 3. Insert [1, 2, 3]: touched tail first, so LRU order is 3, 2, 1 (1 most recent).
    Insert [4]: evicts 3 (the tail of the older request), leaving the usable prefix [1, 2]."""
    cache = PrefixCache(3)
    cache.insert([1, 2, 3])
    assert cache.blocks_lru_first() == [3, 2, 1]
    cache.insert([4])
    assert cache.blocks_lru_first() == [2, 1, 4]
    assert cache.lookup([1, 2, 3]) == 2
    # the lookup refreshed 1 and 2 (1 most recent): the next insert evicts 4
    assert cache.blocks_lru_first() == [4, 2, 1]
    cache.insert([5])
    assert cache.blocks_lru_first() == [2, 1, 5]


def test_lru_evicts_least_recent_request_first():
    """Capacity 4, two 2-block requests A=[1,2], B=[3,4]; a lookup of A makes B the older one,
    so a third request C=[5,6] evicts B's blocks and A still hits."""
    trace = _trace([1024, 1024, 1024, 1024, 1024], [[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]])
    assert replay_hits(trace.hash_ids, capacity_blocks=4).tolist() == [0, 0, 2, 0, 0]
    assert replay_hits(trace.hash_ids, capacity_blocks=None).tolist() == [0, 0, 2, 0, 2]


def test_capacity_zero_caches_nothing():
    trace = _trace([600, 600], [[1, 2], [1, 2]])
    assert uncached_lengths(trace, capacity_blocks=0).tolist() == [600, 600]
    assert uncached_lengths(trace, capacity_blocks=None).tolist() == [600, 0]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_capacity_is_one_line(bad):
    with pytest.raises(PlanError, match="capacity_blocks"):
        PrefixCache(bad)


def test_trace_without_hash_ids_is_refused():
    with pytest.raises(PlanError, match="no hash_ids"):
        uncached_lengths(SimpleNamespace(name="azure", input_tokens=np.array([5]), hash_ids=None))
