"""Per-request KV-cache (and recurrent-state) size S_kv(l), by attention kind.

S_kv(l) = kv_bytes_per_token * (growing part of l) + fixed_bytes, where
- full attention (GQA) and MLA layers grow with every token;
- sliding-window layers grow only up to the window (KV of min(l, window) tokens);
- linear-attention layers hold a fixed recurrent state (value_heads x key_dim x value_dim in the
  state dtype) plus the short-convolution tail ((kernel - 1) cached inputs of q, k and v),
  independent of l;
- Mamba layers hold a fixed SSM state (Mamba1: inner_dim x state_size; Mamba2: heads x head_dim
  x state_size) plus the conv tail ((kernel - 1) x conv channels), independent of l.
The recurrent shapes are the engines' own (vLLM ``vllm/model_executor/layers/mamba/mamba_utils.py``
``MambaStateShapeCalculator``, SGLang ``python/sglang/srt/configs/mamba_utils.py``) at TP 1; the
dtypes are deployment settings (:mod:`prfaas_plan.catalog.engines`). Block/page rounding of the
engines' allocators (vLLM pads a Mamba page up to the attention page) is left out.
This is the quantity [PRFAAS] Eq. 1-3 ship across datacenters. Lengths may be numpy arrays.
"""

from __future__ import annotations

from ..catalog.model import MLA, RECURRENT_KINDS, FullAttention, LayerGroup, LinearAttention, Mamba, ModelSpec, SlidingWindow
from ..units import dtype_bytes
from . import elementwise as ew


def layer_kv_bytes_per_token(group: LayerGroup, kv_dtype: str) -> float:
    """KV bytes one token adds to one layer of ``group`` (before any window cap).

    GQA/SWA: kv_heads * (head_dim + v_head_dim) elements; MLA: kv_lora_rank + rope_dim elements
    (the compressed latent and the shared rope key); linear attention: 0."""
    b = dtype_bytes(kv_dtype)
    if isinstance(group, (FullAttention, SlidingWindow)):
        return group.kv_heads * (group.head_dim + group.v_head_dim) * b
    if isinstance(group, MLA):
        return (group.kv_lora_rank + group.rope_dim) * b
    return 0.0


def linear_state_bytes(group: LinearAttention, state_dtype: str, conv_dtype: str) -> float:
    """Fixed per-request state of one linear-attention layer, bytes.

    Recurrent state: value_heads * key_dim * value_dim elements (one key_dim x value_dim matrix
    per value head; Gated DeltaNet shares key heads across value heads, the state stays per value
    head). Conv tail: (conv_kernel - 1) * (2 * key_heads * key_dim + value_heads * value_dim)."""
    state = group.value_heads * group.key_dim * group.value_dim * dtype_bytes(state_dtype)
    conv_channels = 2 * group.key_heads * group.key_dim + group.value_heads * group.value_dim
    conv = max(group.conv_kernel - 1, 0) * conv_channels * dtype_bytes(conv_dtype)
    return state + conv


def mamba_state_bytes(group: Mamba, state_dtype: str, conv_dtype: str) -> float:
    """Fixed per-request state of one Mamba layer, bytes (vLLM ``mamba1_state_shape`` /
    ``mamba2_state_shape``, SGLang ``Mamba2StateShape.create``, at TP 1).

    Mamba1: SSM state inner_dim * state_size, conv tail (conv_kernel - 1) * inner_dim.
    Mamba2: SSM state heads * head_dim * state_size, conv tail (conv_kernel - 1) *
    (inner_dim + 2 * groups * state_size) (x, B and C pass the convolution)."""
    if group.variant == "mamba1":
        state, conv_channels = group.inner_dim * group.state_size, group.inner_dim
    else:
        state = group.heads * group.head_dim * group.state_size
        conv_channels = group.inner_dim + 2 * group.groups * group.state_size
    return state * dtype_bytes(state_dtype) + max(group.conv_kernel - 1, 0) * conv_channels * dtype_bytes(conv_dtype)


def recurrent_state_bytes(group: LayerGroup, state_dtype: str, conv_dtype: str) -> float:
    """Fixed per-request state of one layer of ``group`` (0 for softmax-attention kinds)."""
    if isinstance(group, LinearAttention):
        return linear_state_bytes(group, state_dtype, conv_dtype)
    if isinstance(group, Mamba):
        return mamba_state_bytes(group, state_dtype, conv_dtype)
    return 0.0


def kv_bytes_per_token(model: ModelSpec) -> float:
    """Bytes per token of the layers whose KV grows without bound (full attention and MLA)."""
    return sum(
        g.count * layer_kv_bytes_per_token(g, model.dtypes.kv_cache)
        for g in model.layers
        if isinstance(g, (FullAttention, MLA))
    )


def swa_bytes_per_token(model: ModelSpec) -> float:
    """Bytes per token of sliding-window layers, while l is below their window."""
    return sum(g.count * layer_kv_bytes_per_token(g, model.dtypes.kv_cache) for g in model.layers if isinstance(g, SlidingWindow))


def fixed_state_bytes(model: ModelSpec) -> float:
    """Per-request bytes independent of l: the linear-attention and Mamba states and conv tails."""
    d = model.dtypes
    return sum(g.count * recurrent_state_bytes(g, d.linear_state, d.conv_state) for g in model.layers if isinstance(g, RECURRENT_KINDS))


def kv_cache_bytes(model: ModelSpec, input_tokens: float) -> float:
    """S_kv(l): the whole per-request cache after prefilling ``input_tokens`` tokens, bytes.

    = kv_bytes_per_token * l + sum_swa(count * per_token * min(l, window)) + fixed_state_bytes.
    Used in [PRFAAS] Eq. 1 (Phi_kv = S_kv / T_prefill) and Eq. 3 (B_out / S_kv)."""
    total = kv_bytes_per_token(model) * input_tokens + fixed_state_bytes(model)
    for g in model.layers:
        if isinstance(g, SlidingWindow):
            total += g.count * layer_kv_bytes_per_token(g, model.dtypes.kv_cache) * ew.minimum(input_tokens, g.window_tokens)
    return total


def max_tokens_for_bytes(model: ModelSpec, budget_bytes: float) -> float:
    """Inverse of :func:`kv_cache_bytes`: the longest request whose cache fits ``budget_bytes``
    (0 if even the fixed state does not fit; inf if nothing grows)."""
    lo_cap = kv_cache_bytes(model, 0)
    if budget_bytes < lo_cap:
        return 0.0
    per_token = kv_bytes_per_token(model)
    # SWA grows only up to its window: solve piecewise by bisection (monotone in l).
    if per_token == 0 and swa_bytes_per_token(model) == 0:
        return float("inf")
    lo, hi = 0.0, 1.0
    while kv_cache_bytes(model, hi) <= budget_bytes:
        hi *= 2
        if hi > 1e15:
            return float("inf")
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if kv_cache_bytes(model, mid) <= budget_bytes else (lo, mid)
    return lo
