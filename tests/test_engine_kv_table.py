"""Per-request cache of public checkpoints: `models import` + the engine preset against each
engine's own arithmetic (issue 19).

For each config in tests/data the expected bytes are computed here, from the raw config.json, by
the rule the engine applies, written out independently of the importer:

- attention pages: vLLM ``vllm/v1/kv_cache_interface.py`` (``FullAttentionSpec``: K and V of
  ``num_kv_heads`` heads per token; ``SlidingWindowSpec``: the last ``sliding_window`` tokens;
  ``MLAAttentionSpec``: one latent of kv_lora_rank + qk_rope_head_dim per token);
- recurrent states: vLLM ``vllm/model_executor/layers/mamba/mamba_utils.py``
  (``MambaStateShapeCalculator.mamba1_state_shape`` / ``mamba2_state_shape`` /
  ``gated_delta_net_state_shape`` / ``kda_state_shape`` / ``linear_attention_state_shape`` and
  ``MambaStateDtypeCalculator``), vLLM ``vllm/model_executor/models/config.py``
  (``NemotronHForCausalLMConfig``: checkpoint ``mamba_ssm_cache_dtype``, else float32), SGLang
  ``python/sglang/srt/configs/mamba_utils.py`` (``Mamba2StateShape.create``,
  ``KimiLinearStateShape.create``, ``mamba2_state_dtype``: conv bf16, SSM float32 unless the
  config's ``mamba_ssm_dtype`` says otherwise);
- which layer is which: the engines' model files (``deepseek_v2.py``, ``kimi_linear.py``,
  ``qwen3_next.py``, ``nemotron_h.py``, ``jamba.py``, ``falcon_h1.py``, ``gemma3.py``,
  ``gpt_oss.py``, ``step3_text.py``, ``mimo_v2_flash.py``, ``bailing_moe_linear.py``).
TP 1; block/page rounding (vLLM pads a Mamba page to the attention page) left out on both sides.
The tolerance is the issue's 2%.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prfaas_plan.catalog.engines import deploy
from prfaas_plan.catalog.hf_import import import_hf_config
from prfaas_plan.catalog.model import model_from_mapping
from prfaas_plan.roofline.kv import kv_cache_bytes

DATA = Path(__file__).resolve().parent / "data"
LENGTHS = (1024, 32 * 1024, 128 * 1024)
BF16, FP32 = 2, 4
TORCH_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _text_config(name: str) -> dict:
    raw = json.loads((DATA / name).read_text())
    cfg = dict(raw.get("text_config") or raw)
    if cfg.get("model_type") == "gemma3_text":  # transformers Gemma3TextConfig defaults
        cfg.setdefault("sliding_window_pattern", 6)
    return cfg


# --- the engines' per-layer arithmetic ----------------------------------------------------------


def attention_token_bytes(kv_heads: int, head: int, head_v: int | None = None) -> int:
    """FullAttentionSpec / SlidingWindowSpec page bytes per token, bf16."""
    return kv_heads * (head + (head_v or head)) * BF16


def mla_token_bytes(cfg: dict) -> int:
    """MLAAttentionSpec: one kv_lora_rank + qk_rope_head_dim latent per token, bf16."""
    return (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * BF16


def mamba1_bytes(inner: int, state: int, kernel: int, conv_b: int, ssm_b: int) -> int:
    """mamba1_state_shape: conv (inner, K-1), temporal (inner, state)."""
    return inner * (kernel - 1) * conv_b + inner * state * ssm_b


def mamba2_bytes(inner: int, groups: int, heads: int, head_dim: int, state: int, kernel: int, conv_b: int, ssm_b: int) -> int:
    """mamba2_state_shape: conv (K-1, inner + 2 groups state), temporal (heads, head_dim, state)."""
    return (kernel - 1) * (inner + 2 * groups * state) * conv_b + heads * head_dim * state * ssm_b


def gdn_bytes(cfg: dict, ssm_b: int) -> int:
    """gated_delta_net_state_shape: conv (K-1, 2 k_heads k_dim + v_heads v_dim) bf16,
    temporal (v_heads, v_dim, k_dim)."""
    kh, vh, kd, vd = cfg["linear_num_key_heads"], cfg["linear_num_value_heads"], cfg["linear_key_head_dim"], cfg["linear_value_head_dim"]
    return (cfg["linear_conv_kernel_dim"] - 1) * (2 * kh * kd + vh * vd) * BF16 + vh * vd * kd * ssm_b


def kda_bytes(lin: dict) -> int:
    """kda_state_shape / KimiLinearStateShape: conv (K-1, 3 heads head_dim) bf16, recurrent
    (heads, head_dim, head_dim) float32 (kda_state_dtype; SGLang's default)."""
    h, d = lin["num_heads"], lin["head_dim"]
    return (lin["short_conv_kernel_size"] - 1) * 3 * h * d * BF16 + h * d * d * FP32


# --- which layer is which, per family (the engines' model files) ---------------------------------


def cache(cfg: dict, engine: str) -> tuple[int, list[tuple[int, int]], int]:
    """(bytes per token of full layers, [(bytes per token, window)] of sliding layers, fixed
    state bytes) of one request, by the engine's rules for this model_type."""
    mt = cfg.get("model_type", "deepseek_ref")
    n = cfg.get("num_hidden_layers") or cfg["n_layers"]
    sglang = engine == "sglang"
    if "kv_lora_rank" in cfg and mt != "kimi_linear":  # deepseek_v2.py: MLA in every layer
        return n * mla_token_bytes(cfg), [], 0
    if mt == "kimi_linear":  # kimi_linear.py: 1-based full_attn_layers are MLA, the rest KDA
        lin = cfg["linear_attn_config"]
        return len(lin["full_attn_layers"]) * mla_token_bytes(cfg), [], len(lin["kda_layers"]) * kda_bytes(lin)
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads")
    head = cfg.get("head_dim") or cfg["hidden_size"] // heads
    if mt.startswith("step3"):  # step3_text.py: num_attention_groups KV heads
        return n * attention_token_bytes(cfg["num_attention_groups"], head), [], 0
    if mt in ("qwen3_moe", "minimax_m2"):
        return n * attention_token_bytes(kv, head), [], 0
    if mt in ("qwen3_next", "qwen3_5_moe"):  # qwen3_next.py: every full_attention_interval-th layer full
        full = n // cfg["full_attention_interval"]
        declared = TORCH_BYTES.get(cfg.get("mamba_ssm_dtype"))
        ssm_b = declared if declared and (sglang or mt == "qwen3_5_moe") else (FP32 if sglang else BF16)
        return full * attention_token_bytes(kv, head), [], (n - full) * gdn_bytes(cfg, ssm_b)
    if mt == "bailing_moe_linear":  # linear_attention_state_shape (heads, d, d) in the model dtype
        full = n // cfg["layer_group_size"]
        return full * attention_token_bytes(kv, head), [], (n - full) * heads * head * head * (FP32 if sglang else BF16)
    if mt == "mimo_v2_flash":  # hybrid_layer_pattern: 1 = sliding window with its own heads
        pat = cfg["hybrid_layer_pattern"]
        swa = attention_token_bytes(cfg["swa_num_key_value_heads"], cfg["swa_head_dim"], cfg["swa_v_head_dim"])
        return pat.count(0) * attention_token_bytes(kv, head, cfg["v_head_dim"]), [(pat.count(1) * swa, cfg["sliding_window"])], 0
    if mt in ("gpt_oss", "gemma3_text"):  # layer_types / every sliding_window_pattern-th layer global
        types = cfg.get("layer_types") or ["full_attention" if (i + 1) % cfg["sliding_window_pattern"] == 0 else "sliding_attention" for i in range(n)]
        per = attention_token_bytes(kv, head)
        return types.count("full_attention") * per, [(types.count("sliding_attention") * per, cfg["sliding_window"])], 0
    if mt == "jamba":  # jamba.py: attention where i % period == offset; Mamba1 elsewhere, bf16
        attn = sum(1 for i in range(n) if i % cfg["attn_layer_period"] == cfg["attn_layer_offset"])
        inner = cfg["mamba_expand"] * cfg["hidden_size"]
        ssm_b = FP32 if sglang else BF16
        return attn * attention_token_bytes(kv, head), [], (n - attn) * mamba1_bytes(inner, cfg["mamba_d_state"], cfg["mamba_d_conv"], BF16, ssm_b)
    if mt == "nemotron_h":  # nemotron_h.py: '*' attention, 'M' Mamba2; SSM float32 unless the config says
        pat = cfg["hybrid_override_pattern"]
        ssm_b = TORCH_BYTES[cfg.get("mamba_ssm_cache_dtype", "float32")]
        h, d = cfg["mamba_num_heads"], cfg["mamba_head_dim"]
        per = mamba2_bytes(h * d, cfg["n_groups"], h, d, cfg["ssm_state_size"], cfg["conv_kernel"], BF16, ssm_b)
        return pat.count("*") * attention_token_bytes(kv, head), [], pat.count("M") * per
    if mt == "falcon_h1":  # falcon_h1.py: attention and Mamba2 in every layer
        h, d = cfg["mamba_n_heads"], cfg["mamba_d_head"]
        per = mamba2_bytes(cfg["mamba_d_ssm"], cfg["mamba_n_groups"], h, d, cfg["mamba_d_state"], cfg["mamba_d_conv"], BF16, FP32 if sglang else BF16)
        return n * attention_token_bytes(kv, head), [], n * per
    raise AssertionError(f"no engine rule written for {mt}")


def engine_bytes(cfg: dict, engine: str, tokens: int) -> int:
    grow, swa, fixed = cache(cfg, engine)
    return grow * tokens + sum(b * min(tokens, w) for b, w in swa) + fixed


#: (config in tests/data, engine whose rule it is checked against)
TABLE = [
    ("kimi_linear_48b_a3b.json", "vllm"),
    ("kimi_linear_48b_a3b.json", "sglang"),
    ("kimi_k2.json", "vllm"),
    ("deepseek_v3_inference_config_671B.json", "vllm"),
    ("mimo_v2_flash.json", "vllm"),
    ("minimax_m2.json", "vllm"),
    ("gpt_oss_120b.json", "vllm"),
    ("qwen3_235b_a22b.json", "vllm"),
    ("qwen3_5_397b_a17b_ssm_dtype.json", "vllm"),
    ("qwen3_5_397b_a17b_ssm_dtype.json", "sglang"),
    ("qwen3_next_80b_a3b.json", "vllm"),
    ("qwen3_next_80b_a3b.json", "sglang"),
    ("step3.json", "vllm"),
    ("nemotron_h_8b_base_8k.json", "vllm"),
    ("nemotron_h_8b_base_8k.json", "sglang"),
    ("nemotron_nano_9b_v2.json", "vllm"),
    ("jamba_v0_1.json", "vllm"),
    ("gemma_3_27b_it.json", "vllm"),
    ("falcon_h1_7b.json", "vllm"),
    ("falcon_h1_7b.json", "sglang"),
    ("ring_mini_linear_2_0.json", "vllm"),
]


def _deployed(config: str, engine: str):
    data, _ = import_hf_config(DATA / config, name="imported")
    model, _ = deploy(model_from_mapping(data, config), engine)
    return model


@pytest.mark.parametrize(("config", "engine"), TABLE, ids=[f"{c[:-5]}-{e}" for c, e in TABLE])
@pytest.mark.parametrize("tokens", LENGTHS, ids=["1K", "32K", "128K"])
def test_kv_matches_engine_arithmetic(config, engine, tokens):
    """S_kv(l) of the imported model under the engine's preset equals the engine's own per-request
    cache at 1K, 32K and 128K tokens, within 2%."""
    expected = engine_bytes(_text_config(config), engine, tokens)
    assert kv_cache_bytes(_deployed(config, engine), tokens) == pytest.approx(expected, rel=0.02)


def test_table_covers_the_issue_families():
    """At least 12 distinct public configs, every family issue 19 names among them."""
    configs = {c for c, _ in TABLE}
    assert len(configs) >= 12
    families = {_text_config(c).get("model_type", "deepseek_ref") for c in configs}
    assert {"nemotron_h", "jamba", "gemma3_text", "falcon_h1", "step3_text", "qwen3_next", "gpt_oss", "kimi_linear"} <= families


def test_issue_ratios_are_gone():
    """The misses issue 19 measured, now fixed: Step-3 was 64x (64 KV heads assumed), Nemotron-H
    8B 12.4x at 128K (every block attention), Jamba 8.0x, Gemma 3 6x at 128K (every layer
    global). Each imported model's S_kv is now within 2% of the engine's, so those ratios are
    ~1; the old over-counts are recomputed here from the wrong layouts to show what was caught."""
    step3 = _text_config("step3.json")
    wrong = 61 * attention_token_bytes(64, 256) * 1024
    assert wrong / engine_bytes(step3, "vllm", 1024) == pytest.approx(64)
    nemo = _text_config("nemotron_h_8b_base_8k.json")
    wrong = 52 * attention_token_bytes(8, 128) * 131072
    assert wrong / engine_bytes(nemo, "vllm", 131072) == pytest.approx(12.4, abs=0.05)
    assert kv_cache_bytes(_deployed("nemotron_h_8b_base_8k.json", "vllm"), 131072) == pytest.approx(engine_bytes(nemo, "vllm", 131072), rel=0.02)


def test_state_dtype_follows_the_engine():
    """Qwen3-Next's recurrent state: bf16 under vLLM (mamba_ssm_cache_dtype=auto), fp32 under
    SGLang; the fp32 catalog default was 1.58x vLLM at 1K (issue 19)."""
    vllm, sglang = _deployed("qwen3_next_80b_a3b.json", "vllm"), _deployed("qwen3_next_80b_a3b.json", "sglang")
    assert (vllm.dtypes.linear_state, sglang.dtypes.linear_state) == ("bf16", "fp32")
    ratio = kv_cache_bytes(sglang, 1024) / kv_cache_bytes(vllm, 1024)
    assert math.isclose(ratio, 1.58, abs_tol=0.01)
