"""`prfaas-plan kv`: per prompt length, the KV size, prefill time (and what bounds it) and Phi_kv."""

from __future__ import annotations

from collections.abc import Sequence

from .. import units
from ..catalog.hardware import Hardware
from ..catalog.model import ModelSpec
from ..errors import PlanError
from ..roofline.kv import fixed_state_bytes, kv_bytes_per_token, kv_cache_bytes, swa_bytes_per_token
from ..roofline.prefill import PrefillModel, cluster_egress_bytes_per_s

DEFAULT_LENGTHS = ("1K", "8K", "32K", "128K")


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
    had length l ([PRFAAS] Eq. 2)."""
    if cluster_gpus is not None and cluster_gpus < gpus:
        raise PlanError(f"--cluster-gpus must be >= --gpus ({gpus}), got {cluster_gpus}")
    prefill = PrefillModel(model, hw, gpus, use_profile=use_profile)
    per_token, fixed = kv_bytes_per_token(model), fixed_state_bytes(model)
    rows = []
    for tokens in lengths_tokens:
        t = prefill.time(tokens)
        kv = kv_cache_bytes(model, tokens)
        phi = kv / t.total_s
        row = {
            "input_tokens": int(tokens),
            "kv_cache_bytes": kv,
            "kv_cache_mib": units.bytes_to_mib(kv),
            "kv_bytes_per_token": per_token,
            "fixed_state_bytes": fixed,
            "prefill_time_s": t.total_s,
            "bound": t.bound,
            "kv_throughput_gbit_per_s": units.bytes_per_s_to_gbit_per_s(phi),
            **{f"{k.replace('-', '_')}_s": v for k, v in t.terms.items()},
            "source": t.source,
        }
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
    }
