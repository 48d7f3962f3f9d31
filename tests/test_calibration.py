"""The one global calibration against [PRFAAS] Table 3 (latency regime) and the engine
measurements (throughput regime), its reproducibility from hardware/h200.yaml, and the
independent check on [PRFAAS] Table 5 (the internal 1T hybrid, never fitted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.paper import calibration, engines, reference, validation
from prfaas_plan.reports.kv_report import kv_rows

K = 1024


@pytest.fixture(scope="module")
def table3():
    """{(model, tokens): (predicted Gbps, paper Gbps)} with the recorded H200 calibration."""
    return {(n, t): (p, m) for n, t, p, m in calibration.table3_predictions(load_hardware("h200"))}


@pytest.fixture(scope="module")
def fit():
    return calibration.fit()


# --- (a) Table 3 reproduction -------------------------------------------------------------------


def test_table3_has_24_cells(table3):
    """Six models x four lengths, each against the paper's printed value."""
    assert len(table3) == 24
    for (name, tokens), (_, paper) in table3.items():
        assert paper == reference.TABLE3_PHI_KV_GBPS[name][reference.LENGTHS_TOKENS.index(tokens)]


def test_table3_median_error_within_12pct(table3):
    """One parameter set for all six models: median error exp|ln(pred / meas)| - 1 <= 12% over
    the 24 cells (issue #6)."""
    ratios = np.array([p / m for p, m in table3.values()])
    assert float(np.median(np.exp(np.abs(np.log(ratios))) - 1)) <= 0.12


@pytest.mark.parametrize(("name", "tokens"), [(n, t) for n in reference.TABLE3_PHI_KV_GBPS for t in reference.LENGTHS_TOKENS])
def test_table3_no_cell_off_by_more_than_1_5x(table3, name, tokens):
    """Every cell within a factor 1.5 of the measurement."""
    pred, paper = table3[(name, tokens)]
    assert max(pred / paper, paper / pred) <= 1.5


def test_engine_points_within_targets():
    """The 19 measured engine points through `estimate`: median error <= 25%, worst within 2x."""
    s = engines.summary(engines.rows())
    assert s["points"] == 19
    assert s["median_error_frac"] <= 0.25
    assert s["worst_factor"] <= 2.0


@pytest.mark.parametrize("name", ["minimax-m2.5", "qwen3-235b"])
def test_dense_models_peak_between_32k_and_128k(table3, name):
    """Dense GQA: Phi_kv rises from 1K to 32K (KV grows linearly, time sub-quadratically) and
    falls from 32K to 128K (attention's l^2 takes over), as in [PRFAAS] Table 3."""
    phi = [table3[(name, t)][0] for t in reference.LENGTHS_TOKENS]
    assert phi[0] < phi[1] < phi[2]
    assert phi[3] < phi[2]


def test_ring_falls_monotonically(table3):
    """Ring-2.5-1T (large fixed Lightning state, few MLA layers): Phi_kv falls from 1K to 128K."""
    phi = [table3[("ring-2.5-1t", t)][0] for t in reference.LENGTHS_TOKENS]
    assert phi[0] > phi[1] > phi[2] > phi[3]


def test_minimax_vs_mimo_ratio_at_32k(table3):
    """[PRFAAS] states ~13x more KV throughput for MiniMax-M2.5 than MiMo-V2-Flash at 32K; the
    model keeps at least 8x."""
    assert table3[("minimax-m2.5", 32 * K)][0] / table3[("mimo-v2-flash", 32 * K)][0] >= 8


def test_table3_models_run_as_their_publishers_sglang_commands():
    """MiMo-V2-Flash ran as its SGLang command (two DP-attention ranks of TP 4 over TP 8, experts
    sharded by TP), MiniMax-M2.5 with EP 8; a model without a listed command takes the default TP 8.
    `validate` names the flags beside those cells."""
    h200 = load_hardware("h200")
    mimo = calibration.table3_instance(load_model("mimo-v2-flash"), h200)
    assert (mimo.tp, mimo.dp, mimo.attention_tp, mimo.ep, mimo.chunk_tokens) == (8, 2, 4, 1, 16_384)
    minimax = calibration.table3_instance(load_model("minimax-m2.5"), h200)
    assert (minimax.tp, minimax.dp, minimax.ep) == (8, 1, 8)
    qwen = calibration.table3_instance(load_model("qwen3-235b"), h200)
    assert (qwen.tp, qwen.dp, qwen.ep) == (8, 1, 1)
    notes = {r["item"]: r["note"] for r in validation.table3_rows()}
    assert notes["mimo-v2-flash"] == "SGLang --tp 8 --dp 2 --enable-dp-attention"
    assert notes["qwen3-235b"] == ""


def test_dp_attention_puts_one_requests_attention_on_fewer_gpus():
    """With DP attention a request alone runs its attention on TP / DP GPUs: at 128K, where
    MiMo-V2-Flash's nine global layers dominate attention, its attention term doubles (8 -> 4 GPUs)
    and the GEMM term grows (the attention projections run on 4 GPUs; the experts stay on 8)."""
    from prfaas_plan.roofline.instance import make_instance
    from prfaas_plan.roofline.prefill import latency_terms

    h200, mimo = load_hardware("h200"), load_model("mimo-v2-flash")
    dp2 = latency_terms(calibration.table3_instance(mimo, h200), 128 * K).floats()
    tp8 = latency_terms(make_instance(mimo, h200, 8, tp=8, chunk_tokens=16_384), 128 * K).floats()
    assert dp2["attention"] == pytest.approx(2 * tp8["attention"], rel=1e-9)
    assert dp2["gemm"] > tp8["gemm"]  # the attention projections run on 4 GPUs too


def test_validation_table3_rows_agree_with_calibration(table3):
    """`prfaas-plan validate` shows exactly these predictions, with error_pct = model/paper - 1."""
    rows = validation.table3_rows()
    assert len(rows) == 24
    for r in rows:
        pred, paper = table3[(r["item"], r["input_tokens"])]
        assert r["model"] == pytest.approx(pred, rel=1e-12)
        assert r["paper"] == paper
        assert r["error_pct"] == pytest.approx((pred / paper - 1) * 100, rel=1e-9)


# --- (b) reproducibility of the recorded calibration --------------------------------------------


def _recorded_efficiency() -> dict:
    path = Path(load_hardware("h200").path)
    return yaml.safe_load(path.read_text())["efficiency"]


@pytest.mark.parametrize("key", calibration.FITTED)
def test_fit_reproduces_recorded_h200_efficiency(fit, key):
    """Refitting gives the numbers recorded in hardware/h200.yaml (to the recorded 4 digits)."""
    recorded = _recorded_efficiency()
    assert fit.params[key] == pytest.approx(recorded[key], rel=2e-3, abs=1e-9)
    assert getattr(load_hardware("h200").efficiency, key) == recorded[key]


def test_fit_reproduces_recorded_summary(fit):
    """The median error and worst factor stored beside the fit are what the fit achieves."""
    rec = _recorded_efficiency()
    assert rec["basis"] == "calibrated"
    assert list(rec["calibration"]["fitted_keys"]) == list(calibration.FITTED)
    cal = rec["calibration"]
    assert fit.table3[0] * 100 == pytest.approx(cal["table3_median_error_pct"], abs=0.05 + 1e-9)
    assert fit.table3[1] == pytest.approx(cal["table3_worst_factor"], abs=0.005 + 1e-9)
    assert fit.engines[0] * 100 == pytest.approx(cal["engines_median_error_pct"], abs=0.05 + 1e-9)
    assert fit.engines[1] == pytest.approx(cal["engines_worst_factor"], abs=0.005 + 1e-9)


def test_fit_respects_physical_bounds(fit):
    """Every fitted number stays inside its physical bounds (kernel ceilings ~0.8 of tensor peak,
    ~0.9 of HBM), and every part carries the same fractions."""
    for key, lo, hi, _ in calibration.BOUNDS:
        assert lo <= fit.params[key] <= hi
    for name in ("h100", "h20", "b200", "gb200", "rubin-cpx"):
        assert load_hardware(name).efficiency.gemm_frac == load_hardware("h200").efficiency.gemm_frac


# --- (c) Table 5: prefill time of the internal 1T hybrid on 8 x H200 ----------------------------


@pytest.fixture(scope="module")
def table5_rows():
    model, hw = load_model(reference.TABLE5_MODEL), load_hardware("h200")
    return (
        kv_rows(model, hw, 8, reference.LENGTHS_TOKENS, use_profile=True),
        kv_rows(model, hw, 8, reference.LENGTHS_TOKENS, use_profile=False),
    )


@pytest.mark.parametrize("i", range(4))
def test_table5_profile_prefill_time(table5_rows, i):
    """Through the model file's Table 5 profile, T_prefill is within 5% of 0.44/0.72/1.84/7.40 s."""
    assert reference.TABLE5_PREFILL_S == (0.44, 0.72, 1.84, 7.40)
    row = table5_rows[0][i]
    assert row["input_tokens"] == reference.LENGTHS_TOKENS[i]
    assert row["source"].startswith("profile")
    assert "Table 5" in row["source"]
    assert row["prefill_time_s"] == pytest.approx(reference.TABLE5_PREFILL_S[i], rel=0.05)


@pytest.mark.parametrize("i", [pytest.param(1, marks=pytest.mark.xfail(strict=True, reason=(
    "known miss since issue #6's joint refit: the never-fitted roofline is 5.7% fast on Table 5 at 8K; "
    "reported, not tuned away"))), 2, 3])
def test_table5_roofline_prefill_time(table5_rows, i):
    """The roofline alone (latency regime, never fitted to this model) is within 5% of Table 5 at
    8K, 32K and 128K. It held before issue #6's joint refit; issue #17's softmax and linear-attention
    kernel terms bring 32K and 128K back within 5% (3.0%, 2.5% fast), 8K stays 5.7% fast (strict
    xfail: this fails loudly once the model meets the bar again)."""
    row = table5_rows[1][i]
    assert row["source"] == "roofline (latency)"
    assert row["prefill_time_s"] == pytest.approx(reference.TABLE5_PREFILL_S[i], rel=0.05)


def test_table5_roofline_at_1k_is_below_the_paper(table5_rows):
    """Known deviation: at 1K the roofline is faster than the paper's 0.44 s, because the paper's
    in-house engine has a larger fixed per-request overhead than the SGLang-fitted one (Table 3).
    Assert the sign and that it stays within 10%."""
    row = table5_rows[1][0]
    assert row["input_tokens"] == 1 * K
    assert row["prefill_time_s"] < reference.TABLE5_PREFILL_S[0]
    assert row["prefill_time_s"] == pytest.approx(reference.TABLE5_PREFILL_S[0], rel=0.10)
