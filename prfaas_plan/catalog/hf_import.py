"""Turn a Hugging Face ``config.json`` into a model YAML for the attention kinds we model.

Supported layouts: DeepSeek-V3 / Kimi K2 (MLA), Kimi Linear (KDA + MLA), Qwen3 MoE (GQA),
Qwen3-Next / Qwen3.5 (Gated DeltaNet + gated GQA), MiMo-V2-Flash (SWA + GQA), MiniMax-M2 (GQA),
gpt-oss and Gemma 3 (SWA + GQA by ``layer_types`` / ``sliding_window_pattern``), Step-3 (GQA with
``num_attention_groups`` KV heads), Nemotron-H (Mamba2 + GQA + MLP blocks), Jamba (Mamba1 + GQA),
Falcon-H1 (GQA and Mamba2 in parallel), Bailing / Ring linear (Lightning + GQA or MLA), and
DeepSeek's own repo format; the layer patterns are read in :mod:`.hf_layout`. The importer never
guesses silently: a key that shapes the attention layout or the state and is not understood is a
PlanError naming it; every default applied is returned as a note (and written to the YAML's
``estimates``).
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
from .hf_layout import check_understood, declared_state_dtype, default, layer_kinds, mamba_group, whole_number

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
    "moe_num_experts": "n_routed_experts",  # Step-3
    "moe_top_k": "num_experts_per_tok",
    "share_expert_dim": "shared_expert_intermediate_size",
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


#: Defaults of Hugging Face configuration classes (transformers ``configuration_<model>.py``) for
#: keys a config.json may leave out, by model_type. Each one applied is printed as a note.
CLASS_DEFAULTS = {
    "gemma3_text": {"vocab_size": 262_208, "head_dim": 256, "sliding_window": 4096, "sliding_window_pattern": 6},
}


def _import(path: Path, name: str | None) -> tuple[dict, list[str]]:
    cfg = _read(path)
    notes: list[str] = []
    where = show_path(path)
    for key, value in CLASS_DEFAULTS.get(str(cfg.get("model_type")), {}).items():
        if key not in cfg:
            cfg[key] = value
            notes.append(f"{key} absent: {value} taken from the {cfg['model_type']} configuration class default")
    check_understood(cfg, where)

    def need(key: str) -> Any:
        if key not in cfg or cfg[key] is None:
            raise PlanError(f"{where}: key '{key}': missing, cannot map this config")
        return cfg[key]

    n_blocks = whole_number(need("num_hidden_layers"), "num_hidden_layers")
    if not 1 <= n_blocks <= MAX_LAYERS:
        raise PlanError(f"{where}: key 'num_hidden_layers': must be between 1 and {MAX_LAYERS:,}, got {n_blocks:.6g}")
    hidden = whole_number(need("hidden_size"), "hidden_size")
    kinds, parallel = layer_kinds(cfg, n_blocks, where)
    n_layers = n_blocks - kinds.count("mlp")  # blocks with a mixer
    groups: list[dict] = []
    if kinds.count("full"):
        groups.append({**_full_attention_group(cfg, notes), "count": kinds.count("full")})
    if kinds.count("swa"):
        groups.append(_swa_group(cfg, kinds.count("swa"), notes))
    if kinds.count("linear"):
        groups.append(_linear_group(cfg, kinds.count("linear"), notes))
    if kinds.count("mamba") or parallel:
        groups.append(mamba_group(cfg, n_layers if parallel else kinds.count("mamba"), parallel, notes, where))
    if not n_layers:
        raise PlanError(f"{where}: key 'num_hidden_layers': no block has an attention or Mamba mixer")

    ffn = _ffn(cfg, n_layers, notes, where)
    weights = _weights_dtype(cfg, path, notes)
    dtypes = {"weights": weights, "kv_cache": "bf16", "linear_state": "fp32"}
    declared = declared_state_dtype(cfg, where)
    if declared:
        dtypes["declared_state"] = declared
    if any(g["kind"] in ("linear", "mamba") for g in groups):
        dtypes["linear_state"] = declared or "fp32"
        if not declared:
            notes.append("recurrent state dtype not declared by the checkpoint: fp32 written (SGLang's default); "
                         "--engine / --state-dtype set it per deployment")
    out: dict[str, Any] = {
        "name": check_name(name, "model name (--name, or the --output file name)") if name is not None else default_name(path),
        "description": f"imported from {path.name} ({cfg.get('model_type', 'unknown model_type')})",
        "family": str(cfg.get("model_type") or "unknown")[:60],
        "hidden_size": hidden,
        "vocab_size": whole_number(need("vocab_size"), "vocab_size"),
        "num_layers": n_layers,
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "dtypes": dtypes,
        "layers": groups,
        "ffn": ffn,
        "sources": [f"{path.name} ({cfg.get('_provenance', 'Hugging Face config.json')})"],
    }
    for key in cfg.get("_assumed_keys", []):
        notes.append(f"{key} = {cfg[key]} was marked assumed in the source config")
    out["estimates"] = [{"key": "import", "note": n} for n in notes]
    return out, notes


def _full_attention_group(cfg: dict, notes: list[str]) -> dict:
    if not cfg.get("num_attention_heads"):
        raise KeyError("num_attention_heads")
    heads = whole_number(cfg["num_attention_heads"], "num_attention_heads")
    if cfg.get("kv_lora_rank"):
        return {
            "kind": "mla",
            "heads": heads,
            "kv_lora_rank": whole_number(cfg["kv_lora_rank"], "kv_lora_rank"),
            "rope_dim": whole_number(default(cfg, "qk_rope_head_dim", 64, notes, " (DeepSeek-V3 value)"), "qk_rope_head_dim"),
            "qk_nope_dim": whole_number(default(cfg, "qk_nope_head_dim", 128, notes, " (DeepSeek-V3 value)"), "qk_nope_head_dim"),
            "v_head_dim": whole_number(default(cfg, "v_head_dim", 128, notes, " (DeepSeek-V3 value)"), "v_head_dim"),
            "q_lora_rank": whole_number(cfg.get("q_lora_rank") or 0, "q_lora_rank"),
        }
    head_dim = whole_number(cfg.get("head_dim") or cfg["hidden_size"] // heads, "head_dim")
    if not cfg.get("head_dim"):
        notes.append("head_dim absent: taken as hidden_size / num_attention_heads")
    if cfg.get("num_key_value_heads"):
        kv_heads = whole_number(cfg["num_key_value_heads"], "num_key_value_heads")
    elif cfg.get("num_attention_groups"):  # Step-3: KV heads are "attention groups"
        kv_heads = whole_number(cfg["num_attention_groups"], "num_attention_groups")
    else:
        kv_heads = heads
        notes.append("num_key_value_heads absent: one KV head per query head (MHA, the Hugging Face default)")
    group = {
        "kind": "gqa",
        "q_heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "v_head_dim": whole_number(cfg.get("v_head_dim") or head_dim, "v_head_dim"),
    }
    if cfg.get("share_q_dim"):
        notes.append(f"share_q_dim {cfg['share_q_dim']} (low-rank query) not modelled: q projection counted at full rank (weights only)")
    if cfg.get("attn_output_gate"):
        group["output_gate"] = True
    return group


def _swa_group(cfg: dict, count: int, notes: list[str]) -> dict:
    full = _full_attention_group(cfg, [])
    head_dim = whole_number(cfg.get("swa_head_dim") or full["head_dim"], "swa_head_dim")
    return {
        "kind": "swa",
        "count": count,
        "q_heads": whole_number(cfg.get("swa_num_attention_heads") or full["q_heads"], "swa_num_attention_heads"),
        "kv_heads": whole_number(cfg.get("swa_num_key_value_heads") or full["kv_heads"], "swa_num_key_value_heads"),
        "head_dim": head_dim,
        "v_head_dim": whole_number(cfg.get("swa_v_head_dim") or cfg.get("v_head_dim") or head_dim, "swa_v_head_dim"),
        "window_tokens": whole_number(cfg.get("sliding_window") or cfg.get("sliding_window_size"), "sliding_window"),
    }


def _linear_group(cfg: dict, count: int, notes: list[str]) -> dict:
    lin = cfg.get("linear_attn_config") if isinstance(cfg.get("linear_attn_config"), dict) else None
    if lin is not None:  # Kimi Delta Attention
        heads, dim = whole_number(lin["num_heads"], "num_heads"), whole_number(lin["head_dim"], "head_dim")
        return {"kind": "linear", "variant": "kda", "count": count, "key_heads": heads, "value_heads": heads,
                "key_dim": dim, "value_dim": dim, "conv_kernel": whole_number(lin.get("short_conv_kernel_size", 0), "short_conv_kernel_size")}
    if cfg.get("linear_num_key_heads"):  # Gated DeltaNet (Qwen3-Next / Qwen3.5)
        return {"kind": "linear", "variant": "gated_deltanet", "count": count,
                "key_heads": whole_number(cfg["linear_num_key_heads"], "linear_num_key_heads"), "value_heads": whole_number(cfg["linear_num_value_heads"], "linear_num_value_heads"),
                "key_dim": whole_number(cfg["linear_key_head_dim"], "linear_key_head_dim"), "value_dim": whole_number(cfg["linear_value_head_dim"], "linear_value_head_dim"),
                "conv_kernel": whole_number(cfg.get("linear_conv_kernel_dim", 0), "linear_conv_kernel_dim"), "output_gate": True}
    heads = whole_number(cfg["num_attention_heads"], "num_attention_heads")  # Lightning attention (Bailing / Ring linear, MiniMax-Text-01)
    dim = whole_number(cfg.get("head_dim") or cfg["hidden_size"] // heads, "head_dim")
    notes.append("linear layers mapped as Lightning attention with num_attention_heads x head_dim state, no conv")
    return {"kind": "linear", "variant": "lightning", "count": count, "key_heads": heads, "value_heads": heads,
            "key_dim": dim, "value_dim": dim, "conv_kernel": 0}


def _moe_layer_count(cfg: dict, n: int) -> int:
    """MoE layers among ``n``: the per-family keys (moe_layer_freq, expert_layer_period/offset,
    moe_layers_enum, mlp_only_layers / decoder_sparse_step, first_k_dense_replace)."""
    freq = cfg.get("moe_layer_freq")
    if isinstance(freq, list):
        return sum(1 for x in freq if x)
    if cfg.get("expert_layer_period"):
        period, offset = whole_number(cfg["expert_layer_period"], "expert_layer_period"), whole_number(cfg.get("expert_layer_offset") or 0, "expert_layer_offset")
        return sum(1 for i in range(n) if i % period == offset)
    enum = cfg.get("moe_layers_enum")
    if enum:
        layers = [int(x) for x in str(enum).split(",") if x.strip()] if isinstance(enum, str) else list(enum)
        return len(layers)
    step = whole_number(cfg.get("decoder_sparse_step") or 1, "decoder_sparse_step")
    dense_list = set(cfg.get("mlp_only_layers") or [])
    first_dense = whole_number(cfg.get("first_k_dense_replace") or 0, "first_k_dense_replace")
    return sum(1 for i in range(n) if i >= first_dense and i not in dense_list and (i + 1) % step == 0)


def _ffn(cfg: dict, n: int, notes: list[str], where: str) -> dict:
    """The FFN stack of ``n`` mixer layers. Nemotron-H's ``hybrid_override_pattern`` has FFN
    blocks of their own (``-`` MLP, ``E`` MoE); the mixer layers beyond them have no FFN."""
    pattern = cfg.get("hybrid_override_pattern")
    gated = str(cfg.get("mlp_hidden_act", "")) != "relu2"  # Nemotron-H's squared-ReLU MLP: up and down only
    extra: dict[str, Any] = {} if gated else {"gated": False}
    experts = whole_number(cfg.get("n_routed_experts") or 0, "n_routed_experts")
    if isinstance(pattern, str):
        dense, moe = pattern.count("-"), pattern.count("E")
        if dense + moe > n:
            raise PlanError(f"{where}: key 'hybrid_override_pattern': more FFN blocks ({dense + moe}) than mixer blocks ({n}); not modelled")
        extra["no_ffn_layers"] = n - dense - moe
    else:
        moe = _moe_layer_count(cfg, n) if experts else 0
        dense = n - moe
    ffn: dict[str, Any] = {"dense_layers": dense, "moe_layers": moe}
    if dense:
        ffn["dense_intermediate"] = whole_number(cfg["intermediate_size"], "intermediate_size")
    if moe:
        if not experts:
            raise KeyError("n_routed_experts")
        shared = whole_number(cfg.get("n_shared_experts") or (1 if cfg.get("shared_expert_intermediate_size") else 0), "n_shared_experts")
        ffn.update(experts=experts, active_experts=whole_number(cfg["num_experts_per_tok"], "num_experts_per_tok"),
                   expert_intermediate=whole_number(cfg.get("moe_intermediate_size") or cfg["intermediate_size"], "moe_intermediate_size"), shared_experts=shared)
        if not cfg.get("moe_intermediate_size"):
            notes.append("moe_intermediate_size absent: intermediate_size taken as the expert width (MiniMax, Jamba layout)")
        if shared:
            ffn["shared_intermediate"] = whole_number(cfg.get("shared_expert_intermediate_size") or cfg["moe_intermediate_size"], "shared_expert_intermediate_size")
    return {**ffn, **extra}


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
