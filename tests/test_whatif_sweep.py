"""What-ifs (--set, re-plan and stress readings), sweeps, verdicts, and the scenario friction
points of issue 8 (copied scenarios, model paths, traces, the H20 price)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog import paths
from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.overrides import Override, parse_axis, parse_set
from prfaas_plan.planning.planner import PLAN_KEYS, optimize
from prfaas_plan.planning.scenario import list_scenarios, load_scenario
from prfaas_plan.planning.sweep import sweep
from prfaas_plan.planning.whatif import WhatIf, link_scaled, stressed, whatif_rows

RUNNER = CliRunner()
ENV = {"COLUMNS": "200"}


def cli(*args, env=ENV):
    return RUNNER.invoke(app, [str(a) for a in args], env=env)


def _scenario_copy(tmp_path, name="paper-case-study", mutate=None, filename="my-copy.yaml"):
    data = yaml.safe_load((catalog_dir("scenarios") / f"{name}.yaml").read_text())
    if mutate:
        mutate(data)
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(data))
    return path


# --- what-ifs -----------------------------------------------------------------------------------


def test_whatif_set_is_its_own_question():
    """`whatif --set KEY=VALUE` answers that what-if (a dotted scenario key), beside the plan."""
    res = cli("whatif", "paper-case-study", "--set", "link.bandwidth_gbit_per_s=10", "-f", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["whatifs"]
    assert [r["variant"] for r in rows] == ["as planned", "link.bandwidth_gbit_per_s=10"]
    direct = optimize(load_scenario("paper-case-study", [Override("link.bandwidth_gbit_per_s", 10)]), compare_modes=False)
    assert rows[1]["replan"]["throughput_req_per_s"] == pytest.approx(direct["throughput_req_per_s"], rel=1e-12)
    assert rows[1]["replan"]["throughput_req_per_s"] < rows[0]["replan"]["throughput_req_per_s"]


def test_whatif_set_bad_key_is_one_line():
    res = cli("whatif", "paper-case-study", "--set", "link.bandwidth=20")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "link.bandwidth" in res.stderr and "unknown key" in res.stderr


def test_stress_keeps_the_planned_fleet_and_link():
    """Stress = the fleet the budget plan buys, under the new conditions: the link halving that a
    re-plan shrugs off (it buys a bigger port) cuts what the bought fleet can serve."""
    sc = load_scenario("budget-case-study")
    base = optimize(sc, compare_modes=False)
    planned, half = whatif_rows(sc, base=base, whatifs=(WhatIf("as planned"), link_scaled("link halves", 0.5)))
    assert planned["stress"]["throughput_req_per_s"] >= base["throughput_req_per_s"] * (1 - 1e-9)
    st = half["stress"]
    assert st["n_prfaas"] == base["n_prfaas"]
    assert st["n_pd_prefill"] + st["n_pd_decode"] == base["n_pd_prefill"] + base["n_pd_decode"]
    assert st["link_gbit_per_s"] == pytest.approx(base["link_gbit_per_s"] / 2)
    assert st["throughput_req_per_s"] < half["replan"]["throughput_req_per_s"]
    assert half["stress_carries_demand"] is False  # 30 req/s arrive


def test_evening_sag_applies_the_shipped_profile():
    """The evening sag is the shipped profile (scenarios/evening-sag.csv: half 18:00-23:00), not
    the link halved all day at half the price (old main: "evening sag: link halves"). The re-plan
    is `optimize --set link.bandwidth_profile=...` (sized for the worst fraction: a 400 Gbit/s
    link for 200 before); the stress keeps the link bought and its bill, and has half of it in the
    evening."""
    sc = load_scenario("budget-case-study")
    base = optimize(sc, compare_modes=False)
    sag = next(r for r in whatif_rows(sc, base=base) if r["variant"].startswith("evening sag"))
    assert sag["variant"] == "evening sag: link at 50% 18:00-23:00 (evening-sag.csv; sized for its worst)"
    path = catalog_dir("scenarios") / "evening-sag.csv"
    direct = optimize(load_scenario("budget-case-study", [Override("link.bandwidth_profile", str(path))]), compare_modes=False)
    assert {k: sag["replan"][k] for k in PLAN_KEYS} == {k: direct[k] for k in PLAN_KEYS}
    assert sag["replan"]["link_gbit_per_s"] == 400 and base["link_gbit_per_s"] == 200
    st = sag["stress"]
    assert st["link_gbit_per_s"] == base["link_gbit_per_s"] and st["cost_usd_per_hour"] == pytest.approx(base["cost_usd_per_hour"])
    halved = optimize(stressed(sc, base, base["link_gbit_per_s"] / 2), compare_modes=False)  # half of the link, at the trough
    assert st["throughput_req_per_s"] == pytest.approx(halved["throughput_req_per_s"], rel=1e-9)
    assert sag["stress_carries_demand"] is False


def test_link_halves_keeps_the_price_per_gbit():
    """Halving purchasable ports halves their $/hour too (before: each port kept its price, i.e.
    the price per Gbit/s doubled)."""
    sc = load_scenario("budget-case-study", link_scaled("half", 0.5).overrides)
    assert sc.link.sizes_gbit_per_s[0] == 5
    for size, usd in zip(sc.link.sizes_gbit_per_s, sc.link.sizes_usd_per_hour):
        assert usd / size == pytest.approx(0.225)


def test_target_mode_compares_replans_by_cost():
    """In a target question every re-plan carries the target, so "vs planned" is the cost ratio
    (before: always 1.00); the stress reading says whether the bought fleet still carries it."""
    sc = load_scenario("budget-case-study")
    rows = {r["variant"]: r for r in whatif_rows(sc, target_req_per_s=20)}
    assert all(r["replan_compared_by"] == "cost" for r in rows.values())
    assert rows["local GPUs +50% price"]["replan_cost_vs_planned"] > 1.05
    assert rows["prompts 2x longer"]["stress_carries_demand"] is False
    assert rows["as planned"]["stress_carries_demand"] is True


# --- sweeps -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, axis", [("paper-case-study", "link.bandwidth_gbit_per_s=10:400:7"),
                                        ("budget-case-study", "objective.budget_usd_per_hour=800,3000,9000"),
                                        ("budget-case-study", "link.usd_per_gbit_per_s_hour=0.05,0.3,2"),
                                        ("paper-case-study", "workload.input_tokens_scale=0.5,1,2")])
def test_sweep_points_equal_optimize(name, axis):
    """Every point of a (vectorised) sweep is exactly the plan `optimize` gives for it."""
    key, values = parse_axis(axis)
    rows = sweep(load_scenario(name), [(key, values)])
    for r, v in zip(rows, values):
        want = optimize(load_scenario(name, [Override(key, v)]), compare_modes=False)
        for k in PLAN_KEYS:
            assert r[k] == want[k], (v, k)


def test_two_key_sweep_grid_and_progress():
    ticks = []
    axes = [parse_axis("link.bandwidth_gbit_per_s=10:100:4"), parse_axis("local.instances=6,8,10")]
    rows = sweep(load_scenario("paper-case-study"), axes, progress=lambda d, t: ticks.append((d, t)))
    assert len(rows) == 12 and ticks[-1] == (12, 12)
    assert {(r["link.bandwidth_gbit_per_s"], r["local.instances"]) for r in rows} == {(a, b) for a in (10.0, 40.0, 70.0, 100.0) for b in (6, 8, 10)}
    more = [r for r in rows if r["link.bandwidth_gbit_per_s"] == 100.0]
    assert more[0]["throughput_req_per_s"] < more[-1]["throughput_req_per_s"]


@pytest.mark.parametrize("text, problem", [
    ("link=1:2", "KEY=START:STOP:N"), ("a.b=1:2:1", "N must"), ("=5", "dotted"), ("k=", "value 1 of 1 is empty"),
    # issue 14: an empty value was dropped silently, and N had no upper bound (a sweep of 10^6 points ran for hours)
    ("k=1,,2", "value 2 of 3 is empty"), ("k=1,2,", "value 3 of 3 is empty"),
    ("k=1:100:1000000", r"N: must be a whole number in \[1, 1,000\] values per --vary, got 1e\+06"),
    ("k=" + ",".join(["1"] * 1001), "the number of values: must be a whole number in"),
])
def test_bad_axis_is_one_clear_error(text, problem):
    with pytest.raises(PlanError, match=problem):
        parse_axis(text)


def test_sweep_cli_formats_and_plot(tmp_path):
    base = ["sweep", "paper-case-study", "--vary", "link.bandwidth_gbit_per_s=10:100:4"]
    res = cli(*base, "-f", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["points"]) == 4 and doc["provenance"]["version"]
    out = tmp_path / "s.csv"
    assert cli(*base, "-o", out, "--plot", tmp_path / "s.svg").exit_code == 0
    assert out.read_text().splitlines()[0].startswith("link.bandwidth_gbit_per_s,threshold_tokens")
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<svg")
    assert cli(*base, "-o", tmp_path / "s.xlsx").exit_code == 0
    table = cli(*base)
    assert table.exit_code == 0 and "Sweep: paper-case-study (4 points" in table.stdout


def test_sweep_bad_value_is_one_line():
    res = cli("sweep", "paper-case-study", "--vary", "link.bandwidth_gbit_per_s=0,10")
    assert res.exit_code == 2 and "link.bandwidth_gbit_per_s" in res.stderr and res.stderr.count("\n") == 1


# --- verdicts -----------------------------------------------------------------------------------


def test_verdict_loses_to_equal_cost_baseline(tmp_path):
    """The case study's fixed fleet with PrfaaS GPUs at 30 $/GPU-hour: the same money buys a far
    larger homogeneous H20 cluster, and the first line says so (exit code 0)."""
    data = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())
    data["prfaas"].update(usd_per_gpu_hour=30.0, price_source="test: 6.7x the catalog rent")
    path = tmp_path / "pricey.yaml"
    path.write_text(yaml.safe_dump(data))
    res = cli("optimize", str(path))
    assert res.exit_code == 0
    assert res.stdout.splitlines()[0].startswith("WARNING: loses to homogeneous PD at the same cost")
    doc = json.loads(cli("optimize", str(path), "-f", "json").stdout)
    gain = doc["baselines"]["homogeneous_equal_cost"]["plan_vs_baseline"]
    assert doc["verdict"]["ok"] is False and gain < 1 and f"{gain:.2f}x" in doc["verdict"]["text"]


def test_verdict_cannot_carry_the_arrival_rate(tmp_path):
    path = _scenario_copy(tmp_path, mutate=lambda d: d["workload"].update(arrival_req_per_s=150))
    res = cli("optimize", path)
    assert res.exit_code == 0
    assert res.stdout.splitlines()[0].startswith("WARNING: cannot carry the scenario's 150 req/s")
    ok = json.loads(cli("optimize", "budget-case-study", "-f", "json").stdout)["verdict"]
    assert ok["ok"] is True and ok["text"].startswith("OK: carries the scenario's 30 req/s")


# --- scenario friction points -------------------------------------------------------------------


def test_copied_scenario_loads_without_editing_its_name(tmp_path):
    path = _scenario_copy(tmp_path)
    assert load_scenario(path).name == "paper-case-study"
    no_name = _scenario_copy(tmp_path, mutate=lambda d: d.pop("name"), filename="unnamed.yaml")
    assert load_scenario(no_name).name == "unnamed"
    assert cli("optimize", path, "-f", "json").exit_code == 0


def test_catalog_files_must_still_match_their_names(tmp_path, monkeypatch):
    """Inside the catalog a name must equal its file name, or a catalog name would not find it."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(catalog_dir("scenarios") / "paper-case-study.yaml", folder / "renamed.yaml")
    real = paths.catalog_dir
    monkeypatch.setattr(paths, "catalog_dir", lambda kind: folder if kind == "scenarios" else real(kind))
    with pytest.raises(PlanError, match="must equal the file name 'renamed'"):
        load_scenario(folder / "renamed.yaml")


def test_model_and_hardware_paths_resolve_from_the_scenario_file(tmp_path, monkeypatch):
    (tmp_path / "sc").mkdir()
    (tmp_path / "cat").mkdir()
    shutil.copy(catalog_dir("models") / "prfaas-1t-hybrid.yaml", tmp_path / "cat" / "prfaas-1t-hybrid.yaml")
    shutil.copy(catalog_dir("hardware") / "h20.yaml", tmp_path / "cat" / "h20.yaml")

    def mutate(d):
        d["model"] = "../cat/prfaas-1t-hybrid.yaml"
        d["local"]["hardware"] = "../cat/h20.yaml"

    path = _scenario_copy(tmp_path / "sc", mutate=mutate)
    monkeypatch.chdir(tmp_path / "cat")  # from here, ../cat/... does not exist
    sc = load_scenario(path)
    assert sc.model.path == str((tmp_path / "cat" / "prfaas-1t-hybrid.yaml").resolve())
    assert sc.local.hardware.name == "h20"


def test_azure_trace_and_output_column(tmp_path):
    """Azure LLM inference trace columns are read; the trace's output lengths are used."""
    (tmp_path / "azure.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,4808,10\n2023-11-16 18:15:50,3180,30\n")

    def mutate(d):
        d["workload"]["input_tokens"] = {"kind": "trace", "csv": "azure.csv"}
        d["workload"].pop("output_tokens")

    sc = load_scenario(_scenario_copy(tmp_path, mutate=mutate))
    assert sc.workload.input.mean() == pytest.approx((4808 + 3180) / 2)
    assert sc.workload.output_tokens_mean == pytest.approx(20)

    def both(d):
        mutate(d)
        d["workload"]["output_tokens"] = 1024

    with pytest.raises(PlanError, match="output_tokens.*output-token column"):
        load_scenario(_scenario_copy(tmp_path, mutate=both, filename="both.yaml"))


def test_h20_price_is_one_sourced_number():
    """H20 costs the same in the catalog and in every shipped scenario, with its derivation."""
    h20 = load_hardware("h20")
    assert "DERIVED" in h20.price_source and h20.rent_usd_per_gpu_hour == pytest.approx(2.25)
    for name in list_scenarios():
        sc = load_scenario(name)
        for c in (sc.prfaas, sc.local):
            if c.hardware.name == "h20":
                assert c.usd_per_gpu_hour == h20.rent_usd_per_gpu_hour, name


def test_set_parsing():
    assert parse_set("link.bandwidth_gbit_per_s=50") == Override("link.bandwidth_gbit_per_s", 50)
    assert parse_set("workload.arrival_req_per_s*=1.5") == Override("workload.arrival_req_per_s", 1.5, scale=True)
    assert parse_set("link.purchasable_gbit_per_s=[10, 20]").value == [10, 20]
    with pytest.raises(PlanError, match="not set, nothing to scale"):
        load_scenario("paper-case-study", [parse_set("workload.arrival_req_per_s*=2")])
