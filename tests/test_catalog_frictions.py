"""The small frictions of issue 15 item 10, each a regression test that fails on old main: a user's
own scenario may leave out description and sources (a shipped one may not); catalog names are
case-insensitive and a near miss gets "did you mean"; `models show` names the attention a model
really has; no catalog source line cites a file the package does not ship; `optimize -o
plan.xlsx` still prints the verdict; `hardware show` and `scenarios` take --format/--output."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import list_hardware, load_hardware
from prfaas_plan.catalog.model import list_models
from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.scenario import list_scenarios, load_scenario, scenario_from_mapping

runner = CliRunner()


def _bare_case_study() -> dict:
    data = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())
    del data["sources"], data["description"]
    return data


def test_own_scenario_may_omit_description_and_sources(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_bare_case_study()))
    sc = load_scenario(path)
    assert "no description" in sc.description and "outside scenarios/" in sc.description
    assert len(sc.sources) == 1 and sc.sources[0].startswith("none given")
    # the same mapping as a shipped catalog file is refused: shipped scenarios document themselves
    with pytest.raises(PlanError, match="sources|description"):
        scenario_from_mapping(_bare_case_study(), catalog_dir("scenarios") / "paper-case-study.yaml", "paper-case-study")


@pytest.mark.parametrize(("args", "name"), [(["hardware", "show", "H200", "-f", "json"], "h200"),
                                            (["estimate", "-m", "Qwen3-235B", "-H", "H200", "--gpus", "8", "-f", "json"], "qwen3-235b"),
                                            (["optimize", "Paper-Case-Study", "-f", "json"], "paper-case-study")])
def test_names_are_case_insensitive(args, name):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert name in (doc.get("name"), doc.get("model"), doc.get("scenario"))


@pytest.mark.parametrize(("args", "hint"), [(["models", "show", "qwen3-253b"], "did you mean qwen3-235b"),
                                            (["hardware", "show", "h2000"], "did you mean h200"),
                                            (["optimize", "paper-case-studdy"], "did you mean paper-case-study")])
def test_a_near_miss_gets_did_you_mean(args, hint):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and hint in lines[0]


@pytest.mark.parametrize(("model", "says", "never"), [("qwen3-235b", "94 full attention (GQA) layers", "MLA"),
                                                       ("deepseek-v3", "61 MLA layers", "GQA"),
                                                       ("kimi-linear-48b", "7 MLA layers", "GQA")])
def test_models_show_names_the_attention_it_has(model, says, never):
    res = runner.invoke(app, ["models", "show", model], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    kv_line = next(line for line in res.stdout.splitlines() if "KV per token" in line and "SWA" not in line)
    assert says in kv_line and never not in kv_line


def test_catalog_cites_no_file_it_does_not_ship():
    """Sources name public documents (datasheets, model cards, the paper), not the project's
    internal notes (shared/reference/specs.md, prfaas-paper.md, configs/*.json)."""
    unshipped = ("shared/", "specs.md", "prfaas-paper.md")
    lines = [s for hw in list_hardware() for s in (*hw.sources, hw.price_source)] + [s for m in list_models() for s in m.sources]
    assert lines and [s for s in lines if any(u in s for u in unshipped)] == []


def test_optimize_to_a_workbook_still_prints_the_verdict(tmp_path):
    out = tmp_path / "plan.xlsx"
    res = runner.invoke(app, ["optimize", "paper-case-study", "-o", str(out)])
    assert res.exit_code == 0, res.output
    verdict = json.loads(runner.invoke(app, ["optimize", "paper-case-study", "-f", "json"]).stdout)["verdict"]["text"]
    assert out.exists() and res.stderr.splitlines() == [f"wrote {out}", verdict]


def test_hardware_show_and_scenarios_take_format_and_output(tmp_path):
    doc = json.loads(runner.invoke(app, ["hardware", "show", "h20", "-f", "json"]).stdout)
    assert doc["memory_capacity_bytes"] == load_hardware("h20").memory_capacity_bytes and doc["sources"]
    out = tmp_path / "h20.csv"
    assert runner.invoke(app, ["hardware", "show", "h20", "-o", str(out)]).exit_code == 0
    assert out.read_text().splitlines()[0] == "field,value"
    rows = json.loads(runner.invoke(app, ["scenarios", "-f", "json"]).stdout)
    assert [r["name"] for r in rows] == list_scenarios() and all(r["description"] for r in rows)
