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
from prfaas_plan.roofline import counts
from prfaas_plan.roofline.decode import decode_capacity, memory_max_batch, roofline_decode_step
from prfaas_plan.roofline.prefill import (
    PrefillModel,
    cluster_egress_bytes_per_s,
    kv_throughput_bytes_per_s,
    profile_coefficients,
    profile_prefill_time,
    roofline_prefill_time,
)

MODEL_NAMES = catalog_names("models")
LENGTHS = [1, 100, 1024, 4096, 8192, 32_768, 65_536, 131_072, 262_144]

# Tiny model (conftest.tiny_model) at l = 1000 on P = 2 GPUs of the simple part:
GEMM_FLOP = 2 * 1000 * (24_576 + 49_152) + 2 * 64 * 100  # weights for every token + LM head once
ATTN_FLOP = 256 * 1000 * 1001  # 2 layers x 2 x 4 heads x 32 x l(l+1)/2
TRAFFIC_BYTES = (24_576 + 49_152 + 6_400) * 2 + 256 * 1000  # weights touched + S_kv
TP_BYTES = 2 * 2 * 2 * (1 / 2) * 1000 * 64 * 2  # layers x 2 all-reduces x 2(P-1)/P x buffer


# --- prefill by hand ----------------------------------------------------------------------------


def test_prefill_terms_by_hand(make_tiny_model, make_simple_hardware):
    """Each term is flop / (P x peak x efficiency) or bytes / (P x bandwidth x efficiency)."""
    t = roofline_prefill_time(make_tiny_model(), make_simple_hardware(), 2, 1000)
    assert t.gemm_s == pytest.approx(GEMM_FLOP / (2 * 1e15 * 0.5), rel=1e-12)
    assert t.attention_s == pytest.approx(ATTN_FLOP / (2 * 1e15 * 0.25), rel=1e-12)
    assert t.linear_attention_s == 0
    assert t.memory_s == pytest.approx(TRAFFIC_BYTES / (2 * 1e12 * 0.5), rel=1e-12)
    assert t.comm_s == pytest.approx(TP_BYTES / (1e11 * 0.5), rel=1e-12)
    assert t.overhead_s == 0.1
    assert t.source == "roofline"


def test_prefill_total_is_overhead_plus_max_plus_comm(make_tiny_model, make_simple_hardware):
    """T = overhead + max(compute, memory) + comm; here compute binds."""
    t = roofline_prefill_time(make_tiny_model(), make_simple_hardware(), 2, 1000)
    compute = GEMM_FLOP / 1e15 + ATTN_FLOP / 5e14
    memory = TRAFFIC_BYTES / 1e12
    assert compute > memory
    assert t.compute_s == pytest.approx(compute, rel=1e-12)
    assert t.total_s == pytest.approx(0.1 + compute + TP_BYTES / 5e10, rel=1e-12)


def test_prefill_memory_bound(make_tiny_model, make_simple_hardware):
    """With 1 MB/s of HBM the memory term binds and the total uses it."""
    hw = make_simple_hardware(memory_bandwidth_bytes_per_s=1e6)
    t = roofline_prefill_time(make_tiny_model(), hw, 2, 1000)
    assert t.memory_s == pytest.approx(TRAFFIC_BYTES / 1e6, rel=1e-12)
    assert t.total_s == pytest.approx(0.1 + TRAFFIC_BYTES / 1e6 + TP_BYTES / 5e10, rel=1e-12)
    assert t.bound == "memory"


def test_prefill_without_scaleup_uses_nic(make_tiny_model, make_simple_hardware):
    """A part with no scale-up link (Rubin CPX) sends its collectives over the NIC."""
    hw = make_simple_hardware(scaleup_bytes_per_s=0.0)
    t = roofline_prefill_time(make_tiny_model(), hw, 2, 1000)
    assert t.comm_s == pytest.approx(TP_BYTES / (5e10 * 0.5), rel=1e-12)


def test_prefill_one_gpu_has_no_comm(make_tiny_model, make_simple_hardware):
    """Tensor parallelism over one GPU moves nothing."""
    t = roofline_prefill_time(make_tiny_model(), make_simple_hardware(), 1, 1000)
    assert t.comm_s == 0


@pytest.mark.parametrize(("weights", "peak"), [("bf16", 1e15), ("fp8", 2e15), ("int4", 1e15)])
def test_gemm_peak_follows_weight_dtype(make_tiny_model, make_simple_hardware, weights, peak):
    """fp8 weights run fp8 GEMMs; int4 weights are dequantised to bf16 (W4A16)."""
    m = make_tiny_model()
    m = replace(m, dtypes=replace(m.dtypes, weights=weights))
    t = roofline_prefill_time(m, make_simple_hardware(), 2, 1000)
    assert t.gemm_s == pytest.approx(GEMM_FLOP / (2 * peak * 0.5), rel=1e-12)
    assert t.attention_s == pytest.approx(ATTN_FLOP / (2 * 1e15 * 0.25), rel=1e-12)  # attention stays bf16


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
    assert PrefillModel(m, h200, 8, use_profile=False).source == "roofline"
    for p in m.prefill_profiles:
        pm = PrefillModel(m, load_hardware(p.hardware), p.gpus)
        assert pm.profile is p
        assert pm.source.endswith(p.source)
    assert m.prefill_profile("h200", 16) is None
    assert PrefillModel(m, h200, 16).source == "roofline"


def test_prefill_model_time_s_vectorised(models, h200):
    """time_s over an array equals time() per element, for the profile and the roofline."""
    m = models["prfaas-1t-hybrid"]
    for pm in (PrefillModel(m, h200, 8), PrefillModel(m, h200, 8, use_profile=False)):
        xs = [1024, 5000, 65_536]
        assert pm.time_s(xs) == pytest.approx([pm.time(x).total_s for x in xs], rel=1e-12)


# --- prefill invariants over the catalog --------------------------------------------------------


@pytest.mark.parametrize("hw_name", ["h200", "h20", "rubin-cpx"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_prefill_total_at_least_each_bound(models, hw_name, name):
    """T >= overhead + compute, T >= overhead + memory, T >= comm; it equals overhead +
    max(compute, memory) + comm; and it grows with l."""
    hw = load_hardware(hw_name)
    m = models[name]
    totals = []
    for length in LENGTHS:
        t = roofline_prefill_time(m, hw, 8, length)
        assert t.total_s >= t.overhead_s + t.compute_s
        assert t.total_s >= t.overhead_s + t.memory_s
        assert t.total_s >= t.comm_s
        assert t.total_s == pytest.approx(t.overhead_s + max(t.compute_s, t.memory_s) + t.comm_s, rel=1e-12)
        assert min(t.gemm_s, t.attention_s, t.linear_attention_s, t.memory_s, t.comm_s) >= 0
        totals.append(t.total_s)
    assert all(b > a for a, b in zip(totals, totals[1:]))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_compute_and_memory_terms_scale_with_gpus(models, h200, name):
    """Compute and HBM terms divide evenly over the P GPUs of an instance."""
    m = models[name]
    one, eight = roofline_prefill_time(m, h200, 1, 32_768), roofline_prefill_time(m, h200, 8, 32_768)
    assert eight.compute_s * 8 == pytest.approx(one.compute_s, rel=1e-12)
    assert eight.memory_s * 8 == pytest.approx(one.memory_s, rel=1e-12)


# --- decode -------------------------------------------------------------------------------------


def test_decode_step_by_hand(make_tiny_model, make_simple_hardware):
    """1 GPU, batch 4, 100 cached tokens: HBM reads weights (160,256 B) + 4 caches x 25,600 B;
    FLOPs 2 x 4 x 73,728 + 4 x LM head 12,800 + 4 x attention 2 x 2 x 4 x 32 x 100."""
    step = roofline_decode_step(make_tiny_model(), make_simple_hardware(), 1, 4, 100)
    memory = (160_256 + 4 * 25_600) / (1e12 * 0.5)
    compute = (2 * 4 * 73_728 + 4 * 12_800 + 4 * 51_200) / (1e15 * 0.5)
    assert step.memory_s == pytest.approx(memory, rel=1e-12)
    assert step.compute_s == pytest.approx(compute, rel=1e-12)
    assert step.comm_s == 0
    assert step.total_s == pytest.approx(0.001 + max(memory, compute), rel=1e-12)


def test_memory_max_batch_by_hand(make_tiny_model, make_simple_hardware):
    """(90% of 100 GB - 173,056 B of weights) // (256 B/token x 1000 tokens) = 351,561."""
    assert memory_max_batch(make_tiny_model(), make_simple_hardware(), 1, 1000) == 351_561


def _fits(model, hw, gpus):
    return gpus * hw.memory_capacity_bytes * hw.efficiency.memory_usable_frac > counts.weight_bytes(model)


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
