"""The optimizer against brute force, and the invariants a planner must keep."""

import itertools
import math

import numpy as np
import pytest

from prfaas_plan import units
from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.optimizer import cheapest_for, maximise
from prfaas_plan.planning.problem import Link, Problem, Range
from prfaas_plan.planning.throughput import ThroughputModel
from prfaas_plan.planning.workload import TruncatedLogNormal
from prfaas_plan.roofline.decode import decode_capacity
from prfaas_plan.roofline.prefill import PrefillModel

MODEL = load_model("prfaas-1t-hybrid")
H200, H20 = load_hardware("h200"), load_hardware("h20")
N_CELLS = 96  # coarse on purpose: brute force enumerates the same candidate thresholds


def throughput_model(rng, mode):
    lengths = TruncatedLogNormal(rng.uniform(8.0, 10.8), rng.uniform(0.4, 1.4), 128, 131072)
    use_profile = bool(rng.integers(2))
    remote = PrefillModel(MODEL, H200, 8, use_profile)
    local = PrefillModel(MODEL, H20, 8, use_profile)
    tpot_s = 1 / rng.uniform(20, 40) if use_profile else 1 / rng.uniform(20, 60)  # the profile has one point, at 25 ms
    decode = decode_capacity(MODEL, H20, 8, tpot_s, lengths.mean() + 512, use_profile)
    return ThroughputModel(MODEL, lengths, remote, local, decode, float(rng.integers(256, 2048)), mode, n_cells=N_CELLS)


def problem(tm, rng, **kw):
    base = dict(model=tm, remote_gpus_per_instance=8, local_gpus_per_instance=8,
                remote_usd_per_gpu_hour=float(rng.uniform(2, 6)), local_usd_per_gpu_hour=float(rng.uniform(0.8, 3)),
                prfaas=Range(0, 5), local=Range(0, 8), link=Link(fixed_gbit_per_s=100.0))
    base.update(kw)
    return Problem(**base)


def brute_best(pr: Problem, n_r_values, local_max, links):
    """Every integer deployment and link size, each at its best candidate threshold."""
    tm = pr.model
    best = []  # (lambda, cost)
    allowed = np.ones_like(tm.needs.offload_frac, bool)
    for n_r, n_p, n_d, link_gbit in itertools.product(n_r_values, range(local_max + 1), range(local_max + 1), links):
        if n_p + n_d > local_max or n_d == 0:
            continue
        link = units.gbit_per_s_to_bytes_per_s(link_gbit)
        lam = tm.evaluate(tm.needs, n_r, n_p, n_d, link)["throughput_req_per_s"]
        if n_r == 0:  # no PrfaaS instance: only "all local" is servable
            lam = np.where(tm.needs.offload_frac > 0, 0.0, lam)
        cost = n_r * pr.remote_instance_usd_per_hour() + (n_p + n_d) * pr.local_instance_usd_per_hour() + link_gbit * pr.link.usd_per_gbit_per_s_hour
        best.append((float(np.max(lam[allowed])), cost))
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mode", ["paper", "distribution"])
def test_fixed_fleet_is_never_beaten_by_brute_force(seed, mode):
    """Paper's problem (Eq. 7-8): fixed N_prfaas and N_p + N_d, choose t and the split."""
    rng = np.random.default_rng(seed)
    tm = throughput_model(rng, mode)
    n_r, n_local, link = int(rng.integers(1, 5)), int(rng.integers(2, 9)), float(rng.choice([5.0, 20.0, 100.0]))
    pr = problem(tm, rng, prfaas=Range.exactly(n_r), local=Range.exactly(n_local), link=Link(fixed_gbit_per_s=link))
    plan = maximise(pr)
    bf = max(lam for lam, _ in brute_best(pr, [n_r], n_local, [link]))
    assert plan.throughput_req_per_s >= bf * (1 - 1e-9)
    assert plan.n_prfaas == n_r and plan.n_pd_prefill + plan.n_pd_decode == n_local


@pytest.mark.parametrize("seed", range(8))
def test_budget_is_never_beaten_by_brute_force(seed):
    """Budget: counts, link size and t free; brute force over all counts within the ranges."""
    rng = np.random.default_rng(100 + seed)
    tm = throughput_model(rng, "distribution")
    sizes = (5.0, 10.0, 25.0, 100.0)
    price = 0.2
    link = Link(usd_per_gbit_per_s_hour=price, sizes_gbit_per_s=sizes, sizes_usd_per_hour=tuple(s * price for s in sizes))
    pr = problem(tm, rng, prfaas=Range(0, 4), local=Range(0, 6), link=link)
    cheapest_decode = pr.local_instance_usd_per_hour()
    budget = float(rng.uniform(1.5, 8) * cheapest_decode)
    pr = Problem(**{**pr.__dict__, "budget_usd_per_hour": budget})
    plan = maximise(pr)
    bf = max(lam for lam, cost in brute_best(pr, range(5), 6, (0.0, *sizes)) if cost <= budget * (1 + 1e-12))
    assert plan.cost_usd_per_hour <= budget * (1 + 1e-9)
    assert plan.throughput_req_per_s >= bf * (1 - 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_target_is_never_beaten_by_brute_force(seed):
    """Target: the cheapest deployment reaching a required req/s."""
    rng = np.random.default_rng(200 + seed)
    tm = throughput_model(rng, "paper")
    sizes = (10.0, 100.0)
    link = Link(usd_per_gbit_per_s_hour=0.3, sizes_gbit_per_s=sizes, sizes_usd_per_hour=(3.0, 30.0))
    pr = problem(tm, rng, prfaas=Range(0, 4), local=Range(0, 6), link=link)
    options = brute_best(pr, range(5), 6, (0.0, *sizes))
    target = float(rng.uniform(0.2, 0.8)) * max(lam for lam, _ in options)
    plan = cheapest_for(pr, target)
    bf_cost = min(cost for lam, cost in options if lam >= target)
    assert plan.throughput_req_per_s >= target * (1 - 1e-9)
    assert plan.cost_usd_per_hour <= bf_cost + 1e-9


def test_more_link_bandwidth_or_budget_never_lowers_throughput():
    rng = np.random.default_rng(7)
    tm = throughput_model(rng, "distribution")
    lams = [maximise(problem(tm, rng, prfaas=Range.exactly(4), local=Range.exactly(8), link=Link(fixed_gbit_per_s=b))).throughput_req_per_s
            for b in (0.5, 1, 2, 5, 10, 50, 100, 1000)]
    assert all(b >= a * (1 - 1e-9) for a, b in zip(lams, lams[1:]))
    base = problem(tm, rng, prfaas=Range(0, None), local=Range(0, None), link=Link(usd_per_gbit_per_s_hour=0.2))
    by_budget = [maximise(Problem(**{**base.__dict__, "budget_usd_per_hour": x})).throughput_req_per_s for x in (30, 60, 120, 250, 500, 1000)]
    assert all(b >= a * (1 - 1e-9) for a, b in zip(by_budget, by_budget[1:]))


def test_infinite_threshold_equals_the_local_only_plan():
    """t -> infinity routes nothing remotely: the needs equal those of the local-only option and
    Lambda equals the homogeneous (no PrfaaS) deployment of the same local instances."""
    rng = np.random.default_rng(3)
    tm = throughput_model(rng, "distribution")
    far = tm.needs_at(1e12)
    assert far.offload_frac[0] == 0.0
    assert far.t_local_s[0] == pytest.approx(tm.needs.t_local_s[-1], rel=1e-12)
    lam_far = tm.evaluate(far, 3, 5, 3, 1e9)["throughput_req_per_s"][0]
    local_only = maximise(problem(tm, rng, prfaas=Range.exactly(0), local=Range.exactly(8), thresholds="local-only"))
    best_split = max(tm.evaluate(far, 0, n_p, 8 - n_p, 0.0)["throughput_req_per_s"][0] for n_p in range(1, 8))
    assert local_only.throughput_req_per_s == pytest.approx(best_split, rel=1e-9)
    assert lam_far == pytest.approx(tm.evaluate(far, 0, 5, 3, 0.0)["throughput_req_per_s"][0], rel=1e-12)


def test_eq7_balance_holds_at_an_interior_optimum():
    """When prefill binds and 0 < p < 1, the refined t equalises Theta_prfaas/p and Theta_pd_p/(1-p)."""
    rng = np.random.default_rng(11)
    for mode in ("paper", "distribution"):
        tm = ThroughputModel(MODEL, TruncatedLogNormal(9.9, 1.0, 128, 131072), PrefillModel(MODEL, H200, 8), PrefillModel(MODEL, H20, 8),
                             decode_capacity(MODEL, H20, 8, 0.025, 28_000), 1024, mode)
        plan = maximise(problem(tm, rng, prfaas=Range.exactly(4), local=Range.exactly(8)))
        m = plan.metrics
        assert 0 < plan.needs.offload_frac[0] < 1
        assert m["cap_prfaas_req_per_s"][0] == pytest.approx(m["cap_pd_prefill_req_per_s"][0], rel=1e-4)


def test_infeasible_budget_and_target_are_clear_errors():
    rng = np.random.default_rng(5)
    tm = throughput_model(rng, "distribution")
    pr = problem(tm, rng, prfaas=Range(0, 4), local=Range(0, 6), link=Link(usd_per_gbit_per_s_hour=0.1), budget_usd_per_hour=1.0)
    with pytest.raises(PlanError, match="budget"):
        maximise(pr)
    with pytest.raises(PlanError, match="target"):
        cheapest_for(problem(tm, rng), 1e6)
    with pytest.raises(PlanError, match="unbounded"):
        maximise(problem(tm, rng, prfaas=Range(0, None), local=Range(0, None), link=Link()))
    with pytest.raises(PlanError):
        Range(3, 1)


def test_ten_thousand_gpu_budget_plan_is_consistent():
    """At ~10,000 GPUs the plan stays within budget and its counts reproduce its throughput."""
    rng = np.random.default_rng(0)
    tm = ThroughputModel(MODEL, TruncatedLogNormal(9.9, 1.0, 128, 131072), PrefillModel(MODEL, H200, 8), PrefillModel(MODEL, H20, 8),
                         decode_capacity(MODEL, H20, 8, 0.025, 28_000), 1024, "distribution")
    pr = problem(tm, rng, prfaas=Range(0, None), local=Range(0, None), link=Link(usd_per_gbit_per_s_hour=0.0),
                 remote_usd_per_gpu_hour=4.5, local_usd_per_gpu_hour=2.25, budget_usd_per_hour=30_000)
    plan = maximise(pr)
    gpus = 8 * (plan.n_prfaas + plan.n_pd_prefill + plan.n_pd_decode)
    assert 8_000 < gpus < 14_000
    assert plan.cost_usd_per_hour <= 30_000
    again = tm.evaluate(plan.needs, plan.n_prfaas, plan.n_pd_prefill, plan.n_pd_decode, plan.link_bytes_per_s)["throughput_req_per_s"][0]
    assert again == pytest.approx(plan.throughput_req_per_s, rel=1e-12)
    assert math.isfinite(plan.threshold_tokens)
