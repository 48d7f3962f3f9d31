"""`--set KEY=VALUE` on optimize, simulate and `estimate --scenario` (issue 15 item 6), as on
whatif/sweep/report: the variant a report was built on can be re-run, and it answers as a scenario
file with that key changed would. Also: a target question's verdict names the rate it checked.
Regressions: on old main these commands refused --set, and the verdict said only "the
scenario's 30 req/s" under `--target-req-per-s 20`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.planning.overrides import parse_sets
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.roofline.estimate import estimate_instance
from prfaas_plan.simulation.run import simulate_scenario

runner = CliRunner()


def _json(*args: str) -> dict:
    res = runner.invoke(app, [*args, "-f", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_optimize_set_answers_the_changed_scenario():
    """Halving the link changes the plan exactly as the same override through the library does,
    and the provenance records the override."""
    doc = _json("optimize", "paper-case-study", "--set", "link.bandwidth_gbit_per_s=50")
    plain = _json("optimize", "paper-case-study")
    from prfaas_plan.planning.planner import optimize

    api = optimize(load_scenario("paper-case-study", parse_sets(["link.bandwidth_gbit_per_s=50"])))
    assert doc["link_gbit_per_s"] == 50 and plain["link_gbit_per_s"] == 100
    assert doc["throughput_req_per_s"] == pytest.approx(api["throughput_req_per_s"], rel=1e-12)
    assert doc["provenance"]["overrides"] == ["link.bandwidth_gbit_per_s=50"]


def test_simulate_set_answers_the_changed_scenario():
    args = ["simulate", "paper-case-study", "--duration-s", "300", "--load", "0.5", "--set", "link.bandwidth_gbit_per_s=50"]
    doc = _json(*args)
    api = simulate_scenario(load_scenario("paper-case-study", parse_sets(["link.bandwidth_gbit_per_s=50"])), duration_s=300, load=0.5)
    assert doc["ttft"] == pytest.approx(api["ttft"]) and doc["provenance"]["overrides"] == ["link.bandwidth_gbit_per_s=50"]


def test_estimate_from_a_scenario_cluster_with_set():
    """`estimate --scenario S --cluster local --set ...` prices that cluster's instance, changed."""
    doc = _json("estimate", "--scenario", "paper-case-study-roofline", "--cluster", "local", "--set", "local.instance.tp=4",
                "--set", "local.instance.pp=2")
    sc = load_scenario("paper-case-study-roofline", parse_sets(["local.instance.tp=4", "local.instance.pp=2"]))
    assert (doc["hardware"], doc["gpus"], doc["deployment"]) == (sc.local.hardware.name, 8, "tp 4, ep 1, pp 2")
    assert doc["prefill_input_tokens_per_s_per_gpu"] == pytest.approx(estimate_instance(sc.local.instance, 1024, 1024)["prefill_input_tokens_per_s_per_gpu"])


@pytest.mark.parametrize(("args", "needle"), [
    (["--scenario", "paper-case-study", "--tp", "8"], "--scenario: the instance comes from the scenario"),
    (["-m", "kimi-k2", "-H", "h200", "--gpus", "8", "--set", "link.bandwidth_gbit_per_s=5"], "--set changes a scenario key"),
    (["-m", "kimi-k2", "--gpus", "8"], "missing option --hardware"),
    (["--scenario", "paper-case-study", "--set", "prfaas.instance.tp=3"], "prfaas.instance"),
])
def test_estimate_scenario_bad_input_is_one_line(args, needle):
    res = runner.invoke(app, ["estimate", *args])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines


def test_target_verdict_names_the_rate_it_checked():
    doc = _json("optimize", "budget-case-study", "--target-req-per-s", "20")
    assert doc["verdict"]["text"].startswith("WARNING: cannot carry the scenario's 30 req/s "
                                             "(workload.arrival_req_per_s; the plan is sized for the target 20 req/s)")
