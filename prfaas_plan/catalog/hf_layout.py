"""The layer layout of a Hugging Face ``config.json``: which mixer each layer runs, and the
recurrent state of its Mamba layers (:func:`mamba_group`, :func:`declared_state_dtype`).

Every family's pattern key is read here, and a config whose layout or recurrent state depends on
a key this module does not understand is refused with that key named (:func:`check_understood`),
never mapped by a guess. Layer kinds: ``full`` (softmax attention, GQA or MLA), ``swa``
(sliding-window attention), ``linear`` (linear attention), ``mamba`` (a Mamba1/Mamba2 mixer) and
``mlp`` (a block with no mixer: Nemotron-H's ``-`` and ``E`` blocks).

Pattern keys, first match wins:
- ``linear_attn_config.full_attn_layers`` (Kimi Linear, 1-based);
- ``hybrid_override_pattern`` (Nemotron-H: ``M`` Mamba2, ``*`` attention, ``-`` MLP, ``E`` MoE);
- ``layers_block_type`` / ``layer_types`` (lists of per-layer names);
- ``hybrid_layer_pattern`` (MiMo-V2: 1 = sliding window);
- ``attn_layer_period`` / ``attn_layer_offset`` (Jamba: attention where i % period == offset,
  Mamba1 elsewhere);
- ``sliding_window_pattern`` (Gemma 3: every pattern-th layer global, the rest sliding);
- ``full_attention_interval`` (Qwen3-Next/3.5), ``layer_group_size`` (Bailing linear),
  ``attn_type_list`` (MiniMax: 1 softmax, 0 Lightning);
- ``use_sliding_window`` with ``max_window_layers`` (Qwen2/3: layers from that index slide; with
  ``use_sliding_window: false``, as shipped, every layer is full).
A ``sliding_window`` without any of these is refused (which layers slide is not stated), as are
DeepSeek-V3.2's indexer keys (``index_*``: a per-token key cache this tool does not model).
Falcon-H1 runs attention and Mamba2 side by side in every layer (:data:`PARALLEL_HYBRIDS`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import PlanError


def whole_number(value, key: str) -> int:
    """A config value read as a whole number: an int, or a float with no fraction. JSON ``true``
    is refused (Python's bool is an int, so ``int(True)`` read it as 1 layer, issue 14), and so
    is a fraction (``int`` truncated it). A ValueError naming the key (import_hf_config turns it
    into one line naming the file)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"key '{key}': expected a whole number, got {json.dumps(value)[:40]}")
    return int(value)

#: model_type values whose layers all run attention and a Mamba2 mixer in parallel.
PARALLEL_HYBRIDS = ("falcon_h1",)

_LAYER_TYPE_NAMES = {
    "full_attention": "full",
    "attention": "full",
    "global_attention": "full",
    "sliding_attention": "swa",
    "linear_attention": "linear",
    "mamba": "mamba",
}
_OVERRIDE_PATTERN = {"M": "mamba", "*": "full", "-": "mlp", "E": "mlp"}
#: Config spellings of a declared recurrent-state dtype -> catalog dtype names.
_STATE_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}

#: Keys read by the importer (layout, attention, state, FFN, dtype), or known to leave the cache
#: unchanged. Anything else matching :data:`_LAYOUT_WORDS` with a set value is refused.
UNDERSTOOD = frozenset(
    """
    linear_attn_config hybrid_override_pattern layers_block_type layer_types hybrid_layer_pattern
    attn_layer_period attn_layer_offset sliding_window_pattern full_attention_interval
    layer_group_size attn_type_list sliding_window sliding_window_size use_sliding_window
    swa_head_dim swa_num_attention_heads swa_num_key_value_heads swa_v_head_dim swa_rope_theta
    add_swa_attention_sink_bias add_full_attention_sink_bias kv_lora_rank q_lora_rank
    num_attention_groups num_key_value_heads linear_conv_kernel_dim linear_key_head_dim
    linear_num_key_heads linear_num_value_heads linear_value_head_dim mamba_num_heads
    mamba_head_dim mamba_n_heads mamba_d_head mamba_d_ssm mamba_d_state mamba_d_conv mamba_expand
    mamba_dt_rank mamba_n_groups ssm_state_size n_groups conv_kernel expand mamba_ssm_dtype
    mamba_ssm_cache_dtype mamba_hidden_act mamba_chunk_size chunk_size mamba_conv_bias
    mamba_proj_bias mamba_rms_norm mamba_norm_before_gate use_mamba_kernels mamba_use_mlp
    expert_layer_period expert_layer_offset mlp_only_layers moe_layers_enum max_window_layers
    linear_silu
    """.split()
)
_LAYOUT_WORDS = re.compile(
    r"layer_types|pattern|block_type|sliding|window|mamba|ssm|linear_|attn_layer|attention_layer|"
    r"attn_type|kv_lora|attention_groups|layer_period|layer_offset|full_attn|attention_other|^swa_|"
    r"conv_kernel|chunked_attention|attention_chunk|no_rope_layers|kv_shar|shared_kv|cross_attention|^index_"
)
#: Key fragments that never change the cache: scales, biases, norms, initialisation, kernels.
_BENIGN = re.compile(r"multiplier|_bias$|norm|_init|dt_min|dt_max|dt_limit|time_step|residual|_eps$|dropout|rope")


def _active(value) -> bool:
    return value not in (None, False, 0, "", [], {})


def check_understood(cfg: dict, where: str) -> None:
    """Refuse a config with a set key that looks like it shapes the attention layout or the
    recurrent state and that this importer does not read: PlanError naming the key."""
    for key in sorted(cfg):
        if key.startswith("_") or key in UNDERSTOOD or _BENIGN.search(key):
            continue
        if _LAYOUT_WORDS.search(key) and _active(cfg[key]):
            raise PlanError(
                f"{where}: key '{key}': changes the attention layout or recurrent state and is not "
                "understood by this importer; refusing rather than guessing"
            )
    lin = cfg.get("linear_attn_config")
    if isinstance(lin, dict):
        for key in sorted(set(lin) - {"full_attn_layers", "kda_layers", "head_dim", "num_heads", "short_conv_kernel_size"}):
            if _active(lin[key]):
                raise PlanError(f"{where}: key 'linear_attn_config.{key}': not understood by this importer; refusing rather than guessing")


def _per_layer_list(cfg: dict, key: str, n: int, names: dict, where: str) -> list[str]:
    values = cfg[key]
    if len(values) != n:
        raise PlanError(f"{where}: key '{key}': lists {len(values)} layers, num_hidden_layers is {n}")
    out = []
    for v in values:
        if v not in names:
            raise PlanError(f"{where}: key '{key}': layer type {str(v)[:40]!r} is not modelled (known: {', '.join(map(str, names))})")
        out.append(names[v])
    return out


def layer_kinds(cfg: dict, n: int, where: str) -> tuple[list[str], bool]:
    """(kind of each of the ``n`` blocks, whether a Mamba2 mixer runs in parallel in every
    layer). See the module docstring for the keys read, in order."""
    parallel = str(cfg.get("model_type", "")) in PARALLEL_HYBRIDS
    lin = cfg.get("linear_attn_config")
    if isinstance(lin, dict) and lin.get("full_attn_layers"):
        full = {int(i) for i in lin["full_attn_layers"]}  # 1-based in Kimi Linear configs
        return ["full" if i + 1 in full else "linear" for i in range(n)], parallel
    if isinstance(cfg.get("hybrid_override_pattern"), str):
        blocks = {"hybrid_override_pattern": list(cfg["hybrid_override_pattern"])}
        return _per_layer_list(blocks, "hybrid_override_pattern", n, _OVERRIDE_PATTERN, where), parallel
    for key in ("layers_block_type", "layer_types"):
        if isinstance(cfg.get(key), list):
            kinds = _per_layer_list(cfg, key, n, _LAYER_TYPE_NAMES, where)
            _check_interval(cfg, kinds, where)
            return kinds, parallel
    if isinstance(cfg.get("hybrid_layer_pattern"), list):
        return _per_layer_list(cfg, "hybrid_layer_pattern", n, {0: "full", 1: "swa"}, where), parallel
    if cfg.get("attn_layer_period"):
        period, offset = whole_number(cfg["attn_layer_period"], "attn_layer_period"), whole_number(cfg.get("attn_layer_offset") or 0, "attn_layer_offset")
        return ["full" if i % period == offset else "mamba" for i in range(n)], parallel
    if cfg.get("sliding_window_pattern"):
        k = whole_number(cfg["sliding_window_pattern"], "sliding_window_pattern")
        return ["full" if (i + 1) % k == 0 else "swa" for i in range(n)], parallel
    if cfg.get("full_attention_interval"):
        k = whole_number(cfg["full_attention_interval"], "full_attention_interval")
        return ["full" if (i + 1) % k == 0 else "linear" for i in range(n)], parallel
    if cfg.get("layer_group_size") and str(cfg.get("model_type", "")).startswith("bailing"):
        k = whole_number(cfg["layer_group_size"], "layer_group_size")
        return ["full" if (i + 1) % k == 0 else "linear" for i in range(n)], parallel
    if isinstance(cfg.get("attn_type_list"), list):
        return _per_layer_list(cfg, "attn_type_list", n, {1: "full", 0: "linear"}, where), parallel
    if cfg.get("use_sliding_window") and cfg.get("max_window_layers") is not None:  # Qwen2/3: layers from it slide
        first = whole_number(cfg["max_window_layers"], "max_window_layers")
        return ["swa" if i >= first else "full" for i in range(n)], parallel
    if _active(cfg.get("sliding_window")) and cfg.get("use_sliding_window") is not False:
        raise PlanError(f"{where}: key 'sliding_window': set, but no key says which layers use it "
                        "(layer_types or sliding_window_pattern); refusing rather than guessing")
    if any(k in cfg for k in ("mamba_d_state", "ssm_state_size", "mamba_n_heads", "mamba_num_heads")) and not parallel:
        raise PlanError(f"{where}: Mamba keys without a layer pattern (hybrid_override_pattern, layers_block_type, "
                        "attn_layer_period) for model_type " + repr(str(cfg.get("model_type"))[:40]) + "; refusing rather than guessing")
    return ["full"] * n, parallel


def _check_interval(cfg: dict, kinds: list[str], where: str) -> None:
    """A config with both ``layer_types`` and ``full_attention_interval`` must agree."""
    k = cfg.get("full_attention_interval")
    if k and kinds != ["full" if (i + 1) % int(k) == 0 else "linear" for i in range(len(kinds))]:
        raise PlanError(f"{where}: keys 'layer_types' and 'full_attention_interval' ({k}) disagree")


def default(cfg: dict, key: str, value: Any, notes: list[str], why: str = "") -> Any:
    """``cfg[key]``, or ``value`` with a note saying it was applied."""
    if cfg.get(key) is not None:
        return cfg[key]
    notes.append(f"{key} absent: {value} assumed{why}")
    return value


def _first(cfg: dict, *keys: str) -> Any:
    return next((cfg[k] for k in keys if cfg.get(k) is not None), None)


def mamba_group(cfg: dict, count: int, parallel: bool, notes: list[str], where: str) -> dict:
    """A Mamba1 or Mamba2 group: Mamba2 when the config names SSM heads (Nemotron-H's
    ``mamba_num_heads``, Falcon-H1's ``mamba_n_heads``), Mamba1 otherwise (Jamba)."""
    hidden = whole_number(cfg["hidden_size"], "hidden_size")
    state = _first(cfg, "ssm_state_size", "mamba_d_state")
    if state is None:
        raise PlanError(f"{where}: key 'mamba_d_state' (or 'ssm_state_size'): missing, cannot size the Mamba state")
    kernel = _first(cfg, "conv_kernel", "mamba_d_conv")
    if kernel is None:
        kernel = 4
        notes.append("mamba_d_conv absent: conv kernel 4 assumed (the Mamba default)")
    heads = _first(cfg, "mamba_num_heads", "mamba_n_heads")
    group: dict[str, Any] = {"kind": "mamba", "count": count, "state_size": whole_number(state, "mamba_d_state"), "conv_kernel": whole_number(kernel, "mamba_d_conv")}
    if heads is None:
        expand = default(cfg, "mamba_expand", 2, notes, " (the Mamba default)")
        group.update(variant="mamba1", inner_dim=int(expand * hidden),
                     dt_rank=whole_number(cfg.get("mamba_dt_rank") or math.ceil(hidden / 16), "mamba_dt_rank"))
        if not cfg.get("mamba_dt_rank"):
            notes.append("mamba_dt_rank absent: ceil(hidden_size / 16) assumed (the Mamba default)")
    else:
        head_dim = _first(cfg, "mamba_head_dim", "mamba_d_head")
        if head_dim is None:
            raise PlanError(f"{where}: key 'mamba_head_dim' (or 'mamba_d_head'): missing, cannot size the Mamba2 state")
        inner = whole_number(heads, "mamba_num_heads") * whole_number(head_dim, "mamba_head_dim")
        if cfg.get("mamba_d_ssm") is not None and whole_number(cfg["mamba_d_ssm"], "mamba_d_ssm") != inner:
            raise PlanError(f"{where}: key 'mamba_d_ssm': {cfg['mamba_d_ssm']} differs from heads x head_dim ({inner}); not modelled")
        groups = _first(cfg, "n_groups", "mamba_n_groups")
        if groups is None:
            groups = 1
            notes.append("n_groups absent: 1 assumed (the Mamba2 default)")
        group.update(variant="mamba2", inner_dim=inner, heads=whole_number(heads, "mamba_num_heads"), head_dim=whole_number(head_dim, "mamba_head_dim"),
                     groups=whole_number(groups, "n_groups"))
    if parallel:
        group["parallel"] = True
    return group


def declared_state_dtype(cfg: dict, where: str) -> str | None:
    """The recurrent-state dtype the checkpoint declares (``mamba_ssm_dtype``, Qwen3.5 and
    SGLang's key; ``mamba_ssm_cache_dtype``, Nemotron-H's), or None."""
    for key in ("mamba_ssm_dtype", "mamba_ssm_cache_dtype"):
        value = cfg.get(key)
        if value is not None:
            if value not in _STATE_DTYPES:
                raise PlanError(f"{where}: key '{key}': {str(value)[:30]!r} is not one of {', '.join(_STATE_DTYPES)}")
            return _STATE_DTYPES[value]
    return None
