"""Decode step time at batch B and the largest batch BS_max under a TPOT SLO.

One decode step is one forward pass (:func:`~prfaas_plan.roofline.terms.pass_terms`) of the
batch: B requests spread over the DP attention ranks and PP micro-batches, each request adding
1 + K tokens (K MTP draft tokens verified per step) that attend to its cached context c. Every
request's cache is read once per step (linear-attention state read and written), the weights
touched by the batch once (all dense weights, the expected distinct experts), plus the per-step
overhead (a fixed part and a part per request in the rank's batch: scheduling, sampling and
detokenising scale with the batch). With MTP the step also runs the one-layer draft module K times
(each pass with the LM head and its own launch, :func:`mtp_draft_s`) and emits A tokens per
request on average (A = accepted length), so

    TPOT = T_step / A,   output tokens/s per GPU = B * A / (T_step * P).

BS_max is the largest B with TPOT <= SLO whose caches fit beside the weights (TP replication of
the cache included). c is the mean context a request holds while decoding (mean input + half the
output). Theta_pd_d follows as [PRFAAS] Eq. 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import units
from ..catalog.hardware import Hardware
from ..catalog.model import DecodeProfile, ModelSpec
from ..errors import PlanError
from . import counts
from . import elementwise as ew
from .instance import Instance, make_instance
from .prefill import check_weights_fit
from .terms import Terms, gemm_compute_s, pass_terms


@dataclass(frozen=True)
class DecodeStep:
    total_s: float
    terms: dict
    accepted_tokens: float = 1.0
    binding: str | None = None

    @property
    def bound(self) -> str:
        return self.binding or max(self.terms, key=self.terms.get)

    @property
    def tpot_s(self) -> float:
        return self.total_s / self.accepted_tokens


@dataclass(frozen=True)
class DecodeCapacity:
    """BS_max and the step time at BS_max on one instance, and what limits the batch."""

    bs_max: int
    step_s: float
    limited_by: str  # "tpot-slo", "memory" or "profile range"
    memory_max_batch: int
    source: str
    accepted_tokens: float = 1.0

    def req_per_s(self, output_tokens: float) -> float:
        """One instance's decode throughput BS_max * A / (T_decode * L_out) ([PRFAAS] Eq. 5, N_d = 1)."""
        return self.bs_max * self.accepted_tokens / (self.step_s * output_tokens)

#: Fixed seconds of one MTP draft pass outside its kernels' work: one CUDA-graph replay of a
#: one-layer module, the greedy draft sampling and the hand-off to the next pass (SGLang and
#: TensorRT-LLM run the draft passes as separate graph launches within a step). ~0.1 ms [E: a
#: graph replay of ~30 kernels at a few microseconds each, plus a small sampling kernel].
MTP_DRAFT_LAUNCH_S = 1e-4


def step_terms(inst: Instance, batch: float, context_tokens: float) -> Terms:
    """Terms of one decode step of ``batch`` requests at mean context ``context_tokens``."""
    m, e = inst.model, inst.hw.efficiency
    per_rank = batch / (inst.dp * inst.pp)
    q = 1 + inst.mtp_draft_tokens
    linear_flop = counts.linear_attention_flop(m, 1.0)
    t = pass_terms(
        inst,
        tokens_per_rank=per_rank * q,
        ranks=inst.dp,
        attention_flop_per_rank=per_rank * q * (counts.decode_attention_flop(m, context_tokens) - linear_flop),
        attention_exp_per_rank=per_rank * q * counts.decode_attention_exp(m, context_tokens),
        kv_read_bytes_per_rank=per_rank * inst.attention_cache_bytes(context_tokens),
        linear_flop_per_rank=per_rank * q * linear_flop,
        state_bytes_per_rank=2.0 * per_rank * inst.state_bytes_per_request(),
        logits_per_rank=per_rank * q,
        overhead_s=e.decode_step_overhead_s + per_rank * e.decode_request_overhead_s,
        dedup_per_domain=False,
    )
    if inst.mtp_draft_tokens:
        t = t.scaled(1.0, **{"mtp-draft": mtp_draft_s(inst, per_rank, float(t.total_s) - float(t.seconds["overhead"]))})
    return t


def mtp_draft_s(inst: Instance, requests_per_rank: float, step_work_s: float) -> float:
    """Seconds the K draft passes of multi-token prediction add to a decode step. Each pass runs
    the MTP module (one transformer layer: the step's work per layer, ``step_work_s`` / layers), the
    shared LM head over the rank's requests (max(2 B h V as a GEMM (terms.gemm_compute_s), h V bytes / (BW e_mem)),
    sharded by attention TP) and its own launch, draft sampling and hand-off (:data:`MTP_DRAFT_LAUNCH_S`):

        T_draft = K (T_work / L + T_lm_head(B) + T_launch)

    At small batch the LM head's weight read and the launch dominate: DeepSeek-V3 at batch 1 reads
    1.85 GB of bf16 LM head per draft token on a DP-attention rank. The draft's own attention over
    the context is inside T_work / L (it attends like a main layer)."""
    m, e, hw = inst.model, inst.hw.efficiency, inst.hw
    tp = inst.attention_tp
    flop = requests_per_rank * counts.lm_head_flop(m) / tp  # 2 h V per token
    weight_bytes = m.vocab_size * m.hidden_size * units.dtype_bytes(inst.weights_dtype) / tp
    lm_head_s = ew.maximum(gemm_compute_s(inst, flop, inst.weights_dtype),
                    weight_bytes / (hw.memory_bandwidth_bytes_per_s * e.memory_frac))
    return inst.mtp_draft_tokens * (step_work_s / m.num_layers + lm_head_s + MTP_DRAFT_LAUNCH_S)


def roofline_decode_step(model: ModelSpec, hw: Hardware, gpus: int, batch: int, context_tokens: float,
                         instance: Instance | None = None) -> DecodeStep:
    inst = instance or make_instance(model, hw, gpus)
    t = step_terms(inst, batch, context_tokens)
    return DecodeStep(float(t.total_s), t.floats(), inst.mtp_accepted_tokens, t.binding)


def memory_max_batch(model: ModelSpec, hw: Hardware, gpus: int, context_tokens: float, instance: Instance | None = None) -> int:
    """Largest batch whose caches fit beside the weights in the usable memory of the instance."""
    inst = instance or make_instance(model, hw, gpus)
    check_weights_fit(inst)
    return inst.memory_max_batch(context_tokens)


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
    instance: Instance | None = None,
) -> DecodeCapacity:
    """BS_max and T_decode at it, from the model's decode profile on (part, GPUs) if present,
    else the roofline on ``instance`` (default shape). Raises :class:`PlanError` when the
    weights do not fit or no batch meets the SLO."""
    if tpot_slo_s <= 0:
        raise PlanError(f"TPOT SLO must be > 0 s, got {tpot_slo_s}")
    inst = instance or make_instance(model, hw, gpus)
    mem_batch = memory_max_batch(model, hw, gpus, context_tokens, inst)
    if mem_batch < 1:
        raise PlanError(f"model {model.name} on {gpus} x {hw.name}: not even one request of {context_tokens:.0f} tokens fits beside the weights")
    profile = model.decode_profile(hw.name, gpus) if use_profile else None
    if profile is not None:
        return _profile_capacity(profile, tpot_slo_s, mem_batch)
    accepted = inst.mtp_accepted_tokens

    def tpot(b: int) -> float:
        return float(step_terms(inst, b, context_tokens).total_s) / accepted

    if tpot(1) > tpot_slo_s:
        raise PlanError(
            f"TPOT SLO {tpot_slo_s * 1e3:.1f} ms cannot be met by {model.name} on {inst.describe()}: "
            f"even batch 1 takes {tpot(1) * 1e3:.1f} ms per token"
        )
    step = lambda b: tpot(b) * accepted  # noqa: E731
    if tpot(mem_batch) <= tpot_slo_s:
        return DecodeCapacity(mem_batch, step(mem_batch), "memory", mem_batch, "roofline", accepted)
    lo, hi = 1, mem_batch  # tpot(lo) <= slo < tpot(hi); the step is non-decreasing in b
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if tpot(mid) <= tpot_slo_s else (lo, mid)
    return DecodeCapacity(lo, step(lo), "tpot-slo", mem_batch, "roofline", accepted)
