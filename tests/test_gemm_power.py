"""The GEMM half of issue #17 item 2: a GEMM's efficiency follows the part's balance, tensor peak
to power limit (roofline/terms.py, gemm_compute_s, GEMM_FLOP_PER_JOULE). Hand-computed numbers:
T = F / (peak e_gemm) + F b / (2 P K), K = 7.25e12 FLOP/J."""

from dataclasses import replace

import numpy as np
import pytest

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.roofline.instance import make_instance
from prfaas_plan.roofline.terms import GEMM_FLOP_PER_JOULE, gemm_compute_s

K = 7.25e12


def _inst(name: str, **hw_changes):
    hw = load_hardware(name)
    hw = replace(hw, efficiency=replace(hw.efficiency, gemm_frac=0.9), **hw_changes)
    return make_instance(load_model("qwen3-235b"), hw, 8, weights="bf16")


def _frac(inst, dtype="bf16"):
    """Effective share of the dtype's peak: FLOPs / time / peak."""
    return 1e15 / gemm_compute_s(inst, 1e15, dtype) / inst.hw.peak_for(dtype)


def test_compute_poor_part_reaches_a_higher_fraction_of_its_peak():
    """H20 (148 TFLOP/s at 400 W): 1 / (1/0.9 + 148/400/7.25) = 0.8604; H100 (989 at 700 W):
    1 / (1/0.9 + 989/700/7.25) = 0.7657. The same MMA share, 12% more of the peak on H20."""
    assert _frac(_inst("h20")) == pytest.approx(1 / (1 / 0.9 + 148 / 400 / 7.25), rel=1e-9)
    assert _frac(_inst("h20")) == pytest.approx(0.8604, abs=1e-4)
    assert _frac(_inst("h100")) == pytest.approx(0.7657, abs=1e-4)


def test_more_bandwidth_alone_does_not_change_it():
    """H200 is H100's die and power with 43% more HBM bandwidth; the published matmul maxima put
    them level ("H200 is the same"), and so does the term."""
    assert _frac(_inst("h200")) == pytest.approx(_frac(_inst("h100")), rel=1e-12)


def test_fp8_keeps_the_bf16_fraction():
    """b/2 of bf16's energy per FLOP at 1 byte: fp8 on H100 (1,979 TFLOP/s, about 2 x 989) takes
    1e15 / (1979e12 x 0.9) + 1e15 x 1 / (2 x 700 x 7.25e12) s, the same share of its peak as bf16."""
    inst = _inst("h100")
    assert gemm_compute_s(inst, 1e15, "fp8") == pytest.approx(1e15 / (1979e12 * 0.9) + 1e15 / (2 * 700 * K), rel=1e-12)
    assert _frac(inst, "fp8") == pytest.approx(_frac(inst, "bf16"), rel=1e-3)


def test_no_published_power_no_term():
    """A part without power_w keeps FLOPs / (peak e_gemm), as a part without an SFU rate keeps no softmax floor."""
    inst = _inst("h20", power_w=None)
    assert gemm_compute_s(inst, 1e15, "bf16") == pytest.approx(1e15 / (148e12 * 0.9), rel=1e-12)


#: Published maximum achievable matmul FLOPS, BF16 torch.matmul (achieved, datasheet dense peak,
#: power W): stas00/ml-engineering compute/accelerator/README.md; H20 from
#: zzc0721/torch-performance-test-data#77 (10240^3). The constant is derived from these.
MAMF_BF16 = {
    "A100 SXM": (271.2, 312, 400), "GH200": (828.6, 989, 900), "H100 SXM": (794.5, 989, 700),
    "B200": (1745.0, 2250, 1000), "B300": (1769.0, 2250, 1100), "GB200": (1822.0, 2500, 1200),
    "H20": (142.25, 148, 400),
}


def test_constant_is_the_least_squares_over_the_published_table():
    """1/e = a + (peak / P) / K by least squares: K = 7.25 TFLOP/s per W, a = 1/0.975, and
    every part within 5% of its published fraction (GB200 4.5%)."""
    x = np.array([p / w for _, p, w in MAMF_BF16.values()])  # TFLOP/s per W
    y = np.array([p / a for a, p, _ in MAMF_BF16.values()])  # 1 / efficiency
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)
    assert 1e12 / b == pytest.approx(GEMM_FLOP_PER_JOULE, rel=0.01)
    assert 1 / a == pytest.approx(0.975, abs=0.005)
    fitted = 1 / (a + x / (GEMM_FLOP_PER_JOULE / 1e12))
    measured = 1 / y
    assert np.all(np.abs(fitted / measured - 1) < 0.05)
