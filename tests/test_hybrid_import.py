"""Issue 19: hybrid layer kinds (Mamba1/Mamba2, parallel attention + SSM), the layer-pattern keys
of each family, engine presets for the recurrent-state dtype, and an importer that refuses what
it does not understand instead of guessing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prfaas_plan.catalog.engines import ENGINES, deploy, state_dtypes
from prfaas_plan.catalog.hf_import import import_hf_config
from prfaas_plan.catalog.model import Mamba, model_from_mapping
from prfaas_plan.errors import PlanError
from prfaas_plan.roofline import counts
from prfaas_plan.roofline.kv import fixed_state_bytes, kv_bytes_per_token, mamba_state_bytes

DATA = Path(__file__).resolve().parent / "data"


def _model(config: str):
    data, notes = import_hf_config(DATA / config, name="m")
    return model_from_mapping(data, config), notes


def _edited(tmp_path: Path, config: str, **changes) -> Path:
    cfg = json.loads((DATA / config).read_text())
    target = cfg.get("text_config", cfg)
    for k, v in changes.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = v
    path = tmp_path / config
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def test_mamba2_state_by_hand():
    """Nemotron-H 8B's Mamba2 layer: SSM 128 heads x 64 x 128 state = 1,048,576 elements (4 MiB
    in fp32); conv 3 x (8192 + 2 x 8 x 128) = 30,720 elements (60 KiB in bf16)."""
    g = Mamba(count=1, variant="mamba2", inner_dim=8192, state_size=128, conv_kernel=4, heads=128, head_dim=64, groups=8)
    assert mamba_state_bytes(g, "fp32", "bf16") == 1_048_576 * 4 + 30_720 * 2


def test_mamba1_state_by_hand():
    """Jamba's Mamba1 layer: SSM 8192 x 16 = 131,072 elements, conv 3 x 8192 = 24,576 (bf16)."""
    g = Mamba(count=1, variant="mamba1", inner_dim=8192, state_size=16, conv_kernel=4, dt_rank=256)
    assert mamba_state_bytes(g, "bf16", "bf16") == (131_072 + 24_576) * 2


def test_nemotron_h_pattern():
    """hybrid_override_pattern: 24 'M' Mamba2, 4 '*' attention, 24 '-' MLP blocks -> 28 mixer
    layers, 24 non-gated MLPs, 4 layers without FFN; ~8B parameters."""
    m, _ = _model("nemotron_h_8b_base_8k.json")
    assert m.num_layers == 28
    assert [(type(g).__name__, g.count) for g in m.layers] == [("FullAttention", 4), ("Mamba", 24)]
    assert (m.ffn.dense_layers, m.ffn.no_ffn_layers, m.ffn.gated) == (24, 4, False)
    assert kv_bytes_per_token(m) == 4 * 8 * 256 * 2
    assert counts.total_params(m) / 1e9 == pytest.approx(8.1, abs=0.2)


def test_jamba_period_offset():
    """attn_layer_period 8 / offset 4: layers 4, 12, 20, 28 attention, 28 Mamba1; MoE every
    second layer from 1 (expert_layer_period/offset): 16 MoE layers; 52B / 12B parameters."""
    m, _ = _model("jamba_v0_1.json")
    assert [(g.kind, g.count) for g in m.layers] == [("gqa", 4), ("mamba", 28)]
    assert (m.ffn.moe_layers, m.ffn.dense_layers) == (16, 16)
    assert counts.total_params(m) / 1e9 == pytest.approx(52, rel=0.03)
    assert counts.active_params(m) / 1e9 == pytest.approx(12, rel=0.03)


def test_gemma3_text_config_and_window_pattern():
    """Gemma 3: fields under text_config, vocab_size and sliding_window_pattern from the class
    defaults (each printed as a note), every 6th of 62 layers global: 10 global + 52 sliding."""
    m, notes = _model("gemma_3_27b_it.json")
    assert [(g.kind, g.count) for g in m.layers] == [("gqa", 10), ("swa", 52)]
    assert m.layers[1].window_tokens == 1024
    assert any("vocab_size" in n for n in notes) and any("sliding_window_pattern" in n for n in notes)


def test_step3_attention_groups_are_kv_heads():
    """Step-3's num_attention_groups (1) is its KV head count: 61 x 1 x 512 x 2 B per token."""
    m, _ = _model("step3.json")
    assert kv_bytes_per_token(m) == 61 * 512 * 2


def test_falcon_h1_parallel_mamba():
    """Falcon-H1: 44 attention layers with a Mamba2 mixer beside each (not counted twice)."""
    m, _ = _model("falcon_h1_7b.json")
    assert m.num_layers == 44
    mamba = next(g for g in m.layers if isinstance(g, Mamba))
    assert mamba.parallel and mamba.count == 44
    assert fixed_state_bytes(m) > 0


@pytest.mark.parametrize(("config", "key", "value"), [
    ("nemotron_h_8b_base_8k.json", "hybrid_override_pattern", "M-X" * 17 + "M"),
    ("qwen3_5_397b_a17b.json", "layer_types", ["chunked_attention"] * 60),
    ("qwen3_235b_a22b.json", "sliding_window", 4096),
    ("qwen3_235b_a22b.json", "attention_chunk_size", 8192),
    ("nemotron_h_8b_base_8k.json", "hybrid_override_pattern", "M*"),
    ("nemotron_h_8b_base_8k.json", "mamba_ssm_cache_dtype", "float64"),
    ("deepseek_v3_inference_config_671B.json", "index_topk", 2048),  # DeepSeek-V3.2's indexer cache
])
def test_not_understood_is_refused_naming_the_key(tmp_path, config, key, value):
    """A key that shapes the layout or the state and is not understood (an unknown layer letter
    or type, a sliding window without a pattern, a key the importer never reads, a pattern of the
    wrong length, an unknown state dtype) is a PlanError naming that key."""
    with pytest.raises(PlanError, match=f"'{key}'"):
        import_hf_config(_edited(tmp_path, config, **{key: value}))


def test_defaults_are_notes(tmp_path):
    """Every default the importer applies is a note: MLA dims, KV heads, Mamba2 groups."""
    _, notes = import_hf_config(_edited(tmp_path, "kimi_k2.json", qk_rope_head_dim=None))
    assert any(n.startswith("qk_rope_head_dim absent") for n in notes)
    _, notes = import_hf_config(_edited(tmp_path, "qwen3_235b_a22b.json", num_key_value_heads=None))
    assert any(n.startswith("num_key_value_heads absent") for n in notes)
    _, notes = import_hf_config(_edited(tmp_path, "nemotron_h_8b_base_8k.json", n_groups=None))
    assert any(n.startswith("n_groups absent") for n in notes)


@pytest.mark.parametrize(("config", "engine", "state"), [
    ("qwen3_next_80b_a3b.json", "vllm", "bf16"),  # mamba_ssm_cache_dtype=auto -> model dtype
    ("qwen3_next_80b_a3b.json", "sglang", "fp32"),
    ("qwen3_next_80b_a3b.json", "trtllm", "bf16"),
    ("qwen3_5_397b_a17b_ssm_dtype.json", "vllm", "fp32"),  # honours the checkpoint's mamba_ssm_dtype
    ("kimi_linear_48b_a3b.json", "vllm", "fp32"),  # KDA state always fp32
    ("nemotron_h_8b_base_8k.json", "vllm", "fp32"),  # NemotronH hook: fp32 unless the checkpoint says
    ("jamba_v0_1.json", "vllm", "bf16"),
    ("ring_mini_linear_2_0.json", "vllm", "bf16"),  # Lightning: model dtype
])
def test_engine_state_dtype(config, engine, state):
    """Each engine preset's state dtype for a family (sources in catalog/engines.py)."""
    m, _ = _model(config)
    assert state_dtypes(m, ENGINES[engine])[0] == state
    assert deploy(m, engine)[0].dtypes.linear_state == state


def test_state_dtype_option_overrides_engine():
    """--state-dtype wins over the engine's choice; no option keeps the model file's."""
    m, _ = _model("qwen3_next_80b_a3b.json")
    assert deploy(m, "vllm", "fp32")[0].dtypes.linear_state == "fp32"
    assert deploy(m)[0] is not None and deploy(m)[0].dtypes == m.dtypes
    with pytest.raises(PlanError, match="--engine"):
        deploy(m, "tgi")


def test_qwen_max_window_layers(tmp_path):
    """Real Qwen3 configs carry max_window_layers with use_sliding_window false: every layer full
    (not refused); with use_sliding_window true the layers from max_window_layers slide."""
    m = model_from_mapping(import_hf_config(_edited(tmp_path, "qwen3_235b_a22b.json", max_window_layers=94, use_sliding_window=False,
                                                    sliding_window=131072))[0], "q")
    assert [(g.kind, g.count) for g in m.layers] == [("gqa", 94)]
    m = model_from_mapping(import_hf_config(_edited(tmp_path, "qwen3_235b_a22b.json", max_window_layers=90, use_sliding_window=True,
                                                    sliding_window=4096))[0], "q")
    assert [(g.kind, g.count) for g in m.layers] == [("gqa", 90), ("swa", 4)]
