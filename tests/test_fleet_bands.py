"""A fleet plan under the engine model's error band (fleet/bands.py): each local site's TTFT P90
at its rate with the engine model's times at the ends of its 80% band, the fleet as planned."""

from __future__ import annotations

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from fleetcases import LOGNORMAL, write
from prfaas_plan.cli import app
from prfaas_plan.fleet.bands import site_band
from prfaas_plan.fleet.latency import MixedPool, site_deployment
from prfaas_plan.fleet.needs import site_needs
from prfaas_plan.fleet.plan import plan_fleet
from prfaas_plan.fleet.stress import stress_fleet
from prfaas_plan.latency.bands import TimeScaled, time_band
from prfaas_plan.latency.ttft import ttft
from prfaas_plan.planning.scenario import load_scenario


def _case(tmp_path, profile: bool) -> str:
    """One H200 PrfaaS site and one H20 local site (the parts the 1T model has measured profiles
    for) at 3 req/s with a P90 TTFT SLO (so the plan has slack and both ends are stable);
    ``profile`` False: every time is the engine model's."""
    east = {"name": "east", "hardware": "h200", "gpus_per_instance": 8, "use_profile": profile}
    local = {"name": "a", "hardware": "h20", "gpus_per_instance": 8, "use_profile": profile,
             "workload": {"input_tokens": LOGNORMAL, "output_tokens": 1024, "arrival_req_per_s": 3.0},
             "slo": {"decode_tokens_per_s": 40, "ttft_p90_s": 8}}
    return write(tmp_path, f"band-profile-{profile}", {
        "sites": {"prfaas": [east], "local": [local]},
        "links": [{"from": "east", "to": "a", "rtt_ms": 10, "usd_per_gbit_per_s_hour": 0.3, "purchasable_gbit_per_s": [10, 25, 50, 100]}],
        "objective": {"kind": "slo"}})


def test_a_profile_only_fleet_does_not_move(tmp_path):
    """Every time from a measured profile: the band scales nothing, both ends are the plan's P90."""
    r = plan_fleet(load_scenario(_case(tmp_path, True)))
    for s in r["model_error_band"]["sites"]:
        assert s["scaled"] == [] and s["from_profile"]
        assert s["ttft_p90_s_low"] == pytest.approx(s["ttft_p90_s"], rel=1e-12)
        assert s["ttft_p90_s_high"] == pytest.approx(s["ttft_p90_s"], rel=1e-12)


@pytest.fixture(scope="module")
def model_fleet(tmp_path_factory):
    sc = load_scenario(_case(tmp_path_factory.mktemp("band"), False))
    return sc, plan_fleet(sc)


def test_slow_end_is_slower_than_the_plan_and_the_fast_end_faster(model_fleet):
    """Engine-model times: the slow end's P90 >= the plan's >= the fast end's, strictly (the band has width)."""
    _, r = model_fleet
    for s in r["model_error_band"]["sites"]:
        assert s["scaled"] and s["ttft_p90_s_high_error"] is None
        assert s["ttft_p90_s_high"] > s["ttft_p90_s"] > s["ttft_p90_s_low"]
        assert s["ttft_p90_s"] == pytest.approx(r["sites"][0]["latency"]["at_rate"]["ttft_p90_s"], rel=1e-12)


def test_one_site_by_hand_with_the_one_pair_rule(model_fleet):
    """The one-pair band's rule written out for the site's single-part pools: occupancy x the
    prefill band's slow time end, a request's own prefill x the TTFT band's, the decode step x
    the decode band's; the P90 of that deployment at the site's rate is the slow end's."""
    sc, r = model_fleet
    needs = {s.name: site_needs(sc.fleet, sc.model, s) for s in sc.fleet.local_sites}
    prfaas_parts = {p.name: p.parts for p in sc.fleet.prfaas_sites}
    site = r["sites"][0]
    dep = site_deployment(sc.model, needs["a"], r, site, prfaas_parts, needs)

    def slow(pool):
        if pool is None:
            return None
        assert len(pool.service) == 1
        return MixedPool(pool.name, pool.counts, (TimeScaled(pool.service[0], time_band("prefill")[1]),),
                         (TimeScaled(pool.alone[0], time_band("ttft")[1]),))

    hand = replace(dep, prfaas=slow(dep.prfaas), local=slow(dep.local), decode_step_s=dep.decode_step_s * time_band("decode")[1])
    want = ttft(hand, site["rate_req_per_s"]).ttft_p90_s
    assert site_band(sc.model, needs["a"], r, site, prfaas_parts, needs)["ttft_p90_s_high"] == pytest.approx(want, rel=1e-12)
    assert r["model_error_band"]["sites"][0]["ttft_p90_s_high"] == pytest.approx(want, rel=1e-12)


def test_a_profile_only_fleet_carries_the_same_multiple_at_both_ends(tmp_path):
    r = plan_fleet(load_scenario(_case(tmp_path, True)))
    b = r["model_error_band"]
    assert b["alpha_low"] == b["alpha"] == b["alpha_high"]


def test_fleet_capacity_falls_at_the_slow_end_and_rises_at_the_fast(model_fleet):
    """Longer times are a smaller capacity: alpha at the slow end < the plan's times' alpha <= the
    fast end's (the fast end may stop at the same row where decode's BS_max or the link binds)."""
    _, r = model_fleet
    b = r["model_error_band"]
    assert b["alpha_low"] < b["alpha"] <= b["alpha_high"]
    assert b["carries_demand"] == (b["alpha"] >= 1.0)


def test_the_plans_own_alpha_is_the_stress_readings_of_the_unchanged_scenario(model_fleet):
    """The band's alpha with the plan's times is the fleet stress reading's alpha (one machinery)."""
    sc, r = model_fleet
    assert r["model_error_band"]["alpha"] == pytest.approx(stress_fleet(sc, sc, r)["alpha"], rel=1e-12)


def test_the_terminal_view_prints_the_band_and_says_an_unstable_end_in_words():
    """The case study's slow end saturates its PrfaaS pool: the line says so in words, and gives
    the multiple of the demand the fleet carries at each end."""
    res = CliRunner().invoke(app, ["optimize", "multi-site-case-study"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("under the engine model's 80% band"))
    assert "new-york" in line and "chicago" in line and "unstable (prfaas prefill pool at" in line
    assert "every site's demand, slow to fast end" in line and "binds" in line
