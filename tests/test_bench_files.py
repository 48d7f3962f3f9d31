"""`calibrate` from what engines' benchmark tools write (issue #17): the three shipped examples in
tests/data (written for these tests in the tools' formats: vllm bench serve --save-result,
SGLang bench_serving --output-file JSONL, trtllm-bench --report_json; their numbers are
illustrative, not measurements), the deployment YAML, and the fit that takes only the parameters
the measurements identify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_profile_efficiency
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.roofline.bench_files import load_bench_file, load_deployment
from prfaas_plan.roofline.fit import fit_measurements, identifiable

DATA = Path(__file__).parent / "data"
DEPLOY = DATA / "bench-deployment.yaml"


def _load(name):
    return load_bench_file(DATA / name, load_deployment(DEPLOY), str(DEPLOY))


def test_vllm_save_result():
    """320 requests, 1,280,000 input and 320,000 output tokens at --max-concurrency 16: ISL 4000,
    OSL 1000, batch 16; 1020.1 output tokens/s over 8 GPUs = 127.51 per GPU; TPOT 14.0 ms. TTFT is
    not used at concurrency 16 (it holds queueing)."""
    ms = _load("vllm-bench-serve.json")
    assert [(m.metric, m.value) for m in ms] == [("output_tokens_per_s_per_gpu", pytest.approx(127.5125)), ("tpot_s", pytest.approx(0.014))]
    assert ms[0].options["isl"] == 4000 and ms[0].options["osl"] == 1000 and ms[0].options["batch"] == 16
    assert ms[0].options["chunk_tokens"] == 8192 and ms[0].model == "qwen3-235b" and ms[0].gpus == 8


def test_sglang_jsonl_runs_and_the_single_request_ttft():
    """Two runs; the one at concurrency 1 also gives the single-request TTFT (0.72 s)."""
    ms = _load("sglang-bench-serving.jsonl")
    assert [m.metric for m in ms] == ["output_tokens_per_s_per_gpu", "tpot_s", "ttft_s", "output_tokens_per_s_per_gpu", "tpot_s"]
    assert ms[2].value == pytest.approx(0.72) and ms[2].options["batch"] == 1 and ms[2].options["isl"] == 8000
    assert ms[3].options["batch"] == 64 and ms[3].value == pytest.approx(2480 / 8)


def test_trtllm_report_json():
    """avg_num_concurrent_requests 120.4 -> batch 120; 4300 tokens/s / 8 = 537.5 per GPU; TPOT 24.8 ms."""
    ms = _load("trtllm-bench-report.json")
    assert [(m.metric, m.value) for m in ms] == [("output_tokens_per_s_per_gpu", pytest.approx(537.5)), ("tpot_s", pytest.approx(0.0248))]
    assert ms[0].options["batch"] == 120 and ms[0].options["isl"] == 1000


def test_bad_files_name_what_is_wrong(tmp_path):
    other = tmp_path / "x.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(PlanError, match="x.json: not a vllm bench serve"):
        load_bench_file(other, load_deployment(DEPLOY), str(DEPLOY))
    no_conc = tmp_path / "v.json"
    no_conc.write_text((DATA / "vllm-bench-serve.json").read_text().replace('"max_concurrency": 16', '"max_concurrency": null'))
    with pytest.raises(PlanError, match="max_concurrency"):
        load_bench_file(no_conc, load_deployment(DEPLOY), str(DEPLOY))
    dep = tmp_path / "d.yaml"
    dep.write_text(DEPLOY.read_text() + "isl: 100\n")
    with pytest.raises(PlanError, match="d.yaml: key 'isl'"):
        load_deployment(dep)
    dep.write_text(DEPLOY.read_text() + "tensor_parallel: 8\n")
    with pytest.raises(PlanError, match="tensor_parallel"):
        load_deployment(dep)


def test_identifiable_keeps_separable_parameters_only():
    """Three measurements; a and b move them alike (b = 2a): b is left fixed as inseparable; c
    responds to nothing; d would be a fourth parameter... here the limit is the 3 measurements."""
    cols = {"a": np.array([1.0, 0.5, 0.0]), "b": np.array([2.0, 1.0, 0.0]), "c": np.zeros(3), "d": np.array([0.0, 0.1, 1.0]),
            "e": np.array([0.3, -0.2, 0.1]), "f": np.array([0.0, 0.0, 0.2])}
    chosen, fixed = identifiable(cols, 3)
    assert chosen == ["b", "d", "e"]  # most responsive first
    assert "cannot tell them apart" in fixed["a"] and fixed["c"] == "no measurement responds to it"
    assert "as many parameters as measurements" in fixed["f"]


def test_fit_never_fits_more_parameters_than_measurements():
    """Two measurements (the vLLM run): at most two parameters move; each other one says why."""
    r = fit_measurements(_load("vllm-bench-serve.json"))
    assert len(r.fitted_keys) <= 2
    assert set(r.fitted_keys) | set(r.left_fixed) == {"gemm_frac", "attention_frac", "linear_attention_frac", "memory_frac", "link_frac",
                                                      "request_overhead_s", "forward_overhead_s", "decode_request_overhead_s", "expert_imbalance_frac"}
    for k in r.left_fixed:
        assert getattr(r.efficiency, k) == getattr(r.base, k)


def test_cli_reads_a_bench_file_and_refuses_what_it_cannot_identify(tmp_path):
    runner = CliRunner()
    out = tmp_path / "p.yaml"
    res = runner.invoke(app, ["calibrate", str(DATA / "sglang-bench-serving.jsonl"), "--deployment", str(DEPLOY), "-o", str(out)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "left fixed: attention_frac" in res.output and "fitted: " in res.output
    eff = load_profile_efficiency(out)  # the profile (with its left_fixed record) loads back
    assert eff.basis == "calibrated"
    refused = tmp_path / "q.yaml"
    res = runner.invoke(app, ["calibrate", str(DATA / "trtllm-bench-report.json"), "--deployment", str(DEPLOY), "--fit", "attention_frac",
                              "-o", str(refused)])
    assert res.exit_code == 2 and "cannot identify" in res.stderr and "attention_frac" in res.stderr and not refused.exists()
