"""`risk`: the uncertainty schema, the sample design, the per-sample evaluation against a
brute-force re-evaluation through the ordinary planning path, and the summary."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import yaml

from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.optimizer import maximise
from prfaas_plan.latency.plans import optimize
from prfaas_plan.planning.overrides import Override, parse_sets, with_price_sources
from prfaas_plan.planning.planner import problem_for, throughput_model
from prfaas_plan.planning.scenario import load_scenario, with_input_scale
from prfaas_plan.planning.sweep import plan_only
from prfaas_plan.planning.throughput import ThroughputModel
from prfaas_plan.planning.uncertainty import QUANTITIES, parse_uncertain
from prfaas_plan.planning.whatif import stressed
from prfaas_plan.risk.analysis import risk
from prfaas_plan.risk.evaluate import COL, TimeScaled
from prfaas_plan.risk.sampling import factors, ppf, uniforms

EVERYTHING = ("arrival_rate_factor=lognormal(mu=0.05,sigma=0.1)", "input_tokens_factor=triangular(min=0.8,mode=1,max=1.3)",
              "prefill_time_factor=lognormal(mu=0,sigma=0.15)", "decode_time_factor=uniform(min=0.85,max=1.2)",
              "link_bandwidth_factor=uniform(min=0.3,max=1)", "prfaas_price_factor=normal(mean=1,sd=0.1)",
              "local_price_factor=uniform(min=0.9,max=1.1)", "link_price_factor=triangular(min=0.5,mode=1,max=2)")


def _uncertain(texts=EVERYTHING):
    return dict(parse_uncertain(t) for t in texts)


def _scenario(tmp_path, uncertainty, name="budget-case-study"):
    data = yaml.safe_load((catalog_dir("scenarios") / f"{name}.yaml").read_text())
    data.pop("name")
    data["uncertainty"] = uncertainty
    path = tmp_path / "u.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- schema ---------------------------------------------------------------------------------------


def test_scenario_uncertainty_section_is_read(tmp_path):
    """Numbers are fixed factors; mappings are distributions; the parameters keep their order."""
    sc = load_scenario(_scenario(tmp_path, {"arrival_rate_factor": {"kind": "lognormal", "mu": 0.1, "sigma": 0.2}, "link_price_factor": 1.5}))
    assert sc.uncertainty["arrival_rate_factor"].label == "lognormal(mu=0.1, sigma=0.2)"
    assert sc.uncertainty["link_price_factor"].label == "1.5"


@pytest.mark.parametrize("section, message", [
    ({"traffic_factor": 1.1}, "key 'uncertainty.traffic_factor': unknown uncertain quantity"),
    ({"arrival_rate_factor": {"kind": "gamma", "k": 1}}, "key 'uncertainty.arrival_rate_factor.kind': must be one of normal"),
    ({"arrival_rate_factor": {"kind": "uniform", "min": 1}}, "key 'uncertainty.arrival_rate_factor.max': missing"),
    ({"arrival_rate_factor": {"kind": "uniform", "min": 2, "max": 1}}, "needs 0 < min < max"),
    ({"arrival_rate_factor": {"kind": "normal", "mean": 1, "sd": 0.3}}, "use lognormal"),
    ({"arrival_rate_factor": {"kind": "lognormal", "mu": 0, "sigma": 0.1, "median": 1}}, "key 'uncertainty.arrival_rate_factor.median': unknown key"),
    ({"arrival_rate_factor": -1}, "must be > 0"),
])
def test_scenario_uncertainty_errors_name_file_and_key(tmp_path, section, message):
    """A bad uncertainty section is one line naming the file and the key, not a late crash."""
    with pytest.raises(PlanError, match="u.yaml") as exc:
        load_scenario(_scenario(tmp_path, section))
    assert message in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("arrival_rate_factor", "expected NAME=DISTRIBUTION"),
    ("growth=1.1", "unknown quantity 'growth'"),
    ("arrival_rate_factor=lognormal(mu=0.1)", "lognormal needs sigma"),
    ("arrival_rate_factor=lognormal(mu=0.1,sd=2)", "lognormal takes mu=..., sigma=..."),
    ("arrival_rate_factor=poisson(3)", "KIND one of normal"),
    ("arrival_rate_factor=uniform(min=a,max=2)", "min must be a finite number"),
])
def test_uncertain_option_errors(text, message):
    with pytest.raises(PlanError, match=r"^--uncertain ") as exc:
        parse_uncertain(text)
    assert message in str(exc.value)


# --- the design --------------------------------------------------------------------------------


def test_ppf_by_hand():
    """uniform(1, 3) at 0.25 is 1.5; a lognormal's median is e^mu; a symmetric triangle's median is its mode."""
    u = np.array([0.25, 0.5])
    assert ppf(parse_uncertain("link_price_factor=uniform(min=1,max=3)")[1], u)[0] == pytest.approx(1.5)
    assert ppf(parse_uncertain("link_price_factor=lognormal(mu=0.2,sigma=0.5)")[1], u)[1] == pytest.approx(math.exp(0.2))
    assert ppf(parse_uncertain("link_price_factor=triangular(min=1,mode=2,max=3)")[1], u)[1] == pytest.approx(2.0)


def test_random_design_sample_i_does_not_depend_on_n():
    """Sample i comes from default_rng([i, seed]): the first 10 of 50 are the 10 of a run of 10."""
    assert np.array_equal(uniforms(50, 7, "random")[:10], uniforms(10, 7, "random"))
    assert not np.array_equal(uniforms(10, 7, "random"), uniforms(10, 8, "random"))


def test_latin_hypercube_fills_every_stratum_once():
    u = uniforms(40, 3, "lhs")
    for j in range(u.shape[1]):
        assert sorted(np.floor(u[:, j] * 40).astype(int)) == list(range(40))
    assert np.array_equal(u, uniforms(40, 3, "lhs"))


def test_unstated_quantities_are_one():
    rows = factors({"arrival_rate_factor": parse_uncertain("arrival_rate_factor=uniform(min=1,max=2)")[1]}, 5, 0)
    assert np.all(rows[:, 1:] == 1.0) and np.all((rows[:, 0] > 1) & (rows[:, 0] < 2))


# --- evaluation against the ordinary planning path ---------------------------------------------


def brute_force_lambda(sc, plan, row) -> float:
    """One sample re-evaluated the slow, obvious way: the scenario re-read with the length and
    price overrides, the fleet stressed as `whatif` does, prefill and decode models wrapped to
    run slower, and the optimizer's own fixed-fleet search."""
    scale = (sc.raw.get("workload") or {}).get("input_tokens_scale", 1.0)
    sv = load_scenario(sc.path, sc.overrides + with_price_sources((Override("workload.input_tokens_scale", scale * row[COL["input_tokens_factor"]]),)))
    st = stressed(sv, plan, plan["link_gbit_per_s"] * row[COL["link_bandwidth_factor"]])
    tm = throughput_model(st)
    pf, df = row[COL["prefill_time_factor"]], row[COL["decode_time_factor"]]
    slow = ThroughputModel(tm.model, tm.lengths, TimeScaled(tm.remote, pf), TimeScaled(tm.local, pf),
                           replace(tm.decode, step_s=tm.decode.step_s * df), tm.output_tokens, tm.mode)
    return maximise(problem_for(st, slow, "fixed-fleet", None)).throughput_req_per_s


def test_probability_of_meeting_the_rate_matches_brute_force():
    """Done-when of issue 18: the same samples re-evaluated through the optimizer give the same
    Lambda_max (to the optimizer's tolerance) and so the same probability of meeting the rate."""
    sc = load_scenario("budget-case-study")
    plan = plan_only(sc)
    r = risk(sc, samples=24, seed=5, uncertain=_uncertain())
    fast = np.array([s["throughput_req_per_s"] for s in r["sample_rows"]])
    rows = [np.array([s[q] for q in QUANTITIES]) for s in r["sample_rows"]]
    slow = np.array([brute_force_lambda(sc, plan, row) for row in rows])
    np.testing.assert_allclose(fast, slow, rtol=1e-7)
    demand = np.array([s["demand_req_per_s"] for s in r["sample_rows"]])
    p_slow = float(np.mean(slow >= demand * (1 - 1e-9)))
    assert r["demands"][0]["demand"] == "meets_rate" and r["demands"][0]["probability"] == p_slow
    assert 0 < p_slow < 1  # the check means something: samples on both sides of the demand


def test_input_scale_variant_equals_the_file_path():
    """with_input_scale builds the workload the scenario file would (no re-read per sample)."""
    sc = load_scenario("budget-case-study")
    a = with_input_scale(sc, 1.3)
    b = load_scenario("budget-case-study", (Override("workload.input_tokens_scale", 1.3),))
    assert a.workload == b.workload
    scaled = load_scenario("budget-case-study", (Override("workload.input_tokens_scale", 2.0),))  # from a scale already set
    assert with_input_scale(scaled, 1.3).workload == b.workload and with_input_scale(scaled, 1.0).workload == sc.workload


def test_point_sample_is_the_plan():
    """With every factor 1 the fleet gives the plan's own Lambda_max and cost."""
    sc = load_scenario("budget-case-study")
    plan = plan_only(sc)
    r = risk(sc, samples=4, uncertain=_uncertain(()))
    assert r["point"]["throughput_req_per_s"] == pytest.approx(plan["throughput_req_per_s"], rel=1e-9)
    assert r["point"]["cost_usd_per_hour"] == pytest.approx(plan["cost_usd_per_hour"], rel=1e-12)
    assert r["point"]["n_pd_prefill"] == plan["n_pd_prefill"]


def test_fixed_factors_move_by_hand():
    """Prices x2 double the bill; arrival x2 doubles the demand; a link at 1% and twice-as-slow
    prefill lower Lambda_max; no uncertainty at all: every sample is the point."""
    sc = load_scenario("budget-case-study")
    ones = tuple(f"{q}=1" for q in QUANTITIES)  # the scenario's own uncertainty section overridden too
    base = risk(sc, samples=3, uncertain=_uncertain(ones))
    assert all(s["throughput_req_per_s"] == base["point"]["throughput_req_per_s"] for s in base["sample_rows"])
    r = risk(sc, samples=3, uncertain=_uncertain(ones + ("prefill_time_factor=2", "prfaas_price_factor=2", "local_price_factor=2",
                                                  "link_price_factor=2", "arrival_rate_factor=2", "link_bandwidth_factor=0.01")))
    s = r["sample_rows"][0]
    assert s["cost_usd_per_hour"] == pytest.approx(2 * base["point"]["cost_usd_per_hour"])
    assert s["demand_req_per_s"] == pytest.approx(60.0)
    assert s["throughput_req_per_s"] < 0.6 * base["point"]["throughput_req_per_s"]
    assert r["demands"][0]["probability"] == 0.0 and s["meets_budget"] is False


def test_reproducible_and_summarised():
    """The same seed gives the same result; quantiles are order statistics of the samples."""
    sc = load_scenario("budget-case-study")
    a = risk(sc, samples=12, seed=1, uncertain=_uncertain())
    assert a == risk(sc, samples=12, seed=1, uncertain=_uncertain())
    lam = sorted(s["throughput_req_per_s"] for s in a["sample_rows"])
    m = {x["metric"]: x for x in a["metrics"]}["throughput_req_per_s"]
    assert m["p50"] == lam[5] and m["p10"] == lam[1] and m["p90"] == lam[10]  # inverted_cdf: ceil(q n) - 1
    assert [d["demand"] for d in a["demands"]] == ["meets_rate", "meets_budget", "all"]


def test_ttft_slo_adds_goodput_and_its_demand(tmp_path):
    """With slo.ttft_p90_s the samples carry goodput and the SLO is a demand."""
    data = yaml.safe_load((catalog_dir("scenarios") / "budget-case-study.yaml").read_text())
    data.pop("name")
    data["slo"]["ttft_p90_s"] = 5
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data))
    r = risk(load_scenario(path), samples=4, uncertain=_uncertain(("arrival_rate_factor=uniform(min=0.9,max=1.1)",)))
    assert "meets_ttft_slo" in [d["demand"] for d in r["demands"]]
    assert all(s["goodput_req_per_s"] is not None and s["goodput_req_per_s"] <= s["throughput_req_per_s"] for s in r["sample_rows"])
    for s in r["sample_rows"]:
        assert s["meets_ttft_slo"] == (s["ttft_p90_s"] <= 5)


def test_model_error_default_reproduces_the_engine_models_band():
    """The default time factors are lognormals whose P10/P90 are the published 80% bands, turned
    from rates (measured / predicted) into times (actual / predicted)."""
    from prfaas_plan.risk.model_error import model_error
    from prfaas_plan.roofline.bands import band

    for kind in ("prefill", "decode"):
        b = band(kind)
        p10, p90 = ppf(model_error(kind), np.array([0.1, 0.9]))
        assert p10 == pytest.approx(1 / b.high_factor, rel=1e-9) and p90 == pytest.approx(1 / b.low_factor, rel=1e-9)


# --- the engine model's band: the same times as optimize's band ---------------------------------

NOT_TIMES = tuple(f"{q}=1" for q in QUANTITIES if q not in ("prefill_time_factor", "decode_time_factor"))


def test_default_band_leaves_measured_profiles_alone():
    """budget-case-study prices every time from a measured profile (Table 5 prefill, the decode
    profile): `optimize`'s band moves none of them, so `risk`'s default (the same band) moves none
    either; every other factor fixed at 1, every sample is the point. On old main the prefill and
    decode bands scaled the profiles: Lambda_max spread over samples."""
    sc = load_scenario("budget-case-study")
    assert optimize(sc, compare_modes=False)["model_error_band"]["scaled"] == []
    r = risk(sc, samples=16, seed=3, uncertain=_uncertain(NOT_TIMES))
    assert len({s["prefill_time_factor"] for s in r["sample_rows"]}) == 16  # drawn, and applied to no time
    assert all(s["throughput_req_per_s"] == r["point"]["throughput_req_per_s"] for s in r["sample_rows"])
    said = {u["quantity"]: u["multiplies"] for u in r["uncertainty"]}
    assert "none here" in said["prefill_time_factor"] and "none here" in said["decode_time_factor"]
    stated = risk(sc, samples=16, seed=3, uncertain=_uncertain(NOT_TIMES + ("prefill_time_factor=lognormal(mu=0,sigma=0.2)",)))
    assert len({s["throughput_req_per_s"] for s in stated["sample_rows"]}) > 1  # a stated factor scales the profiles


def test_default_band_scales_the_times_optimize_scales_brute_force():
    """PrfaaS from its measured profile, local prefill and decode from the engine model
    (local.use_profile false): the default prefill factor scales the local times only, the decode
    factor the decode step, as `optimize`'s band lists them; the same samples re-evaluated by
    hand through the optimizer give the same Lambda_max."""
    sc = load_scenario("budget-case-study", parse_sets(["local.use_profile=false"]))
    band = optimize(sc, compare_modes=False)["model_error_band"]
    assert set(band["scaled"]) == {"local_service", "local_alone", "decode_step"} and set(band["from_profile"]) == {"prfaas_service", "prfaas_alone"}
    plan = plan_only(sc)
    r = risk(sc, samples=12, seed=1, uncertain=_uncertain(NOT_TIMES))
    assert len({s["throughput_req_per_s"] for s in r["sample_rows"]}) > 1
    for s in r["sample_rows"]:
        tm = throughput_model(stressed(sc, plan, plan["link_gbit_per_s"]))
        pf, df = s["prefill_time_factor"], s["decode_time_factor"]
        slow = ThroughputModel(tm.model, tm.lengths, tm.remote, TimeScaled(tm.local, pf),
                               replace(tm.decode, step_s=tm.decode.step_s * df), tm.output_tokens, tm.mode)
        by_hand = maximise(problem_for(stressed(sc, plan, plan["link_gbit_per_s"]), slow, "fixed-fleet", None)).throughput_req_per_s
        assert s["throughput_req_per_s"] == pytest.approx(by_hand, rel=1e-7)


@pytest.mark.parametrize("scenario", ["paper-case-study-roofline", "budget-case-study"])
def test_band_ends_are_optimizes_corners(scenario):
    """A sample whose default time factors sit at their bands' P90 (P10) scales every time exactly
    as `optimize`'s slow (fast) corner does: each time by its own kind's band end (a request's own
    prefill by the single-request TTFT band, mapped at the same quantile), a measured profile's
    by 1. One rule for both (latency/bands.py model_time_kinds)."""
    from prfaas_plan.latency.bands import end_factors, time_band
    from prfaas_plan.risk.analysis import question
    from prfaas_plan.risk.evaluate import Context, Fleet

    sc = load_scenario(scenario)
    plan = plan_only(sc)
    ctx = Context(sc, Fleet.of(plan), sc.mode)
    q = question(sc)
    assert q.band_factors == {"prefill_time_factor", "decode_time_factor"}
    for end, pick in (("slow", 1), ("fast", 0)):
        row = np.ones(len(QUANTITIES))
        row[COL["prefill_time_factor"]], row[COL["decode_time_factor"]] = time_band("prefill")[pick], time_band("decode")[pick]
        got = ctx.time_factors(row, q.band_factors)
        want = end_factors(sc, ctx.tm, ctx.base, end)
        assert got == pytest.approx(want, rel=1e-12)
    if scenario == "paper-case-study-roofline":
        assert got["local_alone"] != got["local_service"]  # the TTFT band, not the prefill one
