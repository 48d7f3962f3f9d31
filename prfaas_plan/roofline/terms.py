"""One forward pass of an :class:`~.instance.Instance`, priced term by physical term.

A pass takes one micro-batch through every layer (through every pipeline stage in turn). Per
GPU, on the busiest rank, with e_* the engine efficiencies of the part (``Efficiency``):

    T_pass = overhead
           + sum over GEMM groups (dense, routed experts) of max(F / (peak_dtype e_gemm) + F b / (2 P K), W / (BW e_mem))
           + max(F_attn / (peak_attn_dtype e_attn) + beta E / SFU, KV read / (BW e_mem))   softmax attention
           + max(F_lin / (peak_bf16 e_lin), state r/w / (BW e_mem) + scan bytes / BW)  linear attention
           + activation traffic / (BW e_mem)                                        norms, residuals, SwiGLU, MoE permute
           + TP all-reduce + EP dispatch/combine + pipeline hand-offs               communication

b is the GEMM's compute-dtype bytes per element, P the part's power limit (``Hardware.power_w``;
no term where unpublished) and K (:data:`GEMM_FLOP_PER_JOULE`) the bf16 tensor FLOPs one joule buys
(:func:`gemm_compute_s`): a GEMM that keeps the tensor cores busy draws the power limit and the
clock falls, so its efficiency follows the part's balance peak x b/2 : power, as attention's
follows peak : SFU.
E is the softmax exponentials (one per query head per query-key pair) and SFU the part's
special-function-unit rate (``Hardware.sfu_exp_per_s``; no term where the part does not publish
one): the softmax work a kernel does not hide under its MMAs adds beta E / SFU
(:data:`SOFTMAX_UNHIDDEN_EXP`), so the attention term reads

    max(F_attn / (peak_attn e_attn) + beta E / SFU, KV read / (BW e_mem))

and the share of attention time spent outside the MMAs follows the part's balance (peak : SFU):
large on Blackwell fp8 (5 TeraExponentials/s beside 5 PFLOP/s), smaller on H200 bf16 (measured:
SDPA at 0.62 of the bf16 peak used 0.30 of the SFU, hardware/measured/), smallest on H20.
The chunked linear-attention kernels are priced by the HBM traffic their published timings show
(:data:`~.counts.LINEAR_SCAN_VECTORS`), beside their FLOPs at ``linear_attention_frac``. Each kernel overlaps its own loads with its own math (the max inside a term); kernels run one
after another, so terms add. Communication is not hidden, except EP dispatch/combine under
two-batch overlap (``Instance.overlap_comm``), where it hides behind the other micro-batch's
compute. Routed-expert GEMMs carry the busiest rank's extra load (``expert_imbalance_frac``) when
experts are placed whole on EP ranks. A collective whose group fits the scale-up domain runs on
the scale-up link; one that spans domains is hierarchical: the intra-domain part on the scale-up
link, 1/domain of the buffer across the NIC.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import units
from . import counts
from . import elementwise as ew
from .instance import Instance

#: hidden-sized activation vectors each token reads or writes per layer outside the GEMMs and
#: attention kernels: two RMSNorms (read + write), two residual adds (2 reads + 1 write), rotary
#: and q/k/v copies. Engine kernels fuse some of these; 10 is an estimate. [E]
ACTIVATION_VECTORS_PER_LAYER = 10
#: MoE permute / unpermute: each routed copy is written and read once on the way to the experts
#: and back. [E]
MOE_PERMUTE_VECTORS_PER_COPY = 4
ACTIVATION_BYTES = 2.0  # bf16 activations
#: Softmax attention's non-MMA work per score (the exponential on the SFU, with the max, scale and
#: conversion around it) that a kernel does not hide under its MMAs, in SFU-exponential times. One
#: number for every part: FlashAttention-3 (Shah et al. 2024, abstract) reaches 0.75 of the H100 bf16
#: peak and ~0.60 of the fp8 peak, the same kernel with twice the MMA rate beside the same SFU. With
#: T = F / (peak e0) + beta E / SFU, the two readings give e0 ~ 1.0 and beta 0.7 (head dim 128) to
#: 1.4 (head dim 256); 1.0 is taken [D]. The share of attention time this term holds follows the
#: part's own balance peak : SFU: 0.32 of it on H200 bf16 at head dim 128, 0.10 on H20 (148 TFLOP/s
#: beside a Hopper SFU), 0.5 with fp8 on Blackwell: compute-poor parts reach a higher fraction of
#: their peak in attention because the softmax hides behind slower tensor cores.
SOFTMAX_UNHIDDEN_EXP = 1.0
#: bf16 tensor FLOPs per joule at which a GEMM's MMAs run into the part's power limit (issue #17
#: item 2, GEMM half). A GEMM that keeps the tensor cores busy draws the power limit and the SM clock
#: falls below the one the datasheet peak assumes: this repository's H200 ran bf16 8192^3 at 0.82 of
#: peak in short bursts and 0.68 sustained at 700 W, the clock at 1.4-1.9 GHz
#: (hardware/measured/h200-microbench-2026-12-04.json). Modelled as 1/e = 1/e_gemm + (peak / P) / K:
#: least squares over the published Maximum Achievable Matmul FLOPS of torch.matmul, BF16
#: (stas00/ml-engineering, compute/accelerator/README.md: A100 SXM 0.869 at 400 W, GH200 0.838 at
#: 900 W, H100 SXM 0.803 at 700 W "H200 is the same", B200 0.776 at 1,000 W, B300 0.786 at 1,100 W,
#: GB200 0.729 at 1,200 W) and H20's 142.3 of 148 TFLOP/s at 400 W (0.961;
#: zzc0721/torch-performance-test-data#77, torch 2.7, 10240^3) gives e_gemm = 0.975 and K = 7.25
#: TFLOP/s per W, every part within 5% (GB200 4.5%) [D]; left out, H20 is predicted at 0.90. The same die at
#: more power is faster (GH200 900 W vs H100 700 W: 0.838 vs 0.803) and more bandwidth alone is not
#: (H200 = H100), which HBM bandwidth as the balance (tried: H200 8% ahead of H100) contradicts. A
#: dtype of b bytes spends b/2 of bf16's energy per FLOP: the FP8 rows of the same table fall within
#: 5% on Blackwell (B200 0.763 vs 0.749) and 9-13% below on Hopper (DeepGEMM-style fp8 promotion on
#: CUDA cores, not modelled); scaling by the fp8 peak instead misses Blackwell FP8 by 14-20%. So H20
#: (0.37 TFLOP/s per W) keeps 0.96 of e_gemm, H100/H200 (1.41) 0.85, B200 (2.25) 0.79 (e_gemm 0.873).
GEMM_FLOP_PER_JOULE = 7.25e12
#: DeepEP-style dispatch sends fp8 activations (1 B/element), combine returns bf16 (2 B).
DISPATCH_BYTES, COMBINE_BYTES = 1.0, 2.0

TERM_NAMES = ("gemm", "weights-hbm", "attention", "kv-hbm", "linear-attention", "activations-hbm",
              "tp-allreduce", "ep-dispatch-combine", "pipeline", "mtp-draft", "overhead")


@dataclass(frozen=True)
class Terms:
    """Seconds per pass by term (keys of :data:`TERM_NAMES`); ``total_s`` is their sum.
    ``binding`` names the bound where the largest visible term is not it (compute hidden under
    overlapped communication)."""

    seconds: dict
    binding: str | None = None

    @property
    def total_s(self):
        return sum(self.seconds.values())

    @property
    def bound(self) -> str:
        """The term that takes the most time (what binds); scalar passes only."""
        if self.binding is not None:
            return self.binding
        return max(self.seconds, key=lambda k: float(self.seconds[k]))

    def floats(self) -> dict:
        return {k: float(v) for k, v in self.seconds.items()}

    def scaled(self, factor: float, **extra: float) -> Terms:
        out = {k: v * factor for k, v in self.seconds.items()}
        for k, v in extra.items():
            out[k] = out.get(k, 0.0) + v
        return Terms(out, self.binding)


def allreduce_s(inst: Instance, group: int, buffer_bytes: float) -> float:
    """Ring all-reduce of ``buffer_bytes`` over ``group`` GPUs: each GPU moves 2 (g - 1) / g of the
    buffer. Inside the scale-up domain on its link; across domains hierarchical (reduce-scatter
    and all-gather inside each domain, all-reduce of a 1/domain shard across the NIC)."""
    if group <= 1:
        return 0.0
    hw, e = inst.hw, inst.hw.efficiency
    d = min(group, inst.domain_gpus)
    t = e.collective_latency_s
    if d > 1:
        t += 2 * (d - 1) / d * buffer_bytes / (hw.scaleup_bytes_per_s * e.link_frac)
    n = group / d
    if n > 1:
        t += e.collective_latency_s + 2 * (n - 1) / n * buffer_bytes / d / (hw.scaleout_bytes_per_s * e.link_frac)
    return t


def dispatch_combine_s(inst: Instance, tokens_per_gpu: float, dedup_per_domain: bool) -> float:
    """EP dispatch + combine of one MoE layer: each GPU sends its own tokens x top-k copies of
    hidden (fp8 out, bf16 back) to the ranks holding their experts, uniformly over EP ranks.
    Copies to ranks in the own domain use the scale-up link, the rest the NIC; with
    ``dedup_per_domain`` (DeepEP normal kernels, prefill) a token crosses the NIC once per remote
    domain and fans out over the scale-up link there; low-latency kernels (decode) send per expert."""
    ep = inst.ep
    if ep <= 1:
        return 0.0
    hw, e, k = inst.hw, inst.hw.efficiency, inst.model.ffn.active_experts
    d = min(ep, inst.domain_gpus)
    per_copy = inst.model.hidden_size * (DISPATCH_BYTES + COMBINE_BYTES)
    intra = k * (d - 1) / ep
    if dedup_per_domain:
        inter = (ep / d - 1) * (1 - (1 - d / ep) ** k)
    else:
        inter = k * (ep - d) / ep
    t_intra = tokens_per_gpu * intra * per_copy / (hw.scaleup_bytes_per_s * e.link_frac) if d > 1 else 0.0
    t_inter = tokens_per_gpu * inter * per_copy / (hw.scaleout_bytes_per_s * e.link_frac) if inter > 0 else 0.0
    return ew.maximum(t_intra, t_inter) + 2 * e.collective_latency_s


def gemm_compute_s(inst: Instance, flop, weights_dtype: str):
    """Compute time of a GEMM of ``flop`` over weights of ``weights_dtype`` on one GPU (issue #17
    item 2, GEMM half): the MMAs at ``gemm_frac`` of the compute dtype's peak, plus the time the
    power limit P adds, b/2 joules per :data:`GEMM_FLOP_PER_JOULE` FLOPs at P watts (b the compute
    dtype's bytes per element; no term where the part publishes no power):

        T = F / (peak_dtype e_gemm) + F b / (2 P K)

    so the effective fraction of peak is 1 / (1 / e_gemm + peak_dtype b / (2 P K)), higher on a
    compute-poor part (H20: 148 TFLOP/s at 400 W) than on H100/H200 (989 at 700 W)."""
    dtype = units.COMPUTE_DTYPE_OF_WEIGHTS[weights_dtype]
    hw = inst.hw
    t = flop / (hw.peak_for(dtype) * hw.efficiency.gemm_frac)
    if hw.power_w:
        t = t + flop * units.dtype_bytes(dtype) / (2.0 * hw.power_w * GEMM_FLOP_PER_JOULE)
    return t


def pass_terms(
    inst: Instance,
    tokens_per_rank: float,
    ranks: int,
    attention_flop_per_rank: float,
    kv_read_bytes_per_rank: float,
    linear_flop_per_rank: float,
    state_bytes_per_rank: float,
    logits_per_rank: float,
    overhead_s: float,
    dedup_per_domain: bool,
    attention_exp_per_rank: float = 0.0,
    linear_scan_bytes_per_rank: float = 0.0,
) -> Terms:
    """One pass (module docstring) with ``tokens_per_rank`` new tokens on each of ``ranks`` busy
    attention ranks. Attention and state quantities are per rank before TP sharding (caches with
    their TP replication, see :meth:`Instance.cache_bytes_per_request`)."""
    m, f, hw, e = inst.model, inst.model.ffn, inst.hw, inst.hw.efficiency
    bw = hw.memory_bandwidth_bytes_per_s * e.memory_frac
    tp = inst.attention_tp
    all_tokens = tokens_per_rank * ranks
    gemm = weights = 0.0

    def add_gemm(flop, weights_dtype: str, weight_bytes) -> None:
        nonlocal gemm, weights
        c, w = gemm_compute_s(inst, flop, weights_dtype), weight_bytes / bw
        gemm = gemm + ew.where(c >= w, c, 0.0)
        weights = weights + ew.where(c >= w, 0.0, w)

    dense_flop = 2.0 * tokens_per_rank * inst.dense_params + logits_per_rank * counts.lm_head_flop(m)
    add_gemm(dense_flop / tp, inst.weights_dtype, inst.dense_weight_bytes() / tp)
    if f.moe_layers:
        imbalance = 1.0 + (e.expert_imbalance_frac if inst.ep > 1 else 0.0)
        expert_flop = 2.0 * all_tokens * f.moe_layers * f.active_experts * counts.expert_params(m)
        group, stage = inst.expert_group, inst.stage_gpus
        touched = f.moe_layers * counts.expected_distinct_experts(m, all_tokens * group / stage) * inst.expert_bytes()
        add_gemm(expert_flop * imbalance / stage, inst.moe_weights_dtype, touched / group)

    attn_c = attention_flop_per_rank / tp / (inst.attention_peak_flop_per_s * e.attention_frac)
    if hw.sfu_exp_per_s:  # softmax work that does not hide under the MMAs (SOFTMAX_UNHIDDEN_EXP)
        attn_c = attn_c + SOFTMAX_UNHIDDEN_EXP * attention_exp_per_rank / tp / hw.sfu_exp_per_s
    attn_m = kv_read_bytes_per_rank / tp / bw
    lin_c = linear_flop_per_rank / tp / (hw.bf16_flop_per_s * e.linear_attention_frac)
    # chunked linear-attention kernels: their measured traffic at the datasheet bandwidth (counts.LINEAR_SCAN_VECTORS)
    lin_m = state_bytes_per_rank / tp / bw + linear_scan_bytes_per_rank / tp / hw.memory_bandwidth_bytes_per_s

    vectors = ACTIVATION_VECTORS_PER_LAYER * m.num_layers + MOE_PERMUTE_VECTORS_PER_COPY * f.active_experts * f.moe_layers
    act_bytes = tokens_per_rank * ACTIVATION_BYTES * (
        vectors * m.hidden_size
        + 3.0 * (f.dense_layers * f.dense_intermediate + f.moe_layers * f.shared_experts * f.shared_intermediate) / tp
        + 3.0 * f.moe_layers * f.active_experts * f.expert_intermediate * ranks / inst.stage_gpus
    )
    activations = act_bytes / bw

    buffer = tokens_per_rank * m.hidden_size * ACTIVATION_BYTES
    tp_comm = m.num_layers * allreduce_s(inst, tp, buffer)  # after attention
    if inst.ep > 1:
        tp_comm += f.dense_layers * allreduce_s(inst, tp, buffer)  # dense FFN layers
        ep_comm = f.moe_layers * dispatch_combine_s(inst, tokens_per_rank / tp, dedup_per_domain)
    elif inst.dp > 1:  # DP attention with TP-sharded FFN: gather all ranks' tokens, reduce-scatter back
        tp_comm += m.num_layers * allreduce_s(inst, inst.stage_gpus, buffer * ranks)
        ep_comm = 0.0
    else:
        tp_comm += m.num_layers * allreduce_s(inst, tp, buffer)  # after the FFN
        ep_comm = 0.0
    pipeline = 0.0
    if inst.pp > 1:
        # a stage as large as the domain hands over to the next domain: over the NIC
        link = hw.scaleup_bytes_per_s if inst.stage_gpus < inst.domain_gpus else hw.scaleout_bytes_per_s
        pipeline = (inst.pp - 1) * (buffer / (link * e.link_frac) + e.collective_latency_s)

    compute = gemm + weights + ew.maximum(attn_c, attn_m) + ew.maximum(lin_c, lin_m) + activations
    binding = None
    if inst.overlap_comm:
        if ew.ndim(ep_comm) == 0 and ew.ndim(compute) == 0 and ep_comm > compute:
            binding = "ep-dispatch-combine"  # compute hides under the other micro-batch's comm
        ep_comm = ew.maximum(ep_comm - compute, 0.0)
    return Terms({
        "gemm": gemm,
        "weights-hbm": weights,
        "attention": ew.where(attn_c >= attn_m, attn_c, 0.0),
        "kv-hbm": ew.where(attn_m > attn_c, attn_m, 0.0),
        "linear-attention": ew.maximum(lin_c, lin_m),
        "activations-hbm": activations,
        "tp-allreduce": tp_comm,
        "ep-dispatch-combine": ep_comm,
        "pipeline": pipeline,
        "mtp-draft": 0.0,
        "overhead": overhead_s,
    }, binding)
