"""The microbenchmark's arithmetic, without a GPU: measured absolute numbers become fractions of a
part's datasheet peaks (the quantities the efficiency block holds), and the module-level entry
point fails cleanly without torch. The kernels themselves run only where a GPU is lent."""

import sys

import pytest

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.roofline import counts
from prfaas_plan.roofline import microbench as mb


def test_fractions_divide_by_the_parts_peaks():
    """H200: 989 TFLOP/s bf16, 4.8 TB/s, 700 W. 494.5 TFLOP/s measured is 0.5 of the peak, of which
    the MMAs' share is what is left with the power-limit time taken out (1 / (700 W x 7.25e12
    FLOP/J) per FLOP, roofline/terms.py GEMM_FLOP_PER_JOULE): 0.554; a 4.32 TB/s
    copy is 0.9 of HBM; a linear-attention rate of 98.9 TFLOP/s at the model's count is 0.1.
    fla's kernel, where measured, wins over the plain-torch chunk products."""
    hw = load_hardware("h200")
    raw = {"gemm_bf16_flop_per_s": 494.5e12, "attention_prefill_flop_per_s": 296.7e12, "hbm_copy_bytes_per_s": 4.32e12,
           "linear_attention_torch_flop_per_s": 98.9e12, "gemm_fp8_flop_per_s": 1e15}
    out = mb.fractions(raw, hw)
    assert out["gemm_frac"] == pytest.approx(1 / (989e12 * (1 / 494.5e12 - 1 / (700 * 7.25e12))), rel=1e-3)
    assert out["gemm_frac"] == pytest.approx(0.554, abs=1e-3)
    assert out["attention_frac"] == pytest.approx(0.3, rel=1e-3)
    assert out["memory_frac"] == pytest.approx(0.9, rel=1e-3)
    assert out["linear_attention_frac"] == pytest.approx(0.1, rel=1e-3)
    assert raw["gemm_fp8_frac"] == pytest.approx(1e15 / 1979e12, rel=1e-3)
    raw["linear_attention_fla_flop_per_s"] = 197.8e12
    assert mb.fractions(raw, hw)["linear_attention_frac"] == pytest.approx(0.2, rel=1e-3)


def test_fractions_skip_failed_probes_and_cap_at_one():
    """A probe that failed leaves its key out (no made-up fraction); a reading above the datasheet
    (a copy that hits L2) is capped at 1."""
    hw = load_hardware("h200")
    out = mb.fractions({"hbm_copy_bytes_per_s": 9e12, "sfu_error": "ImportError: triton"}, hw)
    assert out == {"memory_frac": 1.0}


def test_linear_flop_count_matches_the_models():
    """The microbenchmark divides by the same FLOP count the model prices linear attention with."""
    assert mb.LIN_FLOP_PER_STATE_ELEMENT == counts.LINEAR_ATTENTION_FLOP_PER_STATE_ELEMENT


def test_module_entry_point_without_torch_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    out = tmp_path / "mb.json"
    assert mb.main([str(out)]) == 2
    assert "torch" in capsys.readouterr().err and not out.exists()
    assert mb.main([]) == 2


def test_gemm_fraction_gives_the_measured_rate_back():
    """The fitted gemm_frac from a measured rate, put back into the model's GEMM time
    (terms.gemm_compute_s), gives the measured rate again on a part with a power limit (H20) and
    on one without (power_w None: no power term, the fraction is the plain share of peak)."""
    from dataclasses import replace

    from prfaas_plan.roofline.instance import make_instance
    from prfaas_plan.roofline.terms import gemm_compute_s
    from prfaas_plan.catalog.model import load_model

    for hw in (load_hardware("h20"), replace(load_hardware("h20"), power_w=None)):
        out = mb.fractions({"gemm_bf16_flop_per_s": 130e12}, hw)
        tuned = replace(hw, efficiency=replace(hw.efficiency, gemm_frac=out["gemm_frac"]))
        inst = make_instance(load_model("qwen3-235b"), tuned, 8, weights="bf16")
        assert 1e15 / gemm_compute_s(inst, 1e15, "bf16") == pytest.approx(130e12, rel=1e-9)
