"""Decode step time T_decode(batch, context) and the largest batch BS_max under a TPOT SLO.

    T_decode(B, c) = overhead + max(F / (P * peak_w * e_compute),
                                    (W(B) + B * S_kv(c)) / (P * HBM bandwidth * e_mem)) + T_comm
W(B) is the weight bytes one step reads: all non-expert weights plus, per MoE layer, the expected
distinct experts a batch of B tokens touches (uniform routing). Every request reads its whole
cache S_kv(c) (KV, sliding-window KV and recurrent state) once per step. F counts the GEMMs of B
tokens and their attention over c cached tokens (MLA absorbed).

BS_max is the largest B with T_decode(B, c) <= TPOT SLO whose weights plus B caches fit the
usable share of the instance's memory. c is the mean context a request holds while decoding
(mean input + half the output). Theta_pd_d follows as [PRFAAS] Eq. 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..catalog.hardware import Hardware
from ..catalog.model import DecodeProfile, ModelSpec
from ..errors import PlanError
from . import counts
from .kv import kv_cache_bytes
from .prefill import check_weights_fit, collective_time_s, weights_gemm_peak_flop_per_s


@dataclass(frozen=True)
class DecodeStep:
    total_s: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def bound(self) -> str:
        terms = {"compute": self.compute_s, "memory": self.memory_s, "comm": self.comm_s, "overhead": self.overhead_s}
        return max(terms, key=terms.get)


@dataclass(frozen=True)
class DecodeCapacity:
    """BS_max and the step time at BS_max on one instance, and what limits the batch."""

    bs_max: int
    step_s: float
    limited_by: str  # "tpot-slo", "memory" or "profile range"
    memory_max_batch: int
    source: str

    def req_per_s(self, output_tokens: float) -> float:
        """One instance's decode throughput BS_max / (T_decode * L_out) ([PRFAAS] Eq. 5, N_d = 1)."""
        return self.bs_max / (self.step_s * output_tokens)


def roofline_decode_step(model: ModelSpec, hw: Hardware, gpus: int, batch: int, context_tokens: float) -> DecodeStep:
    e = hw.efficiency
    weights = counts.weight_bytes_touched(model, batch)
    cache = batch * kv_cache_bytes(model, context_tokens)
    memory_s = (weights + cache) / (gpus * hw.memory_bandwidth_bytes_per_s * e.decode_memory_frac)
    flop = (
        counts.linear_layer_flop(model, batch)
        + batch * counts.lm_head_flop(model)
        + batch * counts.decode_attention_flop(model, context_tokens)
    )
    compute_s = flop / (gpus * weights_gemm_peak_flop_per_s(model, hw) * e.decode_compute_frac)
    comm_s = collective_time_s(model, hw, gpus, batch)
    total = e.decode_step_overhead_s + max(compute_s, memory_s) + comm_s
    return DecodeStep(total, compute_s, memory_s, comm_s, e.decode_step_overhead_s)


def memory_max_batch(model: ModelSpec, hw: Hardware, gpus: int, context_tokens: float) -> int:
    """Largest batch whose caches fit beside the weights in the usable memory of the instance."""
    check_weights_fit(model, hw, gpus)
    free = gpus * hw.memory_capacity_bytes * hw.efficiency.memory_usable_frac - counts.weight_bytes(model)
    per_request = kv_cache_bytes(model, context_tokens)
    return int(free // per_request) if per_request > 0 else 10**9


def _profile_capacity(profile: DecodeProfile, tpot_slo_s: float, mem_batch: int) -> DecodeCapacity:
    """BS_max from a step-time-vs-batch profile: linear interpolation between points; no
    extrapolation above the largest profiled batch."""
    kind = "derived profile" if profile.derived else "profile"
    src = f"{kind}: {profile.source}"
    b, t = profile.batch_size, profile.step_time_s
    if tpot_slo_s < t[0]:
        raise PlanError(
            f"TPOT SLO {tpot_slo_s * 1e3:.1f} ms is below the fastest profiled step "
            f"({t[0] * 1e3:.1f} ms at batch {b[0]}) on {profile.gpus} x {profile.hardware}: no batch size meets it"
        )
    limited = "tpot-slo"
    if tpot_slo_s >= t[-1]:
        batch, step = float(b[-1]), t[-1]
        limited = "profile range" if tpot_slo_s > t[-1] else limited
    else:
        i = next(i for i in range(1, len(t)) if t[i] > tpot_slo_s)
        frac = (tpot_slo_s - t[i - 1]) / (t[i] - t[i - 1])
        batch = b[i - 1] + frac * (b[i] - b[i - 1])
        batch = math.floor(batch + 1e-9)
        step = t[i - 1] + (batch - b[i - 1]) / (b[i] - b[i - 1]) * (t[i] - t[i - 1])
    if batch > mem_batch:
        batch, limited = mem_batch, "memory"
    return DecodeCapacity(int(batch), step, limited, mem_batch, src)


def decode_capacity(
    model: ModelSpec,
    hw: Hardware,
    gpus: int,
    tpot_slo_s: float,
    context_tokens: float,
    use_profile: bool = True,
) -> DecodeCapacity:
    """BS_max and T_decode at it, from the model's decode profile on (part, GPUs) if present,
    else the roofline. Raises :class:`PlanError` when the weights do not fit or no batch meets
    the SLO."""
    if tpot_slo_s <= 0:
        raise PlanError(f"TPOT SLO must be > 0 s, got {tpot_slo_s}")
    mem_batch = memory_max_batch(model, hw, gpus, context_tokens)
    if mem_batch < 1:
        raise PlanError(f"model {model.name} on {gpus} x {hw.name}: not even one request of {context_tokens:.0f} tokens fits beside the weights")
    profile = model.decode_profile(hw.name, gpus) if use_profile else None
    if profile is not None:
        return _profile_capacity(profile, tpot_slo_s, mem_batch)

    def step(b: int) -> float:
        return roofline_decode_step(model, hw, gpus, b, context_tokens).total_s

    if step(1) > tpot_slo_s:
        raise PlanError(
            f"TPOT SLO {tpot_slo_s * 1e3:.1f} ms cannot be met by {model.name} on {gpus} x {hw.name}: "
            f"even batch 1 takes {step(1) * 1e3:.1f} ms per step"
        )
    if step(mem_batch) <= tpot_slo_s:
        return DecodeCapacity(mem_batch, step(mem_batch), "memory", mem_batch, "roofline")
    lo, hi = 1, mem_batch  # step(lo) <= slo < step(hi); step is non-decreasing in b
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if step(mid) <= tpot_slo_s else (lo, mid)
    return DecodeCapacity(lo, step(lo), "tpot-slo", mem_batch, "roofline")
