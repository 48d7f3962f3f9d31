"""`prfaas-plan kv`: per prompt length, the KV size, prefill time (and what bounds it) and Phi_kv."""

from __future__ import annotations

from collections.abc import Sequence

from .. import units
from ..catalog.hardware import Hardware
from ..catalog.model import ModelSpec
from ..errors import PlanError
from ..roofline.kv import fixed_state_bytes, kv_bytes_per_token, kv_cache_bytes, swa_bytes_per_token
from ..roofline.instance import dtype_unsupported, make_instance
from ..roofline.prefill import PrefillModel, cluster_egress_bytes_per_s

DEFAULT_LENGTHS = ("1K", "8K", "32K", "128K")


def prefill_availability(model: ModelSpec, hw: Hardware, gpus: int, use_profile: bool = True) -> tuple[PrefillModel | None, dict]:
    """The prefill model for ``model`` on ``gpus`` x ``hw`` and a record of whether the
    deployment can run: ``weights_dtype_supported``, ``weights_fit`` (True when a measured
    profile stands in for the roofline) and ``prefill_note`` (why there is no T_prefill, or None).
    S_kv does not depend on any of this; `kv` reports it either way."""
    why = dtype_unsupported(hw, model.dtypes.weights)
    if why:
        return None, {"weights_dtype_supported": False, "weights_fit": None, "prefill_note": f"weights {model.dtypes.weights}: {why}"}
    inst = make_instance(model, hw, gpus)
    profile = model.prefill_profile(hw.name, gpus) if use_profile else None
    if profile is None and not inst.weights_fit():
        usable = hw.memory_capacity_bytes * hw.efficiency.memory_usable_frac
        note = (f"weights need {inst.weight_bytes_per_gpu() / units.GB:,.1f} GB per GPU, usable memory is "
                f"{usable / units.GB:,.1f} GB: no prefill time (use more GPUs per instance)")
        return None, {"weights_dtype_supported": True, "weights_fit": False, "prefill_note": note}
    prefill = PrefillModel(model, hw, gpus, use_profile=use_profile, instance=inst)
    return prefill, {"weights_dtype_supported": True, "weights_fit": inst.weights_fit(), "prefill_note": None}


def kv_rows(
    model: ModelSpec,
    hw: Hardware,
    gpus: int = 8,
    lengths_tokens: Sequence[int] = (1024, 8192, 32768, 131072),
    use_profile: bool = True,
    cluster_gpus: int | None = None,
) -> list[dict]:
    """One row per prompt length with S_kv(l), T_prefill(l) and its parts, and
    Phi_kv(l) = S_kv / T_prefill ([PRFAAS] Eq. 1). Every row also carries the two halves of
    S_kv: bytes per token of full-attention/MLA layers and the fixed per-request state. With
    ``cluster_gpus`` N, also the egress an N-GPU cluster of such instances needs if every request
    had length l ([PRFAAS] Eq. 2). S_kv is reported whether or not the weights fit the part or its
    dtype runs there (:func:`prefill_availability`); the prefill columns are None then, and
    ``prefill_note`` says why."""
    if cluster_gpus is not None and cluster_gpus < gpus:
        raise PlanError(f"--cluster-gpus must be >= --gpus ({gpus}), got {cluster_gpus}")
    prefill, fit = prefill_availability(model, hw, gpus, use_profile)
    per_token, fixed = kv_bytes_per_token(model), fixed_state_bytes(model)
    rows = []
    for tokens in lengths_tokens:
        kv = kv_cache_bytes(model, tokens)
        row = {
            "input_tokens": int(tokens),
            "kv_cache_bytes": kv,
            "kv_cache_mib": units.bytes_to_mib(kv),
            "kv_bytes_per_token": per_token,
            "fixed_state_bytes": fixed,
            "linear_state_dtype": model.dtypes.linear_state,
            **fit,
            "prefill_time_s": None,
            "bound": None,
            "kv_throughput_gbit_per_s": None,
            "source": None,
        }
        if prefill is not None:
            t = prefill.time(tokens)
            row.update(prefill_time_s=t.total_s, bound=t.bound, source=t.source,
                       kv_throughput_gbit_per_s=units.bytes_per_s_to_gbit_per_s(kv / t.total_s),
                       **{f"{k.replace('-', '_')}_s": v for k, v in t.terms.items()})
            if cluster_gpus is not None:
                egress = cluster_egress_bytes_per_s(cluster_gpus, gpus, kv, t.total_s)
                row["cluster_egress_gbit_per_s"] = units.bytes_per_s_to_gbit_per_s(egress)
        rows.append(row)
    return rows


def kv_summary(model: ModelSpec) -> dict:
    """The two halves of S_kv: bytes per token (growing) and fixed bytes per request."""
    return {
        "model": model.name,
        "kv_bytes_per_token": kv_bytes_per_token(model),
        "swa_bytes_per_token_below_window": swa_bytes_per_token(model),
        "fixed_bytes_per_request": fixed_state_bytes(model),
        "kv_cache_dtype": model.dtypes.kv_cache,
        "linear_state_dtype": model.dtypes.linear_state,
        "conv_state_dtype": model.dtypes.conv_state,
    }


def catalog_rows(models: Sequence[ModelSpec]) -> list[dict]:
    """`models list`: per model its family, layer stack, parameter counts, the two halves of S_kv
    and the recurrent-state dtype: the model file's and the one vLLM and SGLang keep
    (:func:`prfaas_plan.catalog.engines.state_dtypes`); None for models without recurrent layers."""
    from ..catalog.engines import ENGINES, state_dtypes
    from ..catalog.model import RECURRENT_KINDS
    from ..roofline import counts

    rows = []
    for m in models:
        recurrent = any(isinstance(g, RECURRENT_KINDS) for g in m.layers)
        rows.append({
            "name": m.name,
            "family": m.family or None,
            "architecture": m.architecture_summary(),
            "total_params_b": counts.total_params(m) / 1e9,
            "active_params_b": counts.active_params(m) / 1e9,
            "weights_dtype": m.dtypes.weights,
            "kv_bytes_per_token": kv_bytes_per_token(m),
            "fixed_state_mib": units.bytes_to_mib(fixed_state_bytes(m)),
            "state_dtype": m.dtypes.linear_state if recurrent else None,
            **{f"state_dtype_{e}": state_dtypes(m, ENGINES[e])[0] if recurrent else None for e in ("vllm", "sglang")},
            "profiles": len(m.prefill_profiles) + len(m.decode_profiles),
        })
    return rows
