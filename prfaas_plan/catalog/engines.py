"""Serving-engine presets: the defaults an engine applies to a deployment, as data.

A preset decides the recurrent-state dtypes of hybrid models (linear attention and Mamba
layers): the SSM / recurrent state and the short-convolution tail; and the chunked-prefill size
(tokens per forward pass), which SGLang and vLLM pick by the part's memory
(:func:`engine_chunk_tokens`).

How each engine picks the state dtype (read from its source):

- **vLLM** ``vllm/model_executor/layers/mamba/mamba_utils.py`` (``MambaStateDtypeCalculator``):
  the conv state takes ``mamba_cache_dtype`` (``auto``: the model dtype, bf16); the SSM state of
  Mamba1/Mamba2/Gated DeltaNet takes ``mamba_ssm_cache_dtype`` (``auto``: the conv dtype, so
  bf16); Lightning/MiniMax linear attention keeps its state in the model dtype; KDA's recurrent
  state is always fp32 (``kda_state_dtype``). Per-model hooks in
  ``vllm/model_executor/models/config.py``: ``NemotronHForCausalLMConfig`` sets the SSM dtype
  to the checkpoint's ``mamba_ssm_cache_dtype``, else fp32; Qwen3.5 honours the checkpoint's
  ``mamba_ssm_dtype``.
- **SGLang** ``python/sglang/srt/configs/mamba_utils.py`` (``mamba2_state_dtype``): conv state
  bf16, SSM/recurrent state fp32 unless the checkpoint's ``mamba_ssm_dtype`` says otherwise (or
  the ``SGLANG_MAMBA_SSM_DTYPE`` environment variable, not modelled).
- **TensorRT-LLM** ``tensorrt_llm/llmapi/llm_args.py`` (``KvCacheConfig.mamba_ssm_cache_dtype``,
  default ``auto``: "inferred from the model config"): the checkpoint's declared dtype, else the
  model dtype (bf16) [E: read from the option's description, not from a measured run].

Resolution order for a model: a dtype the engine forces for the layer variant; the checkpoint's
declared dtype where the engine honours it for this family; the engine's default for the family;
the engine's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import PlanError
from .hardware import Hardware
from .model import LinearAttention, Mamba, ModelSpec

#: Every family: a preset honours a checkpoint's declared state dtype for all families.
ALL_FAMILIES = "*"


@dataclass(frozen=True)
class EnginePreset:
    """One engine's defaults. Dtypes use the catalog's names (bf16, fp32, ...)."""

    name: str
    description: str
    state_dtype: str  # the SSM / recurrent state when nothing more specific decides
    conv_dtype: str  # the short-convolution tail
    forced_by_variant: dict[str, str] = field(default_factory=dict)  # layer variant -> dtype, always
    honours_declared_for: tuple[str, ...] = ()  # families whose checkpoint state dtype is used
    state_dtype_by_family: dict[str, str] = field(default_factory=dict)  # family -> default dtype
    sources: tuple[str, ...] = ()
    #: chunked-prefill size by GPU memory: ((below this many GiB, or None for any), tokens), first match
    chunk_tokens_by_memory: tuple[tuple[float | None, int], ...] = ((None, 8192),)


ENGINES: dict[str, EnginePreset] = {
    p.name: p
    for p in (
        EnginePreset(
            name="vllm",
            description="vLLM V1 defaults (mamba_cache_dtype=auto, mamba_ssm_cache_dtype=auto)",
            state_dtype="bf16",
            conv_dtype="bf16",
            forced_by_variant={"kda": "fp32"},
            honours_declared_for=("nemotron_h", "qwen3_5", "qwen3_5_moe"),
            state_dtype_by_family={"nemotron_h": "fp32"},
            # `vllm serve` (the offline LLM class uses 16,384 / 8,192)
            chunk_tokens_by_memory=((70, 2048), (None, 8192)),
            sources=(
                "vllm/engine/arg_utils.py (get_batch_defaults: max_num_batched_tokens 8192 for the API server on >= 70 GiB parts other than A100, else 2048)",
                "vllm/model_executor/layers/mamba/mamba_utils.py (MambaStateDtypeCalculator)",
                "vllm/model_executor/models/config.py (NemotronHForCausalLMConfig: checkpoint mamba_ssm_cache_dtype, else float32)",
            ),
        ),
        EnginePreset(
            name="sglang",
            description="SGLang defaults (conv state bf16, SSM state float32 unless the checkpoint says)",
            state_dtype="fp32",
            conv_dtype="bf16",
            honours_declared_for=(ALL_FAMILIES,),
            chunk_tokens_by_memory=((35, 2048), (160, 8192), (None, 16_384)),  # --chunked-prefill-size; -1 = none
            sources=("python/sglang/srt/configs/mamba_utils.py (mamba2_state_dtype)",
                     "python/sglang/srt/server_args.py (_handle_chunked_prefill_size: < 35 GiB 2048, < 160 GiB 8192, else 16384)"),
        ),
        EnginePreset(
            name="trtllm",
            description="TensorRT-LLM PyTorch backend defaults (mamba_ssm_cache_dtype=auto)",
            state_dtype="bf16",
            conv_dtype="bf16",
            honours_declared_for=(ALL_FAMILIES,),
            chunk_tokens_by_memory=((None, 8192),),  # max_num_tokens
            sources=("tensorrt_llm/llmapi/llm_args.py (KvCacheConfig.mamba_ssm_cache_dtype: auto = from the model config) [E]",
                     "tensorrt_llm/llmapi/llm_args.py (max_num_tokens default 8192 tokens per iteration)"),
        ),
    )
}


def engine_preset(name: str, option: str = "--engine") -> EnginePreset:
    """The preset called ``name``; PlanError naming ``option`` otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise PlanError(f"{option}: unknown engine {name!r}; use one of {', '.join(ENGINES)}") from None


def engine_chunk_tokens(engine: str, hw: Hardware) -> int:
    """``engine``'s default chunked-prefill size on ``hw`` (``chunk_tokens_by_memory``, by the
    part's memory in GiB as the engines read it from the device)."""
    from .. import units

    gib = hw.memory_capacity_bytes / units.GIB
    for below_gib, tokens in engine_preset(engine).chunk_tokens_by_memory:
        if below_gib is None or gib < below_gib:
            return tokens
    raise PlanError(f"--engine: {engine} has no chunk size for {gib:.0f} GiB")  # every table ends with None


def state_dtypes(model: ModelSpec, preset: EnginePreset) -> tuple[str, str, str]:
    """(state dtype, conv dtype, why) that ``preset`` gives ``model``'s recurrent layers, by the
    resolution order in the module docstring."""
    variants = {g.variant for g in model.layers if isinstance(g, (LinearAttention, Mamba))}
    forced = sorted({preset.forced_by_variant[v] for v in variants if v in preset.forced_by_variant})
    if forced:
        names = ", ".join(sorted(v for v in variants if v in preset.forced_by_variant))
        return forced[0], preset.conv_dtype, f"{preset.name} always keeps {names} state in {forced[0]}"
    declared = model.dtypes.declared_state
    honours = ALL_FAMILIES in preset.honours_declared_for or model.family in preset.honours_declared_for
    if declared and honours:
        return declared, preset.conv_dtype, f"{preset.name} honours the checkpoint's declared state dtype"
    if model.family in preset.state_dtype_by_family:
        dtype = preset.state_dtype_by_family[model.family]
        return dtype, preset.conv_dtype, f"{preset.name} default for the {model.family} family"
    return preset.state_dtype, preset.conv_dtype, f"{preset.name} default"


def with_state_dtypes(model: ModelSpec, state_dtype: str | None = None, conv_dtype: str | None = None) -> ModelSpec:
    """``model`` with its recurrent-state (and conv-tail) dtype replaced; None keeps the model's."""
    from .. import units

    for option, dtype in (("--state-dtype", state_dtype), ("conv state dtype", conv_dtype)):
        if dtype is not None and dtype not in units.DTYPE_BYTES:
            raise PlanError(f"{option}: unknown dtype {dtype!r}; use one of {', '.join(units.DTYPE_BYTES)}")
    d = model.dtypes
    dtypes = replace(d, linear_state=state_dtype or d.linear_state, conv_state=conv_dtype or d.conv_state)
    return replace(model, dtypes=dtypes)


def deploy(model: ModelSpec, engine: str | None = None, state_dtype: str | None = None) -> tuple[ModelSpec, str]:
    """The model as an engine would deploy it: ``engine``'s preset applied, then an explicit
    ``state_dtype`` on top. Returns (model, a line saying where the state dtype came from)."""
    conv = None
    why = "model file"
    if engine is not None:
        preset_state, conv, why = state_dtypes(model, engine_preset(engine))
        state_dtype = state_dtype or preset_state
    if state_dtype is not None and (engine is None or state_dtype != preset_state):
        why = "--state-dtype"
    return with_state_dtypes(model, state_dtype, conv), why
