"""The main job: `optimize` on the shipped scenarios, Table 6, baselines, CLI vs API, bad scenarios."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.paper.reference import TABLE6
from prfaas_plan.planning.planner import PLAN_KEYS, optimize
from prfaas_plan.planning.scenario import list_scenarios, load_scenario
from prfaas_plan.planning.whatif import whatif_rows

RUNNER = CliRunner()
ENV = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def paper():
    return optimize(load_scenario("paper-case-study"), mode="paper")


def test_table6_reproduced_in_paper_mode(paper):
    """[PRFAAS] Table 6 with the issue's tolerances: t within 5% of 19.4K, 4/3/5, Lambda within 3%,
    each Theta within 5%, offload 49.6% +- 1.5 points, egress 13 +- 3 Gbit/s, baselines within 3%."""
    ref = TABLE6["prfaas"]
    assert paper["threshold_tokens"] == pytest.approx(ref["threshold_tokens"], rel=0.05)
    assert (paper["n_prfaas"], paper["n_pd_prefill"], paper["n_pd_decode"]) == (4, 3, 5)
    assert paper["throughput_req_per_s"] == pytest.approx(3.24, rel=0.03)
    for key in ("theta_prfaas_req_per_s", "theta_pd_prefill_req_per_s", "theta_pd_decode_req_per_s"):
        assert paper[key] == pytest.approx(ref[key], rel=0.05), key
    assert abs(paper["offload_frac"] - 0.496) <= 0.015
    assert abs(paper["egress_gbit_per_s"] - 13.0) <= 3.0
    homo, naive = paper["baselines"]["homogeneous"], paper["baselines"]["naive"]
    assert (homo["n_pd_prefill"], homo["n_pd_decode"]) == (9, 3)
    assert homo["throughput_req_per_s"] == pytest.approx(2.11, rel=0.03)
    assert naive["throughput_req_per_s"] == pytest.approx(2.45, rel=0.03)
    assert (naive["n_prfaas"], naive["n_pd_decode"]) == (4, 8)


def test_equal_cost_gain_is_about_the_papers_15_percent(paper):
    """With H200 = 2 x H20 per GPU-hour and no link cost, equal cost buys 16 H20 instances: ~+15%."""
    eq = paper["baselines"]["homogeneous_equal_cost"]
    assert eq["cost_usd_per_hour"] <= paper["cost_usd_per_hour"] + 1e-9
    assert paper["throughput_req_per_s"] / eq["throughput_req_per_s"] == pytest.approx(1.15, abs=0.04)


def test_distribution_mode_is_reported_beside_paper_mode(paper):
    other = paper["other_mode"]
    assert other["mode"] == "distribution"
    assert set(PLAN_KEYS) <= set(other)
    assert other["throughput_req_per_s"] != paper["throughput_req_per_s"]


@pytest.mark.parametrize("name", [n for n in list_scenarios() if load_scenario(n).fleet is None])
def test_every_shipped_scenario_plans(name):
    """Each shipped scenario, planned as the command plans it (an SLO scenario by the SLO-aware solver)."""
    from prfaas_plan.latency.slo_plan import solve

    r = optimize(load_scenario(name), compare_modes=False, solver=solve)
    assert set(PLAN_KEYS) <= set(r)
    assert r["throughput_req_per_s"] > 0
    if r["objective"] == "budget":
        assert r["cost_usd_per_hour"] <= r["budget_usd_per_hour"] + 1e-9
    assert r["egress_gbit_per_s"] <= r["link_gbit_per_s"] * (1 + 1e-9) + 1e-12


def test_the_one_pair_planner_refuses_a_fleet_scenario():
    """Regression: optimize() on a scenario with sites raised a TypeError (no one-pair target);
    it now says in one line which planner plans it (the fleet scenarios: tests/test_fleet_cli.py)."""
    with pytest.raises(PlanError, match="plan_fleet"):
        optimize(load_scenario("multi-site-case-study"), compare_modes=False)


def test_budget_and_target_flags_override_the_question():
    sc = load_scenario("paper-case-study")
    small = optimize(sc, budget_usd_per_hour=1000, compare_modes=False)
    big = optimize(sc, budget_usd_per_hour=2000, compare_modes=False)
    assert small["objective"] == "budget" and small["cost_usd_per_hour"] <= 1000
    assert big["throughput_req_per_s"] >= small["throughput_req_per_s"]
    t = optimize(sc, target_req_per_s=5.0, compare_modes=False)
    assert t["throughput_req_per_s"] >= 5.0 - 1e-9
    with pytest.raises(PlanError, match="not both"):
        optimize(sc, budget_usd_per_hour=1, target_req_per_s=1)


def test_cli_and_api_agree():
    result = RUNNER.invoke(app, ["optimize", "paper-case-study", "--mode", "paper", "--format", "json"], env=ENV)
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    api = optimize(load_scenario("paper-case-study"), mode="paper")
    for key in PLAN_KEYS:
        assert cli[key] == (pytest.approx(api[key], rel=1e-12) if isinstance(api[key], float) else api[key]), key
    assert cli["baselines"]["homogeneous"]["throughput_req_per_s"] == pytest.approx(api["baselines"]["homogeneous"]["throughput_req_per_s"], rel=1e-12)


def test_optimize_table_csv_and_xlsx(tmp_path):
    table = RUNNER.invoke(app, ["optimize", "paper-case-study"], env=ENV)
    assert table.exit_code == 0 and "Baselines" in table.stdout and "binding" in table.stdout
    csv = RUNNER.invoke(app, ["optimize", "paper-case-study", "--format", "csv"], env=ENV)
    assert csv.stdout.splitlines()[0].startswith("plan,threshold_tokens")
    out = tmp_path / "plan.xlsx"
    assert RUNNER.invoke(app, ["optimize", "paper-case-study", "-f", "xlsx", "-o", str(out)], env=ENV).exit_code == 0
    from openpyxl import load_workbook

    assert load_workbook(out).sheetnames == ["Summary", "Inputs", "Plan, baselines, capacities", "What-ifs, sweeps"]


def test_whatif_link_halving_and_longer_prompts():
    rows = whatif_rows(load_scenario("paper-case-study"))
    by = {r["variant"]: r for r in rows}
    assert by["as planned"]["replan_throughput_vs_planned"] == 1.0
    assert by["link at 10%"]["replan"]["throughput_req_per_s"] <= by["as planned"]["replan"]["throughput_req_per_s"] + 1e-12
    assert by["prompts 2x longer"]["replan"]["throughput_req_per_s"] < by["as planned"]["replan"]["throughput_req_per_s"]


def _write(tmp_path, mutate, name="bad"):
    data = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())
    data["name"] = name
    mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["prfaas"].update(instances=-1), "prfaas.instances"),
        (lambda d: d["link"].update(bandwidth_gbit_per_s=0), "link.bandwidth_gbit_per_s"),
        (lambda d: d["workload"]["input_tokens"].update(sigma=0), "workload.input_tokens.sigma"),
        (lambda d: d["workload"]["input_tokens"].update(min_tokens=200000), "workload.input_tokens"),
        (lambda d: d["local"].update(usd_per_gpu_hour=-2), "local.usd_per_gpu_hour"),
        (lambda d: d.pop("model"), "model"),
        (lambda d: d.update(model="no-such-model"), "no-such-model"),
        (lambda d: d["slo"].update(tpot_ms=25), "decode_tokens_per_s"),
        (lambda d: d["objective"].update(kind="cheapest"), "objective.kind"),
        (lambda d: d["objective"].update(kind="budget"), "objective.budget_usd_per_hour"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["workload"].update(prefix_cache_hit_frac=1.5), "prefix_cache_hit_frac"),
    ],
)
def test_bad_scenarios_name_the_key(tmp_path, mutate, needle):
    path = _write(tmp_path, mutate)
    with pytest.raises(PlanError, match=needle.replace(".", r"\.")):
        load_scenario(path)
    result = RUNNER.invoke(app, ["optimize", str(path)], env=ENV)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and "error:" in result.output


def test_infeasible_questions_exit_cleanly(tmp_path):
    """A budget below one decode instance, an SLO no batch meets, a model that does not fit."""
    r = RUNNER.invoke(app, ["optimize", "paper-case-study", "--budget-usd-per-hour", "10"], env=ENV)
    assert r.exit_code == 2 and "budget" in r.output
    slo = _write(tmp_path, lambda d: d["slo"].update(decode_tokens_per_s=1000), "fast")
    r = RUNNER.invoke(app, ["optimize", str(slo)], env=ENV)
    assert r.exit_code == 2 and "SLO" in r.output
    small = _write(tmp_path, lambda d: (d["local"].update(gpus_per_instance=2, use_profile=False)), "small")
    r = RUNNER.invoke(app, ["optimize", str(small)], env=ENV)
    assert r.exit_code == 2 and "does not fit" in r.output
    assert RUNNER.invoke(app, ["optimize", "no-such-scenario"], env=ENV).exit_code == 2
    out = tmp_path / "never.json"
    r = RUNNER.invoke(app, ["optimize", "paper-case-study", "--budget-usd-per-hour", "10", "-f", "json", "-o", str(out)], env=ENV)
    assert r.exit_code == 2 and not out.exists()


def test_arrival_rate_gives_utilisation_and_headroom():
    """With an arrival rate the plan says how busy each path is; utilisation = arrivals / capacity."""
    r = optimize(load_scenario("budget-case-study"), compare_modes=False)
    load = r["load"]
    assert load["arrival_req_per_s"] == 30
    assert load["utilisation_frac"] == pytest.approx(30 / r["throughput_req_per_s"], rel=1e-12)
    assert load["pd_decode_utilisation_frac"] == pytest.approx(30 / r["theta_pd_decode_req_per_s"], rel=1e-12)
    assert max(load["prfaas_utilisation_frac"], load["pd_prefill_utilisation_frac"], load["pd_decode_utilisation_frac"]) <= load["utilisation_frac"] * (1 + 1e-9)
    assert load["egress_at_load_gbit_per_s"] < r["egress_gbit_per_s"]
    assert "load" not in optimize(load_scenario("paper-case-study"), compare_modes=False)


def test_trace_and_mixture_workloads_from_scenario_files(tmp_path):
    """A CSV trace (path relative to the scenario) and a mixture load and plan; a missing CSV
    column is one clear error naming the key."""
    (tmp_path / "trace.csv").write_text("input_tokens,count\n2048,50\n16384,30\n65536,20\n")
    trace = _write(tmp_path, lambda d: d["workload"].update(input_tokens={"kind": "trace", "csv": "trace.csv"}), "traced")
    r = optimize(load_scenario(trace), compare_modes=False)
    # a trace is discrete: the offloaded share is one of its tail masses
    assert any(r["offload_frac"] == pytest.approx(x, abs=1e-12) for x in (0.0, 0.2, 0.5, 1.0))
    mix = {"kind": "mixture", "components": [
        {"weight": 3, "distribution": {"kind": "lognormal", "mu": 7.5, "sigma": 0.8, "min_tokens": 64, "max_tokens": 32768}},
        {"weight": 1, "distribution": {"kind": "trace", "csv": "trace.csv"}}]}
    mixed = _write(tmp_path, lambda d: d["workload"].update(input_tokens=mix), "mixed")
    assert optimize(load_scenario(mixed), compare_modes=False)["throughput_req_per_s"] > 0
    (tmp_path / "bad.csv").write_text("tokens\n5\n")
    bad = _write(tmp_path, lambda d: d["workload"].update(input_tokens={"kind": "trace", "csv": "bad.csv"}), "badtrace")
    with pytest.raises(PlanError, match=r"workload\.input_tokens\.csv"):
        load_scenario(bad)


def test_scenario_state_dtype_is_a_deployment_setting(tmp_path):
    """Issue 19: a cluster's `instance: {state_dtype | engine}` sets the recurrent-state dtype the
    plan ships; bf16 halves the KDA state of the fp32 model file. The two clusters must agree (one
    request's state crosses the link): PlanError naming the key otherwise."""
    from prfaas_plan.roofline.kv import fixed_state_bytes

    def both(d):
        for role in ("prfaas", "local"):
            d[role].setdefault("instance", {})["state_dtype"] = "bf16"

    base = load_scenario(_write(tmp_path, lambda d: None, "base"))
    half = load_scenario(_write(tmp_path, both, "half"))
    assert half.model.dtypes.linear_state == "bf16"
    assert fixed_state_bytes(half.model) < fixed_state_bytes(base.model)
    with pytest.raises(PlanError, match="local.instance.state_dtype"):
        load_scenario(_write(tmp_path, lambda d: d["prfaas"].setdefault("instance", {}).update(state_dtype="bf16"), "one"))
