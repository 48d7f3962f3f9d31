"""The layer kinds a model's stack is made of (one frozen dataclass per attention or state-space
kind) and the names of their variants; read and checked by :mod:`prfaas_plan.catalog.model`,
turned into KV bytes, parameters and FLOPs by :mod:`prfaas_plan.roofline`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class FullAttention:
    """Full softmax attention with grouped KV heads (GQA; MHA when kv_heads == q_heads)."""

    count: int
    q_heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    output_gate: bool = False
    kind: str = "gqa"


@dataclass(frozen=True)
class SlidingWindow:
    """Sliding-window softmax attention: each query sees the last ``window_tokens`` keys."""

    count: int
    q_heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    window_tokens: int
    output_gate: bool = False
    kind: str = "swa"


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek-V2/V3): caches a kv_lora_rank latent + rope key."""

    count: int
    heads: int
    kv_lora_rank: int
    rope_dim: int
    qk_nope_dim: int
    v_head_dim: int
    q_lora_rank: int = 0
    kind: str = "mla"


@dataclass(frozen=True)
class LinearAttention:
    """Linear attention with a fixed-size recurrent state per value head (key_dim x value_dim):
    KDA (Kimi Delta Attention), Gated DeltaNet, Lightning Attention. ``conv_kernel`` > 0 adds a
    short causal convolution on q, k, v whose last (kernel - 1) inputs are cached."""

    count: int
    variant: str
    key_heads: int
    value_heads: int
    key_dim: int
    value_dim: int
    conv_kernel: int = 0
    output_gate: bool = False
    kind: str = "linear"


@dataclass(frozen=True)
class Mamba:
    """Selective state-space layer (Mamba1 as in Jamba, Mamba2 as in Nemotron-H and Falcon-H1).

    ``inner_dim`` channels (d_inner = expand * hidden) run through a short causal convolution of
    ``conv_kernel`` taps and a recurrent scan with a ``state_size`` (d_state) state per channel.
    Mamba1: a state of inner_dim x state_size; its dt projection has rank ``dt_rank``.
    Mamba2: ``heads`` x ``head_dim`` (= inner_dim) channels, a heads x head_dim x state_size
    state, and B/C projections shared over ``groups`` (n_groups) that also pass the convolution.
    ``parallel``: the layers run beside the attention of the same layers (Falcon-H1), so they do
    not count towards ``num_layers``."""

    count: int
    variant: str
    inner_dim: int
    state_size: int
    conv_kernel: int
    heads: int = 0
    head_dim: int = 0
    groups: int = 1
    dt_rank: int = 0
    parallel: bool = False
    kind: str = "mamba"


LayerGroup = Union[FullAttention, SlidingWindow, MLA, LinearAttention, Mamba]
LINEAR_VARIANTS = ("kda", "gated_deltanet", "lightning")
MAMBA_VARIANTS = ("mamba1", "mamba2")
#: Layer kinds whose per-request cache is a fixed-size recurrent state (plus a conv tail).
RECURRENT_KINDS = (LinearAttention, Mamba)
