"""Re-planning that pays for itself (issue 18): the priced switch (prfaas_plan/latency/switching.py),
the rate forecast (simulation/forecast.py) and the hysteresis rule in the simulation
(simulation/replanner.py): no flapping inside the dead band, a sustained shift switches, and the
switch is charged (nodes out for switch_s)."""

import math

import numpy as np
import pytest

from prfaas_plan.latency.replan import split_options
from prfaas_plan.latency.switching import MissCurve, SwitchModel, best_switch, fluid_misses, switch_misses
from prfaas_plan.latency.ttft import slo_miss_frac, ttft
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.simulation import arrivals
from prfaas_plan.simulation.forecast import RateForecast
from prfaas_plan.simulation.replanner import Replanner, greedy_decision
from prfaas_plan.simulation.run import run

SLO_S = 5.0
HORIZON_S = 600.0


@pytest.fixture(scope="module")
def case():
    sc = load_scenario("paper-case-study")
    plan = optimize(sc, compare_modes=False)
    return sc, plan, SwitchModel(sc, plan, SLO_S)


def flat(capacity, miss=0.0):
    """A miss curve with a constant miss share below its capacity (up to 1 - 1e-9 of it)."""
    return MissCurve(capacity, np.array([0.0, capacity * (1 - 1e-9)]), np.array([miss, miss]))


# -- the priced switch ----------------------------------------------------------------------------
def test_fluid_misses_by_hand():
    """Stable, no backlog: lambda T m. A transit at capacity 1 req/s under 2 req/s for 100 s builds
    100 requests of backlog (all 200 arrivals miss); then at mu = 4 the backlog waits past the
    5-s SLO until it is down to mu x SLO = 20: (100 - 20) / (4 - 2) = 40 s of arrivals (80) miss,
    and the remaining 60 s miss at m = 0.1 (12)."""
    assert fluid_misses([(100.0, flat(4.0, 0.1))], 2.0, 0.0, 5.0, 4.0) == pytest.approx(20.0)
    assert fluid_misses([(100.0, flat(1.0)), (100.0, flat(4.0, 0.1))], 2.0, 0.0, 5.0, 4.0) == pytest.approx(200 + 80 + 12)


def test_fluid_misses_charges_the_backlog_left_at_the_end_alike():
    """The backlog left is charged as drained at mu* (here 4 req/s, so the arrivals until it is down
    to 20): overloaded to the end, 50 left -> (50 - 20) / (4 - 2) s of arrivals on top of the 100;
    stable but still late, 80 left -> the same rule; and an overloaded schedule never costs less
    than a stable one that leaves less behind."""
    assert fluid_misses([(50.0, flat(1.0))], 2.0, 0.0, 5.0, 4.0) == pytest.approx(100 + 2 * 30 / 2)
    assert fluid_misses([(10.0, flat(4.0))], 2.0, 100.0, 5.0, 4.0) == pytest.approx(20 + 2 * (80 - 20) / 2)
    assert fluid_misses([(600.0, flat(1.9))], 2.0, 1000.0, 5.0, 4.0) > fluid_misses([(600.0, flat(2.1))], 2.0, 1000.0, 5.0, 4.0)
    assert fluid_misses([(60.0, flat(1.0))], 5.0, 0.0, 5.0, 4.0) == pytest.approx(300 + 240)


def test_slo_miss_frac_is_the_survival_at_the_slo(case):
    """slo_miss_frac at x = the P90 TTFT is 10%: the same survival the percentiles bisect."""
    _, _, model = case
    dep = model.state(3, 5, model.planned_t).deployment
    p90 = ttft(dep, 2.0).ttft_p90_s
    assert slo_miss_frac(dep, 2.0, p90) == pytest.approx(0.10, abs=1e-4)


def test_a_switch_costs_its_transit(case):
    """Switching to a split costs more than having it already, by the transit: the longer the
    nodes are out, the more it costs; a change of t alone costs nothing."""
    _, _, model = case
    cur = model.state(3, 5, model.planned_t)
    target = model.state(4, 4, model.planned_t)
    rate = 2.8
    have = switch_misses(model, target, target, rate, 0.0, HORIZON_S, 0.0)
    costs = [switch_misses(model, cur, target, rate, 0.0, HORIZON_S, tau) for tau in (0.0, 60.0, 300.0)]
    assert have == pytest.approx(costs[0])
    assert costs[0] < costs[1] < costs[2]
    other_t = next(o for o in model.options if (o.n_pd_prefill, o.n_pd_decode) == (3, 5) and o is not cur)
    assert switch_misses(model, cur, other_t, rate, 0.0, HORIZON_S, 300.0) == pytest.approx(
        switch_misses(model, other_t, other_t, rate, 0.0, HORIZON_S, 0.0))


def test_the_gain_is_net_of_the_switch(case):
    """At 2.5 req/s 4 PD-P / 4 PD-D misses fewer than the plan's 3 / 5 and a 60-s switch pays; the
    gain reported is the misses staying minus the misses switching, transit included."""
    _, _, model = case
    cur = model.state(3, 5, model.planned_t)
    band = (2.4, 2.5, 2.6)
    d = best_switch(model, cur, band, 0.0, HORIZON_S, lambda o: 60.0)
    assert d.target is not None and (d.target.n_pd_prefill, d.target.n_pd_decode) == (4, 4)
    for r, g in zip(band, d.gain_req):
        stay = switch_misses(model, cur, cur, r, 0.0, HORIZON_S, 0.0)
        assert g == pytest.approx(stay - switch_misses(model, cur, d.target, r, 0.0, HORIZON_S, 60.0)) and g > 0


def test_the_dead_band_needs_the_gain_at_both_ends(case):
    """From 3 / 5 at 2.5 +- 0.1 req/s, 4 / 4 pays for its switch at every rate of the band; with a
    band reaching 3.4 req/s, where 4 / 4 (Lambda_max 3.1) builds a backlog faster than 3 / 5
    (3.24), the split stays (at most t changes, which are free)."""
    _, _, model = case
    cur = model.state(3, 5, model.planned_t)
    narrow = best_switch(model, cur, (2.4, 2.5, 2.6), 0.0, HORIZON_S, lambda o: 60.0)
    assert narrow.target is not None and (narrow.target.n_pd_prefill, narrow.target.n_pd_decode) == (4, 4)
    wide = best_switch(model, cur, (1.6, 2.5, 3.4), 0.0, HORIZON_S, lambda o: 60.0)
    assert wide.target is None or wide.target.n_pd_prefill == 3


def test_a_gain_inside_the_noise_of_the_misses_is_not_taken(case):
    """From 4 / 4 at 1.4 +- 0.05 req/s, 5 / 3 misses fewer at every rate of the band (the analytic
    model), but by less than the Poisson noise of the misses over the horizon: no switch."""
    _, _, model = case
    cur = model.state(4, 4, model.planned_t)
    band = (1.35, 1.4, 1.45)
    five = [o for o in model.options if o.n_pd_prefill == 5]
    gains = [max(switch_misses(model, cur, cur, r, 0.0, HORIZON_S, 0.0) - switch_misses(model, cur, o, r, 0.0, HORIZON_S, 60.0)
                 for o in five) for r in band]
    assert min(gains) > 0
    assert max(gains) < math.sqrt(switch_misses(model, cur, cur, 1.4, 0.0, HORIZON_S, 0.0))
    d = best_switch(model, cur, band, 0.0, HORIZON_S, lambda o: 60.0)
    assert d.target is None or d.target.n_pd_prefill == 4


# -- the forecast ---------------------------------------------------------------------------------
def test_forecast_is_the_recent_rate_and_its_band_its_measured_error():
    """The mean rate of the last history; nothing until a forecast has met the rate that came;
    then sigma is the RMS of those errors (here the rate doubles at 600 s), never below the
    Poisson noise of the counts."""
    a = np.concatenate([np.arange(0.0, 600.0, 0.5), np.arange(600.0, 1800.0, 0.25)])  # 2 then 4 req/s
    f = RateForecast(300.0, 300.0)
    assert f(a[a < 100.0], 100.0) is None
    assert f(a[a < 300.0], 300.0) is None  # forecasts 2 for [300, 600): 2 came
    rate, sigma = f(a[a < 600.0], 600.0)  # forecasts 2 for [600, 900): 4 comes
    assert rate == pytest.approx(2.0) and sigma == pytest.approx(math.sqrt(2.0 / 300 + 2.0 / 300))
    rate, sigma = f(a[a < 900.0], 900.0)
    assert rate == pytest.approx(4.0)
    assert sigma == pytest.approx(math.sqrt(((2.0 - 2.0) ** 2 + (4.0 - 2.0) ** 2) / 2))


# -- in the simulation ----------------------------------------------------------------------------
def shaped_requests(sc, plan, t_s, rate, duration_s, seed=1):
    from prfaas_plan.latency.deployment import deployment

    dep = deployment(sc, plan, "prfaas")
    rng = np.random.default_rng(seed)
    times = arrivals.thinned_times(np.asarray(t_s, float), np.asarray(rate, float), duration_s, rng)
    return dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "test shape")


def role_changes(sim, dep):
    prev, n = (dep.local.instances, dep.decode_instances), 0
    for _, c in sim.changes_applied:
        if c.n_pd_prefill is not None and (c.n_pd_prefill, c.n_pd_decode) != prev:
            n += 1
            prev = (c.n_pd_prefill, c.n_pd_decode)
    return n


def test_no_flapping_on_a_rate_that_oscillates_inside_the_dead_band(case):
    """The rate alternates 1.4 / 2.2 req/s every 600 s for 4 hours: the greedy rule (lowest analytic
    P90 at each period's true rate) flips 5 / 3 <-> 4 / 4 every period; the hysteresis rule sees
    its forecast miss by the swing, widens its band to it, and changes roles at most once."""
    sc, plan, model = case
    t = np.arange(0.0, 4 * 3600.0, 600.0)
    rate = np.where(np.arange(len(t)) % 2 == 0, 1.4, 2.2)
    dep, reqs = shaped_requests(sc, plan, t, rate, 4 * 3600.0)
    rate_fn = lambda s: float(arrivals.rate_at(np.array([s]), t, rate)[0])  # noqa: E731
    greedy = run(dep, reqs, decide=greedy_decision(split_options(sc, plan), rate_fn), decide_every_s=600.0)
    assert role_changes(greedy, dep) >= 20
    rp = Replanner(model, HORIZON_S, 60.0)
    sim = run(dep, reqs, decide=rp, decide_every_s=rp.step_s)
    assert role_changes(sim, dep) <= 1


def test_a_sustained_shift_switches_and_the_nodes_are_out_for_switch_s(case):
    """2.5 req/s for an hour, then 3.3 (above 4 / 4's Lambda_max of 3.1): the rule moves to 4 / 4
    in the first hour and back to 3 / 5 after the shift, within two horizons (the persistence
    forecast averages the last horizon, so it sees the shift fully one horizon on); each time the node that
    changes role serves again no sooner than switch_s after the change."""
    sc, plan, model = case
    switch_s = 90.0
    dep, reqs = shaped_requests(sc, plan, [0.0, 3600.0], [2.5, 3.3], 7200.0)
    rp = Replanner(model, HORIZON_S, switch_s)
    sim = run(dep, reqs, decide=rp, decide_every_s=rp.step_s, switch_s=switch_s)
    splits = [(t, (c.n_pd_prefill, c.n_pd_decode)) for t, c in sim.changes_applied if c.n_pd_prefill is not None]
    assert [s for _, s in splits] == [(4, 4), (3, 5)]
    assert splits[0][0] < 3600.0 and 3600.0 < splits[1][0] <= 3600.0 + 2 * HORIZON_S
    log = sim.capacity_log  # (time, local prefill, PrfaaS, decode slots)
    for t_change, (n_p, n_d) in splits:
        back = next(t for t, p, _, d in log if t > t_change and p == n_p and d == n_d * dep.decode_batch)
        assert back >= t_change + switch_s
