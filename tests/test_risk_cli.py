"""The `risk` command and `optimize --robust` run for real (small sample counts): every format,
the plot, one-line errors, and the CLI agreeing with the Python API."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.reports.export import to_json
from prfaas_plan.risk.analysis import risk
from prfaas_plan.risk.robust import robust_plan

RUNNER = CliRunner()
ENV = {"COLUMNS": "200", "SOURCE_DATE_EPOCH": "0"}


def cli(*args):
    return RUNNER.invoke(app, [str(a) for a in args], env=ENV)


def test_risk_json_equals_the_library():
    """The command prints what risk() returns (plus provenance)."""
    res = cli("risk", "budget-case-study", "--samples", 16, "--seed", 2, "-f", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    lib = json.loads(to_json(risk(load_scenario("budget-case-study"), samples=16, seed=2)))
    assert {k: v for k, v in doc.items() if k != "provenance"} == lib
    assert doc["provenance"]["options"]["samples"] == 16 and doc["samples"] == 16
    assert [u["quantity"] for u in doc["uncertainty"] if u["distribution"] != "1"][:2] == ["arrival_rate_factor", "input_tokens_factor"]


def test_risk_table_csv_and_plot(tmp_path):
    res = cli("risk", "budget-case-study", "--samples", 8, "--uncertain", "link_price_factor=uniform(min=1,max=2)")
    assert res.exit_code == 0, res.output
    assert "Probability of meeting each demand" in res.output and "Lambda_max >= 30 req/s" in res.output and "8 samples" in res.output
    out, png = tmp_path / "s.csv", tmp_path / "risk.png"
    res = cli("risk", "budget-case-study", "--samples", 8, "-o", out, "--plot", png)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 8 and {"sample", "arrival_rate_factor", "throughput_req_per_s", "meets_rate", "tool_version"} <= set(rows[0])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--uncertain", "arrival_rate_factor=gamma(k=1)"], "--uncertain arrival_rate_factor=gamma(k=1): expected a number or KIND"),
    (["--samples", "0"], "--samples must be from 1 to 1,000,000"),
    (["--samples", "2000000000"], "--samples must be from 1 to 1,000,000"),
    (["--design", "sobol"], "--design must be one of lhs, random"),
    (["--plot", "x.pdf"], "--plot x.pdf: name the file .png or .svg"),
    (["--executor", "process", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler joins a Dask cluster"),
])
def test_risk_bad_input_is_one_line(args, message):
    res = cli("risk", "budget-case-study", *args)
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_optimize_robust_json_equals_the_library():
    res = cli("optimize", "budget-case-study", "--robust", "0.8", "--samples", 12, "-f", "json")
    assert res.exit_code == 0, res.output
    rb = json.loads(res.output)["robust"]
    lib = json.loads(to_json(robust_plan(load_scenario("budget-case-study"), 0.8, samples=12)))
    assert rb == lib
    assert rb["robust"]["robust_frac"] >= 0.8 > rb["for_demand"]["robust_frac"]
    assert rb["robust"]["cost_usd_per_hour"] > rb["for_demand"]["cost_usd_per_hour"]
    assert rb["margin_usd_per_hour"] == pytest.approx(rb["robust"]["cost_usd_per_hour"] - rb["for_demand"]["cost_usd_per_hour"])


@pytest.mark.parametrize("args, message", [
    (["budget-case-study", "--robust", "1.5"], "--robust must be a share of samples in (0, 1)"),
    (["paper-case-study", "--robust", "0.9", "--samples", "4"], "--robust needs a demand to meet"),
    (["budget-case-study", "--uncertain", "link_price_factor=2"], "--uncertain needs --robust"),
])
def test_optimize_robust_bad_input(args, message):
    res = cli("optimize", *args)
    assert res.exit_code == 2 and message in res.output, res.output
