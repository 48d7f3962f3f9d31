"""Planning for a latency SLO (issue #16, one pair: prfaas_plan/latency/slo_plan.py): the two
reproducers of the issue, a brute force over small instances, the oversized throughput plan it
must never cost more than, refusals with the best achievable P90, utilisation caps, budgets with
an SLO, and the simulation of the chosen plan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import deployment
from prfaas_plan.latency.plans import add_latency, optimize
from prfaas_plan.latency.slo_plan import SLO_CELLS, _Search, cheapest_meeting_slo, headroom_baseline, slo_target, solve
from prfaas_plan.latency.ttft import slo_excess, ttft
from prfaas_plan.planning import planner
from prfaas_plan.planning.overrides import Override
from prfaas_plan.planning.planner import plan_dict, problem_for, throughput_model
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.simulation import arrivals
from prfaas_plan.simulation.run import simulate


def _scenario(name: str, **sets):
    return load_scenario(name, tuple(Override(k.replace("__", "."), v) for k, v in sets.items()))


def _latency_at(sc, plan: dict, rate: float):
    return ttft(deployment(sc, plan), rate)


# --- the reproducers ------------------------------------------------------------------------


@pytest.mark.parametrize("name, rate, p90", [("slo-case-study", 30.0, 4.0), ("qwen35-h20-slo", 40.0, 5.0)])
def test_reproducer_meets_its_slo_and_the_throughput_plan_is_flagged(name, rate, p90):
    """Issue #16: asked on throughput alone, each reproducer returned a plan at ~98-99.5% load
    whose own P90 at the rate is several times the SLO, with an "OK" verdict. Now the plan meets
    the P90 at the rate, its verdict says so, and the throughput-only plan (planning.optimize,
    what the command printed before) is a WARNING naming the P90 in its first line."""
    sc = load_scenario(name)
    r = optimize(sc, compare_modes=False)
    lat = r["latency"]["at_arrival_rate"]
    assert lat["ttft_p90_s"] <= p90 and r["latency"]["goodput_req_per_s"] >= rate * (1 - 1e-9)
    assert r["verdict"]["ok"], r["verdict"]["text"]
    assert "meets the TTFT SLO at" in r["verdict"]["text"]
    old = add_latency(sc, planner.optimize(sc, target_req_per_s=rate, compare_modes=False))  # throughput alone
    assert old["latency"]["at_arrival_rate"]["ttft_p90_s"] > 2 * p90
    first = old["verdict"]["text"]
    assert first.startswith("WARNING: ") and f"at {rate:g} req/s exceeds the {p90:g} s SLO" in first
    assert old["cost_usd_per_hour"] < r["cost_usd_per_hour"]  # meeting the SLO costs more than carrying the rate


def test_objective_slo_equals_a_target_at_the_arrival_rate():
    """`objective: slo` at the arrival rate and `target` with the SLO at the same rate ask the same."""
    a = optimize(load_scenario("slo-case-study"), compare_modes=False)
    b = optimize(_scenario("slo-case-study", objective={"kind": "slo"}), compare_modes=False)
    assert {k: a[k] for k in planner.PLAN_KEYS} == {k: b[k] for k in planner.PLAN_KEYS}


# --- exactness: brute force over small instances ------------------------------------------------------


def brute_force(sc, rate: float) -> float:
    """The cheapest plan meeting the SLO at ``rate`` over every threshold of the search grid,
    every PrfaaS / local prefill / decode count up to a cost cap, and the first five link sizes
    above the egress (the full analytic model checks each; prefill counts scanned upwards)."""
    tm = throughput_model(sc)
    s = _Search(sc, tm, problem_for(sc, tm, "target", None), slo_target(sc, rate), SLO_CELLS)
    cap = cheapest_meeting_slo(sc, tm, s.problem, s.target).cost_usd_per_hour + 1e-6
    best = math.inf
    for i in range(len(s.k)):
        links, p = [s.link(i)], float(s.share[i])
        for _ in range(4):
            u, usd = s.link(i, links[-1][0] * (1 + 1e-6) / max(s.egress[i], 1e-300))
            if not math.isfinite(usd) or u <= links[-1][0]:
                break
            links.append((u, usd))
        for usable, usd in links:
            for n_r in range(1 if p > 0 else 0, (int(cap // s.remote_usd) + 1) if p > 0 else 1):
                for n_d in range(1, int((cap - n_r * s.remote_usd - usd) // s.local_usd) + 1):
                    for n_p in range(1 if p < 1 else 0, int((cap - n_r * s.remote_usd - usd) // s.local_usd) - n_d + 1):
                        cost = s.cost(n_r, n_p, n_d, usd)
                        if cost >= best or cost > cap:
                            break
                        if s.excess(i, (n_r, n_p, n_d), usable) <= 0:
                            best = cost
                            break
    return best


@pytest.mark.parametrize("name, rate, sets", [
    ("qwen35-h20-slo", 3.0, {}),
    ("qwen35-h20-slo", 3.0, {"slo__ttft_p90_s": 3.5}),
    ("slo-case-study", 1.0, {"slo__ttft_p99_s": 8.0}),
])
def test_brute_force_never_beats_the_planner(name, rate, sets):
    """Every count, threshold and link size up to the planner's cost: nothing meeting the SLO is
    cheaper (the planner tightens greedily from necessary bounds; this is its oracle)."""
    sc = _scenario(name, **sets)
    tm = throughput_model(sc)
    plan = cheapest_meeting_slo(sc, tm, problem_for(sc, tm, "target", None), slo_target(sc, rate))
    assert brute_force(sc, rate) >= plan.cost_usd_per_hour - 1e-6


# --- against what a user does by hand -----------------------------------------------------------------


@pytest.mark.parametrize("name, rate, sets", [
    ("slo-case-study", 30.0, {}),
    ("slo-case-study", 10.0, {"slo__ttft_p90_s": 3.5}),
    ("slo-case-study", 5.0, {"slo__ttft_mean_s": 2.5}),
    ("qwen35-h20-slo", 40.0, {}),
    ("qwen35-h20-slo", 20.0, {"slo__ttft_p99_s": 20.0}),
    ("paper-case-study", 2.5, {"slo__ttft_p90_s": 5.0}),
])
def test_never_costs_more_than_the_oversized_throughput_plan(name, rate, sets):
    """Issue #16 item 7: the SLO plan costs at most the cheapest throughput plan oversized by a
    uniform headroom factor (1% steps) that meets the SLO, and both meet it in the full model."""
    sc = _scenario(name, **sets)
    tm = throughput_model(sc)
    target = slo_target(sc, rate)
    plan = cheapest_meeting_slo(sc, tm, problem_for(sc, tm, "target", None), target)
    by_hand, factor = headroom_baseline(sc, tm, target)
    assert factor >= 1.0
    assert plan.cost_usd_per_hour <= by_hand.cost_usd_per_hour + 1e-9
    assert slo_excess(deployment(sc, plan_dict(plan, sc)), rate, target.slo) <= 0


# --- refusals ------------------------------------------------------------------------------------------


def test_an_slo_below_the_idle_latency_is_refused_with_the_best_p90():
    """A 1 s P90 is below what the prompts' own prefill allows (the idle P90 of the case study's
    fastest path is ~3.4 s): a clear refusal naming the best achievable P90, above 1 s."""
    sc = _scenario("slo-case-study", slo__ttft_p90_s=1.0)
    with pytest.raises(PlanError, match=r"no plan within the ranges meets TTFT P90 <= 1 s at 30 req/s: the best achievable P90 TTFT is ([\d.]+) s") as exc:
        optimize(sc, compare_modes=False)
    best = float(exc.value.args[0].rsplit("is ", 1)[1].split(" s")[0])
    assert 1.0 < best < 4.0


def test_ranges_too_small_are_refused():
    """At most 10 PrfaaS and 20 local instances cannot carry 30 req/s at all."""
    sc = _scenario("slo-case-study", prfaas__instances_range={"min": 0, "max": 10}, local__instances_range={"min": 0, "max": 20})
    with pytest.raises(PlanError, match="no plan within the ranges meets"):
        optimize(sc, compare_modes=False)


# --- utilisation caps, budgets, no SLO ---------------------------------------------------------------


def test_max_utilisation_caps_every_pool_and_is_the_cheapest_such_plan():
    """The rule of thumb alone (no TTFT level): each pool at most 70% utilised at 30 req/s, and
    one instance fewer in any pool breaks its cap (so nothing cheaper on that threshold)."""
    sc = _scenario("slo-case-study", slo={"decode_tokens_per_s": 40, "max_utilisation_frac": 0.7}, objective={"kind": "slo"})
    r = optimize(sc, compare_modes=False)
    lat = r["latency"]["at_arrival_rate"]
    utils = {"n_prfaas": lat["paths"].get("prfaas", {}).get("utilisation_frac", 0.0),
             "n_pd_prefill": lat["paths"].get("local", {}).get("utilisation_frac", 0.0), "n_pd_decode": lat["decode_utilisation_frac"]}
    assert r["verdict"]["ok"], r["verdict"]["text"]
    for n_key, u in utils.items():
        assert u <= 0.7 + 1e-9
        if r[n_key] > 1:  # one fewer breaks the cap (utilisation scales as 1 / count)
            assert u * r[n_key] / (r[n_key] - 1) > 0.7


def test_budget_with_an_slo_maximises_goodput():
    """Within 1,000 $/hour the SLO plan's goodput is at least the throughput plan's (which spends
    the budget on Lambda_max), and it stays within the budget."""
    sc = _scenario("slo-case-study", objective={"kind": "budget", "budget_usd_per_hour": 1000})
    r = optimize(sc, compare_modes=False)
    old = add_latency(sc, planner.optimize(sc, compare_modes=False))
    assert r["cost_usd_per_hour"] <= 1000 + 1e-9
    assert r["latency"]["goodput_req_per_s"] >= old["latency"]["goodput_req_per_s"] * (1 - 2e-3)
    assert r["latency"]["goodput_req_per_s"] > 0


@pytest.mark.parametrize("name", ["budget-case-study", "paper-case-study", "rubin-cpx-prefill"])
def test_without_an_slo_the_answer_is_the_throughput_one(name):
    """No TTFT level and no cap: the SLO-aware solver gives exactly today's plan."""
    sc = load_scenario(name)
    a = planner.optimize(sc, compare_modes=False)
    b = planner.optimize(sc, compare_modes=False, solver=solve)
    assert {k: a[k] for k in planner.PLAN_KEYS} == {k: b[k] for k in planner.PLAN_KEYS}


# --- the simulation of the chosen plan ----------------------------------------------------------------


def test_simulated_p90_of_the_slo_plan_meets_the_slo_within_10_percent():
    """Issue #16 item 7: the discrete-event simulation of the SLO plan at the arrival rate
    (Poisson, four seeded hours: the PrfaaS pool runs at ~89% on 4 instances, so a half hour is
    too short a sample) has its P90 TTFT within 10% of the SLO (small case: the Qwen3.5
    reproducer at 10 req/s, ~144,000 requests)."""
    sc = _scenario("qwen35-h20-slo", workload__arrival_req_per_s=10.0)
    r = optimize(sc, compare_modes=False)
    dep = deployment(sc, r)
    rng = np.random.default_rng(0)
    times = arrivals.poisson_times(10.0, 4 * 3600.0, rng)
    sim = simulate(dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "Poisson"), duration_s=4 * 3600.0)
    assert r["latency"]["at_arrival_rate"]["ttft_p90_s"] <= 5.0
    assert sim["ttft"]["p90_s"] <= 5.0 * 1.10


def test_whatif_and_sweep_replan_for_the_slo():
    """The commands pass the SLO-aware solver on: a what-if's re-plan and a sweep point of an SLO
    scenario are the plan `optimize` gives, not the throughput one."""
    from prfaas_plan.planning.sweep import sweep
    from prfaas_plan.planning.whatif import WhatIf, whatif_rows

    sc = load_scenario("qwen35-h20-slo")
    r = optimize(sc, compare_modes=False)
    row = whatif_rows(sc, whatifs=(WhatIf("as planned"),), solver=solve)[0]
    assert {k: row["replan"][k] for k in ("n_prfaas", "n_pd_prefill", "n_pd_decode", "cost_usd_per_hour")} == \
        {k: r[k] for k in ("n_prfaas", "n_pd_prefill", "n_pd_decode", "cost_usd_per_hour")}
    point = sweep(sc, [("workload.arrival_req_per_s", [40.0])], solver=solve)[0]
    assert point["cost_usd_per_hour"] == r["cost_usd_per_hour"] and point["n_prfaas"] == r["n_prfaas"]
