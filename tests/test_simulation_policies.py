"""Routing policies in the simulator (prfaas_plan/simulation/policies.py): the rules on
hand-checkable inputs and tiny traces, parameter checks, the bandwidth-aware policy when the link
drops to 10% mid-run, prefix-cache sizing."""

import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import Deployment, PrefillPool, deployment
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.workload import Empirical
from prfaas_plan.simulation import arrivals
from prfaas_plan.simulation.policies import CacheAware, Route, Static, make_policy
from prfaas_plan.simulation.run import cache_capacity_blocks, run, simulate_scenario

from fakes import Linear

MODEL = load_scenario("paper-case-study").model


def test_static_routes_on_the_local_clusters_uncached_length():
    """[PRFAAS] scarce rule: offload iff l_total - l_pd > t; prefill the PrfaaS-side uncached part."""
    p = Static(1000.0)
    assert p.route(3000.0, 2500.0, 0.0) == Route(False, 500.0)  # the local prefix makes it short
    assert p.route(3000.0, 0.0, 2500.0) == Route(True, 500.0)  # long locally; PrfaaS holds most of it
    assert p.route(1000.0, 0.0, 0.0) == Route(False, 1000.0)  # l = t stays local


def test_cache_aware_rules():
    """Abundant: l_prefix = max(l_prfaas, l_pd), offload iff l_total - l_prefix > t, copying the
    missing prefix from the other cluster. Scarce: as static."""
    p = CacheAware(1000.0)
    assert p.route(3000.0, 0.0, 2500.0) == Route(False, 500.0, 0.0, 2500.0)  # stay local, copy 2,500 tokens in
    assert p.route(5000.0, 2500.0, 1000.0) == Route(True, 2500.0, 1000.0, 2500.0)  # offload, copy 1,000..2,500 over
    assert p.route(5000.0, 1000.0, 2500.0) == Route(True, 2500.0)  # PrfaaS has the longer prefix: nothing moves
    p.tick(1.0, 0.7, 0.0, 0.0)  # egress at 70% >= u_abundant 0.5: bandwidth scarce
    assert not p.abundant
    assert p.route(3000.0, 0.0, 2500.0) == Route(True, 500.0)


def _tiny_trace_deployment(threshold: float) -> Deployment:
    pool = lambda name: PrefillPool(name, 1, Linear(0.1, 1e-4), Linear(0.1, 1e-4))  # noqa: E731
    return Deployment("prfaas", MODEL, Empirical.from_arrays([1000.0], [1.0]), threshold, pool("prfaas"), pool("pd-prefill"),
                      1e10, 0.01, 100, 1, 0.001, 10.0)


def _conversation():
    """Turn 1 (6 blocks, 3,072 tokens), its turn 2 (8 blocks: the same 6 + 2), a fresh prompt."""
    hashes = ((1, 2, 3, 4, 5, 6), (1, 2, 3, 4, 5, 6, 7, 8), (9, 10, 11, 12, 13, 14))
    inp = np.array([3072.0, 4096.0, 3072.0])
    return arrivals.Requests(np.array([0.0, 100.0, 200.0]), inp, inp.copy(), np.full(3, 10.0), hashes)


@pytest.mark.parametrize(("policy", "routes", "moved_tokens"), [("static", [1, 1, 1], 0), ("cache-aware", [1, 0, 1], 3072)])
def test_policies_on_a_tiny_conversation(policy, routes, moved_tokens):
    """t = 2,500. Turn 1 goes to PrfaaS (3,072 > t), whose cache then holds its 6 blocks. Turn 2
    (4,096 tokens): the local cluster has none of it, so static offloads it again (PrfaaS prefills
    the 1,024 new tokens); cache-aware with an idle link sees l_prefix = 3,072, keeps it local
    (1,024 <= t) and copies the 3,072-token prefix PrfaaS -> local first. The fresh prompt goes to
    PrfaaS under both."""
    dep = _tiny_trace_deployment(2500.0)
    sim = run(dep, _conversation(), policy=policy, cache_blocks=(None, None))
    assert list(sim.rec.route) == routes
    assert list(sim.rec.uncached) == [3072.0, 1024.0, 3072.0]
    expected = float(dep.kv_bytes(float(moved_tokens))) if moved_tokens else 0.0
    assert sim.rec.moved_bytes[1] == pytest.approx(expected)
    if moved_tokens:  # the copy crosses the link (and one RTT) before the prefill queue
        assert sim.rec.join[1] == pytest.approx(100.0 + expected / 1e10 + 0.01)


def test_a_full_cache_evicts():
    """With no cache blocks at all, turn 2 finds nothing anywhere and is prefilled whole."""
    sim = run(_tiny_trace_deployment(2500.0), _conversation(), policy="cache-aware", cache_blocks=(0, 0))
    assert list(sim.rec.uncached) == [3072.0, 4096.0, 3072.0]


@pytest.mark.parametrize(("name", "params", "match"), [
    ("bandwidth-aware", {"u_high": 1.5}, "u_high must be in"),
    ("bandwidth-aware", {"queue_factor": -1}, "queue_factor"),
    ("bandwidth-aware", {"t_min_tokens": 9e5}, "t_min_tokens < t_max_tokens"),
    ("bandwidth-aware", {"history": 2.5}, "history"),
    ("bandwidth-aware", {"u_hgh": 0.8}, "unknown parameter 'u_hgh'"),
    ("bandwidth-aware", {"u_high": math.nan}, "must be numbers"),
    ("cache-aware", {"u_abundant": 0}, "u_abundant"),
    ("static", {"u_high": 0.5}, "takes no parameters"),
    ("greedy", {}, "policy must be one of"),
])
def test_policy_parameters_out_of_range_are_one_line(name, params, match):
    with pytest.raises(PlanError, match=match) as exc:
        make_policy(name, 1000.0, params)
    assert "\n" not in str(exc.value)


# --- the case study -------------------------------------------------------------------------------------


def test_bandwidth_aware_when_the_link_drops_to_10_percent():
    """paper-case-study at 80% load; at 900 s the 100 Gbit/s link drops to 10 Gbit/s, which the
    planned t needs ~99% of. Static keeps t and its transfers queue on the link; bandwidth-aware
    re-searches t (~21K: fewer, longer prompts offloaded), keeps the link below saturation and
    cuts mean, P90 and P99 TTFT (measured over the hour after the drop). At full bandwidth it
    leaves t (and the latency) where the plan put them."""
    sc = load_scenario("paper-case-study")
    args = dict(load=0.8, link_drop_at_s=900, link_drop_frac=0.1, warmup_s=900, duration_s=4500)
    static = simulate_scenario(sc, policy="static", **args)
    aware = simulate_scenario(sc, policy="bandwidth-aware", **args)
    planned = static["threshold_tokens"]
    assert aware["threshold_over_time_tokens"]["min"] > planned and aware["offload_frac"] < static["offload_frac"] - 0.03
    assert aware["egress_mean_gbit_per_s"] < 0.95 * 10
    for k in ("mean_s", "p90_s", "p99_s"):
        assert aware["ttft"][k] < 0.6 * static["ttft"][k]
    full = dict(load=0.8, duration_s=3600)
    s_full, a_full = simulate_scenario(sc, policy="static", **full), simulate_scenario(sc, policy="bandwidth-aware", **full)
    assert a_full["ttft"]["p90_s"] == pytest.approx(s_full["ttft"]["p90_s"], rel=0.05)
    assert abs(a_full["threshold_over_time_tokens"]["mean"] / planned - 1) < 0.05


def test_cache_aware_on_the_mooncake_trace():
    """mooncake-case-study (planned with one shared unlimited cache) replayed at 80% of its
    Lambda_max with a cache per cluster sized from HBM: static offloads ~50% (a conversation that
    began at PrfaaS looks uncached to the local cluster, so it is offloaded again) and loads
    PrfaaS to ~96%; cache-aware uses the prefix where it lives and lands near the planned 35%,
    with a lower P90 TTFT."""
    sc = load_scenario("mooncake-case-study")
    args = dict(trace="mooncake_fast25_conversation_trace", load=0.8)
    static = simulate_scenario(sc, policy="static", **args)
    aware = simulate_scenario(sc, policy="cache-aware", **args)
    assert static["offload_frac"] > 0.45 and abs(aware["offload_frac"] - 0.35) < 0.05
    assert aware["ttft"]["p90_s"] < 0.5 * static["ttft"]["p90_s"]
    assert aware["cache_hit_frac"] > static["cache_hit_frac"] and aware["ingress_mean_gbit_per_s"] > 0


def test_hbm_cache_capacity():
    """blocks = N x P x (HBM x usable - weights per GPU) / (512 x cache bytes per token): the case
    study's 4 x 8 H200 hold ~30K blocks (15M tokens), its 3 x 8 H20 ~8.8K."""
    sc = load_scenario("paper-case-study")
    dep = deployment(sc, optimize(sc, compare_modes=False))
    inst = dep.prfaas.service.instance
    free = inst.hw.memory_capacity_bytes * inst.hw.efficiency.memory_usable_frac - inst.weight_bytes_per_gpu()
    assert cache_capacity_blocks(dep.prfaas) == int(4 * 8 * free // (512 * inst.kv_write_bytes_per_token()))
    assert 25_000 < cache_capacity_blocks(dep.prfaas) < 35_000
    assert 5_000 < cache_capacity_blocks(dep.local) < 12_000
    assert cache_capacity_blocks(None) == 0
