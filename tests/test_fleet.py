"""The fleet MILP (prfaas_plan/fleet): it agrees with the exact one-pair optimizer where both
apply, an independent brute force never beats it, and its rows name what they hold."""

from __future__ import annotations

import math

import pytest

from bruteforce_fleet import brute_force, cost_at
from fleetcases import one_pair, two_by_two
from prfaas_plan.errors import PlanError
from prfaas_plan.fleet.plan import fleet_document, solve_fleet
from prfaas_plan.fleet.search import optimise
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario


@pytest.mark.parametrize("question", [{"budget_usd_per_hour": 3000.0}, {"budget_usd_per_hour": 500.0}, {"target_req_per_s": 20.0},
                                      {"target_req_per_s": 3.3}])
def test_one_pair_agrees_with_the_exact_optimizer(tmp_path, question):
    """One site, one PrfaaS site, one part per role: the MILP answers the one-pair question, so its
    cost and throughput must equal planning/optimizer.py's (exact in integers and t) to 1e-6."""
    fleet_sc = load_scenario(one_pair(tmp_path, "fleet", True, {"kind": "budget", "budget_usd_per_hour": 3000}))
    pair_sc = load_scenario(one_pair(tmp_path, "pair", False, {"kind": "budget", "budget_usd_per_hour": 3000}))
    assert fleet_sc.fleet is not None and pair_sc.fleet is None
    exact = optimize(pair_sc, compare_modes=False, **question)
    doc = fleet_document(fleet_sc, *_solve(fleet_sc, question))
    assert doc["solver"]["status"] == "optimal"
    assert doc["cost_usd_per_hour"] == pytest.approx(exact["cost_usd_per_hour"], rel=1e-6)
    if "budget_usd_per_hour" in question:  # the most throughput within the budget
        assert doc["throughput_req_per_s"] == pytest.approx(exact["throughput_req_per_s"], rel=1e-6)
    gpus = sum(e["instances"] * e["gpus_per_instance"] for e in doc["fleet"])
    assert gpus == exact["gpus_prfaas"] + exact["gpus_local"] or "target_req_per_s" in question  # equal cost may differ in mix


def _solve(sc, question):
    sol, needs, objective, budget, _ = solve_fleet(sc, **question)
    return sol, needs, objective, budget


def test_brute_force_never_beats_the_milp(tmp_path):
    """Two local sites, two PrfaaS sites (one with two parts), link sizes and a continuous link:
    every routing and threshold on a grid, counts by enumeration (tests/bruteforce_fleet.py),
    never costs less than the MILP (1e-6); and the MILP's own routing, priced by the brute force's
    enumeration, costs what the MILP says (the counts it returns are the cheapest for it)."""
    sc = load_scenario(two_by_two(tmp_path))
    rates = {s.name: s.target_req_per_s for s in sc.fleet.local_sites}
    sol = optimise(sc.fleet, sc.model, "target", rates)
    doc = fleet_document(sc, sol, _needs(sc), "target", None)
    assert sol.status == "optimal"
    brute, route = brute_force(sc.fleet, sc.model, rates)
    assert brute >= doc["cost_usd_per_hour"] - 1e-6, (brute, route, doc["sites"])
    own = {st["site"]: (st["prfaas_site"], st["threshold_tokens"]) for st in doc["sites"]}
    assert cost_at(sc.fleet, sc.model, rates, own) == pytest.approx(doc["cost_usd_per_hour"], abs=1e-6)


def _needs(sc):
    from prfaas_plan.fleet.needs import site_needs

    return {s.name: site_needs(sc.fleet, sc.model, s) for s in sc.fleet.local_sites}


def test_a_shared_prfaas_site_may_serve_both_local_sites(tmp_path):
    """With one cheap PrfaaS site linked to both local sites, both offload there and its
    instances carry the sum of their loads (one pool, not one per site)."""
    sc = load_scenario(two_by_two(tmp_path))
    rates = {s.name: s.target_req_per_s for s in sc.fleet.local_sites}
    doc = fleet_document(sc, optimise(sc.fleet, sc.model, "target", rates), _needs(sc), "target", None)
    routed = {st["site"]: st["prfaas_site"] for st in doc["sites"]}
    assert all(routed.values()), routed
    total = sum(e["usd_per_hour"] for e in doc["fleet"]) + sum(lk["usd_per_hour"] for lk in doc["links"])
    assert total == pytest.approx(doc["cost_usd_per_hour"])
    assert all(0 < lk["utilisation_frac"] <= sc.fleet.link(lk["from"], lk["to"]).link.max_utilisation * (1 + 1e-9) for lk in doc["links"])


def test_gpu_cap_that_cannot_hold_names_its_row(tmp_path):
    """An infeasible question says which user limit conflicts (the elastic re-solve)."""
    import yaml

    path = two_by_two(tmp_path)
    doc = yaml.safe_load(open(path))
    for site in doc["sites"]["local"]:
        site["max_gpus"] = 16  # 2 instances: far below decode alone
    open(path, "w").write(yaml.safe_dump(doc))
    sc = load_scenario(path)
    rates = {s.name: s.target_req_per_s for s in sc.fleet.local_sites}
    with pytest.raises(PlanError, match=r"max-gpus\[a\]"):
        optimise(sc.fleet, sc.model, "target", rates)


def test_budget_question_serves_a_common_multiple_of_the_arrival_rates(tmp_path):
    """A multi-site budget question maximises alpha, every site at alpha x its arrival rate,
    within the budget; twice the budget never serves less."""
    import yaml

    path = two_by_two(tmp_path)
    doc = yaml.safe_load(open(path))
    doc["objective"] = {"kind": "budget", "budget_usd_per_hour": 600}
    open(path, "w").write(yaml.safe_dump(doc))
    sc = load_scenario(path)
    out = fleet_document(sc, *_solve(sc, {}))
    rates = {st["site"]: st["rate_req_per_s"] / st["arrival_req_per_s"] for st in out["sites"]}
    assert max(rates.values()) == pytest.approx(min(rates.values()), rel=1e-9)
    assert out["cost_usd_per_hour"] <= 600 * (1 + 1e-9)
    more = fleet_document(sc, *_solve(sc, {"budget_usd_per_hour": 1200.0}))
    assert more["alpha"] >= out["alpha"] and math.isfinite(more["alpha"])
