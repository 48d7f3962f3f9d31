"""Error bands (issue #17): how they are made from the calibration's residuals, and that every
`estimate` metric carries its band in JSON and tables."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.paper.bands import band_of, kind_residuals
from prfaas_plan.roofline import band_data
from prfaas_plan.roofline.bands import METRIC_KINDS, add_bands, band, metric_band


def test_band_is_the_student_t_predictive_interval():
    """Residuals ln(meas/pred) = -0.1, 0, +0.1 (n = 3): mean 0, s = 0.1, t_0.9(2) = 1.8856,
    half-width 1.8856 x 0.1 x sqrt(4/3) = 0.21773: factors exp(-/+0.21773) = 0.8044, 1.2432."""
    b = band_of([-0.1, 0.0, 0.1])
    assert b["points"] == 3 and b["mean_log"] == 0.0 and b["sd_log"] == pytest.approx(0.1)
    assert b["low_factor"] == pytest.approx(math.exp(-0.21773), abs=1e-4)
    assert b["high_factor"] == pytest.approx(math.exp(0.21773), abs=1e-4)
    # a bias moves the band: every residual +0.2 (the model 18% optimistic in rate) -> band around exp(0.2)
    shifted = band_of([0.1, 0.2, 0.3])
    assert shifted["low_factor"] == pytest.approx(math.exp(0.2 - 0.21773), abs=1e-4)
    with pytest.raises(ValueError):
        band_of([0.1, 0.2])


def test_time_metrics_take_the_reciprocal_of_a_rate_band():
    """Decode residuals are of tokens/s; a decode step or TPOT is the reciprocal: its band is
    [value / high, value / low]."""
    b = band("decode")
    lo, hi = metric_band("tpot_s", 0.05)
    assert (lo, hi) == pytest.approx((0.05 / b.high_factor, 0.05 / b.low_factor))
    lo, hi = metric_band("decode_output_tokens_per_s_per_gpu", 1000.0)
    assert (lo, hi) == pytest.approx((1000 * b.low_factor, 1000 * b.high_factor))
    assert metric_band("tpot_s", None) == (None, None)
    with pytest.raises(PlanError, match="no error band"):
        metric_band("weights_fit", 1.0)
    with pytest.raises(PlanError, match="unknown metric kind"):
        band("bogus")


def test_recorded_bands_match_the_shipped_calibration():
    """roofline/band_data.py is generated from the calibration written in hardware/*.yaml: the same
    residuals give the same bands (a stale file fails here; rerun scripts/calibrate.py --write)."""
    from prfaas_plan.paper.calibration import FITTED, evaluate
    from prfaas_plan.catalog.hardware import load_hardware

    eff = load_hardware("h200").efficiency
    result = evaluate({k: getattr(eff, k) for k in FITTED})
    for kind, residuals in kind_residuals(result).items():
        assert band_of(residuals) == band_data.BANDS[kind], kind
    assert sum(len(v) for v in kind_residuals(result).values()) == 43  # 24 Table 3 cells + 19 engine points


def test_estimate_carries_every_band(tmp_path):
    """JSON: K_low <= K <= K_high is not promised (a band carries the kind's bias), but both ends are
    there for every banded metric, and the method is stated; the table prints them."""
    runner = CliRunner()
    res = runner.invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--isl", "8K", "-f", "json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    for key in METRIC_KINDS:
        assert r[f"{key}_low"] < r[f"{key}_high"], key
    assert r["error_bands"]["coverage"] == 0.8 and "Student-t" in r["error_bands"]["method"]
    table = runner.invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--isl", "8K"], terminal_width=200)
    assert table.output.count("80% band") == 5


def test_add_bands_keeps_none_metrics():
    """A deployment with no room for a decode batch has no step time: its band is None, not an error."""
    out = add_bands({"decode_step_s": None, "tpot_s": None, "ttft_single_request_s": 2.0})
    assert out["decode_step_s_low"] is None and out["ttft_single_request_s_low"] == pytest.approx(2.0 * band("ttft").low_factor)
