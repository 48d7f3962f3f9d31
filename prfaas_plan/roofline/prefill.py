"""Prefill time T_prefill(l) of one request on one instance of P GPUs, and KV throughput.

Roofline with engine efficiencies (see :class:`~prfaas_plan.catalog.hardware.Efficiency`):

    T_prefill(l) = overhead + max(T_compute, T_memory) + T_comm
    T_compute    = F_gemm / (P * peak_w * e_gemm) + F_attn / (P * peak_bf16 * e_attn)
                   + F_linear / (P * peak_bf16 * e_linear)
    T_memory     = (weights touched + S_kv(l)) / (P * HBM bandwidth * e_mem)
    T_comm       = tensor-parallel all-reduce bytes per GPU / (scale-up bandwidth * e_link)

peak_w is the tensor peak of the weights' dtype (fp8 weights run fp8 GEMMs; int4 runs W4A16).
Attention runs in bf16. Communication is not overlapped with compute (as in TP-sharded engines
without micro-batch overlap); parts without a scale-up link (Rubin CPX) use their NIC.
A measured profile on the same (part, GPU count) takes precedence where the model carries one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..catalog.hardware import Hardware
from ..catalog.model import ModelSpec, PrefillProfile
from ..errors import PlanError
from . import counts
from .kv import kv_cache_bytes


@dataclass(frozen=True)
class PrefillTime:
    """T_prefill and its parts, seconds. ``bound`` names the largest term."""

    total_s: float
    gemm_s: float
    attention_s: float
    linear_attention_s: float
    memory_s: float
    comm_s: float
    overhead_s: float
    source: str  # "roofline" or "profile: <source>"

    @property
    def compute_s(self) -> float:
        return self.gemm_s + self.attention_s + self.linear_attention_s

    @property
    def bound(self) -> str:
        if self.source != "roofline":
            return "profile"
        terms = {"comm": self.comm_s, "overhead": self.overhead_s}
        if self.compute_s >= self.memory_s:
            terms.update({"gemm": self.gemm_s, "attention": self.attention_s, "linear-attention": self.linear_attention_s})
        else:
            terms["memory"] = self.memory_s
        return max(terms, key=terms.get)


def weights_gemm_peak_flop_per_s(model: ModelSpec, hw: Hardware) -> float:
    """Tensor peak for GEMMs over the model's weights (fp8 weights run fp8 GEMMs; int4 runs W4A16)."""
    return hw.peak_for(units.COMPUTE_DTYPE_OF_WEIGHTS[model.dtypes.weights])


def collective_time_s(model: ModelSpec, hw: Hardware, gpus: int, tokens) -> float:
    """Tensor-parallel all-reduce time for ``tokens`` tokens on the scale-up link at its effective
    fraction; parts without a scale-up link (Rubin CPX) use their NIC. Shared by prefill and decode."""
    link = hw.scaleup_bytes_per_s or hw.scaleout_bytes_per_s
    return counts.tensor_parallel_bytes_per_gpu(model, tokens, gpus) / (link * hw.efficiency.scaleup_frac)


def roofline_prefill_time(model: ModelSpec, hw: Hardware, gpus: int, input_tokens: float) -> PrefillTime:
    """Roofline T_prefill(l) (module docstring) for one request of ``input_tokens`` tokens (a
    number, or a numpy array of lengths giving arrays in every field)."""
    if gpus < 1:
        raise PlanError(f"GPUs per instance must be >= 1, got {gpus}")
    e = hw.efficiency
    peak_w = weights_gemm_peak_flop_per_s(model, hw)
    bf16 = hw.bf16_flop_per_s
    gemm_flop = counts.linear_layer_flop(model, input_tokens) + counts.lm_head_flop(model)
    gemm_s = gemm_flop / (gpus * peak_w * e.prefill_gemm_frac)
    attention_s = counts.prefill_attention_flop(model, input_tokens) / (gpus * bf16 * e.prefill_attention_frac)
    linear_s = counts.linear_attention_flop(model, input_tokens) / (gpus * bf16 * e.prefill_linear_attention_frac)
    traffic = counts.weight_bytes_touched(model, input_tokens) + kv_cache_bytes(model, input_tokens)
    memory_s = traffic / (gpus * hw.memory_bandwidth_bytes_per_s * e.prefill_memory_frac)
    comm_s = collective_time_s(model, hw, gpus, input_tokens)
    total = e.prefill_overhead_s + np.maximum(gemm_s + attention_s + linear_s, memory_s) + comm_s
    return PrefillTime(total, gemm_s, attention_s, linear_s, memory_s, comm_s, e.prefill_overhead_s, "roofline")


def profile_coefficients(profile: PrefillProfile) -> np.ndarray:
    """Least-squares T(l) = a + b l + c l^2 through a profile's points (degree capped at
    n_points - 1), highest power first as numpy.polyval expects. Overhead + GEMM + causal
    attention is exactly this shape, so the fit also serves between and beyond the points."""
    degree = min(2, len(profile.input_tokens) - 1)
    return np.polyfit(np.asarray(profile.input_tokens, float), np.asarray(profile.prefill_time_s, float), degree)


def profile_prefill_time(profile: PrefillProfile, input_tokens: float, coefficients: np.ndarray | None = None) -> PrefillTime:
    coeffs = profile_coefficients(profile) if coefficients is None else coefficients
    t = float(np.polyval(coeffs, input_tokens))
    if t <= 0:
        raise PlanError(f"prefill profile ({profile.source}) gives a non-positive time at {input_tokens:.0f} tokens")
    kind = "derived profile" if profile.derived else "profile"
    return PrefillTime(t, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f"{kind}: {profile.source}")


def check_weights_fit(model: ModelSpec, hw: Hardware, gpus: int) -> None:
    """Raise PlanError unless the weights fit the usable memory of ``gpus`` x ``hw``."""
    usable = gpus * hw.memory_capacity_bytes * hw.efficiency.memory_usable_frac
    need = counts.weight_bytes(model)
    if need > usable:
        raise PlanError(
            f"model {model.name} does not fit {gpus} x {hw.name}: weights need {need / units.GB:,.0f} GB, "
            f"usable memory is {usable / units.GB:,.0f} GB (use more GPUs per instance)"
        )


class PrefillModel:
    """T_prefill(l) for a model on an instance: the model's profile for (part, GPUs) when it has
    one and ``use_profile`` is set, the roofline otherwise. Vectorised over lengths."""

    def __init__(self, model: ModelSpec, hw: Hardware, gpus: int, use_profile: bool = True):
        if gpus < 1:
            raise PlanError(f"GPUs per instance must be >= 1, got {gpus}")
        self.model, self.hw, self.gpus = model, hw, gpus
        self.profile = model.prefill_profile(hw.name, gpus) if use_profile else None
        if self.profile is None:
            check_weights_fit(model, hw, gpus)
        self._coeffs = profile_coefficients(self.profile) if self.profile else None

    @property
    def source(self) -> str:
        return self.time(1024).source

    def time(self, input_tokens: float) -> PrefillTime:
        if self.profile is not None:
            return profile_prefill_time(self.profile, input_tokens, self._coeffs)
        return roofline_prefill_time(self.model, self.hw, self.gpus, input_tokens)

    def time_s(self, input_tokens) -> np.ndarray:
        """T_prefill in seconds for an array of lengths."""
        lengths = np.atleast_1d(np.asarray(input_tokens, float))
        if self._coeffs is not None:
            return np.polyval(self._coeffs, lengths)
        return np.asarray(roofline_prefill_time(self.model, self.hw, self.gpus, lengths).total_s, float)


def kv_throughput_bytes_per_s(model: ModelSpec, prefill: PrefillTime, input_tokens: float) -> float:
    """Phi_kv(l) = S_kv(l) / T_prefill(l), bytes/s ([PRFAAS] Eq. 1)."""
    return kv_cache_bytes(model, input_tokens) / prefill.total_s


def cluster_egress_bytes_per_s(n_gpus: int, gpus_per_instance: int, mean_kv_bytes: float, mean_prefill_s: float) -> float:
    """B_out = (N / P) * E[S_kv] / E[T_prefill], bytes/s ([PRFAAS] Eq. 2): the egress an N-GPU
    prefill cluster of P-GPU instances needs when every instance is busy."""
    if n_gpus < 1 or gpus_per_instance < 1:
        raise PlanError("cluster egress needs N >= 1 GPUs and P >= 1 GPUs per instance")
    return (n_gpus / gpus_per_instance) * mean_kv_bytes / mean_prefill_s
