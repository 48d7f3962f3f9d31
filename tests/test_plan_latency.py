"""Plans that respect latency: the link's max_utilisation headroom, the TTFT SLO and goodput,
and the latency columns of `optimize` (CLI and API agree)."""

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.latency.deployment import deployment
from prfaas_plan.latency.plans import add_latency, goodput_req_per_s
from prfaas_plan.latency.ttft import ttft
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.problem import TtftSlo
from prfaas_plan.planning.scenario import LINK_MAX_UTILISATION, load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def write(tmp_path: Path, name: str, edit) -> Path:
    data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    edit(data)
    data["name"] = "edited"
    data["model"] = str(Path(__file__).resolve().parent.parent / "models" / f"{data['model']}.yaml")
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("frac", [0.5, LINK_MAX_UTILISATION, 1.0])
def test_budget_plans_keep_the_link_under_its_ceiling(tmp_path, frac):
    """A bought link is sized for egress / max_utilisation: the planned egress never exceeds it."""
    sc = load_scenario(write(tmp_path, "budget-case-study", lambda d: d["link"].update(max_utilisation=frac)))
    r = optimize(sc, compare_modes=False)
    assert r["egress_gbit_per_s"] <= frac * r["link_gbit_per_s"] * (1 + 1e-9)


def test_more_headroom_never_raises_throughput_on_a_budget(tmp_path):
    got = [optimize(load_scenario(write(tmp_path, "budget-case-study", lambda d, f=f: d["link"].update(max_utilisation=f))),
                    compare_modes=False)["throughput_req_per_s"] for f in (1.0, 0.8, 0.5)]
    assert got[0] >= got[1] >= got[2]


def test_fixed_link_ceiling_caps_the_link_capacity(tmp_path):
    """Fixed 100 Gbit/s at max_utilisation 0.01: only 1 Gbit/s may be planned (the plan keeps
    more prompts local and carries less than with the default ceiling, where 13 Gbit/s fit)."""
    sc = load_scenario(write(tmp_path, "paper-case-study", lambda d: d["link"].update(max_utilisation=0.01)))
    r = optimize(sc, compare_modes=False)
    assert r["link_gbit_per_s"] == pytest.approx(100.0)
    assert r["egress_gbit_per_s"] <= 1.0 * (1 + 1e-9)
    default = optimize(load_scenario("paper-case-study"), compare_modes=False)
    assert r["throughput_req_per_s"] < default["throughput_req_per_s"]
    assert r["threshold_tokens"] > default["threshold_tokens"]


@pytest.mark.parametrize("bad", [0, 1.5, -0.2])
def test_max_utilisation_out_of_range_is_one_line(tmp_path, bad):
    path = write(tmp_path, "paper-case-study", lambda d: d["link"].update(max_utilisation=bad))
    res = CliRunner().invoke(app, ["optimize", str(path)])
    assert res.exit_code != 0
    assert "max_utilisation" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def slo_case(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("slo"), "paper-case-study",
                 lambda d: (d["slo"].update(ttft_p90_s=5.0), d["workload"].update(arrival_req_per_s=2.5)))
    sc = load_scenario(path)
    return path, sc, add_latency(sc, optimize(sc, compare_modes=False))


def test_goodput_is_where_p90_meets_the_slo(slo_case):
    """At the goodput the P90 TTFT is within the SLO; 1% above it, it is not (or unstable)."""
    _, sc, r = slo_case
    good = r["latency"]["goodput_req_per_s"]
    assert 0 < good < r["throughput_req_per_s"]
    dep = deployment(sc, r)
    assert ttft(dep, good).ttft_p90_s <= 5.0
    assert ttft(dep, good + 0.01 * r["throughput_req_per_s"]).ttft_p90_s > 5.0


def test_goodput_zero_when_idle_latency_misses_the_slo(slo_case):
    """Homogeneous PD's idle P90 (9.7 s) is over a 5 s SLO: goodput 0, whatever its capacity."""
    _, _, r = slo_case
    assert r["baselines"]["homogeneous"]["latency"]["zero_load"]["ttft_p90_s"] > 5.0
    assert r["baselines"]["homogeneous"]["latency"]["goodput_req_per_s"] == 0.0


def test_goodput_rises_with_a_looser_slo(slo_case):
    _, sc, r = slo_case
    dep = deployment(sc, r)
    got = [goodput_req_per_s(dep, r["throughput_req_per_s"], TtftSlo(p90_s=s)) for s in (4.0, 5.0, 8.0, 1e6)]
    assert got == sorted(got)
    assert got[-1] == pytest.approx(r["throughput_req_per_s"], rel=2e-3)


def test_unstable_baseline_at_the_arrival_rate_is_reported_not_raised(slo_case):
    """2.5 req/s overloads the naive baseline (Lambda_max 2.43): its loaded latency is an error
    string, the plan's is a number."""
    _, _, r = slo_case
    assert r["latency"]["at_arrival_rate"]["ttft_p90_s"] > 0
    naive = r["baselines"]["naive"]["latency"]
    assert naive["at_arrival_rate"] is None and "unstable" in naive["at_arrival_rate_error"]


def test_cli_json_and_api_agree_on_latency(slo_case):
    path, _, r = slo_case
    res = CliRunner().invoke(app, ["optimize", str(path), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["latency"]["zero_load"]["ttft_p90_s"] == pytest.approx(r["latency"]["zero_load"]["ttft_p90_s"], rel=1e-12)
    assert doc["latency"]["goodput_req_per_s"] == pytest.approx(r["latency"]["goodput_req_per_s"], rel=1e-12)
    assert doc["ttft_p90_slo_s"] == 5.0


def test_cli_table_shows_ttft_beside_each_baseline(slo_case):
    path, _, _ = slo_case
    res = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["optimize", str(path)])
    assert res.exit_code == 0, res.output
    assert "TTFT mean / P90 s, idle" in res.output and "goodput" in res.output
    assert "4.46 / 9.74" in res.output  # homogeneous PD, [PRFAAS] Table 6: 4.44 / 9.73


def test_csv_rows_carry_ttft_columns(slo_case):
    path, _, _ = slo_case
    res = CliRunner().invoke(app, ["optimize", str(path), "-f", "csv"])
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split(",")
    assert {"ttft_mean_s_zero_load", "ttft_p90_s_zero_load", "goodput_req_per_s"} <= set(header)
    assert not any(math.isnan(float(v)) for v in res.output.splitlines()[1].split(",")[header.index("ttft_p90_s_zero_load"):][:1])
