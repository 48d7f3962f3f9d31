"""Parameter, FLOP and byte counts from the layer stack (prfaas_plan.roofline.counts): hand
computations on tiny models and published parameter totals of the catalog models."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prfaas_plan.catalog.model import FFN, MLA, LinearAttention, SlidingWindow
from prfaas_plan.roofline import counts

# --- the tiny dense model of conftest.tiny_model --------------------------------------------------


def test_tiny_attention_params(make_tiny_model):
    """GQA projections per layer: q 64x4x16 + k,v 64x2x(16+16) + o 4x16x64 = 3 x 4,096; x 2 layers."""
    m = make_tiny_model()
    assert counts.attention_params(m.layers[0], m.hidden_size) == 2 * (4096 + 4096 + 4096)


def test_tiny_total_and_active_params(make_tiny_model):
    """Total = attention 24,576 + SwiGLU 2 x 3 x 64 x 128 + embeddings and LM head 2 x 100 x 64;
    a dense model uses every parameter for every token."""
    m = make_tiny_model()
    assert counts.dense_params(m) == 24_576 + 49_152
    assert counts.embedding_params(m) == 12_800
    assert counts.total_params(m) == 86_528
    assert counts.active_params(m) == counts.total_params(m)
    assert counts.weight_bytes(m) == 2 * 86_528  # bf16


def test_tied_embeddings_count_once(make_tiny_model):
    """Tied input embedding and LM head share one 100 x 64 table."""
    m = make_tiny_model(tie_word_embeddings=True)
    assert counts.embedding_params(m) == 6_400
    assert counts.total_params(m) == 86_528 - 6_400


def test_output_gate_adds_one_projection(make_tiny_model):
    """A gated attention output (Qwen3.5) adds hidden x q_heads x v_head_dim per layer."""
    m = make_tiny_model()
    g = replace(m.layers[0], output_gate=True)
    assert counts.attention_params(g, 64) - counts.attention_params(m.layers[0], 64) == 2 * 64 * 4 * 16


def test_mla_params_by_hand():
    """MLA, hidden 16, 2 heads, kv_lora 8, rope 4, nope 6, v 5: q 16x2x10 + kv_a 16x12 +
    kv_b 8x2x11 + o 2x5x16 = 848; with a q LoRA of rank 3 the q part is 16x3 + 3x2x10."""
    g = MLA(count=1, heads=2, kv_lora_rank=8, rope_dim=4, qk_nope_dim=6, v_head_dim=5, q_lora_rank=0)
    assert counts.attention_params(g, 16) == 320 + 192 + 176 + 160
    assert counts.attention_params(replace(g, q_lora_rank=3), 16) == 108 + 192 + 176 + 160
    assert counts.attention_params(replace(g, count=3), 16) == 3 * 848


def test_linear_attention_params_by_hand():
    """Linear attention, hidden 16, 2 key heads x 8, 4 value heads x 6: q,k 2x16x2x8 + v 16x4x6
    + o 4x6x16 = 1,280; an output gate adds another 16x4x6."""
    g = LinearAttention(count=1, variant="kda", key_heads=2, value_heads=4, key_dim=8, value_dim=6, conv_kernel=4)
    assert counts.attention_params(g, 16) == 512 + 384 + 384
    assert counts.attention_params(replace(g, output_gate=True), 16) == 1280 + 384


def test_moe_params_by_hand(make_tiny_model):
    """MoE FFN, 8 experts of width 32, top-2, one shared expert of width 32, 2 MoE layers:
    experts 2 x 8 x 3 x 64 x 32, shared 2 x 3 x 64 x 32, router 2 x 64 x 8; active uses 2 experts."""
    ffn = FFN(dense_layers=0, dense_intermediate=0, moe_layers=2, experts=8, active_experts=2,
              shared_experts=1, expert_intermediate=32, shared_intermediate=32)
    m = make_tiny_model(ffn=ffn)
    expert = 3 * 64 * 32
    assert counts.expert_params(m) == expert
    base = 24_576 + 2 * expert + 2 * 64 * 8  # attention + shared experts + routers
    assert counts.dense_params(m) == base
    assert counts.total_params(m) == base + 2 * 8 * expert + 12_800
    assert counts.active_params(m) == base + 2 * 2 * expert + 12_800


def test_gemm_and_lm_head_flop(make_tiny_model):
    """GEMM FLOPs are 2 x tokens x per-token weights; the LM head is 2 x hidden x vocab."""
    m = make_tiny_model()
    assert counts.linear_layer_flop(m, 10) == 2 * 10 * (24_576 + 49_152)
    assert counts.lm_head_flop(m) == 2 * 64 * 100


# --- attention FLOPs and causal pairs ----------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 10, 1000])
def test_causal_pairs_full(length):
    """Causal attention over l tokens scores l(l+1)/2 query-key pairs."""
    assert counts.causal_pairs(length) == length * (length + 1) / 2


def test_causal_pairs_window_by_hand():
    """Window 4 over 10 tokens: queries see 1, 2, 3, 4, 4, 4, 4, 4, 4, 4 keys = 34."""
    assert counts.causal_pairs(10, 4) == 34
    assert counts.causal_pairs(3, 4) == 6  # shorter than the window: plain causal
    assert counts.causal_pairs(4, 4) == 10


@pytest.mark.parametrize("window", [1, 3, 16, 128])
@pytest.mark.parametrize("length", [1, 5, 16, 17, 200, 1000])
def test_causal_pairs_window_brute_force(length, window):
    """Closed form equals sum over queries i = 1..l of min(i, W)."""
    assert counts.causal_pairs(length, window) == sum(min(i, window) for i in range(1, length + 1))


def test_window_kernel_pairs_by_hand():
    """FlashAttention-3's local kernel (128-query x 96-key tiles) computes about W + 128 + 96 keys
    per query: a 128-token window over 1,000 tokens costs 352 * 353 / 2 + 648 * 352 = 290,224
    pairs, 2.4x the window's own 119,872 (128 * 129 / 2 + 872 * 128); below 352 tokens it is
    plain causal attention."""
    assert counts.SWA_TILE_OVERHANG_TOKENS == 224
    assert counts.window_kernel_pairs(1000, 128) == 352 * 353 / 2 + 648 * 352 == 290_224
    assert counts.causal_pairs(1000, 128) == 119_872
    assert counts.window_kernel_pairs(300, 128) == 300 * 301 / 2


def test_prefill_attention_flop_tiny(make_tiny_model):
    """2 layers x 2 x 4 q heads x (16 + 16) x l(l+1)/2 = 256 l(l+1) FLOPs."""
    m = make_tiny_model()
    assert counts.prefill_attention_flop(m, 10) == 256 * 10 * 11
    assert counts.prefill_attention_flop(m, 1000) == 256 * 1000 * 1001


def test_prefill_attention_flop_swa_and_mla(make_tiny_model):
    """SWA counts the pairs its kernel computes (a window of 4 widened by the 224-token tile
    overhang: all 55 causal pairs of 10 tokens); MLA prefill runs un-absorbed with d_qk = nope +
    rope; linear layers add no softmax attention FLOPs."""
    swa = SlidingWindow(count=1, q_heads=2, kv_heads=1, head_dim=8, v_head_dim=8, window_tokens=4)
    mla = MLA(count=1, heads=2, kv_lora_rank=8, rope_dim=4, qk_nope_dim=6, v_head_dim=5)
    lin = LinearAttention(count=1, variant="lightning", key_heads=2, value_heads=2, key_dim=8, value_dim=8)
    m = make_tiny_model(layers=(swa, mla, lin), num_layers=3)
    expected = 2 * 2 * 16 * 55 + 2 * 2 * (6 + 4 + 5) * 55
    assert counts.prefill_attention_flop(m, 10) == expected
    # linear attention: 8 FLOPs per state element per token, 2 heads x 8 x 8 state, 10 tokens
    assert counts.linear_attention_flop(m, 10) == 8 * 2 * 8 * 8 * 10


def test_decode_attention_flop_tiny(make_tiny_model):
    """One new token against c cached tokens: 2 layers x 2 x 4 heads x 32 x c."""
    m = make_tiny_model()
    assert counts.decode_attention_flop(m, 100) == 2 * 2 * 4 * 32 * 100


# --- MoE routing and tensor-parallel traffic ---------------------------------------------------


def _moe(make_tiny_model, experts=8, active=2):
    ffn = FFN(dense_layers=0, dense_intermediate=0, moe_layers=2, experts=experts, active_experts=active,
              shared_experts=0, expert_intermediate=32, shared_intermediate=0)
    return make_tiny_model(ffn=ffn)


def test_expected_distinct_experts_limits(make_tiny_model):
    """One token touches exactly k experts; many tokens touch all E; two tokens by hand
    8 x (1 - (6/8)^2) = 3.5; the dense model has none."""
    m = _moe(make_tiny_model)
    assert counts.expected_distinct_experts(m, 0) == 0
    assert counts.expected_distinct_experts(m, 1) == pytest.approx(2, rel=1e-12)
    assert counts.expected_distinct_experts(m, 2) == pytest.approx(3.5, rel=1e-12)
    assert counts.expected_distinct_experts(m, 10_000) == pytest.approx(8, rel=1e-9)
    assert counts.expected_distinct_experts(make_tiny_model(), 100) == 0


def test_expected_distinct_experts_monotone_and_bounded(make_tiny_model):
    """More tokens never touch fewer experts, and never more than E."""
    m = _moe(make_tiny_model, experts=256, active=8)
    values = [counts.expected_distinct_experts(m, t) for t in range(0, 2000, 7)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert all(0 <= v <= 256 for v in values)


# --- published parameter totals -----------------------------------------------------------------

#: (model, published total parameters, source). Totals from model cards via specs.md / [PRFAAS]
#: Table 1. prfaas-1t-hybrid is the paper's "internal 1T" model (architecture inferred).
PUBLISHED_TOTAL = [
    ("kimi-linear-48b", 48e9, "[PRFAAS] Table 1; specs.md"),
    ("mimo-v2-flash", 309e9, "[PRFAAS] Table 1; specs.md"),
    ("qwen3.5-397b", 397e9, "[PRFAAS] Table 1; specs.md"),
    ("qwen3-next-80b", 80e9, "specs.md"),
    ("ring-2.5-1t", 1e12, "[PRFAAS] Table 1; specs.md"),
    ("ring-mini-linear-2.0", 16e9, "specs.md"),
    ("minimax-m2.5", 229e9, "[PRFAAS] Table 1"),
    ("qwen3-235b", 235e9, "[PRFAAS] Table 1; specs.md"),
    ("kimi-k2", 1e12, "specs.md (1T)"),
    ("deepseek-v3", 671e9, "specs.md"),
    ("prfaas-1t-hybrid", 1e12, "[PRFAAS] Table 5 ('internal 1T hybrid')"),
]


@pytest.mark.parametrize(("name", "published", "source"), PUBLISHED_TOTAL, ids=[r[0] for r in PUBLISHED_TOTAL])
def test_total_params_near_published(models, name, published, source):
    """Counting the layer stack lands within 5% of the published total (norms, small gates and
    MTP heads are not counted, so a few percent is expected)."""
    assert counts.total_params(models[name]) == pytest.approx(published, rel=0.05), source


#: Active parameters where the card states at least two significant figures (>= 15B); the
#: "A3B"/"A10B"-style figures of the small models are rounded to one figure and not checked.
PUBLISHED_ACTIVE = [
    ("mimo-v2-flash", 15e9),
    ("qwen3.5-397b", 17e9),
    ("qwen3-235b", 22e9),
    ("kimi-k2", 32e9),
    ("deepseek-v3", 37e9),
    ("ring-2.5-1t", 63e9),
]


@pytest.mark.parametrize(("name", "published"), PUBLISHED_ACTIVE, ids=[r[0] for r in PUBLISHED_ACTIVE])
def test_active_params_near_published(models, name, published):
    """Active parameters (embeddings included) within 10% of the card."""
    assert counts.active_params(models[name]) == pytest.approx(published, rel=0.10)



def test_mamba_params_and_flop_by_hand(make_tiny_model):
    """Mamba terms (issue 19), hand-counted. Mamba2 of Nemotron-H 8B (hidden 4096, 128 heads x
    64, 8 groups, state 128, conv 4): in_proj 4096 x (2 x 8192 + 2 x 8 x 128 + 128) = 76,021,760
    plus out_proj 8192 x 4096 = 33,554,432. Scan + conv FLOPs per token: 8 x 8192 x 128 state
    elements + 2 x 4 x (8192 + 2048) conv channels. Mamba1 (hidden 4096, inner 8192, state 16,
    dt_rank 256): 4096 x 16384 + 8192 x (256 + 32) + 256 x 8192 + 8192 x 4096."""
    from prfaas_plan.catalog.model import Mamba

    m2 = Mamba(count=1, variant="mamba2", inner_dim=8192, state_size=128, conv_kernel=4, heads=128, head_dim=64, groups=8)
    assert counts.mamba_params(m2, 4096) == 76_021_760 + 33_554_432
    m1 = Mamba(count=1, variant="mamba1", inner_dim=8192, state_size=16, conv_kernel=4, dt_rank=256)
    assert counts.mamba_params(m1, 4096) == 4096 * 16384 + 8192 * 288 + 256 * 8192 + 8192 * 4096
    model = replace(make_tiny_model(), layers=(m2,), num_layers=1)
    assert counts.linear_attention_flop(model, 10) == 10 * (8 * 8192 * 128 + 2 * 4 * (8192 + 2048))
