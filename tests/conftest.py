"""Shared fixtures: a tiny hand-made model and a hand-made part whose numbers are easy to
compute by hand, plus the shipped catalog loaded once per session."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prfaas_plan.catalog.hardware import Efficiency, load_hardware
from prfaas_plan.catalog.model import FFN, Dtypes, FullAttention, ModelSpec, load_model
from prfaas_plan.catalog.paths import catalog_names

MODEL_NAMES = catalog_names("models")


def tiny_model(**overrides) -> ModelSpec:
    """2 GQA layers, hidden 64, 4 q heads, 2 kv heads, head_dim 16, dense SwiGLU FFN 128,
    vocab 100, bf16 everywhere. Hand counts (used across the tests):
    attention 2 x (q 4096 + kv 4096 + o 4096) = 24,576; FFN 2 x 3 x 64 x 128 = 49,152;
    embeddings + LM head 2 x 100 x 64 = 12,800; total 86,528; KV 2 x 2 x 32 x 2 = 256 B/token."""
    spec = ModelSpec(
        name="tiny",
        description="hand-made test model",
        hidden_size=64,
        vocab_size=100,
        num_layers=2,
        tie_word_embeddings=False,
        dtypes=Dtypes(weights="bf16", kv_cache="bf16", linear_state="fp32", conv_state="bf16"),
        layers=(FullAttention(count=2, q_heads=4, kv_heads=2, head_dim=16, v_head_dim=16),),
        ffn=FFN(
            dense_layers=2,
            dense_intermediate=128,
            moe_layers=0,
            experts=0,
            active_experts=0,
            shared_experts=0,
            expert_intermediate=0,
            shared_intermediate=0,
        ),
        published_total_params=None,
        published_active_params=None,
        prefill_profiles=(),
        decode_profiles=(),
        sources=("hand-made for tests",),
        estimates=(),
    )
    return replace(spec, **overrides)


def simple_hardware(**overrides):
    """H200 with round numbers: bf16 1e15 FLOP/s, fp8 2e15, HBM 100 GB at 1e12 B/s, scale-up
    1e11 B/s per direction, NIC 5e10 B/s, 8 GPUs per scale-up domain; efficiencies 0.5
    (attention 0.25), 0.1 s per request + 0.01 s per forward (prefill), 1 ms per decode step,
    expert imbalance 0.2, no collective latency, 90% of memory usable."""
    base = load_hardware("h200")
    eff = Efficiency(
        basis="estimate",
        gemm_frac=0.5,
        attention_frac=0.25,
        linear_attention_frac=0.5,
        memory_frac=0.5,
        link_frac=0.5,
        request_overhead_s=0.1,
        forward_overhead_s=0.01,
        decode_step_overhead_s=0.001,
        decode_request_overhead_s=0.0,
        expert_imbalance_frac=0.2,
        collective_latency_s=0.0,
        memory_usable_frac=0.9,
    )
    hw = replace(
        base,
        name="simple",
        peak_flop_per_s={"bf16": 1e15, "fp8": 2e15},
        sfu_exp_per_s=None,  # no softmax floor: attention terms stay FLOPs / peak by hand
        power_w=None,  # no power-limit term: GEMM terms stay FLOPs / (peak x gemm_frac) by hand
        memory_capacity_bytes=100e9,
        memory_bandwidth_bytes_per_s=1e12,
        scaleup_bytes_per_s=1e11,
        scaleout_bytes_per_s=5e10,
        gpus_per_node=8,
        efficiency=eff,
    )
    return replace(hw, **overrides)


@pytest.fixture(scope="session")
def models() -> dict[str, ModelSpec]:
    return {name: load_model(name) for name in MODEL_NAMES}


@pytest.fixture(scope="session")
def h200():
    return load_hardware("h200")


@pytest.fixture(scope="session")
def h20():
    return load_hardware("h20")


@pytest.fixture
def make_tiny_model():
    """Factory for :func:`tiny_model` (keyword overrides replace ModelSpec fields)."""
    return tiny_model


@pytest.fixture
def make_simple_hardware():
    """Factory for :func:`simple_hardware` (keyword overrides replace Hardware fields)."""
    return simple_hardware



# --- hypothesis: a deterministic CI profile and a long local one --------------------------------
# CI (default): derandomized, so every run tries the same examples (a few thousand in all).
# `HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py tests/test_bad_input_fuzz.py`
# runs 10x as many examples (about 21,000), with fresh random draws each time.

import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", derandomize=True, deadline=None, database=None, suppress_health_check=_SLOW_OK, print_blob=True)
settings.register_profile("long", deadline=None, suppress_health_check=_SLOW_OK, print_blob=True)
settings.load_profile(HYPOTHESIS_PROFILE)
_EXAMPLE_SCALE = {"ci": 1.0, "long": 10.0}


def fuzz_examples(ci_examples: int) -> int:
    """Examples for one property: ``ci_examples`` in CI, scaled up in the long profile."""
    return max(1, round(ci_examples * _EXAMPLE_SCALE.get(HYPOTHESIS_PROFILE, 1.0)))
