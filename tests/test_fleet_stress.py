"""The fleet what-ifs' stress reading (prfaas_plan/fleet/stress.py): the planned fleet and links
held fixed under changed conditions. It carries an unchanged scenario and reproduces the plan's
TTFTs; a sagging link never lets it carry more; where nothing is prefilled locally its alpha is
a closed form; and `whatif` and `report` show it."""

from __future__ import annotations

import json

import openpyxl
import pytest
from typer.testing import CliRunner

from fleetcases import LOGNORMAL, one_pair, slo_two_sites, write
from prfaas_plan.cli import app
from prfaas_plan.fleet.plan import plan_fleet
from prfaas_plan.fleet.stress import Pinned, stress_fleet, stress_link_gbit_per_s
from prfaas_plan.fleet.whatif import fleet_whatif_rows
from prfaas_plan.planning.overrides import Override
from prfaas_plan.planning.problem import Link
from prfaas_plan.planning.scenario import load_scenario

RUNNER = CliRunner()
SCENARIO = "multi-site-case-study"
HALF_LINKS = (Override("links[*].purchasable_gbit_per_s", 0.5, scale=True, optional=True),)


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    """Two local sites with TTFT SLOs sharing a PrfaaS site: the SLO plan and its stress, unchanged and with every link halved."""
    path = slo_two_sites(tmp_path_factory.mktemp("stress"), ({"ttft_p90_s": 6.0}, {"ttft_p90_s": 8.0}))
    sc = load_scenario(path)
    base = plan_fleet(sc)
    return sc, base, stress_fleet(sc, sc, base), stress_fleet(sc, load_scenario(path, HALF_LINKS), base)


def test_unchanged_scenario_carries_its_demand_and_reproduces_the_plans_ttft(two_sites):
    """The plan carries every site's rate, so the same fleet under the same conditions carries
    alpha >= 1 at the plan's own routing, and its TTFT there is the plan's to the last digit."""
    sc, base, same, _ = two_sites
    assert same["alpha"] >= 1 - 1e-9 and same["carries_demand"] is True and same["ok"] is True
    assert same["routing_as_planned"] is True
    assert same["cost_usd_per_hour"] == pytest.approx(base["cost_usd_per_hour"], rel=1e-12)
    planned = {s["site"]: s for s in base["sites"]}
    for s in same["sites"]:
        p = planned[s["site"]]
        assert (s["prfaas_site"], s["threshold_tokens"], s["demand_req_per_s"]) == (p["prfaas_site"], p["threshold_tokens"], p["rate_req_per_s"])
        for k in ("p90", "p99", "mean"):
            assert s[f"ttft_{k}_s"] == pytest.approx(p["latency"]["at_rate"][f"ttft_{k}_s"], rel=1e-12), k
        assert s["meets_slo"] is True and s["max_req_per_s"] >= s["demand_req_per_s"] * (1 - 1e-9)


def test_halving_every_link_never_carries_more(two_sites):
    """Half the bandwidth on the same fleet: alpha falls (the links bind) or, where it does not,
    the TTFT at the demand rises; each link in the reading is half the planned one."""
    _, base, same, half = two_sites
    assert half["alpha"] <= same["alpha"] * (1 + 1e-6)
    assert sorted(lk["gbit_per_s"] for lk in half["links"]) == pytest.approx(sorted(0.5 * lk["gbit_per_s"] for lk in base["links"]))
    if half["alpha"] >= same["alpha"] * (1 - 1e-6):
        assert any(h["ttft_p90_s"] > s["ttft_p90_s"] for h, s in zip(half["sites"], same["sites"]))
    else:
        assert any(b.startswith("link[") for b in half["binding"])
    for h, s in zip(half["sites"], same["sites"]):
        assert h["max_req_per_s"] <= s["max_req_per_s"] * (1 + 1e-6)


@pytest.fixture(scope="module")
def case_study():
    sc = load_scenario(SCENARIO)
    return sc, plan_fleet(sc)


@pytest.mark.parametrize("overrides", [(), HALF_LINKS, (Override("links[*].purchasable_gbit_per_s", 0.1, scale=True, optional=True),),
                                       (Override("sites.local[*].workload.input_tokens_scale", 2.0),),
                                       (Override("sites.local[*].workload.arrival_req_per_s", 1.5, scale=True),)])
def test_alpha_by_hand_where_everything_is_offloaded(case_study, overrides):
    """The case study's plan prefills nothing locally (threshold 0, no local-prefill pool), so the
    routing cannot move and alpha is a closed form ([PRFAAS] Eq. 3-5 as needs at t = 0): the least of
    each site's decode capacity over its rate (sum_d theta_d n_d / lambda_s), each link's usable
    Gbit/s over its egress per unit of alpha (B u / (lambda_s b_s(0))), and the shared PrfaaS pool's
    instances over the instance-seconds both sites send (n / sum_s lambda_s r_s(0))."""
    sc, base = case_study
    assert not any(e["role"] == "local-prefill" for e in base["fleet"]) and {s["threshold_tokens"] for s in base["sites"]} == {0.0}
    assert len({s["prfaas_site"] for s in base["sites"]}) == 1 and len([e for e in base["fleet"] if e["role"] == "prfaas"]) == 1
    sv = load_scenario(sc.path, overrides)
    st = stress_fleet(sc, sv, base)
    from prfaas_plan.fleet.needs import site_needs

    pool = next(e for e in base["fleet"] if e["role"] == "prfaas")
    ratios, prfaas_s = [], 0.0
    for s in sv.fleet.local_sites:
        sn = site_needs(sv.fleet, sv.model, s)
        lam = s.target_req_per_s
        n_dec = next(e["instances"] for e in base["fleet"] if e["site"] == s.name and e["role"] == "local-decode")
        ratios.append(n_dec * float(sn.decode_req_per_s[0]) / lam)
        link = next(lk for lk in sv.fleet.links if (lk.src, lk.dst) == (pool["site"], s.name)).link
        planned = next(lk["gbit_per_s"] for lk in base["links"] if lk["to"] == s.name)
        gbit = planned * link.sizes_gbit_per_s[-1] / next(lk for lk in sc.fleet.links if (lk.src, lk.dst) == (pool["site"], s.name)).link.sizes_gbit_per_s[-1]
        ratios.append(gbit * link.max_utilisation / (lam * float(sn.link_gbit([0.0])[0])))
        part = next(j for j, c in enumerate(next(p for p in sv.fleet.prfaas_sites if p.name == pool["site"]).parts) if c.hardware.name == pool["hardware"])
        prfaas_s += lam * float(sn.remote_s(pool["site"], [0.0])[part, 0])
    ratios.append(pool["instances"] / prfaas_s)
    assert st["alpha"] == pytest.approx(min(ratios), rel=1e-5)
    assert st["carries_demand"] is (min(ratios) >= 1)


def test_one_pair_fleet_stress(tmp_path):
    """A one-pair scenario with candidate parts is a fleet too: its stress reads the top-level link
    (halved by link.purchasable_gbit_per_s*=0.5) and its target from the objective."""
    path = one_pair(tmp_path, "pair", True, {"kind": "target", "target_req_per_s": 2})
    sc = load_scenario(path)
    base = plan_fleet(sc)
    same = stress_fleet(sc, sc, base)
    assert same["carries_demand"] is True and same["demand_req_per_s"] == 2 and same["alpha"] >= 1 - 1e-9
    half = stress_fleet(sc, load_scenario(path, (Override("link.purchasable_gbit_per_s", 0.5, scale=True),)), base)
    assert [lk["gbit_per_s"] for lk in half["links"]] == pytest.approx([0.5 * lk["gbit_per_s"] for lk in base["links"]])
    assert half["alpha"] <= same["alpha"] * (1 + 1e-6)


def test_routing_moves_the_least_when_the_plans_no_longer_carries(tmp_path):
    """An SLO plan whose link is near its 80% cap: 2% more load still fits the fleet (alpha >= 1),
    but not at the plan's threshold (the link is short there), so the TTFT reading moves the
    threshold - up, toward t_L, as little as it can: the pinned fleet carries the load at the moved
    threshold and not a hair (0.1% of the move) closer to the plan's."""
    path = write(tmp_path, "near-cap", {
        "prfaas": {"hardware": ["h200"], "gpus_per_instance": 8}, "local": {"hardware": ["h20"], "gpus_per_instance": 8},
        "link": {"usd_per_gbit_per_s_hour": 0.225, "purchasable_gbit_per_s": [10, 25, 50, 100, 200, 400], "rtt_ms": 10},
        "workload": {"input_tokens": LOGNORMAL, "output_tokens": 1024, "arrival_req_per_s": 4.0},
        "slo": {"decode_tokens_per_s": 40, "ttft_p90_s": 6.0}, "objective": {"kind": "slo"}})
    sc = load_scenario(path)
    base = plan_fleet(sc)
    sv = load_scenario(path, (Override("workload.arrival_req_per_s", 1.02, scale=True),))
    st = stress_fleet(sc, sv, base)
    assert st["carries_demand"] is True and st["routing_as_planned"] is False
    (planned,), (moved,) = base["sites"], st["sites"]
    t0, t1 = planned["threshold_tokens"], moved["threshold_tokens"]
    assert moved["prfaas_site"] == planned["prfaas_site"] and t1 > t0 and moved["ttft_p90_s"] is not None
    p = Pinned(sc, sv, base)
    rates, r = {"local": 4.08}, planned["prfaas_site"]
    assert p.solve(rates, {"local": {r: t1}}, {"local": r}) is not None
    assert p.solve(rates, {"local": {r: t1 - 1e-3 * (t1 - t0)}}, {"local": r}) is None


def test_link_under_a_what_if():
    """The planned link scales as the what-if scales the link's sizes, cap or fixed bandwidth; a
    bandwidth set where sizes were bought replaces it."""
    sized = Link(sizes_gbit_per_s=(100.0, 400.0), sizes_usd_per_hour=(22.5, 90.0))
    assert stress_link_gbit_per_s(sized, Link(sizes_gbit_per_s=(50.0, 200.0), sizes_usd_per_hour=(11.25, 45.0)), 400.0) == 200.0
    assert stress_link_gbit_per_s(sized, Link(fixed_gbit_per_s=30.0), 400.0) == 30.0
    assert stress_link_gbit_per_s(Link(fixed_gbit_per_s=100.0), Link(fixed_gbit_per_s=10.0), 100.0) == pytest.approx(10.0)
    assert stress_link_gbit_per_s(Link(max_gbit_per_s=80.0), Link(max_gbit_per_s=40.0), 60.0) == 30.0
    assert stress_link_gbit_per_s(sized, sized, 400.0) == 400.0


def test_whatif_rows_carry_the_stress(case_study):
    """Every what-if row has a stress reading; as planned it carries the demand at the plan's cost."""
    sc, base = case_study
    rows = {r["variant"]: r for r in fleet_whatif_rows(sc, base=base)}
    planned = rows["as planned"]
    assert planned["stress_carries_demand"] is True and planned["stress_cost_vs_planned"] == pytest.approx(1.0)
    assert rows["load +50%"]["stress"]["demand_req_per_s"] == pytest.approx(1.5 * base["throughput_req_per_s"])
    assert rows["evening sag: every link halves"]["stress_alpha"] <= planned["stress_alpha"] * (1 + 1e-6)
    assert rows["PrfaaS GPUs +50% price"]["stress"]["cost_usd_per_hour"] > base["cost_usd_per_hour"]
    assert all(r["stress"]["error"] is None for r in rows.values())
    for r in rows.values():  # a site short of its demand has no TTFT at it; a fleet that carries every demand has every TTFT
        for s in r["stress"]["sites"]:
            assert s["carries_demand"] is (s["max_req_per_s"] >= s["demand_req_per_s"] * (1 - 1e-9))
            if not s["carries_demand"]:
                assert s["ttft_p90_s"] is None and s["meets_slo"] is False and s["site"] in r["stress"]["verdict"]
            if r["stress_carries_demand"]:
                assert s["ttft_p90_s"] is not None
    # Chicago's port halved: Chicago cannot take its 12 req/s, New York still carries its own and is read at it
    sag = {s["site"]: s for s in rows["evening sag: quebec -> chicago halves"]["stress"]["sites"]}
    assert not sag["chicago"]["carries_demand"] and sag["new-york"]["carries_demand"] and sag["new-york"]["ttft_p90_s"] is not None


def _run(*args):
    res = RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


def test_whatif_command_and_report_show_the_stress(tmp_path):
    """`whatif` prints the stressed table and its JSON carries the reading; the report's HTML,
    Markdown and workbook show the stressed what-ifs with the JSON's alpha."""
    doc = json.loads(_run("whatif", SCENARIO, "--set", "links[*].purchasable_gbit_per_s*=0.5", "-f", "json"))
    sag = doc["whatifs"][1]["stress"]
    assert sag["alpha"] is not None and sag["sites"] and "binding" in sag
    table = _run("whatif", SCENARIO, "--set", "links[*].purchasable_gbit_per_s*=0.5")
    assert "What if, stressed" in table and f"{sag['alpha']:.3f}" in table and sag["binding"]
    html, md, xlsx = tmp_path / "r.html", tmp_path / "r.md", tmp_path / "r.xlsx"
    for out in (html, md, xlsx):
        _run("report", SCENARIO, "-o", out)
    for text in (html.read_text(), md.read_text()):
        assert "the planned fleet stressed" in text and "x demand" in text and "re-planned only" not in text
    wb = openpyxl.load_workbook(xlsx)
    cells = [c for r in wb["What-ifs"].iter_rows(values_only=True) for c in r if c is not None]
    assert "x demand" in cells and any(isinstance(c, str) and "stressed" in c for c in cells)
