"""Fleet scenarios from the command line and their schema: `optimize` prints the fleet, links and
sites (JSON keys of issue 16), the commands that do not plan fleets refuse in one line, and a bad
sites/parts file names its key."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from fleetcases import two_by_two
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.scenario import load_scenario

RUNNER = CliRunner()


def _run(*args):
    return RUNNER.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def case_study():
    res = _run("optimize", "multi-site-case-study", "-f", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_optimize_prints_fleet_links_and_sites(case_study):
    """Issue 16 item 6: one fleet entry per site x role x part, the links, and per local site its
    threshold, rate, TTFT at its rate and goodput (the case study states a P90 SLO)."""
    d = case_study
    assert {"fleet", "links", "sites", "verdict", "solver", "provenance"} <= set(d)
    for e in d["fleet"]:
        assert set(e) == {"site", "role", "hardware", "instances", "gpus_per_instance", "usd_per_gpu_hour", "usd_per_hour"}
        assert e["role"] in ("prfaas", "local-prefill", "local-decode")
        assert e["usd_per_hour"] == pytest.approx(e["instances"] * e["gpus_per_instance"] * e["usd_per_gpu_hour"])
    for lk in d["links"]:
        assert {"from", "to", "gbit_per_s", "usd_per_hour", "utilisation_frac"} <= set(lk)
    assert {s["site"] for s in d["sites"]} == {"new-york", "chicago"}
    for s in d["sites"]:
        assert s["rate_req_per_s"] == pytest.approx(s["arrival_req_per_s"])  # a target question at each site's arrival rate
        assert "ttft_p90_s" in s["latency"]["at_rate"] and s["goodput_req_per_s"] > 0
    total = sum(e["usd_per_hour"] for e in d["fleet"]) + sum(lk["usd_per_hour"] for lk in d["links"])
    assert d["cost_usd_per_hour"] == pytest.approx(total)
    assert d["solver"]["status"] == "optimal"


def test_optimize_table_shows_the_fleet():
    res = _run("optimize", "multi-site-case-study")
    assert res.exit_code == 0, res.output
    for word in ("Fleet", "Links", "Local sites", "new-york", "chicago", "solver"):
        assert word in res.output


@pytest.mark.parametrize("command", [["simulate"], ["risk"]])
def test_commands_without_fleet_support_refuse_in_one_line(command):
    """simulate and risk run one pair of clusters: a fleet is refused in one line that says what
    to do instead (whatif, sweep and report plan fleets: tests/test_fleet_outputs.py)."""
    res = _run(command[0], "multi-site-case-study", *command[1:])
    assert res.exit_code == 2
    assert "handles one-pair scenarios" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert ("one-pair scenario with the parts" in res.output) if command[0] == "simulate" else ("whatif" in res.output and "sweep" in res.output)


def _broken(tmp_path, change) -> str:
    path = two_by_two(tmp_path)
    doc = yaml.safe_load(open(path))
    change(doc)
    open(path, "w").write(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("change, key", [
    (lambda d: d["sites"]["prfaas"][1].update(usd_per_gpu_hour=3.0), "sites.prfaas[1].usd_per_gpu_hour"),
    (lambda d: d["sites"]["prfaas"][1]["usd_per_gpu_hour"].update(h100=2.0), "sites.prfaas[1].usd_per_gpu_hour.h100"),
    (lambda d: d["sites"]["prfaas"][1].update(hardware=["h200", "h200"]), "sites.prfaas[1].hardware"),
    (lambda d: d["links"][0].update({"from": "mars"}), "links[0].from"),
    (lambda d: d["links"].append(dict(d["links"][0])), "links[4].to"),
    (lambda d: d["sites"]["local"][1].update(name="a"), "sites.local[1].name"),
    (lambda d: d["sites"]["local"][0].update(hardware="h20"), "sites.local[0].prefill_hardware"),
    (lambda d: d.update(workload={}), "workload"),
])
def test_bad_fleet_files_name_the_key(tmp_path, change, key):
    """Strict YAML for the new sections: one line naming the file and the key."""
    path = _broken(tmp_path, change)
    with pytest.raises(PlanError) as err:
        load_scenario(path)
    assert f"key '{key}'" in str(err.value) and path in str(err.value)


def test_one_pair_with_candidates_keeps_the_pair_fields(tmp_path):
    """A scenario without sites: whose roles list candidates is a one-pair fleet (sites named
    prfaas and local), in distribution mode only."""
    from fleetcases import one_pair

    sc = load_scenario(one_pair(tmp_path, "c", True, {"kind": "target", "target_req_per_s": 5}))
    assert sc.fleet.one_pair and [p.name for p in sc.fleet.prfaas_sites] == ["prfaas"]
    doc = yaml.safe_load(open(one_pair(tmp_path, "m", True, {"kind": "target", "target_req_per_s": 5})))
    doc["mode"] = "paper"
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(PlanError, match="distribution mode only"):
        load_scenario(tmp_path / "m.yaml")
