"""`calibrate`: fitting the efficiencies to measurements (recovers parameters it synthesised),
the profile file (usable by `estimate` and scenarios), bad input, and the microbenchmark's
clean refusal without torch or a GPU."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_hardware, load_profile_efficiency
from prfaas_plan.catalog.model import load_model
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.roofline import fit as fitmod
from prfaas_plan.roofline.estimate import estimate

TRUE = {"gemm_frac": 0.55, "attention_frac": 0.42, "memory_frac": 0.82, "request_overhead_s": 0.5,
        "forward_overhead_s": 0.05, "decode_request_overhead_s": 2e-5}
SETUPS = [  # (model, options, metric)
    *[("qwen3-235b", {"isl": l}, "ttft_s") for l in (1024, 8192, 32768, 131072)],
    *[("kimi-linear-48b", {"isl": l}, "ttft_s") for l in (8192, 131072)],
    *[("minimax-m2.5", {"isl": l}, "prefill_tokens_per_s_per_gpu") for l in (1024, 4096, 16384, 65536)],
    *[("minimax-m2.5", {"isl": 4096, "osl": 512, "batch": b}, "decode_step_s") for b in (1, 64, 512)],
    *[("qwen3-235b", {"isl": 8192, "osl": 1024, "batch": b}, "decode_step_s") for b in (16, 256)],
]


def _synth(tmp_path, fmt="yaml"):
    hw = load_hardware("h200")
    true_hw = replace(hw, efficiency=replace(hw.efficiency, **TRUE))
    rows = []
    for name, opts, metric in SETUPS:
        r = estimate(load_model(name), true_hw, 8, measured=True, **{("context_tokens" if k == "context" else k): v for k, v in opts.items()})
        rows.append({"model": name, "hardware": "h200", "gpus": 8, **opts, "metric": metric, "value": r[fitmod.METRICS[metric]]})
    if fmt == "yaml":
        path = tmp_path / "m.yaml"
        path.write_text(yaml.safe_dump({"measurements": rows}))
    else:
        path = tmp_path / "m.csv"
        keys = ["model", "hardware", "gpus", "isl", "osl", "batch", "metric", "value"]
        path.write_text(",".join(keys) + "\n" + "".join(",".join(str(r.get(k, "")) for k in keys) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_fit_recovers_synthesised_parameters(tmp_path, fmt):
    """Measurements made by the model with known efficiencies give those efficiencies back."""
    result = fitmod.fit_measurements(fitmod.load_measurements(_synth(tmp_path, fmt)), tuple(TRUE))
    for key, value in TRUE.items():
        assert getattr(result.efficiency, key) == pytest.approx(value, rel=0.02), key
    errors = result.errors()
    assert errors["after_median_error_pct"] < 0.5 and errors["before_median_error_pct"] > 5


def test_calibrate_cli_writes_a_profile_estimate_uses(tmp_path):
    """`calibrate FILE -o profile.yaml` writes a profile; `estimate --profile` and a scenario's
    efficiency_profile use it, and its TTFT matches the measurement."""
    runner = CliRunner(env={"COLUMNS": "200"})
    meas, prof = _synth(tmp_path), tmp_path / "profile.yaml"
    res = runner.invoke(app, ["calibrate", str(meas), "-o", str(prof), "--fit", ",".join(TRUE), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["errors"]["after_worst_factor"] < 1.02 and doc["kind"] == "efficiency-profile"
    eff = load_profile_efficiency(prof)
    assert eff.gemm_frac == pytest.approx(TRUE["gemm_frac"], rel=0.02)
    out = runner.invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--isl", "8192", "--profile", str(prof), "-f", "json"])
    measured = yaml.safe_load(meas.read_text())["measurements"][1]["value"]
    assert json.loads(out.stdout)["ttft_single_request_s"] == pytest.approx(measured, rel=0.02)
    from prfaas_plan.planning.scenario import load_scenario

    sc_text = (load_scenario("paper-case-study-roofline").path and open(load_scenario("paper-case-study-roofline").path).read())
    sc_path = tmp_path / "with-profile.yaml"
    sc_path.write_text(sc_text.replace("name: paper-case-study-roofline", "name: with-profile").replace(
        "  hardware: h200\n", "  hardware: h200\n  efficiency_profile: profile.yaml\n"))
    assert load_scenario(sc_path).prfaas.hardware.efficiency.gemm_frac == eff.gemm_frac


@pytest.mark.parametrize(("content", "needle"), [
    ("measurements: []\n", "measurements"),
    ("measurements:\n  - {model: qwen3-235b, hardware: h200, gpus: 8, metric: ttft_ms, value: 1}\n", "metric"),
    ("measurements:\n  - {model: qwen3-235b, hardware: h200, gpus: 8, metric: ttft_s, value: -1}\n", "value"),
    ("measurements:\n  - {model: qwen3-235b, hardware: h200, gpus: 8, metric: ttft_s}\n", "value"),
    ("measurements:\n  - {model: qwen3-235b, hardware: h200, gpus: 8, tp: 3, metric: ttft_s, value: 1}\n", "--tp"),
    ("measurements: [\n", "malformed YAML"),
])
def test_calibrate_bad_file_one_line_nothing_written(tmp_path, content, needle):
    runner = CliRunner()
    path, out = tmp_path / "bad.yaml", tmp_path / "p.yaml"
    path.write_text(content)
    res = runner.invoke(app, ["calibrate", str(path), "-o", str(out)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.stderr
    assert not out.exists()


def test_calibrate_non_converging_fit_is_one_line(tmp_path, monkeypatch):
    """When the optimiser reports failure the command says so in one line and writes nothing."""
    import scipy.optimize

    class Failed:
        success, message, x = False, "maximum number of function evaluations exceeded", None

    monkeypatch.setattr(scipy.optimize, "least_squares", lambda *a, **k: Failed())
    out = tmp_path / "p.yaml"
    res = CliRunner().invoke(app, ["calibrate", str(_synth(tmp_path)), "-o", str(out)])
    assert res.exit_code == 2 and "did not converge" in res.stderr and not out.exists()


def test_microbench_without_torch_or_gpu_is_a_clean_error(tmp_path, monkeypatch):
    """No torch (or no CUDA device): one line naming the fix, nothing written; torch is not
    imported by anything else."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    out = tmp_path / "mb.yaml"
    res = CliRunner().invoke(app, ["calibrate", "--microbench", "-H", "h200", "-o", str(out)])
    assert res.exit_code == 2 and "torch" in res.stderr and not out.exists()
    with pytest.raises(PlanError, match="torch"):
        from prfaas_plan.roofline.microbench import run_microbench

        run_microbench(load_hardware("h200"))


def test_microbench_without_cuda_is_a_clean_error(monkeypatch):
    """torch installed but no CUDA device: PlanError saying so (no GPU in CI)."""
    import types

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake)
    from prfaas_plan.roofline.microbench import run_microbench

    with pytest.raises(PlanError, match="no CUDA GPU"):
        run_microbench(load_hardware("h200"))
