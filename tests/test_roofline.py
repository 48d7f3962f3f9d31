"""Roofline prefill time T_prefill(l) and decode step / BS_max (prfaas_plan.roofline.prefill,
.decode): every term by hand on a tiny model and a part with round numbers (conftest), and
invariants over the catalog."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import DecodeProfile, PrefillProfile
from prfaas_plan.catalog.paths import catalog_names
from prfaas_plan.errors import PlanError
from prfaas_plan.roofline.decode import decode_capacity, memory_max_batch, roofline_decode_step, step_terms
from prfaas_plan.roofline.instance import make_instance
from prfaas_plan.roofline.prefill import (
    PrefillModel,
    latency_terms,
    throughput_terms,
    cluster_egress_bytes_per_s,
    kv_throughput_bytes_per_s,
    profile_coefficients,
    profile_prefill_time,
    roofline_prefill_time,
)

MODEL_NAMES = catalog_names("models")
LENGTHS = [1, 100, 1024, 4096, 8192, 32_768, 65_536, 131_072, 262_144]

# Tiny model (conftest.tiny_model) at l = 4000 on P = 2 GPUs (TP2) of the simple part, latency
# regime (one chunk, one forward):
GEMM_FLOP = 2 * 4000 * 73_728 + 2 * 64 * 100  # dense weights for every token + LM head once
WEIGHT_BYTES = (73_728 + 6_400) * 2  # dense weights + LM head, bf16
ATTN_FLOP = 512 * 4000 * 4001 / 2  # 2 layers x 2 x 4 heads x 32 x l(l+1)/2
KV_BYTES = 256 * 4000  # written once
ACT_BYTES = 4000 * 2 * (10 * 2 * 64 + 3 * 2 * 128 / 2)  # 20 hidden vectors + SwiGLU (TP-sharded)
ALLREDUCE_S = 4 * (2 * 1 / 2) * 4000 * 64 * 2 / (1e11 * 0.5)  # 2 layers x 2 all-reduces, ring over 2


# --- prefill by hand ----------------------------------------------------------------------------


def test_prefill_terms_by_hand(make_tiny_model, make_simple_hardware):
    """Each term is flop / (P x peak x efficiency) or bytes / (P x bandwidth x efficiency)."""
    t = roofline_prefill_time(make_tiny_model(), make_simple_hardware(), 2, 4000)
    s = t.terms
    assert s["gemm"] == pytest.approx(GEMM_FLOP / (2 * 1e15 * 0.5), rel=1e-12)  # compute > weight reads here
    assert WEIGHT_BYTES / 2 / (1e12 * 0.5) < s["gemm"] and s["weights-hbm"] == 0
    assert s["attention"] == pytest.approx(ATTN_FLOP / (2 * 1e15 * 0.25), rel=1e-12)
    assert KV_BYTES / 2 / (1e12 * 0.5) < s["attention"] and s["kv-hbm"] == 0
    assert s["linear-attention"] == 0
    assert s["activations-hbm"] == pytest.approx(ACT_BYTES / (1e12 * 0.5), rel=1e-12)
    assert s["tp-allreduce"] == pytest.approx(ALLREDUCE_S, rel=1e-12)
    assert s["ep-dispatch-combine"] == s["pipeline"] == 0
    assert s["overhead"] == pytest.approx(0.1 + 0.01, rel=1e-12)  # per request + one forward
    assert t.total_s == pytest.approx(sum(s.values()), rel=1e-12)
    assert t.source == "roofline (latency)" and t.bound == "overhead"


def test_prefill_memory_bound(make_tiny_model, make_simple_hardware):
    """With 1 MB/s of HBM the weight reads bind the GEMMs and the KV writes bind attention."""
    hw = make_simple_hardware(memory_bandwidth_bytes_per_s=1e6)
    s = roofline_prefill_time(make_tiny_model(), hw, 2, 4000).terms
    assert s["gemm"] == 0 and s["weights-hbm"] == pytest.approx(WEIGHT_BYTES / 2 / 5e5, rel=1e-12)
    assert s["attention"] == 0 and s["kv-hbm"] == pytest.approx(KV_BYTES / 2 / 5e5, rel=1e-12)


def test_prefill_throughput_regime_by_hand(make_tiny_model, make_simple_hardware):
    """Under load one pass packs 16,384 tokens (4.096 prompts of 4,000); a prompt costs
    l / 16,384 of that pass and pays no per-request latency."""
    m, hw = make_tiny_model(), make_simple_hardware()
    t = roofline_prefill_time(m, hw, 2, 4000, regime="throughput").terms
    n = 16_384
    assert t["gemm"] == pytest.approx((2 * n * 73_728 + n / 4000 * 12_800) / 2 / 5e14 * 4000 / n, rel=1e-12)
    assert t["attention"] == pytest.approx(ATTN_FLOP / 2 / 2.5e14, rel=1e-12)  # the prompt's own attention
    assert t["overhead"] == pytest.approx(0.01 * 4000 / n, rel=1e-12)
    assert t["tp-allreduce"] == pytest.approx(ALLREDUCE_S, rel=1e-12)  # linear in tokens


def test_prefill_long_prompt_runs_in_chunks(make_tiny_model, make_simple_hardware):
    """A 32,768-token prompt alone runs as two 16,384-token forwards: two forward overheads, and
    the second chunk reads the first chunk's KV."""
    t = roofline_prefill_time(make_tiny_model(), make_simple_hardware(memory_bandwidth_bytes_per_s=1e3), 1, 32_768).terms
    assert t["overhead"] == pytest.approx(0.1 + 2 * 0.01, rel=1e-12)
    assert t["kv-hbm"] == pytest.approx(2 * 256 * 16_384 * 1.5 / 500, rel=1e-12)


def test_linear_attention_term_by_hand(make_tiny_model, make_simple_hardware):
    """2 KDA layers of 4 heads x 16 x 16, l = 4000 on 1 GPU (one 4,000-token chunk). The chunked
    kernels are bandwidth-bound: 47 bf16 (d_k + d_v) vectors per token per head (counts.
    LINEAR_SCAN_VECTORS) = 2 x 4 x 47 x 2 x 32 x 4,000 B = 96.256 MB at the datasheet 1e12 B/s,
    plus reading and writing the fp32 state (2 x 8,192 B at 0.5 x 1e12 B/s). The FLOP side,
    8 x 2 x 1,024 x 4,000 / (1e15 x 0.5) = 0.13 us, does not bind."""
    from prfaas_plan.catalog.model import LinearAttention

    m = make_tiny_model(layers=(LinearAttention(2, "kda", 4, 4, 16, 16),))
    s = roofline_prefill_time(m, make_simple_hardware(), 1, 4000).terms
    assert s["linear-attention"] == pytest.approx(2 * 4 * 47 * 2 * 32 * 4000 / 1e12 + 2 * 8192 / 5e11, rel=1e-12)
    assert s["attention"] == s["kv-hbm"] == 0
    fast = roofline_prefill_time(m, make_simple_hardware(peak_flop_per_s={"bf16": 1e16, "fp8": 2e16}), 1, 4000).terms
    assert fast["linear-attention"] == s["linear-attention"]  # 10x the tensor peak buys nothing: bandwidth binds


def test_linear_scan_matches_published_kernel_timings():
    """The constant reproduces what it was read from (FlashKDA BENCHMARK_H20.md / _GB200.md, fla
    kernels at T = 8,192, H = 96, d = 128): predicted time = VECTORS x 512 B x T x H / bandwidth
    within 15% of each timing, although GB200 has 16x H20's bf16 peak."""
    from prfaas_plan.roofline.counts import LINEAR_SCAN_VECTORS

    tokens_heads = 8192 * 96
    for variant, timings in {"kda": {4.0e12: 4.839e-3, 8.0e12: 2.327e-3}, "gated_deltanet": {4.0e12: 3.199e-3, 8.0e12: 1.279e-3}}.items():
        for bandwidth, measured_s in timings.items():
            predicted_s = LINEAR_SCAN_VECTORS[variant] * 2 * (128 + 128) * tokens_heads / bandwidth
            assert predicted_s / measured_s == pytest.approx(1.0, abs=0.15), (variant, bandwidth)


def test_pipeline_bubble_and_handoffs_by_hand(make_tiny_model, make_simple_hardware):
    """PP2 on 2 GPUs, one 4000-token request: half a pass waits for the pipeline to fill, and one
    hand-off of 4000 x 64 x 2 B crosses the scale-up link; under load there is no bubble."""
    m, hw = make_tiny_model(), make_simple_hardware()
    inst = make_instance(m, hw, 2, pp=2)
    lat = latency_terms(inst, 4000)
    handoff = 4000 * 64 * 2 / 5e10
    one_pass = lat.total_s - 0.1  # n / PP = 1/2 pass of work + 1/2 pass of bubble + request overhead
    assert lat.seconds["pipeline"] == pytest.approx(handoff / 2 + one_pass / 2, rel=1e-9)
    tput = throughput_terms(inst, 4000)  # a prompt costs 4000 / (16,384 x PP) of a pass
    assert tput.seconds["pipeline"] == pytest.approx(handoff / 2, rel=1e-9)


def test_prefill_one_gpu_has_no_comm(make_tiny_model, make_simple_hardware):
    """Tensor parallelism over one GPU moves nothing."""
    t = roofline_prefill_time(make_tiny_model(), make_simple_hardware(), 1, 1000)
    assert t.terms["tp-allreduce"] == 0


@pytest.mark.parametrize(("weights", "peak"), [("bf16", 1e15), ("fp8", 2e15), ("int4", 1e15)])
def test_gemm_peak_follows_weight_dtype(make_tiny_model, make_simple_hardware, weights, peak):
    """fp8 weights run fp8 GEMMs; int4 weights are dequantised to bf16 (W4A16)."""
    m = make_tiny_model()
    m = replace(m, dtypes=replace(m.dtypes, weights=weights))
    t = roofline_prefill_time(m, make_simple_hardware(), 2, 4000).terms
    assert t["gemm"] == pytest.approx(GEMM_FLOP / (2 * peak * 0.5), rel=1e-12)
    assert t["attention"] == pytest.approx(ATTN_FLOP / (2 * 1e15 * 0.25), rel=1e-12)  # attention stays bf16


def test_peak_for_falls_back_on_narrow_parts():
    """Rubin CPX states only an FP4 peak (20,000 TFLOP/s): bf16 math runs at a quarter of it."""
    cpx = load_hardware("rubin-cpx")
    assert cpx.peak_for("fp4") == 20_000e12
    assert cpx.peak_for("fp8") == 10_000e12
    assert cpx.bf16_flop_per_s == 5_000e12
    h200 = load_hardware("h200")
    assert h200.peak_for("fp4") == 1979e12  # no FP4 on Hopper: the fp8 peak


def test_prefill_rejects_zero_gpus(make_tiny_model, make_simple_hardware):
    """P = 0 GPUs is a PlanError (not a ZeroDivisionError)."""
    with pytest.raises(PlanError):
        roofline_prefill_time(make_tiny_model(), make_simple_hardware(), 0, 1000)
    with pytest.raises(PlanError):
        PrefillModel(make_tiny_model(), make_simple_hardware(), 0)


def test_kv_throughput_and_egress_by_hand(make_tiny_model, make_simple_hardware):
    """Phi_kv = S_kv / T_prefill ([PRFAAS] Eq. 1); B_out = (N/P) x S_kv / T ([PRFAAS] Eq. 2)."""
    m = make_tiny_model()
    t = roofline_prefill_time(m, make_simple_hardware(), 2, 1000)
    assert kv_throughput_bytes_per_s(m, t, 1000) == pytest.approx(256_000 / t.total_s, rel=1e-12)
    assert cluster_egress_bytes_per_s(512, 8, 1e9, 2.0) == 64 * 1e9 / 2.0
    with pytest.raises(PlanError):
        cluster_egress_bytes_per_s(0, 8, 1e9, 2.0)


# --- prefill profiles ---------------------------------------------------------------------------


def _profile(points):
    xs, ys = zip(*points)
    return PrefillProfile("simple", 8, "hand-made", False, tuple(xs), tuple(ys))


def test_profile_fit_recovers_a_quadratic():
    """Three points on T = 0.1 + 1e-4 l + 1e-9 l^2 give back that curve between and beyond them."""
    curve = lambda x: 0.1 + 1e-4 * x + 1e-9 * x * x  # noqa: E731
    p = _profile([(1000, curve(1000)), (10_000, curve(10_000)), (100_000, curve(100_000))])
    assert profile_coefficients(p) == pytest.approx([1e-9, 1e-4, 0.1], rel=1e-6)
    for x in (5000, 50_000, 200_000):
        assert profile_prefill_time(p, x).total_s == pytest.approx(curve(x), rel=1e-9)
    assert profile_prefill_time(p, 5000).source == "profile: hand-made"


def test_profile_degree_capped_by_points():
    """Two points fit a line, one point a constant."""
    two = _profile([(1000, 1.0), (3000, 2.0)])
    assert profile_prefill_time(two, 2000).total_s == pytest.approx(1.5, rel=1e-12)
    one = _profile([(1000, 0.7)])
    assert profile_prefill_time(one, 50_000).total_s == pytest.approx(0.7, rel=1e-12)


def test_prefill_model_uses_profile_only_for_its_instance(models, h200):
    """A profile is used on its own (part, GPU count) unless switched off, and nowhere else:
    the Table 5 profile on 8 x H200, the roofline on 16 x H200."""
    m = models["prfaas-1t-hybrid"]
    assert PrefillModel(m, h200, 8).source.startswith("profile: [PRFAAS] Table 5")
    assert PrefillModel(m, h200, 8, use_profile=False).source == "roofline (latency)"
    for p in m.prefill_profiles:
        pm = PrefillModel(m, load_hardware(p.hardware), p.gpus)
        assert pm.profile is p
        assert pm.source.endswith(p.source)
    assert m.prefill_profile("h200", 16) is None
    assert PrefillModel(m, h200, 16).source == "roofline (latency)"


def test_prefill_model_time_s_vectorised(models, h200):
    """time_s over an array equals time() per element, for the profile and the roofline."""
    m = models["prfaas-1t-hybrid"]
    for pm in (PrefillModel(m, h200, 8), PrefillModel(m, h200, 8, use_profile=False)):
        xs = [1024, 5000, 65_536]
        assert pm.time_s(xs) == pytest.approx([pm.time(x).total_s for x in xs], rel=1e-12)


# --- prefill invariants over the catalog --------------------------------------------------------


@pytest.mark.parametrize("hw_name", ["h200", "h20", "rubin-cpx"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_prefill_terms_add_up_and_grow(models, hw_name, name):
    """T is the sum of its non-negative terms, grows with l, and under load a prompt never takes
    more instance-time than alone (throughput <= latency)."""
    hw = load_hardware(hw_name)
    m = models[name]
    lat = roofline_prefill_time(m, hw, 8, np.array(LENGTHS, float))
    tput = roofline_prefill_time(m, hw, 8, np.array(LENGTHS, float), regime="throughput")
    for t in (lat, tput):
        assert np.asarray(t.total_s) == pytest.approx(sum(np.asarray(v) for v in t.terms.values()), rel=1e-12)
        assert all(np.all(np.asarray(v) >= 0) for v in t.terms.values())
        assert np.all(np.diff(np.asarray(t.total_s)) > 0)
    assert np.all(np.asarray(tput.total_s) <= np.asarray(lat.total_s))


@pytest.mark.parametrize("name", ["minimax-m2.5", "qwen3-235b", "kimi-linear-48b", "deepseek-v3"])
def test_fp8_attention_never_slower(models, h200, name):
    """Attention in fp8 (same cache) never makes prefill or decode slower than in bf16."""
    m = models[name]
    for gpus in (8, 16):
        bf16, fp8 = (make_instance(m, h200, gpus, attention_dtype=d) for d in ("bf16", "fp8"))
        for length in (1024, 32_768, 131_072):
            for fn in (latency_terms, throughput_terms):
                assert fn(fp8, length).total_s <= fn(bf16, length).total_s
        for b in (1, 64, 512):
            assert step_terms(fp8, b, 8192).total_s <= step_terms(bf16, b, 8192).total_s


# --- decode -------------------------------------------------------------------------------------


def test_decode_step_by_hand(make_tiny_model, make_simple_hardware):
    """1 GPU, batch 4, 100 cached tokens: the weights (160,256 B) and 4 caches of 25,600 B are
    read once (both bind over their tiny FLOPs), 4 x 2,048 activation elements, 1 ms overhead."""
    step = roofline_decode_step(make_tiny_model(), make_simple_hardware(), 1, 4, 100)
    s = step.terms
    assert s["weights-hbm"] == pytest.approx(160_256 / 5e11, rel=1e-12) and s["gemm"] == 0
    assert s["kv-hbm"] == pytest.approx(4 * 25_600 / 5e11, rel=1e-12) and s["attention"] == 0
    assert s["activations-hbm"] == pytest.approx(4 * 2 * (20 * 64 + 3 * 256) / 5e11, rel=1e-12)
    assert s["tp-allreduce"] == 0 and s["overhead"] == 0.001
    assert step.total_s == pytest.approx(sum(s.values()), rel=1e-12)
    assert step.bound == "overhead"


def test_decode_mtp_emits_accepted_tokens(make_tiny_model, make_simple_hardware):
    """MTP with 2 draft tokens verifies 3 tokens per request per step and emits 2.5 on average:
    TPOT = step / 2.5. Each of the 2 draft passes runs one layer (the step's work / 2 layers), the
    LM head for the 4 requests (its 100 x 64 bf16 weights, 12,800 B at 0.5 x 1e12 B/s = 25.6 ns,
    above 4 x 2 x 64 x 100 FLOPs at 0.5 x 1e15) and a 0.1 ms launch (decode.MTP_DRAFT_LAUNCH_S)."""
    m, hw = make_tiny_model(), make_simple_hardware()
    plain = step_terms(make_instance(m, hw, 1), 4, 100)
    mtp_inst = make_instance(m, hw, 1, mtp_draft_tokens=2, mtp_accepted_tokens=2.5)
    step = roofline_decode_step(m, hw, 1, 4, 100, mtp_inst)
    work = step.total_s - step.terms["mtp-draft"] - 0.001
    assert step.terms["mtp-draft"] == pytest.approx(2 * (work / 2 + 12_800 / 5e11 + 1e-4), rel=1e-12)
    assert step.tpot_s == pytest.approx(step.total_s / 2.5, rel=1e-12)
    assert step.terms["activations-hbm"] == pytest.approx(3 * plain.seconds["activations-hbm"], rel=1e-12)


def test_memory_max_batch_by_hand(make_tiny_model, make_simple_hardware):
    """(90% of 100 GB - 173,056 B of weights) // (256 B/token x 1000 tokens) = 351,561."""
    assert memory_max_batch(make_tiny_model(), make_simple_hardware(), 1, 1000) == 351_561


def _fits(model, hw, gpus):
    return make_instance(model, hw, gpus).weights_fit()


@pytest.mark.parametrize("hw_name", ["h200", "h20"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_decode_step_monotone_in_batch(models, hw_name, name):
    """A bigger batch never steps faster (more weights touched, more caches read)."""
    hw, m = load_hardware(hw_name), models[name]
    for context in (1024, 32_768):
        steps = [roofline_decode_step(m, hw, 8, b, context).total_s for b in (1, 2, 4, 8, 16, 64, 256, 1024)]
        assert all(b >= a for a, b in zip(steps, steps[1:]))
        assert steps[-1] > steps[0]


@pytest.mark.parametrize("slo_s", [0.025, 0.05])
@pytest.mark.parametrize("hw_name", ["h200", "h20"])
def test_decode_capacity_is_the_largest_batch_meeting_the_slo(models, hw_name, slo_s):
    """BS_max meets the TPOT SLO and BS_max + 1 does not (when the SLO binds); when memory
    binds BS_max is the memory limit and still meets the SLO."""
    hw = load_hardware(hw_name)
    checked = 0
    for m in models.values():
        if not _fits(m, hw, 8):
            continue
        cap = decode_capacity(m, hw, 8, slo_s, 28_000, use_profile=False)
        step = lambda b: roofline_decode_step(m, hw, 8, b, 28_000).total_s  # noqa: E731
        assert cap.bs_max >= 1
        assert cap.step_s == pytest.approx(step(cap.bs_max), rel=1e-12)
        assert step(cap.bs_max) <= slo_s
        if cap.limited_by == "tpot-slo":
            assert step(cap.bs_max + 1) > slo_s, m.name
            assert cap.bs_max <= cap.memory_max_batch
            checked += 1
        else:
            assert cap.limited_by == "memory"
            assert cap.bs_max == cap.memory_max_batch == memory_max_batch(m, hw, 8, 28_000)
        assert cap.req_per_s(1024) == pytest.approx(cap.bs_max / (cap.step_s * 1024), rel=1e-12)
    assert checked >= 1  # the SLO-bound branch was exercised


def test_decode_model_does_not_fit(models, h20):
    """A 1T model on one H20 (96 GB) is a PlanError naming the model and the instance."""
    with pytest.raises(PlanError, match="ring-2.5-1t.*1 x h20"):
        decode_capacity(models["ring-2.5-1t"], h20, 1, 0.04, 1000)


@pytest.mark.parametrize("slo_s", [1e-6, 0.0, -0.01])
def test_decode_impossible_slo(models, h200, slo_s):
    """A TPOT SLO below the batch-1 step (or not positive) is a PlanError, not BS_max = 0."""
    with pytest.raises(PlanError):
        decode_capacity(models["minimax-m2.5"], h200, 8, slo_s, 1000)


def test_decode_from_profile_by_hand(make_tiny_model, make_simple_hardware):
    """Step time 10/20/40 ms at batch 1/8/32: a 30 ms SLO interpolates to batch 20 (30 ms);
    above the last point the batch stays at 32 ('profile range'); below the first, PlanError."""
    m = make_tiny_model(decode_profiles=(DecodeProfile("simple", 1, "hand-made", True, (1, 8, 32), (0.01, 0.02, 0.04)),))
    hw = make_simple_hardware()
    cap = decode_capacity(m, hw, 1, 0.03, 1000)
    assert (cap.bs_max, cap.limited_by) == (20, "tpot-slo")
    assert cap.step_s == pytest.approx(0.03, rel=1e-12)
    assert cap.source.startswith("derived profile")
    top = decode_capacity(m, hw, 1, 0.05, 1000)
    assert (top.bs_max, top.limited_by, top.step_s) == (32, "profile range", 0.04)
    with pytest.raises(PlanError):
        decode_capacity(m, hw, 1, 0.005, 1000)
    assert decode_capacity(m, hw, 1, 0.03, 1000, use_profile=False).source == "roofline"


def test_decode_profile_capped_by_memory(make_tiny_model, make_simple_hardware):
    """A profile batch that does not fit in memory is cut to the memory limit."""
    m = make_tiny_model(decode_profiles=(DecodeProfile("simple", 1, "hand-made", False, (1, 8, 32), (0.01, 0.02, 0.04)),))
    hw = make_simple_hardware(memory_capacity_bytes=(173_056 + 10 * 256_000) / 0.9 + 1)  # room for 10 requests
    cap = decode_capacity(m, hw, 1, 0.03, 1000)
    assert (cap.bs_max, cap.limited_by, cap.memory_max_batch) == (10, "memory", 10)


def test_kv_throughput_grid_is_finite(models, h200):
    """Phi_kv is finite and positive for every catalog model at every length."""
    for m in models.values():
        for length in LENGTHS:
            t = roofline_prefill_time(m, h200, 8, length)
            phi = kv_throughput_bytes_per_s(m, t, length)
            assert np.isfinite(phi) and phi > 0
