"""scripts/term_variants.py swaps one term of the engine model for a variant that was tried and left
out, in-process, and must put the shipped model back afterwards (the README quotes its refits)."""

import importlib.util
from pathlib import Path

import pytest

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.paper import calibration
from prfaas_plan.roofline import decode, terms
from prfaas_plan.roofline.instance import make_instance

SPEC = importlib.util.spec_from_file_location("term_variants", Path(__file__).parent.parent / "scripts" / "term_variants.py")
tv = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tv)


@pytest.fixture(scope="module")
def inst():
    return make_instance(load_model("qwen3-235b"), load_hardware("h20"), 8, weights="bf16")


def test_gemm_none_is_flops_over_peak_and_the_model_comes_back(inst):
    shipped = terms.gemm_compute_s(inst, 1e15, "bf16")
    e = inst.hw.efficiency.gemm_frac
    with tv.variant("gemm-none"):
        assert terms.gemm_compute_s(inst, 1e15, "bf16") == pytest.approx(1e15 / (148e12 * e), rel=1e-12)
        assert decode.gemm_compute_s is terms.gemm_compute_s
    assert terms.gemm_compute_s(inst, 1e15, "bf16") == shipped
    assert decode.gemm_compute_s is terms.gemm_compute_s


def test_hbm_variant_is_bf16_bytes_over_bandwidth(inst):
    """H20: 4.0 TB/s x 990 FLOP/B; a bf16 GEMM adds F / (4e12 x 990) s."""
    e = inst.hw.efficiency.gemm_frac
    with tv.variant("gemm-hbm"):
        assert terms.gemm_compute_s(inst, 1e15, "bf16") == pytest.approx(1e15 / (148e12 * e) + 1e15 / (4.0e12 * 990), rel=1e-12)


def test_hidden_decode_overhead_is_the_max_of_gpu_and_per_request_time(inst):
    """Shipped: fixed + per-request time add to the GPU step. Hidden: the per-request time shows
    only where it exceeds the GPU step, so at these values (microseconds per request) it vanishes."""
    e = inst.hw.efficiency
    shipped = decode.step_terms(inst, 64, 4096)
    with tv.variant("decode-hidden@1e-5"):
        hidden = decode.step_terms(inst, 64, 4096)
        assert calibration.NOT_FITTED["decode_request_overhead_s"] == 1e-5
        assert "decode_request_overhead_s" not in calibration.FITTED
    per_rank = 64 / (inst.dp * inst.pp)
    assert shipped.seconds["overhead"] == pytest.approx(e.decode_step_overhead_s + per_rank * e.decode_request_overhead_s)
    assert hidden.seconds["overhead"] == pytest.approx(e.decode_step_overhead_s)
    assert "decode_request_overhead_s" in calibration.FITTED
    assert decode.step_terms(inst, 64, 4096).seconds == shipped.seconds
