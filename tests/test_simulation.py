"""The simulator's event loop (prfaas_plan/simulation/engine.py): closed forms (M/M/1, M/M/c),
a cross-check against simpy on the same small system, conservation, determinism, the link's
layer-wise rule, re-planning mechanics, and the case study against the analytic model."""

import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import Deployment, PrefillPool, deployment, exposed_transfer_s
from prfaas_plan.latency.queueing import erlang_c
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.workload import Empirical
from prfaas_plan.simulation import arrivals
from prfaas_plan.simulation.engine import Change
from prfaas_plan.simulation.metrics import conservation, results
from prfaas_plan.simulation.run import run, simulate, simulate_scenario

from fakes import Linear

MODEL = load_scenario("paper-case-study").model


def tiny(threshold=math.inf, local=(0.0, 1e-3), remote=None, n_local=1, n_remote=1, alone=None, link_bytes_per_s=0.0, rtt_s=0.0,
         decode_instances=1000, batch=1, step_s=1e-6, output_tokens=1.0):
    """A deployment whose every number the test chooses (service = a + b l seconds)."""
    lpool = PrefillPool("pd-prefill", n_local, Linear(*local), Linear(*(alone or local))) if n_local else None
    rpool = PrefillPool("prfaas", n_remote, Linear(*remote), Linear(*remote)) if remote else None
    return Deployment("prfaas", MODEL, Empirical.from_arrays([1000.0], [1.0]), threshold, rpool, lpool, link_bytes_per_s, rtt_s,
                      decode_instances, batch, step_s, output_tokens)


def requests(arrival_s, uncached, output=1.0, hash_ids=None):
    a = np.asarray(arrival_s, float)
    u = np.asarray(uncached, float) * np.ones(len(a))
    return arrivals.Requests(a, u.copy(), u, np.full(len(a), float(output)), hash_ids)


def exp_requests(rate, mean_tokens, n, seed=1):
    """Poisson arrivals with exponentially distributed lengths (exponential service with b = 1e-3)."""
    rng = np.random.default_rng(seed)
    return requests(np.cumsum(rng.exponential(1 / rate, n)), rng.exponential(mean_tokens, n))


# --- closed forms ---------------------------------------------------------------------------------


def _mean_wait(sim):
    return float(np.mean(sim.rec.start - sim.rec.join))


def test_mm1_mean_wait_is_the_closed_form():
    """One instance, exponential service of mean 1 s at 0.7 req/s: E[W] = rho / (1 - rho) E[S]
    = 2.333 s (M/M/1). 60,000 requests; 5% covers the sampling error at this seed."""
    sim = run(tiny(), exp_requests(0.7, 1000.0, 60_000))
    assert _mean_wait(sim) == pytest.approx(0.7 / 0.3, rel=0.05)


def test_mmc_wait_probability_and_mean_are_erlang_c():
    """Four instances at 3 Erlang (exponential service, mean 1 s): P(wait) = C(4, 3) and
    E[W] = C E[S] / (c - a), the formulas of latency/queueing.py."""
    sim = run(tiny(n_local=4), exp_requests(3.0, 1000.0, 80_000))
    waited = np.mean(sim.rec.start - sim.rec.join > 1e-12)
    c = erlang_c(4, 3.0)
    assert waited == pytest.approx(c, rel=0.04)
    assert _mean_wait(sim) == pytest.approx(c * 1.0 / (4 - 3.0), rel=0.06)


def test_decode_slots_are_a_fifo_pool():
    """Two slots, three requests ready together, each holding its slot 10 steps of 0.1 s: the
    third is admitted when the first finishes (1 s) and its TTFT is 1 s + one step."""
    dep = tiny(local=(0.0, 0.0), decode_instances=2, batch=1, step_s=0.1, output_tokens=10)
    sim = run(dep, requests([0.0, 0.0, 0.0], 100.0, output=10))
    assert list(sim.rec.admit) == pytest.approx([0.0, 0.0, 1.0])
    r = results(sim, warmup_s=0.0)
    assert r["ttft"]["p99_s"] <= 1.1 + 1e-9
    assert r["ttft"]["mean_s"] == pytest.approx((0.1 + 0.1 + 1.1) / 3)


def test_batched_prefill_frees_the_instance_before_the_kv_is_done():
    """service 1 s, own latency 3 s: the second request starts at 1 s on the one instance (not 3 s)
    and has its KV at 4 s."""
    sim = run(tiny(local=(1.0, 0.0), alone=(3.0, 0.0)), requests([0.0, 0.0], 10.0))
    assert list(sim.rec.start) == [0.0, 1.0]
    assert list(sim.rec.kv) == [3.0, 4.0]


# --- simpy cross-check --------------------------------------------------------------------------------


def _simpy_times(dep, req):
    """The same system in simpy: FCFS prefill pool (instance held for the service time, KV after
    the latency), then FIFO decode slots held output x step. Returns (start, admit) per request."""
    simpy = pytest.importorskip("simpy")
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=dep.local.instances)
    slots = simpy.Resource(env, capacity=dep.decode_slots)
    start, admit = np.full(len(req), np.nan), np.full(len(req), np.nan)

    def hold(r, seconds):
        yield env.timeout(seconds)
        pool.release(r)

    def request(i):
        yield env.timeout(req.arrival_s[i])
        r = pool.request()
        yield r
        start[i] = env.now
        l = req.uncached_tokens[i]
        env.process(hold(r, float(dep.local.service_s(l)[0])))
        yield env.timeout(float(dep.local.latency_s(l)[0]))
        with slots.request() as s:
            yield s
            admit[i] = env.now
            yield env.timeout(max(req.output_tokens[i], 1.0) * dep.decode_step_s)

    for i in range(len(req)):
        env.process(request(i))
    env.run()
    return start, admit


def test_event_loop_matches_simpy_request_by_request():
    """Three prefill instances (service 0.2 + 1e-4 l s, own latency 0.5 + 2e-4 l s), 6 decode
    slots held 40 steps of 25 ms, 3,000 Poisson arrivals at 80% prefill load: every request's
    prefill start and decode admission agree with simpy's to 1e-9 s."""
    rng = np.random.default_rng(7)
    n = 3000
    lengths = rng.lognormal(8.0, 1.0, n)
    svc = 0.2 + 1e-4 * lengths.mean()
    req = requests(np.cumsum(rng.exponential(svc / (0.8 * 3), n)), lengths, output=40)
    dep = tiny(local=(0.2, 1e-4), alone=(0.5, 2e-4), n_local=3, decode_instances=6, batch=1, step_s=0.025, output_tokens=40)
    sim = run(dep, req)
    start, admit = _simpy_times(dep, req)
    assert np.max(np.abs(sim.rec.start - start)) < 1e-9
    assert np.max(np.abs(sim.rec.admit - admit)) < 1e-9
    assert np.any(sim.rec.start - sim.rec.join > 0) and np.any(sim.rec.admit - sim.rec.ready > 0)  # both queues were exercised


# --- the link -------------------------------------------------------------------------------------------


def test_lone_transfer_exposes_what_exposed_transfer_s_says():
    """One offloaded request: ready for decode = KV done + exposed transfer + RTT, for a prefill
    longer and shorter than the transfer."""
    for prefill_s, bw in ((2.0, 1e9), (0.01, 1e8)):
        dep = tiny(threshold=0.0, remote=(prefill_s, 0.0), n_local=0, link_bytes_per_s=bw, rtt_s=0.01)
        sim = run(dep, requests([0.0], 4096.0))
        kv = float(dep.kv_bytes(4096.0))
        exposed = float(exposed_transfer_s(kv, prefill_s, bw, MODEL.num_layers))
        assert sim.rec.ready[0] - sim.rec.kv[0] == pytest.approx(exposed + 0.01, rel=1e-9)


def test_two_transfers_share_the_link():
    """Two cache copies (no layer hold) of S bytes each start together on a link of B: each gets
    B / 2, both finish at 2 S / B; a third starting when they end gets all of it."""
    from prfaas_plan.simulation.link import Pipe

    p = Pipe(100.0)
    p.add("a", 100.0, 0.0)
    p.add("b", 100.0, 0.0)
    assert p.next_time() == pytest.approx(2.0)
    assert sorted(p.pop_done(2.0)) == ["a", "b"]
    p.add("c", 50.0, 2.0)
    assert p.next_time() == pytest.approx(2.5)
    assert p.windows[:2] == pytest.approx([100.0, 100.0])  # bytes per 1-s window


def test_bandwidth_change_mid_transfer_and_the_hold():
    """10 bytes at 1 B/s until t = 4, then 0.5 B/s: done at 4 + 6 / 0.5 = 16. A transfer whose
    last 2 bytes are held stops at 8 bytes (t = 8 on a 1 B/s link) and ends 2 s after release."""
    from prfaas_plan.simulation.link import Pipe

    p = Pipe(1.0)
    p.add("x", 10.0, 0.0)
    p.set_bandwidth(0.5, 4.0)
    assert p.next_time() == pytest.approx(16.0)
    q = Pipe(1.0)
    q.add("y", 10.0, 0.0, hold_bytes=2.0)
    assert q.next_time() == pytest.approx(8.0)
    assert q.pop_done(8.0) == [] and q.in_flight == 1 and q.next_time() == math.inf
    q.release("y", 20.0)
    assert q.next_time() == pytest.approx(22.0)
    assert q.pop_done(22.0) == ["y"]


# --- conservation and determinism --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def case():
    sc = load_scenario("paper-case-study")
    plan = optimize(sc, compare_modes=False)
    return sc, plan, deployment(sc, plan)


def test_books_balance_mid_run_and_after_the_drain(case):
    """Requests and tokens: at the end of arrivals (with requests in every stage) and after the
    drain, arrived = completed + in flight and prompt tokens = prefilled + cached + waiting."""
    sc, _, _ = case
    r = simulate_scenario(sc, load=0.9, duration_s=900, link_drop_at_s=300, link_drop_frac=0.1, policy="bandwidth-aware")
    mid, end = r["conservation"]
    assert mid["ok"] and end["ok"]
    assert mid["in_flight"] > 0 and mid["arrived"] == mid["completed"] + mid["in_flight"]
    assert end["in_flight"] == 0 and end["completed"] == r["requests_arrived"]
    assert mid["prompt_tokens_arrived"] == pytest.approx(mid["prompt_tokens_prefilled"] + mid["prompt_tokens_cached"] + mid["prompt_tokens_waiting"])


def test_books_catch_a_lost_request(case):
    """Tampering with the records (a request marked done twice) is caught."""
    _, _, dep = case
    rng = np.random.default_rng(0)
    sim = run(dep, arrivals.synthetic(arrivals.poisson_times(1.0, 300, rng), dep.lengths, 1024, rng), duration_s=300)
    conservation(sim)
    sim.rec.done[5] = np.nan
    with pytest.raises(PlanError, match="do not balance"):
        conservation(sim)


def test_same_seed_same_run_other_seed_other_run(case):
    sc, _, _ = case
    a = simulate_scenario(sc, load=0.7, duration_s=600, seed=3)
    b = simulate_scenario(sc, load=0.7, duration_s=600, seed=3)
    c = simulate_scenario(sc, load=0.7, duration_s=600, seed=4)
    assert a == b
    assert a["ttft"] != c["ttft"]


# --- the case study -----------------------------------------------------------------------------------------


def test_saturates_at_lambda_max(case):
    """Offered 1.5 x Lambda_max for an hour, the plan completes Lambda_max within 3% (issue #7)."""
    sc, plan, _ = case
    r = simulate_scenario(sc, load=1.5)
    assert r["throughput_req_per_s"] == pytest.approx(plan["throughput_req_per_s"], rel=0.03)
    assert r["pools"]["prfaas"]["utilisation_frac"] > 0.99 and r["pools"]["pd-prefill"]["utilisation_frac"] > 0.99


@pytest.mark.parametrize("load", [0.5, 0.8])
def test_agrees_with_the_analytic_model(case, load):
    """Poisson arrivals, two hours: mean TTFT within 10% and P90 within 15% of latency/ttft.py."""
    from prfaas_plan.latency.ttft import ttft

    sc, plan, dep = case
    r = simulate_scenario(sc, load=load, duration_s=7200)
    a = ttft(dep, r["arrival_req_per_s"])
    assert r["ttft"]["mean_s"] == pytest.approx(a.ttft_mean_s, rel=0.10)
    assert r["ttft"]["p90_s"] == pytest.approx(a.ttft_p90_s, rel=0.15)


# --- re-planning mechanics -------------------------------------------------------------------------------------


def test_a_node_changing_role_finishes_its_work_then_is_out_for_switch_s():
    """2 prefill + 2 decode instances (1 slot each). At t = 1 a re-plan moves one prefill node to
    decode: both are busy (service 5 s from t = 0), so one retires when it frees at 5 s and joins
    decode at 5 + 60 s. Then at t = 100 the reverse: an idle decode slot retires at once and
    serves prefill from 160 s. (An idle node would go first: see the next assertion.)"""
    dep = tiny(local=(5.0, 0.0), n_local=2, decode_instances=2, batch=1, step_s=0.001, output_tokens=1)
    idle = run(dep, requests([0.0], 10.0), duration_s=200, changes=[Change(1.0, None, 1, 3)])
    assert idle.capacity_log == [(0.0, 2, 0, 2), (1.0, 1, 0, 2), (61.0, 1, 0, 3)]
    sim = run(dep, requests([0.0, 0.0], 10.0), duration_s=200, changes=[Change(1.0, None, 1, 3), Change(100.0, None, 2, 2)])
    assert sim.capacity_log == [(0.0, 2, 0, 2), (1.0, 1, 0, 2), (65.0, 1, 0, 3), (100.0, 1, 0, 2), (160.0, 2, 0, 2)]


def test_replan_rejects_a_split_that_changes_the_fleet():
    dep = tiny(n_local=2, decode_instances=2)
    with pytest.raises(PlanError, match="N_p \\+ N_d = 4"):
        run(dep, requests([0.0], 10.0), changes=[Change(1.0, None, 3, 3)])


def test_decide_hook_is_called_every_period():
    """A decide callable sees the simulation every decide_every_s and its change takes effect."""
    seen = []

    def decide(now, sim):
        seen.append(now)
        return Change(now, 123.0) if now == 20.0 else None

    sim = run(tiny(), requests([0.0, 50.0], 10.0), duration_s=60, decide=decide, decide_every_s=10.0)
    assert seen == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert sim.policy.threshold_tokens == 123.0


# --- arrivals ----------------------------------------------------------------------------------------------------


def test_arrival_processes_have_their_rates():
    rng = np.random.default_rng(0)
    assert len(arrivals.poisson_times(10.0, 1000.0, rng)) == pytest.approx(10_000, rel=0.03)
    g = arrivals.gamma_times(10.0, 4.0, 1000.0, rng)
    gaps = np.diff(g)
    assert len(g) == pytest.approx(10_000, rel=0.08) and np.var(gaps) / np.mean(gaps) ** 2 == pytest.approx(4.0, rel=0.15)
    t = arrivals.thinned_times([0.0, 500.0], [2.0, 18.0], 1000.0, rng)
    assert np.sum(t < 500) == pytest.approx(1000, rel=0.1) and np.sum(t >= 500) == pytest.approx(9000, rel=0.05)


def test_sampled_lengths_follow_the_distribution(case):
    """Draws from the case study's truncated log-normal: mean and offload share as the planner's."""
    _, plan, dep = case
    x = arrivals.sample_lengths(dep.lengths, 200_000, np.random.default_rng(0))
    assert x.mean() == pytest.approx(dep.lengths.mean(), rel=0.01)
    assert np.mean(x > dep.threshold_tokens) == pytest.approx(plan["offload_frac"], abs=0.005)


def test_trace_lengths_are_its_atoms():
    d = Empirical.from_arrays([100.0, 5000.0], [3.0, 1.0])
    x = arrivals.sample_lengths(d, 10_000, np.random.default_rng(0))
    assert set(np.unique(x)) == {100.0, 5000.0} and np.mean(x == 5000.0) == pytest.approx(0.25, abs=0.02)


@pytest.mark.parametrize("bad", [dict(rate_req_per_s=-1.0), dict(rate_req_per_s=math.nan), dict(duration_s=0.0)])
def test_bad_arrival_inputs_are_one_line(bad):
    args = {"rate_req_per_s": 1.0, "duration_s": 10.0, **bad}
    with pytest.raises(PlanError):
        arrivals.poisson_times(args["rate_req_per_s"], args["duration_s"], np.random.default_rng(0))


def test_simulate_reports_its_policy_and_books():
    r = simulate(tiny(), requests([0.0, 1.0, 2.0], 100.0), warmup_s=0.0)
    assert r["policy"] == "static" and r["requests_completed"] == 3 and r["conservation"][-1]["ok"]
