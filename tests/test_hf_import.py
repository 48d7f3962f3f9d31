"""Hugging Face config.json -> model YAML (prfaas_plan.catalog.hf_import). The configs under
tests/data/ are copies of shared/reference/configs/ (each keeps its `_provenance`), so the suite
does not depend on that folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prfaas_plan.catalog.hf_import import import_hf_config
from prfaas_plan.catalog.model import load_model
from prfaas_plan.errors import PlanError
from prfaas_plan.roofline import counts
from prfaas_plan.roofline.kv import fixed_state_bytes, kv_bytes_per_token, swa_bytes_per_token

DATA = Path(__file__).resolve().parent / "data"

#: config file in tests/data -> shipped catalog model of the same architecture
PAIRS = [
    ("kimi_linear_48b_a3b.json", "kimi-linear-48b"),  # KDA + MLA (1-based full_attn_layers)
    ("mimo_v2_flash.json", "mimo-v2-flash"),  # SWA + GQA (hybrid_layer_pattern)
    ("qwen3_5_397b_a17b.json", "qwen3.5-397b"),  # Gated DeltaNet + gated GQA (text_config fields)
    ("minimax_m2.json", "minimax-m2.5"),  # GQA, MiniMax expert-width layout
    ("qwen3_235b_a22b.json", "qwen3-235b"),  # GQA MoE
    ("deepseek_v3_inference_config_671B.json", "deepseek-v3"),  # DeepSeek repo format (aliases)
    ("ring_mini_linear_2_0.json", "ring-mini-linear-2.0"),  # Lightning + GQA (layer_group_size)
]


def _import_and_load(tmp_path: Path, config: str, name: str = "imported"):
    data, notes = import_hf_config(DATA / config, name=name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return data, notes, load_model(path)


def test_data_configs_keep_provenance():
    """The copied configs carry their `_provenance` note (where each came from)."""
    for config, _ in PAIRS:
        assert json.loads((DATA / config).read_text())["_provenance"].strip()


@pytest.mark.parametrize(("config", "catalog"), PAIRS, ids=[p[1] for p in PAIRS])
def test_import_matches_shipped_model(tmp_path, models, config, catalog):
    """The imported YAML loads and has the shipped model's S_kv terms and parameter counts."""
    _, _, imported = _import_and_load(tmp_path, config)
    shipped = models[catalog]
    assert imported.num_layers == shipped.num_layers
    assert kv_bytes_per_token(imported) == kv_bytes_per_token(shipped)
    assert swa_bytes_per_token(imported) == swa_bytes_per_token(shipped)
    assert fixed_state_bytes(imported) == fixed_state_bytes(shipped)
    assert counts.total_params(imported) == counts.total_params(shipped)
    assert counts.active_params(imported) == counts.active_params(shipped)


@pytest.mark.parametrize(("config", "catalog"), PAIRS, ids=[p[1] for p in PAIRS])
def test_import_layer_groups_match_shipped_model(tmp_path, models, config, catalog):
    """Layer groups (by kind) and FFN are the shipped model's, not just its totals."""
    _, _, imported = _import_and_load(tmp_path, config)
    shipped = models[catalog]
    key = lambda g: g.kind  # noqa: E731
    assert sorted(imported.layers, key=key) == sorted(shipped.layers, key=key)
    assert imported.ffn == shipped.ffn


def test_import_records_provenance_and_notes(tmp_path):
    """The YAML cites the config and its provenance; what was assumed is in `estimates`."""
    data, notes, model = _import_and_load(tmp_path, "minimax_m2.json")
    assert "minimax_m2.json" in data["sources"][0]
    assert "MiniMax-M2" in data["sources"][0]  # from _provenance
    assert any("moe_intermediate_size" in n for n in notes)
    assert any("bf16 assumed" in n for n in notes)  # no dtype in the config
    assert [e["note"] for e in data["estimates"]] == notes
    assert model.estimates


def test_import_reads_fp8_dtype(tmp_path):
    """DeepSeek's repo config says dtype fp8: weights are fp8 and nothing is assumed."""
    data, notes, _ = _import_and_load(tmp_path, "deepseek_v3_inference_config_671B.json")
    assert data["dtypes"]["weights"] == "fp8"
    assert notes == []


def test_default_name_from_file(tmp_path):
    """Without a name the model is named after the config file."""
    data, _ = import_hf_config(DATA / "qwen3_235b_a22b.json")
    assert data["name"] == "qwen3-235b-a22b"


# --- configs that cannot be mapped --------------------------------------------------------------


def _config_without(tmp_path: Path, *keys: str) -> Path:
    cfg = json.loads((DATA / "qwen3_235b_a22b.json").read_text())
    for k in keys:
        del cfg[k]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize("key", ["num_hidden_layers", "hidden_size", "vocab_size", "num_experts_per_tok"])
def test_missing_required_key(tmp_path, key):
    """A config without a key the mapping needs is a PlanError naming the file and the key."""
    path = _config_without(tmp_path, key)
    with pytest.raises(PlanError) as err:
        import_hf_config(path)
    assert str(path) in str(err.value)
    assert f"'{key}'" in str(err.value)


def test_missing_attention_heads_is_not_guessed(tmp_path):
    """Without num_attention_heads a GQA model cannot be mapped: PlanError naming the key, not a
    YAML with q_heads 0 (the module promises nothing is guessed silently)."""
    path = _config_without(tmp_path, "num_attention_heads")
    with pytest.raises(PlanError, match="num_attention_heads"):
        import_hf_config(path)


def test_missing_heads_and_head_dim_is_planerror(tmp_path):
    """Without num_attention_heads and head_dim the import must fail as a PlanError (the CLI's
    clean one-line error), not with a ZeroDivisionError traceback."""
    path = _config_without(tmp_path, "num_attention_heads", "head_dim")
    with pytest.raises(PlanError):
        import_hf_config(path)


@pytest.mark.parametrize(
    ("text", "words"),
    [("{not json", "not valid JSON"), ("[1, 2, 3]", "JSON object"), ("", "not valid JSON")],
    ids=["invalid-json", "top-level-list", "empty"],
)
def test_invalid_json(tmp_path, text, words):
    """A file that is not a JSON object is a PlanError naming the file."""
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as err:
        import_hf_config(path)
    assert str(path) in str(err.value)
    assert words in str(err.value)


def test_missing_config_file(tmp_path):
    """A path that does not exist is a PlanError naming it."""
    with pytest.raises(PlanError, match="nowhere.json"):
        import_hf_config(tmp_path / "nowhere.json")


@pytest.mark.parametrize("key, value, shown", [("num_hidden_layers", True, "true"), ("hidden_size", 4096.5, "4096.5"),
                                               ("num_attention_heads", "64", '"64"')])
def test_a_whole_number_key_refuses_other_json(tmp_path, key, value, shown):
    """Issue 14: JSON `true` was read as 1 layer (Python's bool is an int); a fraction was truncated."""
    cfg = json.loads((DATA / "qwen3_235b_a22b.json").read_text())
    cfg[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(PlanError, match=rf"config.json: unexpected value \(key '{key}': expected a whole number, got {shown}\)"):
        import_hf_config(path)
