"""Parameter, FLOP and byte counts of one forward pass, from the layer stack.

All functions of a token count also take numpy arrays of counts.

Conventions: a GEMM of an (m x k) by (k x n) costs 2*m*k*n FLOPs; FFNs are SwiGLU
(3 matrices); MoE routing is uniform, so a batch of B tokens touches
E * (1 - (1 - k/E)**B) distinct experts per layer in expectation. Norms, rotary embeddings,
softmax and small gate projections (KDA/GDN beta and decay, < 2% of parameters) are ignored.
"""

from __future__ import annotations

from ..catalog.model import MLA, FullAttention, LayerGroup, LinearAttention, Mamba, ModelSpec, SlidingWindow
from ..units import dtype_bytes
from . import elementwise as ew

#: FLOPs per token per recurrent-state element (value_heads * key_dim * value_dim) of a linear
#: attention layer, chunked prefill or recurrent decode. specs.md gives "roughly 8" [E:
#: kernel-dependent]: state update (k v^T, decay/delta correction) plus the q S read-out.
LINEAR_ATTENTION_FLOP_PER_STATE_ELEMENT = 8.0

#: FLOPs per token per SSM state element of a Mamba layer. Per element and token the selective
#: scan does a decay multiply and a B x update (3 FLOPs) and the C read-out (2 FLOPs); Mamba2's
#: chunked (SSD) prefill does about as many as matrix products. The same 8 as linear attention is
#: used as a round upper figure [E: kernel-dependent]; the causal conv adds 2 * conv_kernel per
#: conv channel per token.
MAMBA_FLOP_PER_STATE_ELEMENT = 8.0

#: HBM traffic of the chunked linear-attention prefill kernels per token per value head, as a multiple
#: of one bf16 (d_k + d_v) vector, i.e. bytes = VECTORS x 2 (d_k + d_v), by layer variant. The
#: kernels are bandwidth-bound, not tensor-bound: MoonshotAI/FlashKDA BENCHMARK_H20.md and
#: BENCHMARK_GB200.md time flash-linear-attention's kernels at T = 8,192, H = 96, d = 128 ("Fixed"
#: rows): fla chunk_kda 4.839 ms on H20 and 2.327 ms on GB200, chunk_gated_delta_rule 3.199 ms and
#: 1.279 ms. GB200 has 16x H20's bf16 tensor peak but 2x its HBM bandwidth, and the kernels run
#: 2.1x (KDA) and 2.5x (GDN) faster: time x datasheet bandwidth per token per head is 24.6 / 23.7 kB
#: (KDA) and 16.3 / 13.0 kB (GDN) on the two parts. VECTORS is that (geometric mean) over 2 (d_k +
#: d_v) = 512 B: KDA 47 (per-channel decay), Gated DeltaNet 28. Lightning (plain decayed linear
#: attention, no delta rule) has no published kernel timing; it takes Gated DeltaNet's, an upper
#: bound [E]. Priced at the datasheet bandwidth (the timings already hold what the kernels achieve).
LINEAR_SCAN_VECTORS = {"kda": 47.0, "gated_deltanet": 28.0, "lightning": 28.0}

#: Keys a sliding-window prefill kernel computes (and then masks) per query beyond the window, in
#: tokens. FlashAttention-3 on Hopper (hopper/tile_size.h, tile_size_fwd_sm90) runs local attention
#: with head dim <= 192 in tiles of B_m = 128 queries x B_n = 96 keys (head dim <= 128: 128 x 128). A
#: query tile needs the keys from its first row's window start to its last row, B_m + W - 1 of them,
#: covered by whole key blocks: on average (B_m + W - 2) / B_n + 1 blocks, so about W + B_m + B_n
#: keys per query instead of W. FA4 on Blackwell tiles 128 x 128 (256 query rows with two Q stages):
#: the same order; the Hopper figure serves every part [D]. An attention sink (MiMo-V2-Flash's SWA
#: layers, gpt-oss) is one learned logit per head folded into the softmax denominator, with no key or
#: value: nothing per token. For MiMo-V2-Flash's window of 128 this is 2.75x the window's pairs and
#: still < 2% of its GEMM FLOPs per token: the window kernel is not what its Table 3 cells miss.
SWA_TILE_OVERHANG_TOKENS = 128 + 96


def attention_params(g: LayerGroup, hidden: int) -> float:
    """Projection weights of all ``g.count`` layers of one attention group."""
    if isinstance(g, (FullAttention, SlidingWindow)):
        q = hidden * g.q_heads * g.head_dim
        kv = hidden * g.kv_heads * (g.head_dim + g.v_head_dim)
        o = g.q_heads * g.v_head_dim * hidden
        gate = hidden * g.q_heads * g.v_head_dim if g.output_gate else 0
        per_layer = q + kv + o + gate
    elif isinstance(g, MLA):
        qk = g.qk_nope_dim + g.rope_dim
        q = hidden * g.q_lora_rank + g.q_lora_rank * g.heads * qk if g.q_lora_rank else hidden * g.heads * qk
        kv_a = hidden * (g.kv_lora_rank + g.rope_dim)
        kv_b = g.kv_lora_rank * g.heads * (g.qk_nope_dim + g.v_head_dim)
        o = g.heads * g.v_head_dim * hidden
        per_layer = q + kv_a + kv_b + o
    elif isinstance(g, Mamba):
        per_layer = mamba_params(g, hidden)
    else:
        qk = 2 * hidden * g.key_heads * g.key_dim
        v = hidden * g.value_heads * g.value_dim
        o = g.value_heads * g.value_dim * hidden
        gate = hidden * g.value_heads * g.value_dim if g.output_gate else 0
        per_layer = qk + v + o + gate
    return float(per_layer * g.count)


def mamba_params(g: Mamba, hidden: int) -> float:
    """Projection weights of one Mamba layer (conv taps, A, D, dt bias and norms ignored).

    Mamba1: in_proj hidden x 2 inner (x, z); x_proj inner x (dt_rank + 2 state); dt_proj
    dt_rank x inner; out_proj inner x hidden. Mamba2: in_proj hidden x (2 inner + 2 groups x
    state + heads) (z, x, B, C, dt); out_proj inner x hidden."""
    if g.variant == "mamba1":
        return float(hidden * 2 * g.inner_dim + g.inner_dim * (g.dt_rank + 2 * g.state_size) + g.dt_rank * g.inner_dim + g.inner_dim * hidden)
    return float(hidden * (2 * g.inner_dim + 2 * g.groups * g.state_size + g.heads) + g.inner_dim * hidden)


def expert_params(model: ModelSpec) -> float:
    """Weights of one routed expert (SwiGLU: 3 matrices; 2 for a non-gated MLP)."""
    return model.ffn.matrices * model.hidden_size * model.ffn.expert_intermediate


def dense_params(model: ModelSpec) -> float:
    """Every weight that each token uses, except the embedding table and LM head: attention
    projections, dense FFN layers, shared experts and routers."""
    f, h = model.ffn, model.hidden_size
    attn = sum(attention_params(g, h) for g in model.layers)
    dense_ffn = f.matrices * h * f.dense_intermediate * f.dense_layers
    shared = f.matrices * h * f.shared_intermediate * f.shared_experts * f.moe_layers
    router = float(h * f.experts * f.moe_layers)
    return attn + dense_ffn + shared + router


def embedding_params(model: ModelSpec) -> float:
    return float(model.vocab_size * model.hidden_size * (1 if model.tie_word_embeddings else 2))


def total_params(model: ModelSpec) -> float:
    f = model.ffn
    return dense_params(model) + f.moe_layers * f.experts * expert_params(model) + embedding_params(model)


def active_params(model: ModelSpec) -> float:
    """Parameters one token uses (embeddings included), the usual "active" figure on model cards."""
    f = model.ffn
    return dense_params(model) + f.moe_layers * f.active_experts * expert_params(model) + embedding_params(model)


def expected_distinct_experts(model: ModelSpec, tokens: float) -> float:
    """Experts per MoE layer touched by ``tokens`` tokens under uniform top-k routing:
    E * (1 - (1 - k/E)**tokens)."""
    f = model.ffn
    if not f.moe_layers:
        return 0.0
    return f.experts * (1.0 - (1.0 - f.active_experts / f.experts) ** tokens)


def weight_bytes(model: ModelSpec) -> float:
    return total_params(model) * dtype_bytes(model.dtypes.weights)


def linear_layer_flop(model: ModelSpec, tokens: float) -> float:
    """GEMM FLOPs of ``tokens`` tokens through the weights: 2 * tokens * (dense + active expert
    params), plus the LM head for one token per request (prefill logits only the last position)."""
    f = model.ffn
    per_token = dense_params(model) + f.moe_layers * f.active_experts * expert_params(model)
    return 2.0 * tokens * per_token


def lm_head_flop(model: ModelSpec) -> float:
    return 2.0 * model.hidden_size * model.vocab_size


def causal_pairs(input_tokens: float, window_tokens: float | None = None) -> float:
    """Query-key pairs of causal attention over l tokens: l(l+1)/2; with a window W each query
    sees min(i, W) keys: W(W+1)/2 + (l - W) W once l > W."""
    n = ew.asfloat(input_tokens)
    full = n * (n + 1) / 2
    if window_tokens is None:
        return full
    w = float(window_tokens)
    return ew.where(n <= w, full, w * (w + 1) / 2 + (n - w) * w)


def window_kernel_pairs(input_tokens: float, window_tokens: float) -> float:
    """Query-key pairs a sliding-window prefill kernel computes over l tokens: the causal pairs
    of a window widened by the tile overhang, W + :data:`SWA_TILE_OVERHANG_TOKENS` (whole key blocks
    around each query tile; the masked ones cost the same MMAs and exponentials)."""
    return causal_pairs(input_tokens, float(window_tokens) + SWA_TILE_OVERHANG_TOKENS)


def prefill_attention_flop(model: ModelSpec, input_tokens: float) -> float:
    """Score and value FLOPs of softmax attention (full, windowed, MLA) over an l-token prompt:
    2 * q_heads * (d_qk + d_v) * pairs per layer; MLA prefill runs un-absorbed, so d_qk =
    qk_nope + rope and d_v = v_head_dim (specs.md, FLOPs). Windowed layers count the pairs their
    kernel computes (:func:`window_kernel_pairs`)."""
    total = 0.0
    for g in model.layers:
        if isinstance(g, FullAttention):
            total += g.count * 2.0 * g.q_heads * (g.head_dim + g.v_head_dim) * causal_pairs(input_tokens)
        elif isinstance(g, SlidingWindow):
            total += g.count * 2.0 * g.q_heads * (g.head_dim + g.v_head_dim) * window_kernel_pairs(input_tokens, g.window_tokens)
        elif isinstance(g, MLA):
            total += g.count * 2.0 * g.heads * (g.qk_nope_dim + g.rope_dim + g.v_head_dim) * causal_pairs(input_tokens)
    return total


def prefill_attention_exp(model: ModelSpec, input_tokens: float) -> float:
    """Softmax exponentials of an l-token prompt: one per query head per causal query-key pair
    (full, windowed, MLA layers); what the special-function unit computes (MUFU.EX2)."""
    total = 0.0
    for g in model.layers:
        if isinstance(g, FullAttention):
            total += g.count * g.q_heads * causal_pairs(input_tokens)
        elif isinstance(g, SlidingWindow):
            total += g.count * g.q_heads * window_kernel_pairs(input_tokens, g.window_tokens)
        elif isinstance(g, MLA):
            total += g.count * g.heads * causal_pairs(input_tokens)
    return total


def decode_attention_exp(model: ModelSpec, context_tokens: float) -> float:
    """Softmax exponentials of one new token against ``context_tokens`` cached tokens."""
    total = 0.0
    for g in model.layers:
        if isinstance(g, FullAttention):
            total += g.count * g.q_heads * context_tokens
        elif isinstance(g, SlidingWindow):
            total += g.count * g.q_heads * ew.minimum(context_tokens, g.window_tokens)
        elif isinstance(g, MLA):
            total += g.count * g.heads * context_tokens
    return total


def linear_attention_flop(model: ModelSpec, tokens: float) -> float:
    """Recurrent-state FLOPs of linear-attention and Mamba layers, linear in l. Linear attention:
    8 * value_heads * key_dim * value_dim per token per layer
    (:data:`LINEAR_ATTENTION_FLOP_PER_STATE_ELEMENT`). Mamba: 8 per SSM state element
    (:data:`MAMBA_FLOP_PER_STATE_ELEMENT`) plus 2 * conv_kernel per conv channel per token."""
    total = 0.0
    for g in model.layers:
        if isinstance(g, LinearAttention):
            total += g.count * LINEAR_ATTENTION_FLOP_PER_STATE_ELEMENT * g.value_heads * g.key_dim * g.value_dim * tokens
        elif isinstance(g, Mamba):
            state = g.inner_dim * g.state_size  # = heads * head_dim * state_size for Mamba2
            channels = g.inner_dim + (2 * g.groups * g.state_size if g.variant == "mamba2" else 0)
            total += g.count * (MAMBA_FLOP_PER_STATE_ELEMENT * state + 2.0 * g.conv_kernel * channels) * tokens
    return total


def linear_attention_scan_bytes(model: ModelSpec, tokens: float) -> float:
    """HBM bytes the chunked linear-attention kernels move to prefill ``tokens`` tokens (all
    layers, all value heads): count x value_heads x VECTORS x 2 (d_k + d_v) x tokens per group
    (:data:`LINEAR_SCAN_VECTORS`). Mamba layers are not included (their scan is priced per FLOP)."""
    total = 0.0
    for g in model.layers:
        if isinstance(g, LinearAttention):
            vectors = LINEAR_SCAN_VECTORS.get(g.variant, max(LINEAR_SCAN_VECTORS.values()))
            total += g.count * g.value_heads * vectors * 2.0 * (g.key_dim + g.value_dim) * tokens
    return total


def decode_attention_flop(model: ModelSpec, context_tokens: float) -> float:
    """Attention FLOPs of one new token against ``context_tokens`` cached tokens. MLA decodes
    absorbed: scores over the kv_lora + rope latent and values over the kv_lora latent."""
    total = 0.0
    for g in model.layers:
        if isinstance(g, FullAttention):
            total += g.count * 2.0 * g.q_heads * (g.head_dim + g.v_head_dim) * context_tokens
        elif isinstance(g, SlidingWindow):
            total += g.count * 2.0 * g.q_heads * (g.head_dim + g.v_head_dim) * ew.minimum(context_tokens, g.window_tokens)
        elif isinstance(g, MLA):
            total += g.count * 2.0 * g.heads * (2 * g.kv_lora_rank + g.rope_dim) * context_tokens
    return total + linear_attention_flop(model, 1.0)
