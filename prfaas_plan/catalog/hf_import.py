"""Turn a Hugging Face ``config.json`` into a model YAML for the attention kinds we model.

Supported layouts: DeepSeek-V3 / Kimi K2 (MLA), Kimi Linear (KDA + MLA), Qwen3 MoE (GQA),
Qwen3-Next / Qwen3.5 (Gated DeltaNet + gated GQA), MiMo-V2-Flash (SWA + GQA), MiniMax-M2 (GQA),
Bailing / Ring linear (Lightning + GQA or MLA), and DeepSeek's own repo format. Whatever could not
be mapped is returned as a list of notes (and written to the YAML's ``estimates``), never guessed
silently.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import PlanError
from .fields import check_name
from .files import MAX_JSON_BYTES, read_text, show_path

#: More hidden layers than any published model has by two orders of magnitude; above this a
#: config is refused before a per-layer list is built for it.
MAX_LAYERS = 10_000

# DeepSeek reference-repo names -> HF names.
_ALIASES = {
    "dim": "hidden_size",
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "inter_dim": "intermediate_size",
    "moe_inter_dim": "moe_intermediate_size",
    "n_dense_layers": "first_k_dense_replace",
    "n_activated_experts": "num_experts_per_tok",
    "num_local_experts": "n_routed_experts",
    "num_experts": "n_routed_experts",
    "num_experts_per_token": "num_experts_per_tok",
    "num_shared_experts": "n_shared_experts",
    "moe_shared_expert_intermediate_size": "shared_expert_intermediate_size",
}


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:30]} is not finite")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number this tool accepts")


def _mapping(cfg: dict, key: str, path: Path) -> dict:
    """``cfg[key]`` as a mapping ({} when absent), else a PlanError naming the key."""
    value = cfg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{show_path(path)}: key '{key}': expected a JSON object, got {type(value).__name__}")
    return value


def _read(path: Path) -> dict:
    text = read_text(path, "JSON file", MAX_JSON_BYTES)
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise PlanError(f"{show_path(path)}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, a non-finite number, a 5,000-digit integer
        raise PlanError(f"{show_path(path)}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PlanError(f"{show_path(path)}: expected a JSON object at the top level")
    cfg = dict(_mapping(data, "text_config", path)) or dict(data)
    for k, v in data.items():  # keep top-level architecture/model_type beside a text_config
        cfg.setdefault(k, v)
    assumed = _mapping(cfg, "_assumed", path)
    for k, v in assumed.items():
        cfg.setdefault(k, v)
    cfg["_assumed_keys"] = list(assumed)
    cfg.pop("_assumed", None)
    for old, new in _ALIASES.items():
        if old in cfg and new not in cfg:
            cfg[new] = cfg[old]
    return cfg


def default_name(path: Path) -> str:
    """A catalog name from a config's file name (``qwen3_235b_a22b.json`` -> ``qwen3-235b-a22b``)."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", path.stem.replace("_", "-")).strip("-.")[:100]
    return name or "imported-model"


def import_hf_config(path: str | Path, name: str | None = None) -> tuple[dict, list[str]]:
    """Map ``config.json`` to a model-YAML mapping. Returns (mapping, notes on what was not mapped)."""
    path = Path(path)
    try:
        return _import(path, name)
    except KeyError as exc:
        raise PlanError(f"{show_path(path)}: key {exc}: missing, cannot map this config") from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise PlanError(f"{show_path(path)}: unexpected value ({exc}), cannot map this config") from None


def _whole(value: Any, key: str) -> int:
    """A config value read as a whole number: an int, or a float with no fraction; JSON ``true``
    is refused (Python's bool is an int, so ``int(True)`` read it as 1 layer, issue 14)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"key '{key}': expected a whole number, got {json.dumps(value)[:40]}")
    return int(value)


def _import(path: Path, name: str | None) -> tuple[dict, list[str]]:
    cfg = _read(path)
    notes: list[str] = []

    def need(key: str) -> Any:
        if key not in cfg or cfg[key] is None:
            raise PlanError(f"{show_path(path)}: key '{key}': missing, cannot map this config")
        return cfg[key]

    n_layers = _whole(need("num_hidden_layers"), "num_hidden_layers")
    if not 1 <= n_layers <= MAX_LAYERS:
        raise PlanError(f"{show_path(path)}: key 'num_hidden_layers': must be between 1 and {MAX_LAYERS:,}, got {n_layers:.6g}")
    hidden = _whole(need("hidden_size"), "hidden_size")
    kinds = _layer_kinds(cfg, n_layers, notes)
    full = _full_attention_group(cfg, notes)
    groups: list[dict] = []
    n_full = kinds.count("full")
    if n_full:
        groups.append({**full, "count": n_full})
    if kinds.count("swa"):
        groups.append(_swa_group(cfg, kinds.count("swa")))
    if kinds.count("linear"):
        groups.append(_linear_group(cfg, kinds.count("linear"), notes))

    ffn = _ffn(cfg, n_layers, notes)
    weights = _weights_dtype(cfg, path, notes)
    out: dict[str, Any] = {
        "name": check_name(name, "model name (--name, or the --output file name)") if name is not None else default_name(path),
        "description": f"imported from {path.name} ({cfg.get('model_type', 'unknown model_type')})",
        "hidden_size": hidden,
        "vocab_size": _whole(need("vocab_size"), "vocab_size"),
        "num_layers": n_layers,
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "dtypes": {"weights": weights, "kv_cache": "bf16", "linear_state": "fp32"},
        "layers": groups,
        "ffn": ffn,
        "sources": [f"{path.name} ({cfg.get('_provenance', 'Hugging Face config.json')})"],
    }
    for key in cfg.get("_assumed_keys", []):
        notes.append(f"{key} = {cfg[key]} was marked assumed in the source config")
    out["estimates"] = [{"key": "import", "note": n} for n in notes]
    return out, notes


def _layer_kinds(cfg: dict, n: int, notes: list[str]) -> list[str]:
    """'full', 'swa' or 'linear' for each layer."""
    lin = cfg.get("linear_attn_config")
    if isinstance(lin, dict) and lin.get("full_attn_layers"):
        full = set(lin["full_attn_layers"])  # 1-based in Kimi Linear configs
        return ["full" if i + 1 in full else "linear" for i in range(n)]
    if isinstance(cfg.get("layer_types"), list):
        return ["linear" if t == "linear_attention" else "swa" if t == "sliding_attention" else "full" for t in cfg["layer_types"]]
    if isinstance(cfg.get("hybrid_layer_pattern"), list):
        return ["swa" if t == 1 else "full" for t in cfg["hybrid_layer_pattern"]]
    if cfg.get("full_attention_interval"):
        k = _whole(cfg["full_attention_interval"], "full_attention_interval")
        return ["full" if (i + 1) % k == 0 else "linear" for i in range(n)]
    if cfg.get("layer_group_size") and str(cfg.get("model_type", "")).startswith("bailing"):
        k = _whole(cfg["layer_group_size"], "layer_group_size")
        return ["full" if (i + 1) % k == 0 else "linear" for i in range(n)]
    if isinstance(cfg.get("attn_type_list"), list):
        if any(t != 1 for t in cfg["attn_type_list"]):
            notes.append("attn_type_list has non-full entries; mapped as full attention")
        return ["full"] * n
    return ["full"] * n


def _full_attention_group(cfg: dict, notes: list[str]) -> dict:
    if not cfg.get("num_attention_heads"):
        raise KeyError("num_attention_heads")
    heads = _whole(cfg["num_attention_heads"], "num_attention_heads")
    if cfg.get("kv_lora_rank"):
        return {
            "kind": "mla",
            "heads": heads,
            "kv_lora_rank": _whole(cfg["kv_lora_rank"], "kv_lora_rank"),
            "rope_dim": _whole(cfg.get("qk_rope_head_dim", 64), "qk_rope_head_dim"),
            "qk_nope_dim": _whole(cfg.get("qk_nope_head_dim", 128), "qk_nope_head_dim"),
            "v_head_dim": _whole(cfg.get("v_head_dim", 128), "v_head_dim"),
            "q_lora_rank": _whole(cfg.get("q_lora_rank") or 0, "q_lora_rank"),
        }
    head_dim = _whole(cfg.get("head_dim") or cfg["hidden_size"] // heads, "head_dim")
    if not cfg.get("head_dim"):
        notes.append("head_dim absent: taken as hidden_size / num_attention_heads")
    group = {
        "kind": "gqa",
        "q_heads": heads,
        "kv_heads": _whole(cfg.get("num_key_value_heads") or heads, "num_key_value_heads"),
        "head_dim": head_dim,
        "v_head_dim": _whole(cfg.get("v_head_dim") or head_dim, "v_head_dim"),
    }
    if cfg.get("attn_output_gate"):
        group["output_gate"] = True
    return group


def _swa_group(cfg: dict, count: int) -> dict:
    head_dim = _whole(cfg.get("swa_head_dim") or cfg.get("head_dim"), "swa_head_dim")
    return {
        "kind": "swa",
        "count": count,
        "q_heads": _whole(cfg.get("swa_num_attention_heads") or cfg["num_attention_heads"], "swa_num_attention_heads"),
        "kv_heads": _whole(cfg.get("swa_num_key_value_heads") or cfg.get("num_key_value_heads"), "swa_num_key_value_heads"),
        "head_dim": head_dim,
        "v_head_dim": _whole(cfg.get("swa_v_head_dim") or cfg.get("v_head_dim") or head_dim, "swa_v_head_dim"),
        "window_tokens": _whole(cfg.get("sliding_window") or cfg.get("sliding_window_size"), "sliding_window"),
    }


def _linear_group(cfg: dict, count: int, notes: list[str]) -> dict:
    lin = cfg.get("linear_attn_config") if isinstance(cfg.get("linear_attn_config"), dict) else None
    if lin is not None:  # Kimi Delta Attention
        heads, dim = _whole(lin["num_heads"], "num_heads"), _whole(lin["head_dim"], "head_dim")
        return {"kind": "linear", "variant": "kda", "count": count, "key_heads": heads, "value_heads": heads,
                "key_dim": dim, "value_dim": dim, "conv_kernel": _whole(lin.get("short_conv_kernel_size", 0), "short_conv_kernel_size")}
    if cfg.get("linear_num_key_heads"):  # Gated DeltaNet (Qwen3-Next / Qwen3.5)
        return {"kind": "linear", "variant": "gated_deltanet", "count": count,
                "key_heads": _whole(cfg["linear_num_key_heads"], "linear_num_key_heads"), "value_heads": _whole(cfg["linear_num_value_heads"], "linear_num_value_heads"),
                "key_dim": _whole(cfg["linear_key_head_dim"], "linear_key_head_dim"), "value_dim": _whole(cfg["linear_value_head_dim"], "linear_value_head_dim"),
                "conv_kernel": _whole(cfg.get("linear_conv_kernel_dim", 0), "linear_conv_kernel_dim"), "output_gate": True}
    heads = _whole(cfg["num_attention_heads"], "num_attention_heads")  # Lightning attention (Bailing / Ring linear)
    dim = _whole(cfg.get("head_dim") or cfg["hidden_size"] // heads, "head_dim")
    notes.append("linear layers mapped as Lightning attention with num_attention_heads x head_dim state, no conv")
    return {"kind": "linear", "variant": "lightning", "count": count, "key_heads": heads, "value_heads": heads,
            "key_dim": dim, "value_dim": dim, "conv_kernel": 0}


def _ffn(cfg: dict, n: int, notes: list[str]) -> dict:
    experts = _whole(cfg.get("n_routed_experts") or 0, "n_routed_experts")
    if not experts:
        return {"dense_layers": n, "dense_intermediate": _whole(cfg["intermediate_size"], "intermediate_size"), "moe_layers": 0}
    freq = cfg.get("moe_layer_freq")
    if isinstance(freq, list):
        dense = sum(1 for x in freq if not x)
    else:
        dense = _whole(cfg.get("first_k_dense_replace") or 0, "first_k_dense_replace")
    shared = _whole(cfg.get("n_shared_experts") or (1 if cfg.get("shared_expert_intermediate_size") else 0), "n_shared_experts")
    ffn = {
        "dense_layers": dense,
        "moe_layers": n - dense,
        "experts": experts,
        "active_experts": _whole(cfg["num_experts_per_tok"], "num_experts_per_tok"),
        "expert_intermediate": _whole(cfg.get("moe_intermediate_size") or cfg["intermediate_size"], "moe_intermediate_size"),
        "shared_experts": shared,
    }
    if not cfg.get("moe_intermediate_size"):
        notes.append("moe_intermediate_size absent: intermediate_size taken as the expert width (MiniMax layout)")
    if dense:
        ffn["dense_intermediate"] = _whole(cfg["intermediate_size"], "intermediate_size")
    if shared:
        ffn["shared_intermediate"] = _whole(cfg.get("shared_expert_intermediate_size") or cfg["moe_intermediate_size"], "shared_expert_intermediate_size")
    return ffn


#: ``quantization_config.quant_method`` values that say the weights are stored in 8-bit floats.
_FP8_METHODS = ("fp8", "fbgemm_fp8", "finegrained_fp8")


def _weights_dtype(cfg: dict, path: Path, notes: list[str]) -> str:
    """Storage dtype of the weights: ``quantization_config`` first (what the checkpoint ships:
    fp8 block quantisation for DeepSeek-V3, Kimi K2, MiMo-V2-Flash; compressed-tensors,
    AWQ/GPTQ, MXFP4, ModelOpt), then ``dtype`` / ``torch_dtype``; bf16 with a note otherwise."""
    quant = _mapping(cfg, "quantization_config", path)
    method = str(quant.get("quant_method", "")).lower()
    if cfg.get("dtype") == "fp8" or method in _FP8_METHODS:
        return "fp8"
    if method == "mxfp4":
        return "fp4"
    if method == "modelopt":
        algo = str(quant.get("quant_algo", "")).upper()
        if "FP8" in algo:
            return "fp8"
        if "FP4" in algo:
            return "fp4"
    if method in ("awq", "gptq") and quant.get("bits") in (4, 8):
        return "int4" if quant["bits"] == 4 else "int8"
    if method == "compressed-tensors":
        weights = [g.get("weights") for g in _mapping(quant, "config_groups", path).values() if isinstance(g, dict)]
        weights = [w for w in weights if isinstance(w, dict)]
        if weights:
            bits, kind = weights[0].get("num_bits"), str(weights[0].get("type", "int"))
            dtype = {(4, "int"): "int4", (8, "int"): "int8", (4, "float"): "fp4", (8, "float"): "fp8"}.get((bits, kind))
            if dtype:
                return dtype
    if quant:
        notes.append(f"quantization_config (quant_method {method[:40] or 'not given'}) not understood: weights from the dtype below")
    torch_dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "")
    if torch_dtype in ("bfloat16", "float16"):
        return "bf16"
    notes.append("weight dtype not stated in the config: bf16 assumed")
    return "bf16"
