"""A plan under the engine model's error band (latency/bands.py): Lambda_max and the TTFT P90 at
the arrival rate with the engine model's times at the ends of its 80% band, the plan held."""

import csv
import io
import json
import math

import pytest
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.latency import bands as plan_bands
from prfaas_plan.latency.bands import ENDS, TimeScaled, band_columns, capacity_at, end_factors, plan_band, scaled_deployment, time_band
from prfaas_plan.latency.deployment import deployment
from prfaas_plan.latency.plans import optimize
from prfaas_plan.latency.ttft import ttft
from prfaas_plan.planning.overrides import parse_sets
from prfaas_plan.planning.planner import throughput_model
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.risk.model_error import model_error
from prfaas_plan.roofline.band_data import BANDS

ROOFLINE = "paper-case-study-roofline"  # every time from the engine model, no arrival rate
SLO = "qwen35-h20-slo"  # roofline times, an arrival rate and an SLO


@pytest.fixture(scope="module")
def roofline_plan():
    sc = load_scenario(ROOFLINE)
    return sc, optimize(sc, compare_modes=False)


def test_time_band_is_the_rate_band_inverted_and_the_ttft_band_as_is():
    """Prefill and decode bands are of tokens/s (a time factor is its reciprocal, ends swapped);
    the TTFT band is of a time already (roofline/bands.py)."""
    for kind in ("prefill", "decode"):
        assert time_band(kind) == pytest.approx((1 / BANDS[kind]["high_factor"], 1 / BANDS[kind]["low_factor"]))
    assert time_band("ttft") == pytest.approx((BANDS["ttft"]["low_factor"], BANDS["ttft"]["high_factor"]))


def test_risk_draws_from_the_same_time_band():
    """`risk`'s lognormal time factor has the plan band's ends as its P10 / P90 (one mapping, two users)."""
    from statistics import NormalDist

    for kind in ("prefill", "decode"):
        d = dict(model_error(kind).params)
        z = NormalDist().inv_cdf(0.9)
        assert (math.exp(d["mu"] - z * d["sigma"]), math.exp(d["mu"] + z * d["sigma"])) == pytest.approx(time_band(kind), rel=1e-9)


def test_factor_one_reproduces_the_plan(roofline_plan):
    """With every factor 1 the band's machinery gives the plan's own Lambda_max and TTFT P90."""
    sc, r = roofline_plan
    tm = throughput_model(sc, r["mode"])
    dep = deployment(sc, r, "prfaas", r["mode"], tm)
    ones = dict.fromkeys(end_factors(sc, tm, dep, "slow"), 1.0)
    lam, _ = capacity_at(tm, r, sc.link.max_utilisation * dep.link_bytes_per_s, ones)
    assert lam == pytest.approx(r["throughput_req_per_s"], rel=1e-9)
    assert ttft(scaled_deployment(dep, ones), 0.0).ttft_p90_s == pytest.approx(r["latency"]["zero_load"]["ttft_p90_s"], rel=1e-9)


def test_lambda_at_the_ends_by_hand(roofline_plan):
    """Eq. 3-6 by hand at each end: a prefill time a x longer divides the PrfaaS compute and local
    prefill capacities by a, a decode step b x longer divides decode by b, the link's capacity
    stays; Lambda_max is the least of them (capacities from the planner's own evaluation at t)."""
    sc, r = roofline_plan
    tm = throughput_model(sc, r["mode"])
    needs = tm.needs_at([r["threshold_tokens"]])
    usable = sc.link.max_utilisation * r["link_gbit_per_s"] * 1e9 / 8
    m = tm.evaluate(needs, r["n_prfaas"], r["n_pd_prefill"], r["n_pd_decode"], usable)
    p = float(needs.offload_frac[0])
    compute, link = float(m["theta_prfaas_compute_req_per_s"][0]) / p, float(m["theta_prfaas_link_req_per_s"][0]) / p
    local, dec = float(m["cap_pd_prefill_req_per_s"][0]), float(m["theta_pd_decode_req_per_s"])
    for key, pick in (("throughput_req_per_s_low", "low_factor"), ("throughput_req_per_s_high", "high_factor")):
        a, b = 1 / BANDS["prefill"][pick], 1 / BANDS["decode"][pick]  # distribution mode: occupancy in the throughput regime
        assert r["model_error_band"][key] == pytest.approx(min(compute / a, link, local / a, dec / b), rel=1e-9)


def test_band_ends_bracket_the_point(roofline_plan):
    """The slow end gives the lower Lambda_max and the higher TTFT, the fast end the reverse; with
    the shipped bands (each contains 1) they bracket the plan's own numbers."""
    sc, r = roofline_plan
    b = r["model_error_band"]
    assert b["scaled"] and not b["from_profile"]
    assert b["arrival_req_per_s"] is None  # no arrival rate: the TTFT band is at zero load
    assert b["throughput_req_per_s_low"] < b["throughput_req_per_s_high"]
    assert b["ttft_p90_s_low"] < b["ttft_p90_s_high"]
    if all(lo <= 1 <= hi for lo, hi in map(time_band, BANDS)):
        assert b["throughput_req_per_s_low"] <= r["throughput_req_per_s"] <= b["throughput_req_per_s_high"]
        assert b["ttft_p90_s_low"] <= r["latency"]["zero_load"]["ttft_p90_s"] <= b["ttft_p90_s_high"]


def test_a_band_around_one_brackets_the_point_at_the_arrival_rate(monkeypatch):
    """Whatever the calibration: with every kind's time band set to [0.9, 1.2] the ends bracket
    the plan's Lambda_max and its TTFT P90 at the arrival rate, and the factors are those."""
    monkeypatch.setattr(plan_bands, "time_band", lambda kind: (0.9, 1.2))
    sc = load_scenario(SLO)
    r = optimize(sc, compare_modes=False)
    b = r["model_error_band"]
    assert set(b["ends"]["slow"]["factors"].values()) == {1.2} and set(b["ends"]["fast"]["factors"].values()) == {0.9}
    assert b["throughput_req_per_s_low"] <= r["throughput_req_per_s"] <= b["throughput_req_per_s_high"]
    assert b["ttft_p90_s_low"] < r["latency"]["at_arrival_rate"]["ttft_p90_s"]
    point = r["latency"]["at_arrival_rate"]["ttft_p90_s"]
    assert b["ttft_p90_s_high"] is None and "unstable" in b["ttft_p90_s_high_error"] or b["ttft_p90_s_high"] > point


def test_an_end_unstable_at_the_arrival_rate_says_so():
    """Load the roofline fleet at 99.9% of its Lambda_max: at the slow end that rate is over
    capacity, so the TTFT there is None with the queue named, never infinity."""
    sc = load_scenario(ROOFLINE)
    lam = optimize(sc, compare_modes=False)["throughput_req_per_s"]
    sc = load_scenario(ROOFLINE, parse_sets([f"workload.arrival_req_per_s={0.999 * lam}"]))
    r = optimize(sc, compare_modes=False)
    b = r["model_error_band"]
    assert b["throughput_req_per_s_low"] < 0.999 * lam
    assert b["ttft_p90_s_high"] is None and "unstable" in b["ttft_p90_s_high_error"]
    assert b["ttft_p90_s_low"] is not None and math.isfinite(b["ttft_p90_s_low"])
    cols = band_columns(r)
    assert math.isnan(cols["ttft_p90_s_at_arrival_rate_high"]) and "high (slow end)" in cols["ttft_p90_band_unstable"]
    assert all(math.isnan(v) for k, v in band_columns(r["baselines"]["homogeneous"]).items() if k != "ttft_p90_band_unstable")


def test_measured_profiles_are_not_moved():
    """paper-case-study prices every time from a measured (or derived) profile: the engine model's
    band moves none of them, and both ends are the plan itself."""
    sc = load_scenario("paper-case-study")
    r = optimize(sc, compare_modes=False)
    b = r["model_error_band"]
    assert b["scaled"] == [] and b["from_profile"]
    for end in ENDS:
        assert set(b["ends"][end]["factors"].values()) == {1.0}
    assert b["throughput_req_per_s_low"] == b["throughput_req_per_s_high"] == pytest.approx(r["throughput_req_per_s"], rel=1e-12)


def test_time_scaled_multiplies_every_time():
    class Flat:
        source = "flat"

        def time_s(self, x):
            return 2.0 * x

    assert TimeScaled(Flat(), 1.5).time_s(4.0) == 12.0


def test_cli_json_and_csv_carry_the_band():
    """`optimize -f json` has the block as the Python API returns it; `-f csv` has its columns on the plan's row."""
    runner = CliRunner()
    res = runner.invoke(app, ["optimize", ROOFLINE, "-f", "json"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    api = optimize(load_scenario(ROOFLINE))["model_error_band"]
    assert doc["model_error_band"]["throughput_req_per_s_low"] == pytest.approx(api["throughput_req_per_s_low"], rel=1e-12)
    assert doc["model_error_band"]["ttft_p90_s_high"] == pytest.approx(api["ttft_p90_s_high"], rel=1e-12)
    res = runner.invoke(app, ["optimize", ROOFLINE, "-f", "csv"], env={"COLUMNS": "200"})
    row = next(csv.DictReader(io.StringIO(res.stdout)))
    assert float(row["throughput_req_per_s_low"]) == pytest.approx(api["throughput_req_per_s_low"], rel=1e-9)
    res = runner.invoke(app, ["optimize", ROOFLINE], env={"COLUMNS": "200"})
    assert "under the engine model's 80% band" in res.stdout and f"{api['throughput_req_per_s_low']:.3f}" in res.stdout
