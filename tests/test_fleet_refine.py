"""The fleet search's shortcuts (prfaas_plan/fleet/refine.py, search.py): a relaxation's counts
taken as a plan (``realise``) must be a real plan, and the vectorised pruning and the skipped
point MILPs must not change the optimum (the brute force never beats it, over several rates)."""

from __future__ import annotations

import pytest

from bruteforce_fleet import brute_force, cost_at
from fleetcases import two_by_two
from prfaas_plan.fleet.needs import site_needs
from prfaas_plan.fleet.plan import fleet_document
from prfaas_plan.fleet.refine import realise
from prfaas_plan.fleet.search import FleetSolution, optimise
from prfaas_plan.planning.scenario import load_scenario


def _setup(tmp_path, rates):
    sc = load_scenario(two_by_two(tmp_path, rates=rates))
    demand = {s.name: s.target_req_per_s for s in sc.fleet.local_sites}
    needs = {s.name: site_needs(sc.fleet, sc.model, s) for s in sc.fleet.local_sites}
    return sc, demand, needs


@pytest.mark.parametrize("rates", [(3.0, 2.0), (0.7, 5.0), (8.0, 0.4)])
def test_every_realised_relaxation_is_a_plan_its_routing_prices(tmp_path, monkeypatch, rates):
    """Every plan ``realise`` makes during a search costs no less than its relaxation's bound, and
    the brute force's cheapest counts for the plan's own routing cost no more than the plan (its
    counts serve that routing); and the search does make such plans (what saves its point MILPs)."""
    import prfaas_plan.fleet.search as search

    sc, demand, needs = _setup(tmp_path, rates)
    seen = []

    def spy(relax, sol, needs_, limit_s):
        plan = realise(relax, sol, needs_, limit_s)
        if plan is not None:
            seen.append((sol.bound, plan))
        return plan

    monkeypatch.setattr(search, "realise", spy)
    optimise(sc.fleet, sc.model, "target", demand, needs=needs)
    assert seen
    for bound, (m, psol) in seen:
        assert psol.objective >= bound - 1e-6 * abs(bound)
        doc = fleet_document(sc, FleetSolution(m, psol, bound, 0.0, 1, "optimal"), needs, "target", None)
        assert doc["cost_usd_per_hour"] == pytest.approx(psol.objective, abs=1e-6)
        own = {st["site"]: (st["prfaas_site"], st["threshold_tokens"]) for st in doc["sites"]}
        assert cost_at(sc.fleet, sc.model, demand, own) <= doc["cost_usd_per_hour"] + 1e-6


@pytest.mark.parametrize("rates", [(0.7, 5.0), (8.0, 0.4)])
def test_brute_force_never_beats_the_milp_at_other_rates(tmp_path, rates):
    """tests/test_fleet.py's oracle at other rates (another site binds, other routings win)."""
    sc, demand, needs = _setup(tmp_path, rates)
    sol = optimise(sc.fleet, sc.model, "target", demand, needs=needs)
    assert sol.status == "optimal"
    doc = fleet_document(sc, sol, needs, "target", None)
    brute, route = brute_force(sc.fleet, sc.model, demand)
    assert brute >= doc["cost_usd_per_hour"] - 1e-6, (brute, route, doc["sites"])
