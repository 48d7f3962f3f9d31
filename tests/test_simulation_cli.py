"""`prfaas-plan simulate`: the real command, its formats, agreement with the Python API, and one
clean line (exit code 2, nothing written) for every bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.simulation.run import simulate_scenario


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "160"})


def test_table_names_the_headline_numbers(runner):
    res = run(runner, "simulate", "paper-case-study", "--duration-s", "600", "--load", "0.5")
    assert res.exit_code == 0, res.output
    for text in ("TTFT mean / P50 / P90 / P99", "SLO attainment", "egress", "books", "pd-prefill", "decode"):
        assert text in res.stdout


def test_json_agrees_with_the_python_api(runner, tmp_path):
    """The CLI's JSON (to stdout and to -o) carries the library's numbers and the provenance."""
    args = ["simulate", "paper-case-study", "--duration-s", "600", "--load", "0.7", "--seed", "5", "--policy", "bandwidth-aware",
            "--link-drop-at-s", "300", "--link-drop-frac", "0.1"]
    res = run(runner, *args, "-f", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    api = simulate_scenario(load_scenario("paper-case-study"), duration_s=600, load=0.7, seed=5, policy="bandwidth-aware",
                            link_drop_at_s=300, link_drop_frac=0.1)
    assert doc["ttft"] == pytest.approx(api["ttft"]) and doc["throughput_req_per_s"] == pytest.approx(api["throughput_req_per_s"])
    assert doc["provenance"]["command"] == "simulate" and doc["provenance"]["options"]["seed"] == 5
    assert doc["conservation"][-1]["ok"]
    out = tmp_path / "sim.json"
    assert run(runner, *args, "-o", out).exit_code == 0
    assert json.loads(out.read_text())["ttft"] == doc["ttft"]


def test_csv_is_one_flat_row(runner):
    res = run(runner, "simulate", "paper-case-study", "--duration-s", "300", "--baseline", "homogeneous", "-f", "csv")
    assert res.exit_code == 0, res.output
    header, row, *rest = res.stdout.strip().splitlines()
    assert not rest and "ttft.p90_s" in header and "pools.decode.utilisation_frac" in header and "tool_version" in header


def test_trace_replay_with_the_cache_aware_policy(runner):
    res = run(runner, "simulate", "mooncake-case-study", "--trace", "mooncake_fast25_conversation_trace", "--duration-s", "600",
              "--policy", "cache-aware", "-f", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["policy"] == "cache-aware" and doc["cache_hit_frac"] > 0.1 and "own times" in doc["arrivals"]


@pytest.mark.parametrize(("args", "match"), [
    (["--load", "0"], "--load: must be in (0, 100]"),
    (["--load", "-1"], "--load: must be"),
    (["--load", "0.5", "--arrival-req-per-s", "1"], "not both"),
    (["--link-drop-at-s", "10"], "needs both --link-drop-at-s and --link-drop-frac"),
    (["--policy", "cache-aware"], "needs requests with prefix identity"),
    (["--policy", "bandwidth-aware", "--policy-param", "u_high=7"], "u_high must be in"),
    (["--policy", "bandwidth-aware", "--policy-param", "u_high"], "give KEY=VALUE"),
    (["--policy", "greedy"], "greedy"),
    (["--trace", "no-such-trace"], "no shipped trace"),
    (["--rate-shape", "servegen_m-large_rate_10min", "--trace", "azure2023_conv"], "not several"),
    (["--burst-cv2", "0"], "--burst-cv2: must be in (0, 10,000]"),
    (["--duration-s", "0"], "--duration-s: must be"),
    (["--warmup-s", "5000"], "--warmup-s: must be in [0, 3,600) s"),
    (["--switch-s", "-1"], "--switch-s"),
    (["--replan", "--replan-period-s", "-5"], "--replan-period-s"),
    (["--replan", "--replan-rule", "oracle"], "oracle"),
])
def test_bad_input_is_one_line(runner, tmp_path, args, match):
    out = tmp_path / "x.json"
    res = run(runner, "simulate", "paper-case-study", *args, "-o", out)
    assert res.exit_code == 2, res.output
    assert match in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_overload_saturates_and_bursts_hurt(runner):
    """--load above 1 is allowed (overload shows saturation); gamma gaps with cv^2 = 4 raise P90
    TTFT over Poisson at the same rate."""
    base = ["simulate", "paper-case-study", "--duration-s", "1800", "-f", "json"]
    over = json.loads(run(runner, *base, "--load", "2").stdout)
    assert over["throughput_req_per_s"] == pytest.approx(over["lambda_max_req_per_s"], rel=0.05)
    poisson = json.loads(run(runner, *base, "--load", "0.7").stdout)
    bursty = json.loads(run(runner, *base, "--load", "0.7", "--burst-cv2", "4").stdout)
    assert "gamma" in bursty["arrivals"] and bursty["ttft"]["p90_s"] > 1.3 * poisson["ttft"]["p90_s"]


def test_cli_choices_are_the_librarys():
    """The CLI's --policy and --baseline choices (literal enums: the CLI does not import the
    simulator at start-up) are exactly the library's."""
    from prfaas_plan.cli.simulate import Baseline, Policy, ReplanRule
    from prfaas_plan.simulation.policies import POLICIES
    from prfaas_plan.simulation.replanner import RULES
    from prfaas_plan.simulation.run import BASELINES

    assert tuple(p.value for p in Policy) == POLICIES
    assert tuple(b.value for b in Baseline) == BASELINES
    assert tuple(r.value for r in ReplanRule) == RULES


def test_replan_rules_run_and_agree_with_the_python_api(runner):
    """--replan with each rule over two hours of the ServeGen shape: the JSON lists the re-plans the
    library makes for the same arguments (the hysteresis rule is the default)."""
    base = ["simulate", "paper-case-study", "--rate-shape", "servegen_m-large_rate_10min", "--duration-s", "7200", "--load", "0.8",
            "--replan", "-f", "json"]
    sc = load_scenario("paper-case-study")
    for rule in ("hysteresis", "greedy"):
        doc = json.loads(run(runner, *base, "--replan-rule", rule).stdout)
        api = simulate_scenario(sc, rate_shape="servegen_m-large_rate_10min", duration_s=7200, load=0.8, replan=True, replan_rule=rule)
        assert doc["replans"] == api["replans"] and doc["provenance"]["options"]["replan_rule"] == rule
