"""Issue 16.6: `report`, `whatif` and `sweep` accept fleet scenarios (sites or candidate parts).
The report's mix, links and per-site numbers are `optimize -f json`'s (checked in the HTML as
written and as headless Chromium builds it, in the Markdown and in the workbook); what-ifs and
sweep points re-plan the fleet; `--set` and `--vary` reach into the sites: and links: lists."""

from __future__ import annotations

import json
import subprocess

import openpyxl
import pytest
from typer.testing import CliRunner

from fleetcases import one_pair, two_by_two
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.fleet.plan import plan_fleet
from prfaas_plan.fleet.sweep import fleet_sweep
from prfaas_plan.fleet.whatif import fleet_whatif_rows, fleet_whatifs, reading
from prfaas_plan.planning.overrides import Override, apply_overrides, parse_sets
from prfaas_plan.planning.scenario import load_scenario
from test_reports import _Cells, _chromium

RUNNER = CliRunner()
SCENARIO = "multi-site-case-study"


def _run(*args):
    return RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _ok(*args):
    res = _run(*args)
    assert res.exit_code == 0, (res.output, res.exception)
    return res


def _lookup(doc, dotted: str):
    for part in dotted.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


@pytest.fixture(scope="module")
def plan_json() -> dict:
    return json.loads(_ok("optimize", SCENARIO, "-f", "json").stdout)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet-report") / "r.html"
    _ok("report", SCENARIO, "-o", out)
    return out


def _expected_keys(doc: dict) -> list[str]:
    """Every number of the mix, the links and the local sites that the report must show."""
    keys = [f"fleet.{i}.{k}" for i in range(len(doc["fleet"])) for k in ("instances", "gpus_per_instance", "usd_per_gpu_hour", "usd_per_hour")]
    keys += [f"links.{i}.{k}" for i in range(len(doc["links"])) for k in ("gbit_per_s", "usd_per_hour", "utilisation_frac", "rtt_ms")]
    for i, s in enumerate(doc["sites"]):
        keys += [f"sites.{i}.{k}" for k in ("threshold_tokens", "offload_frac", "rate_req_per_s", "arrival_req_per_s", "goodput_req_per_s",
                                            "latency.at_rate.ttft_mean_s", "latency.at_rate.ttft_p90_s", "latency.at_rate.ttft_p99_s")
                 if k in s or k.startswith("latency.") and s["latency"]["at_rate"] is not None]
    return keys


def _check_cells(cells: _Cells, doc: dict, at_least: int = 3 * 4 + 2 * 4 + 2 * 8) -> None:
    """``at_least``: keys the plan must have (the case study: 3 pools, 2 links, 2 sites with SLOs)."""
    keys = _expected_keys(doc)
    assert len(keys) >= at_least
    for key in keys:
        assert key in cells.values, key
        assert cells.values[key] == _lookup(doc, key), key


def test_fleet_report_numbers_equal_optimize_json(html_report, plan_json):
    """The HTML's mix, links and per-site cells carry `optimize -f json`'s exact values; the verdict
    and the plan document are the command's."""
    text = html_report.read_text()
    cells = _Cells()
    cells.feed(text)
    _check_cells(cells, plan_json)
    assert plan_json["verdict"]["text"] in text
    assert cells.texts["fleet.0.usd_per_hour"] == f"{plan_json['fleet'][0]['usd_per_hour']:,.2f}"
    for title in ("Fleet: the mix", "Links", "Local sites", "Inputs and their sources", "What-ifs", "Assumptions"):
        assert title in text, title
    assert cells.external == []  # self-contained


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium installed: the browser check needs one")
def test_fleet_report_in_headless_chromium(html_report, plan_json):
    """The page as Chromium builds it shows the same numbers as `optimize -f json`."""
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
    dom = subprocess.run(args + ["--dump-dom", html_report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _Cells()
    cells.feed(dom.stdout)
    _check_cells(cells, plan_json)


def test_fleet_report_markdown_and_workbook(tmp_path, plan_json):
    """The Markdown has the mix row by row; the workbook's Fleet sheet holds the JSON's numbers as
    numbers and its Summary the cost and the per-role totals."""
    md, xlsx = tmp_path / "r.md", tmp_path / "r.xlsx"
    _ok("report", SCENARIO, "-o", md)
    _ok("report", SCENARIO, "-o", xlsx)
    text = md.read_text()
    for e in plan_json["fleet"]:
        assert f"| {e['site']} | {e['role']} | {e['hardware']} | {e['instances']} | {e['gpus_per_instance']} | {e['usd_per_gpu_hour']:.2f} |" in text
    wb = openpyxl.load_workbook(xlsx)  # a workbook keeps 15-16 significant digits: compared to 1e-14
    same = lambda a, b: [pytest.approx(x, rel=1e-14) if isinstance(x, float) else x for x in a] == list(b)  # noqa: E731
    assert wb.sheetnames == ["Summary", "Fleet", "Inputs", "What-ifs"]
    rows = [r for r in wb["Fleet"].iter_rows(values_only=True)]
    mix = [r[:7] for r in rows if r[1] in ("prfaas", "local-prefill", "local-decode")]
    assert len(mix) == len(plan_json["fleet"])
    for row, e in zip(mix, plan_json["fleet"]):
        assert same([e[k] for k in ("site", "role", "hardware", "instances", "gpus_per_instance", "usd_per_gpu_hour", "usd_per_hour")], row)
    links = [r[:6] for r in rows if (r[0], r[1]) in {(lk["from"], lk["to"]) for lk in plan_json["links"]}]
    assert len(links) == len(plan_json["links"])
    for row, lk in zip(links, plan_json["links"]):
        assert same([lk[k] for k in ("from", "to", "gbit_per_s", "usd_per_hour", "utilisation_frac", "rtt_ms")], row)
    sites = {r[0]: r for r in rows if r[0] in {s["site"] for s in plan_json["sites"]} and r[1] != "local-decode"}
    for s in plan_json["sites"]:
        assert same([s["latency"]["at_rate"]["ttft_p90_s"], s["latency"]["at_rate"]["ttft_p99_s"], s["goodput_req_per_s"]],
                    [sites[s["site"]][7], sites[s["site"]][8], sites[s["site"]][10]])
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["cost"] == plan_json["cost_usd_per_hour"]
    decode = [e for e in plan_json["fleet"] if e["role"] == "local-decode"]
    assert summary["local-decode GPUs"] == sum(e["instances"] * e["gpus_per_instance"] for e in decode)


def test_optimize_writes_the_fleet_workbook(tmp_path, plan_json):
    """`optimize -o FILE.xlsx` on a fleet scenario writes the fleet review's workbook, as `report`
    does (it wrote plain sheets of rows before): the same sheets with the same cells, its Summary
    the plan's cost and the command that made it."""
    made, report = tmp_path / "optimize.xlsx", tmp_path / "report.xlsx"
    _ok("optimize", SCENARIO, "-o", made)
    _ok("report", SCENARIO, "-o", report)
    a, b = openpyxl.load_workbook(made), openpyxl.load_workbook(report)
    assert a.sheetnames == b.sheetnames == ["Summary", "Fleet", "Inputs", "What-ifs"]
    for name in ("Fleet", "Inputs", "What-ifs"):
        assert list(a[name].iter_rows(values_only=True)) == list(b[name].iter_rows(values_only=True)), name
    summary = {r[0]: r[1] for r in a["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["cost"] == plan_json["cost_usd_per_hour"] and summary["command"] == "optimize"


def test_one_pair_candidates_report(tmp_path):
    """A one-pair scenario with candidate parts (no sites:) is a fleet too: its report shows the mix."""
    path = one_pair(tmp_path, "pair", True, {"kind": "target", "target_req_per_s": 2})
    out = tmp_path / "r.html"
    _ok("report", path, "-o", out)
    doc = json.loads(_ok("optimize", path, "-f", "json").stdout)
    cells = _Cells()
    cells.feed(out.read_text())
    _check_cells(cells, doc, at_least=4 * len(doc["fleet"]) + 4 * len(doc["links"]) + 6)
    assert doc["fleet"] and doc["links"]


# --- what-ifs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whatifs(plan_json):
    sc = load_scenario(SCENARIO)
    base = plan_fleet(sc)
    return sc, base, {r["variant"]: r for r in fleet_whatif_rows(sc, base=base)}


def test_fleet_whatifs_re_plan(whatifs):
    """The standard list for a fleet: one sag per link the plan uses, every link, prompts, cache,
    prices and load; each re-planned. Prices up never make the fleet cheaper, and never dearer
    than the plan at the new prices (the plan stays feasible); +50% load is 1.5x the rate."""
    sc, base, rows = whatifs
    planned = reading(base)
    used = [f"evening sag: {lk['from']} -> {lk['to']} halves" for lk in base["links"]]
    assert set(used) <= set(rows) and "evening sag: every link halves" in rows and "every link at 10%" in rows
    assert rows["as planned"]["replan"]["cost_usd_per_hour"] == base["cost_usd_per_hour"]
    for label, role in (("PrfaaS GPUs +50% price", "prfaas_usd_per_hour"), ("local GPUs +50% price", None)):
        cost = rows[label]["replan"]["cost_usd_per_hour"]
        extra = 0.5 * (planned[role] if role else planned["local_prefill_usd_per_hour"] + planned["local_decode_usd_per_hour"])
        assert base["cost_usd_per_hour"] - 1e-6 <= cost <= base["cost_usd_per_hour"] + extra + 1e-6, label
    assert rows["load +50%"]["replan"]["throughput_req_per_s"] == pytest.approx(1.5 * base["throughput_req_per_s"])
    assert rows["prompts 2x longer"]["replan"]["prfaas_gpus"] >= planned["prfaas_gpus"]
    for r in rows.values():
        rp = r["replan"]
        if rp["error"] is None:
            parts = sum(rp[k] for k in ("prfaas_usd_per_hour", "local_prefill_usd_per_hour", "local_decode_usd_per_hour", "links_usd_per_hour"))
            assert parts == pytest.approx(rp["cost_usd_per_hour"])
            assert r["replan_cost_delta_usd_per_hour"] == pytest.approx(rp["cost_usd_per_hour"] - base["cost_usd_per_hour"])


def test_fleet_link_sag_halves_only_that_link(whatifs):
    """A per-link sag scales that link's port sizes (links[i]) and no other's."""
    sc, base, _ = whatifs
    w = next(w for w in fleet_whatifs(sc, base) if w.label.startswith("evening sag: quebec -> new-york"))
    i = next(i for i, lk in enumerate(sc.fleet.links) if (lk.src, lk.dst) == ("quebec", "new-york"))
    sv = load_scenario(sc.path, w.overrides)
    for j, (old, new) in enumerate(zip(sc.fleet.links, sv.fleet.links)):
        factor = 0.5 if j == i else 1.0
        assert new.link.sizes_gbit_per_s == tuple(s * factor for s in old.link.sizes_gbit_per_s)
        assert new.link.usd_per_gbit_per_s_hour == old.link.usd_per_gbit_per_s_hour


def test_whatif_command_on_a_fleet(whatifs):
    out = _ok("whatif", SCENARIO, "--set", "sites.local[chicago].workload.arrival_req_per_s=20", "-f", "json").stdout
    rows = json.loads(out)["whatifs"]
    assert [r["variant"] for r in rows] == ["as planned", "sites.local[chicago].workload.arrival_req_per_s=20"]
    assert rows[1]["replan"]["throughput_req_per_s"] == pytest.approx(30 + 20)
    table = _ok("whatif", SCENARIO, "--set", "links[*].usd_per_gbit_per_s_hour=0.1").stdout
    assert "re-planned" in table and "PrfaaS" in table and "stressed" in table


@pytest.mark.parametrize("args, words", [(["--set", "links[0].loss_frac=0.001"], "loss_frac"), (["--set", "links[*].connections=4"], "connections"),
                                         (["--set", "links[0].bandwidth_profile=evening-sag.csv"], "bandwidth profile is modelled for one-pair"),
                                         (["--mode", "paper"], "distribution mode only")])
def test_whatif_refuses_what_a_fleet_cannot_take(args, words):
    res = _run("whatif", SCENARIO, *args)
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


# --- sweeps ---------------------------------------------------------------------------------------


def test_fleet_sweep_points_are_optimize_at_that_point():
    """Each row is the fleet plan `optimize --set` gives at its value, with per-role totals that
    add up to its cost."""
    sc = load_scenario(SCENARIO)
    key = "sites.local[chicago].workload.arrival_req_per_s"
    rows = fleet_sweep(sc, [(key, [6.0, 24.0])])
    for r in rows:
        doc = json.loads(_ok("optimize", SCENARIO, "--set", f"{key}={r[key]}", "-f", "json").stdout)
        assert r["cost_usd_per_hour"] == pytest.approx(doc["cost_usd_per_hour"]) and r["verdict"] == doc["verdict"]["text"]
        assert r["throughput_req_per_s"] == pytest.approx(30 + r[key])
        parts = sum(r[k] for k in ("prfaas_usd_per_hour", "local_prefill_usd_per_hour", "local_decode_usd_per_hour", "links_usd_per_hour"))
        assert parts == pytest.approx(r["cost_usd_per_hour"])
    assert rows[1]["cost_usd_per_hour"] > rows[0]["cost_usd_per_hour"]


def test_sweep_command_on_a_fleet(tmp_path):
    res = _ok("sweep", SCENARIO, "--vary", "links[*].usd_per_gbit_per_s_hour=0.1,1.0", "-f", "csv")
    header = res.stdout.splitlines()[0]
    for col in ("cost_usd_per_hour", "prfaas_gpus", "local_decode_usd_per_hour", "links_usd_per_hour", "verdict"):
        assert col in header
    assert "Fleet sweep" in _ok("sweep", SCENARIO, "--vary", "links[*].usd_per_gbit_per_s_hour=0.1,1.0").stdout
    out = tmp_path / "s.xlsx"
    _ok("sweep", SCENARIO, "--vary", "links[*].usd_per_gbit_per_s_hour=0.1,1.0", "-o", out)
    assert "Sweep" in openpyxl.load_workbook(out).sheetnames
    res = _run("sweep", SCENARIO, "--vary", "links[*].loss_frac=0,0.01")
    assert res.exit_code == 2 and "loss_frac" in res.output


def test_sweep_over_a_two_site_fleet(tmp_path):
    """The small two-by-two fleet: varying a PrfaaS site's price moves its cost."""
    sc = load_scenario(two_by_two(tmp_path))
    rows = fleet_sweep(sc, [("sites.prfaas[east].usd_per_gpu_hour", [2.0, 9.0])])
    assert all(r["error"] is None for r in rows)
    assert rows[0]["cost_usd_per_hour"] <= rows[1]["cost_usd_per_hour"]


# --- list keys in --set and --vary ------------------------------------------------------------------


def test_overrides_index_lists_by_position_name_and_star():
    data = {"links": [{"from": "a", "rtt_ms": 10}, {"from": "b", "rtt_ms": 20}],
            "sites": {"local": [{"name": "ny", "workload": {"arrival_req_per_s": 30}}, {"name": "chi", "workload": {"arrival_req_per_s": 12}}]}}
    out = apply_overrides(data, [Override("links[1].rtt_ms", 5), Override("sites.local[chi].workload.arrival_req_per_s", 2.0, scale=True)], "f")
    assert [lk["rtt_ms"] for lk in out["links"]] == [10, 5]
    assert [s["workload"]["arrival_req_per_s"] for s in out["sites"]["local"]] == [30, 24]
    out = apply_overrides(data, parse_sets(["links[*].rtt_ms*=0.5"]), "f")
    assert [lk["rtt_ms"] for lk in out["links"]] == [5, 10]
    assert data["links"][0]["rtt_ms"] == 10 and data["sites"]["local"][1]["workload"]["arrival_req_per_s"] == 12  # untouched
    for key, words in (("links[2].rtt_ms", "out of range"), ("sites.local[boston].x", "no entry named 'boston'"), ("links.rtt_ms", "not a mapping"),
                       ("sites[0].x", "is not a list")):
        with pytest.raises(PlanError, match=words):
            apply_overrides(data, [Override(key, 1)], "f")


def test_fleet_cache_whatif_drops_a_stated_cache(tmp_path):
    """Where a site states a prefix-cache hit rate, the cache what-if removes it (hits drop to
    none, at that site only); elsewhere it is the one-pair list's 50% hit."""
    import yaml

    path = two_by_two(tmp_path)
    doc = yaml.safe_load(open(path))
    doc["sites"]["local"][1]["workload"]["prefix_cache_hit_frac"] = 0.3
    open(path, "w").write(yaml.safe_dump(doc))
    sc = load_scenario(path)
    w = {x.label: x for x in fleet_whatifs(sc, {"links": []})}
    assert "prefix-cache hit 50%" not in w
    assert [(o.key, o.value) for o in w["no prefix cache"].overrides] == [("sites.local[1].workload.prefix_cache_hit_frac", 0.0)]
    assert load_scenario(path, w["no prefix cache"].overrides).fleet.local_sites[1].workload.prefix_cache_hit_frac == 0.0
    plain = {x.label for x in fleet_whatifs(load_scenario(two_by_two(tmp_path, "plain")), {"links": []})}
    assert "prefix-cache hit 50%" in plain and not any(label.startswith("evening sag: east") for label in plain)


def test_fleet_sweep_plot_is_refused():
    res = _run("sweep", SCENARIO, "--vary", "links[*].rtt_ms=10,20", "--plot", "x.png")
    assert res.exit_code == 2 and "-o FILE.xlsx" in res.output and len(res.output.strip().splitlines()) == 1
