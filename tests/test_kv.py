"""S_kv(l), the per-request KV cache and recurrent state ([PRFAAS] Eq. 1-3), per attention kind:
hand computations from specs.md, invariants over grids of lengths, and [PRFAAS] Table 5."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from prfaas_plan import units
from prfaas_plan.catalog.model import SlidingWindow
from prfaas_plan.catalog.paths import catalog_names
from prfaas_plan.paper import reference
from prfaas_plan.roofline.kv import (
    fixed_state_bytes,
    kv_bytes_per_token,
    kv_cache_bytes,
    max_tokens_for_bytes,
    swa_bytes_per_token,
)

MODEL_NAMES = catalog_names("models")
MIB = 2**20
LENGTHS = np.unique(np.round(np.geomspace(1, 2**20, 61)))  # 1 token .. 1M tokens


# --- hand computations (specs.md, "Derived per-request KV and state") ---------------------------


@pytest.mark.parametrize(
    ("name", "per_token"),
    [
        ("minimax-m2.5", 62 * 8 * 256 * 2),  # 62 GQA layers x 8 kv heads x (128 k + 128 v) x bf16 = 253,952
        ("qwen3-235b", 94 * 4 * 256 * 2),  # 192,512
        ("kimi-k2", 61 * 576 * 2),  # MLA latent 512 + rope 64: 70,272
        ("deepseek-v3", 61 * 576 * 2),  # 70,272
    ],
)
def test_dense_models_grow_per_token_and_hold_no_fixed_state(models, name, per_token):
    """Full-attention models: S_kv is bytes/token x l and nothing else."""
    m = models[name]
    assert kv_bytes_per_token(m) == per_token
    assert fixed_state_bytes(m) == 0
    assert swa_bytes_per_token(m) == 0
    assert kv_cache_bytes(m, 1000) == per_token * 1000


def test_minimax_number_from_specs(models):
    """The specs.md figure 253,952 B/token for MiniMax-M2.5, spelled out."""
    assert kv_bytes_per_token(models["minimax-m2.5"]) == 253_952
    assert kv_bytes_per_token(models["qwen3-235b"]) == 192_512
    assert kv_bytes_per_token(models["kimi-k2"]) == 70_272


def test_kimi_linear_fp32_state(models):
    """Kimi Linear: 7 MLA layers x 576 x 2 B/token; 20 KDA layers each hold a 32x128x128 fp32
    state plus a 3-input bf16 conv tail over q, k, v (32x128 each): ~41.4 MiB per request."""
    m = models["kimi-linear-48b"]
    assert kv_bytes_per_token(m) == 8064 == 7 * 576 * 2
    fixed = 20 * (32 * 128 * 128 * 4 + 3 * (32 * 128 * 3) * 2)
    assert fixed_state_bytes(m) == fixed
    assert fixed / MIB == pytest.approx(41.4, abs=0.05)
    assert kv_cache_bytes(m, 4096) == 8064 * 4096 + fixed


def test_kimi_linear_bf16_state_halves_the_recurrent_part(models):
    """With a bf16 recurrent state (an engine setting) the fixed part is ~21.4 MiB."""
    m = models["kimi-linear-48b"]
    m16 = replace(m, dtypes=replace(m.dtypes, linear_state="bf16"))
    fixed = 20 * (32 * 128 * 128 * 2 + 3 * (32 * 128 * 3) * 2)
    assert fixed_state_bytes(m16) == fixed
    assert fixed / MIB == pytest.approx(21.4, abs=0.05)
    assert kv_bytes_per_token(m16) == kv_bytes_per_token(m)  # MLA KV does not change


def test_mimo_swa_capped_at_window(models):
    """MiMo-V2-Flash: 9 global GQA layers (4 kv heads x (192 + 128) x 2 = 23,040 B/token) plus
    39 SWA layers (8 kv heads x 320 x 2 B/token) that hold at most the 128-token window."""
    m = models["mimo-v2-flash"]
    swa_per_token = 39 * 8 * 320 * 2
    assert kv_bytes_per_token(m) == 23_040 == 9 * 4 * 320 * 2
    assert swa_bytes_per_token(m) == swa_per_token
    assert fixed_state_bytes(m) == 0
    assert kv_cache_bytes(m, 64) == 23_040 * 64 + swa_per_token * 64  # below the window: both grow
    for length in (128, 129, 1024, 131_072):
        assert kv_cache_bytes(m, length) == 23_040 * length + 39 * 128 * 8 * 320 * 2
    # the flat SWA part is the 24.4 MiB specs.md quotes
    assert 39 * 128 * 8 * 320 * 2 / MIB == pytest.approx(24.4, abs=0.05)


def test_qwen35_gated_deltanet(models):
    """Qwen3.5-397B: 15 full layers x 2 kv heads x 512 x 2 = 30,720 B/token; 45 GDN layers each
    with 64 value heads x 128 x 128 fp32 state and a bf16 conv tail of 3 x (2 x 16 x 128 + 64 x 128)."""
    m = models["qwen3.5-397b"]
    assert kv_bytes_per_token(m) == 30_720
    assert fixed_state_bytes(m) == 45 * (64 * 128 * 128 * 4 + 3 * (16 * 128 * 2 + 64 * 128) * 2)
    assert fixed_state_bytes(m) / MIB == pytest.approx(183, abs=0.5)  # specs.md: 183 MiB fp32


def test_ring_lightning_state(models):
    """Ring-2.5-1T: 10 MLA layers x 576 x 2 = 11,520 B/token; 70 Lightning layers x 64 x 128 x 128
    fp32, no conv = exactly 280 MiB."""
    m = models["ring-2.5-1t"]
    assert kv_bytes_per_token(m) == 11_520
    assert fixed_state_bytes(m) == 70 * 64 * 128 * 128 * 4 == 280 * MIB


def test_tiny_gqa_by_hand(make_tiny_model):
    """2 layers x 2 kv heads x (16 + 16) x bf16 = 256 B/token; fp8 KV halves it."""
    m = make_tiny_model()
    assert kv_bytes_per_token(m) == 256
    assert kv_cache_bytes(m, 10) == 2560
    m8 = replace(m, dtypes=replace(m.dtypes, kv_cache="fp8"))
    assert kv_bytes_per_token(m8) == 128


# --- invariants over every catalog model and a grid of lengths ---------------------------------


def _swa_part(model, length: float) -> float:
    return sum(
        g.count * g.kv_heads * (g.head_dim + g.v_head_dim) * units.dtype_bytes(model.dtypes.kv_cache) * min(length, g.window_tokens)
        for g in model.layers
        if isinstance(g, SlidingWindow)
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_decomposition_per_token_plus_window_plus_fixed(models, name):
    """S_kv(l) = per_token x l + SWA(min(l, window)) + fixed, at every length: the fixed
    (linear-attention) part does not depend on l."""
    m = models[name]
    per_token, fixed = kv_bytes_per_token(m), fixed_state_bytes(m)
    for length in LENGTHS:
        residual = kv_cache_bytes(m, length) - per_token * length - _swa_part(m, length)
        assert residual == pytest.approx(fixed, rel=1e-9, abs=1e-3)
    assert kv_cache_bytes(m, 0) == pytest.approx(fixed, abs=1e-9)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_swa_flat_past_window(models, name):
    """Past the largest window only full-attention/MLA KV grows: S_kv(l2) - S_kv(l1) =
    per_token x (l2 - l1)."""
    m = models[name]
    windows = [g.window_tokens for g in m.layers if isinstance(g, SlidingWindow)]
    start = max(windows, default=1)
    per_token = kv_bytes_per_token(m)
    grid = [x for x in LENGTHS if x >= start]
    for a, b in zip(grid, grid[1:]):
        assert kv_cache_bytes(m, b) - kv_cache_bytes(m, a) == pytest.approx(per_token * (b - a), rel=1e-9)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_s_kv_monotone_in_length(models, name):
    """A longer prompt never has a smaller cache."""
    m = models[name]
    values = [kv_cache_bytes(m, x) for x in LENGTHS]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[-1] > values[0]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_max_tokens_for_bytes_inverts_kv_cache_bytes(models, name):
    """max_tokens_for_bytes(b) is the longest request that fits b: its cache fits and one more
    token does not, for budgets on and between the grid points."""
    m = models[name]
    for length in (1, 7, 64, 100, 127, 128, 129, 1000, 8192, 131_072, 10**6):
        for budget in (kv_cache_bytes(m, length), kv_cache_bytes(m, length + 0.5)):
            t = max_tokens_for_bytes(m, budget)
            assert kv_cache_bytes(m, t) <= budget
            assert kv_cache_bytes(m, t + 1) > budget
        assert max_tokens_for_bytes(m, kv_cache_bytes(m, length)) == pytest.approx(length, rel=1e-9)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_max_tokens_zero_when_fixed_state_does_not_fit(models, name):
    """A budget below the length-independent state holds no request at all."""
    m = models[name]
    below = kv_cache_bytes(m, 0) - 1.0
    assert max_tokens_for_bytes(m, below) == 0.0


def test_max_tokens_inside_swa_window(models):
    """MiMo below its 128-token window grows at (23,040 + 199,680) B/token: the inverse finds it."""
    m = models["mimo-v2-flash"]
    budget = 50 * (23_040 + 39 * 8 * 320 * 2)
    assert max_tokens_for_bytes(m, budget) == pytest.approx(50, rel=1e-9)


# --- [PRFAAS] Table 5: the internal 1T hybrid --------------------------------------------------


@pytest.mark.parametrize(("tokens", "paper_mib"), list(zip(reference.LENGTHS_TOKENS, reference.TABLE5_KV_MIB)))
def test_prfaas_1t_hybrid_reproduces_table5_s_kv(models, tokens, paper_mib):
    """[PRFAAS] Table 5 S_kv (190.8 / 308.9 / 701.3 / 2316.3 MiB at 1K/8K/32K/128K) within 2%."""
    assert reference.TABLE5_KV_MIB == (190.8, 308.9, 701.3, 2316.3)
    got = kv_cache_bytes(models["prfaas-1t-hybrid"], tokens) / MIB
    assert got == pytest.approx(paper_mib, rel=0.02)


def test_hybrids_hold_far_less_kv_than_dense_at_32k(models):
    """[PRFAAS] section 1: hybrid models make several times less KV than dense GQA at long
    context; at 32K MiniMax-M2.5 holds >= 8x the KV of MiMo-V2-Flash (paper: ~13x in Phi_kv)."""
    dense = kv_cache_bytes(models["minimax-m2.5"], 32 * 1024)
    for hybrid in ("mimo-v2-flash", "kimi-linear-48b", "qwen3.5-397b", "ring-2.5-1t"):
        assert dense / kv_cache_bytes(models[hybrid], 32 * 1024) >= 4
    assert dense / kv_cache_bytes(models["mimo-v2-flash"], 32 * 1024) >= 8
