"""Model architectures: the layer stack by attention kind, the FFN, dtypes and measured profiles.

One YAML file per model in ``models/``. The formulas that turn this structure into KV bytes,
parameters and FLOPs live in :mod:`prfaas_plan.roofline`; this module only reads and checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import units
from ..errors import PlanError
from .fields import Fields, check_name, open_catalog_file
from .layers import (  # noqa: F401  (the layer kinds are read from here too)
    LINEAR_VARIANTS,
    MAMBA_VARIANTS,
    MLA,
    RECURRENT_KINDS,  # noqa: F401
    FullAttention,
    LayerGroup,
    LinearAttention,
    Mamba,
    SlidingWindow,
)
from .paths import catalog_names


@dataclass(frozen=True)
class FFN:
    """Feed-forward stack: ``dense_layers`` SwiGLU MLPs and ``moe_layers`` mixture-of-experts."""

    dense_layers: int
    dense_intermediate: int
    moe_layers: int
    experts: int
    active_experts: int
    shared_experts: int
    expert_intermediate: int
    shared_intermediate: int
    no_ffn_layers: int = 0  # layers with a mixer but no FFN (Nemotron-H's attention/Mamba blocks)
    gated: bool = True  # SwiGLU (3 matrices); False: up/down only (Nemotron-H's squared ReLU)

    @property
    def matrices(self) -> int:
        """Weight matrices per MLP: 3 for a gated (SwiGLU) MLP, 2 for a plain one."""
        return 3 if self.gated else 2


@dataclass(frozen=True)
class Dtypes:
    """Storage dtypes. ``linear_state`` is the recurrent state of linear-attention and Mamba
    layers, ``conv_state`` their short-convolution tail; both are deployment settings an engine
    decides (:mod:`prfaas_plan.catalog.engines`). ``declared_state`` is the state dtype the
    checkpoint's own config declares (``mamba_ssm_dtype`` / ``mamba_ssm_cache_dtype``), which some
    engines honour; None when it declares none."""

    weights: str
    kv_cache: str
    linear_state: str
    conv_state: str
    declared_state: str | None = None


@dataclass(frozen=True)
class PrefillProfile:
    """Measured (or derived) prefill latency on a named instance; overrides the roofline there."""

    hardware: str
    gpus: int
    source: str
    derived: bool
    input_tokens: tuple[int, ...]
    prefill_time_s: tuple[float, ...]


@dataclass(frozen=True)
class DecodeProfile:
    """Measured (or derived) decode step time vs batch size on a named instance."""

    hardware: str
    gpus: int
    source: str
    derived: bool
    batch_size: tuple[int, ...]
    step_time_s: tuple[float, ...]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    hidden_size: int
    vocab_size: int
    num_layers: int
    tie_word_embeddings: bool
    dtypes: Dtypes
    layers: tuple[LayerGroup, ...]
    ffn: FFN
    published_total_params: float | None
    published_active_params: float | None
    prefill_profiles: tuple[PrefillProfile, ...]
    decode_profiles: tuple[DecodeProfile, ...]
    sources: tuple[str, ...]
    estimates: tuple[tuple[str, str], ...]
    path: str = ""
    family: str = ""  # the architecture family (HF model_type), e.g. nemotron_h, qwen3_next

    def prefill_profile(self, hardware: str, gpus: int) -> PrefillProfile | None:
        return next((p for p in self.prefill_profiles if p.hardware == hardware and p.gpus == gpus), None)

    def decode_profile(self, hardware: str, gpus: int) -> DecodeProfile | None:
        return next((p for p in self.decode_profiles if p.hardware == hardware and p.gpus == gpus), None)

    def architecture_summary(self) -> str:
        parts = []
        for g in self.layers:
            label = g.variant if isinstance(g, (LinearAttention, Mamba)) else g.kind
            text = f"{g.count} {label.upper() if label != 'gated_deltanet' else 'GDN'}"
            parts.append(text + (" (parallel)" if isinstance(g, Mamba) and g.parallel else ""))
        moe = self.ffn
        ffn = f"MoE {moe.experts}x{moe.expert_intermediate} top-{moe.active_experts}" if moe.moe_layers else "dense FFN"
        return f"{' + '.join(parts)}; {ffn}"


def _int(f: Fields, key: str, default=None, min_value: int = 1):
    return f.int(key, default, min_value=min_value) if default is not None else f.int(key, min_value=min_value)


def _load_group(g: Fields) -> LayerGroup:
    kind = g.str("kind", choices=("gqa", "swa", "mla", "linear", "mamba"))
    count = _int(g, "count")
    if kind in ("gqa", "swa"):
        q_heads, kv_heads, head_dim = _int(g, "q_heads"), _int(g, "kv_heads"), _int(g, "head_dim")
        v_head_dim = _int(g, "v_head_dim", head_dim)
        gate = g.bool("output_gate", False)
        if q_heads % kv_heads:
            raise g.error("q_heads", f"must be a multiple of kv_heads ({kv_heads}), got {q_heads}")
        if kind == "gqa":
            return FullAttention(count, q_heads, kv_heads, head_dim, v_head_dim, gate)
        return SlidingWindow(count, q_heads, kv_heads, head_dim, v_head_dim, _int(g, "window_tokens"), gate)
    if kind == "mla":
        return MLA(
            count,
            _int(g, "heads"),
            _int(g, "kv_lora_rank"),
            _int(g, "rope_dim"),
            _int(g, "qk_nope_dim"),
            _int(g, "v_head_dim"),
            _int(g, "q_lora_rank", 0, min_value=0),
        )
    if kind == "mamba":
        return _load_mamba(g, count)
    key_heads = _int(g, "key_heads")
    value_heads = _int(g, "value_heads", key_heads)
    return LinearAttention(
        count,
        g.str("variant", choices=LINEAR_VARIANTS),
        key_heads,
        value_heads,
        _int(g, "key_dim"),
        _int(g, "value_dim"),
        _int(g, "conv_kernel", 0, min_value=0),
        g.bool("output_gate", False),
    )


def _load_mamba(g: Fields, count: int) -> Mamba:
    variant = g.str("variant", choices=MAMBA_VARIANTS)
    inner, state, kernel = _int(g, "inner_dim"), _int(g, "state_size"), _int(g, "conv_kernel")
    parallel = g.bool("parallel", False)
    if variant == "mamba1":
        return Mamba(count, variant, inner, state, kernel, dt_rank=_int(g, "dt_rank"), parallel=parallel)
    heads, head_dim, groups = _int(g, "heads"), _int(g, "head_dim"), _int(g, "groups", 1)
    if heads * head_dim != inner:
        raise g.error("inner_dim", f"must equal heads x head_dim ({heads} x {head_dim} = {heads * head_dim}), got {inner}")
    if heads % groups:
        raise g.error("groups", f"must divide heads ({heads}), got {groups}")
    return Mamba(count, variant, inner, state, kernel, heads, head_dim, groups, parallel=parallel)


def _load_ffn(f: Fields, num_layers: int) -> FFN:
    moe_layers = _int(f, "moe_layers", 0, min_value=0)
    dense_layers = _int(f, "dense_layers", 0, min_value=0)
    no_ffn = _int(f, "no_ffn_layers", 0, min_value=0)
    if moe_layers + dense_layers + no_ffn != num_layers:
        raise f.error("moe_layers", f"dense_layers ({dense_layers}) + moe_layers ({moe_layers}) + no_ffn_layers ({no_ffn}) must equal num_layers ({num_layers})")
    dense_intermediate = _int(f, "dense_intermediate") if dense_layers else _int(f, "dense_intermediate", 0, min_value=0)
    if moe_layers:
        experts, active = _int(f, "experts"), _int(f, "active_experts")
        if active > experts:
            raise f.error("active_experts", f"must be <= experts ({experts}), got {active}")
        expert_intermediate = _int(f, "expert_intermediate")
        shared = _int(f, "shared_experts", 0, min_value=0)
        shared_intermediate = _int(f, "shared_intermediate", expert_intermediate) if shared else 0
    else:
        experts = active = expert_intermediate = shared = shared_intermediate = 0
    gated = f.bool("gated", True)
    f.done()
    return FFN(dense_layers, dense_intermediate, moe_layers, experts, active, shared, expert_intermediate, shared_intermediate, no_ffn, gated)


def _load_profile(p: Fields) -> PrefillProfile | DecodeProfile:
    kind = p.str("kind", choices=("prefill", "decode"))
    hardware, gpus = p.str("hardware"), _int(p, "gpus")
    source, derived = p.str("source"), p.bool("derived")
    xs, ys = [], []
    xkey, ykey = ("input_tokens", "prefill_time_s") if kind == "prefill" else ("batch_size", "step_time_s")
    points = p.list("points")
    if not points:
        raise p.error("points", "must list at least one point")
    for i, _ in enumerate(points):
        pt = p.item("points", i)
        xs.append(pt.int(xkey))
        ys.append(pt.num(ykey))
        pt.done()
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise p.error("points", f"{xkey} must be strictly increasing")
    p.done()
    cls = PrefillProfile if kind == "prefill" else DecodeProfile
    return cls(hardware, gpus, source, derived, tuple(xs), tuple(ys))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A catalog name or model YAML; a Hugging Face ``config.json`` is imported on the fly."""
    if str(name_or_path).endswith(".json"):
        from .hf_import import import_hf_config

        mapping, _ = import_hf_config(name_or_path)
        return model_from_mapping(mapping, str(name_or_path))
    path, f, name = open_catalog_file("models", name_or_path)
    return model_from_fields(path, f, name)


def model_from_mapping(data: dict, source: str) -> ModelSpec:
    """A model from a mapping in memory (``models import`` checks its result before writing
    anything), with the checks of :func:`load_model`; errors name ``source``."""
    f = Fields(data, source)
    return model_from_fields(Path(source), f, check_name(f.str("name"), f"{f.source}: key 'name'"))


def model_from_fields(path: Path, f: Fields, name: str) -> ModelSpec:
    num_layers = _int(f, "num_layers")

    d = f.sub("dtypes")
    choices = tuple(units.DTYPE_BYTES)
    kv_dtype = d.str("kv_cache", choices=choices)
    dtypes = Dtypes(
        weights=d.str("weights", choices=choices),
        kv_cache=kv_dtype,
        linear_state=d.str("linear_state", "fp32", choices=choices),
        conv_state=d.str("conv_state", kv_dtype, choices=choices),
        declared_state=d.str("declared_state", None, choices=choices),
    )
    d.done()

    groups = []
    raw_layers = f.list("layers")
    if not raw_layers:
        raise f.error("layers", "must list at least one layer group")
    for i, _ in enumerate(raw_layers):
        g = f.item("layers", i)
        groups.append(_load_group(g))
        g.done()
    total = sum(g.count for g in groups if not getattr(g, "parallel", False))
    if total != num_layers:
        raise f.error("layers", f"layer counts add up to {total} (parallel groups aside), but num_layers is {num_layers}")
    for i, g in enumerate(groups):
        if getattr(g, "parallel", False) and g.count > num_layers:
            raise f.error(f"layers[{i}].count", f"a parallel group runs beside at most num_layers ({num_layers}) layers, got {g.count}")

    published = f.sub("published", None)
    total_params = active_params = None
    if published is not None:
        total_params = published.num("total_params_b", None)
        active_params = published.num("active_params_b", None)
        published.done()

    prefill_profiles, decode_profiles = [], []
    for i, _ in enumerate(f.list("profiles", [])):
        prof = _load_profile(f.item("profiles", i))
        (prefill_profiles if isinstance(prof, PrefillProfile) else decode_profiles).append(prof)

    sources, estimates = f.sources(), f.estimates()

    spec = ModelSpec(
        name=name,
        description=f.str("description"),
        hidden_size=_int(f, "hidden_size"),
        vocab_size=_int(f, "vocab_size"),
        num_layers=num_layers,
        tie_word_embeddings=f.bool("tie_word_embeddings", False),
        dtypes=dtypes,
        layers=tuple(groups),
        ffn=_load_ffn(f.sub("ffn"), num_layers),
        published_total_params=total_params * 1e9 if total_params else None,
        published_active_params=active_params * 1e9 if active_params else None,
        prefill_profiles=tuple(prefill_profiles),
        decode_profiles=tuple(decode_profiles),
        sources=sources,
        estimates=estimates,
        path=str(path),
        family=f.str("family", ""),
    )
    f.done()
    return spec


def list_models() -> list[ModelSpec]:
    return [load_model(n) for n in catalog_names("models")]


__all__ = [
    "FFN",
    "MLA",
    "DecodeProfile",
    "Dtypes",
    "FullAttention",
    "LayerGroup",
    "LinearAttention",
    "Mamba",
    "ModelSpec",
    "PlanError",
    "PrefillProfile",
    "SlidingWindow",
    "list_models",
    "load_model",
    "model_from_mapping",
]
