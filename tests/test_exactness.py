"""Issue #9, planning side: each reproducer of the fuzzing pass, and the optimizer against a
brute force that searches the threshold continuously (tests/bruteforce.py)."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import yaml

from bruteforce import LOCAL_MAX, PRFAAS_MAX, best_throughput, cheapest_cost, random_problem
from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.optimizer import cheapest_for, maximise
from prfaas_plan.planning.problem import Link, Range
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.workload import Empirical, Mixture, TruncatedLogNormal

CASE = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())
LOGNORMAL = CASE["workload"]["input_tokens"]


def scenario(tmp_path, name="case", **changes):
    """paper-case-study with dotted keys changed (``workload__input_tokens__sigma=0.1``)."""
    data = yaml.safe_load(yaml.safe_dump(CASE))
    data["name"] = name
    for key, value in changes.items():
        *path, last = key.split("__")
        node = data
        for p in path:
            node = node[p]
        node[last] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


# -- the optimizer against a continuous brute force -------------------------------------------------
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("objective", ["fixed-fleet", "budget"])
def test_no_deployment_at_any_threshold_beats_the_optimizer(objective, seed):
    """Every integer deployment, t on a fine log grid (and every trace atom) refined by
    golden-section search: none reaches more than the optimizer's Lambda (gap <= 1e-6)."""
    problem, _ = random_problem(np.random.default_rng(1000 + seed), objective)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        brute, _ = best_throughput(problem, LOCAL_MAX, PRFAAS_MAX)
    try:
        plan = maximise(problem)
    except PlanError:
        assert brute == 0.0  # infeasible for both
        return
    assert plan.throughput_req_per_s > 0
    assert brute <= plan.throughput_req_per_s * (1 + 1e-6)


@pytest.mark.parametrize("seed", range(10))
def test_no_deployment_reaching_the_target_is_cheaper(seed):
    problem, target = random_problem(np.random.default_rng(2000 + seed), "target")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        brute = cheapest_cost(problem, target, LOCAL_MAX, PRFAAS_MAX)
    try:
        plan = cheapest_for(problem, target)
    except PlanError:
        assert brute == math.inf
        return
    assert plan.throughput_req_per_s >= target * (1 - 1e-9)
    assert plan.cost_usd_per_hour <= brute * (1 + 1e-6)


def test_an_interior_threshold_beats_every_cell_boundary():
    """On a 16-cell grid the best threshold of a fixed fleet lies inside a cell: the optimizer
    finds a Lambda above the best any boundary threshold gives for any split."""
    problem, _ = random_problem(np.random.default_rng(7), "fixed-fleet")
    tm = problem.model
    tm16 = type(tm)(tm.model, TruncatedLogNormal(9.9, 1.0, 128, 131072), tm.remote, tm.local, tm.decode, tm.output_tokens, "distribution", n_cells=16)
    fleet = replace(problem, model=tm16, prfaas=Range.exactly(4), local=Range.exactly(8), link=Link(fixed_gbit_per_s=100.0))
    plan = maximise(fleet)
    boundary_best = max(float(np.max(tm16.evaluate(tm16.needs, 4, n_p, 8 - n_p, 12.5e9)["throughput_req_per_s"])) for n_p in range(8))
    assert plan.throughput_req_per_s > boundary_best * (1 + 1e-4)
    assert not np.any(np.isclose(plan.threshold_tokens, tm16.needs.threshold_tokens, rtol=1e-9))


# -- reproducers --------------------------------------------------------------------------------------
def test_tight_lengths_with_no_prfaas_instance_plan_local_only(tmp_path):
    """Defect 1: sigma 0.1 with prfaas.instances 0 raised `math domain error` (log(0))."""
    result = optimize(scenario(tmp_path, workload__input_tokens__sigma=0.1, prfaas__instances=0), compare_modes=True)
    assert result["threshold_tokens"] is None and result["n_prfaas"] == 0
    assert result["throughput_req_per_s"] > 0


def test_no_plan_serves_zero_requests(tmp_path):
    """Defect 2: one local instance cannot both prefill and decode: a clear error, never a
    0/0/0 plan at 0 req/s."""
    sc = scenario(tmp_path, prfaas__instances=0, local__instances=1, workload__output_tokens=256)
    with pytest.raises(PlanError, match="can serve any traffic"):
        optimize(sc)


def test_an_unaffordable_budget_is_named():
    sc = load_scenario("budget-case-study")
    with pytest.raises(PlanError, match="below the cheapest deployment"):
        optimize(sc, budget_usd_per_hour=10.0)


def test_a_huge_budget_is_planned_not_called_unbounded():
    """Defect 9: a budget of 1e15 $/hour was told "throughput is unbounded: give a budget"."""
    result = optimize(load_scenario("budget-case-study"), budget_usd_per_hour=1e15, compare_modes=False)
    assert math.isfinite(result["throughput_req_per_s"]) and result["throughput_req_per_s"] > 1e9
    assert result["cost_usd_per_hour"] <= 1e15


def test_a_tiny_target_keeps_the_main_plan():
    """Defect 4: the main plan was lost when only a baseline was infeasible."""
    result = optimize(load_scenario("budget-case-study"), target_req_per_s=1e-20, compare_modes=False)
    assert result["throughput_req_per_s"] >= 1e-20
    assert set(result["baselines"]) == {"homogeneous", "homogeneous_equal_cost", "naive"}
    assert all(b is not None or name in result["baseline_errors"] or name == "naive" for name, b in result["baselines"].items())


def test_split_cells_in_an_underflowing_tail_stay_valid():
    """Defect 4: a split cell of mass ~1e-19 gave a mean outside its cell (a non-positive
    prefill time). Thresholds everywhere, at and next to every boundary, give finite needs and
    side means inside the support."""
    problem, _ = random_problem(np.random.default_rng(3), "fixed-fleet")
    tm = problem.model
    tm = type(tm)(tm.model, TruncatedLogNormal(9.9, 0.05, 128, 131072), tm.remote, tm.local, tm.decode, tm.output_tokens, "distribution", n_cells=256)
    edges = tm.needs.threshold_tokens[1:]
    ts = np.concatenate([edges, edges * (1 + 1e-15), edges * (1 - 1e-13), np.geomspace(128, 131072, 5000)])
    n = tm.needs_at(ts)
    for a in (n.remote_s, n.local_s, n.link_bytes, n.offload_frac):
        assert np.all(np.isfinite(a)) and np.all(a >= 0)
    for side in (n.long_tokens, n.short_tokens):
        ok = np.isfinite(side)
        assert np.all((side[ok] >= 128 * (1 - 1e-9)) & (side[ok] <= 131072))


def test_lognormal_plus_trace_mixture_plans_and_places_the_share_exactly(tmp_path):
    """Defects 4 and 5: a log-normal + trace mixture was refused ("lengths must be >= 1") or its
    offloaded share was off by up to 1.1 points (the log-normal was lumped at cell means)."""
    (tmp_path / "t.csv").write_text("input_tokens,count\n1000,5\n40000,3\n")
    mix = {"kind": "mixture", "components": [{"weight": 1, "distribution": LOGNORMAL},
                                             {"weight": 1, "distribution": {"kind": "trace", "csv": "t.csv"}}]}
    result = optimize(scenario(tmp_path, workload__input_tokens=mix), compare_modes=False)
    assert result["throughput_req_per_s"] > 0
    ln = TruncatedLogNormal(LOGNORMAL["mu"], LOGNORMAL["sigma"], LOGNORMAL["min_tokens"], LOGNORMAL["max_tokens"])
    tr = Empirical.from_arrays([1000, 40000], [5, 3])
    problem, _ = random_problem(np.random.default_rng(0), "fixed-fleet")
    tm = problem.model
    tm = type(tm)(tm.model, Mixture.of([ln, tr], [1, 1]), tm.remote, tm.local, tm.decode, tm.output_tokens, "distribution", n_cells=64)
    ts = np.array([500.0, 999.0, 1000.0, 1001.0, 7777.0, 19400.0, 39999.0, 40000.0, 90000.0])
    expected = 0.5 * np.array([ln.tail_prob(t) for t in ts]) + 0.5 * np.array([tr.tail_prob(t) for t in ts])
    assert tm.needs_at(ts).offload_frac == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("change", [
    {"workload__input_tokens": {"kind": "mixture", "components": [{"weight": 1e308, "distribution": LOGNORMAL},
                                                                  {"weight": 1e308, "distribution": {**LOGNORMAL, "mu": 8.0}}]}},
    {"workload__input_tokens__max_tokens": 1e300},
])
def test_extreme_weights_and_bounds_give_finite_plans(tmp_path, change):
    """Defect 5: mixture weights of 1e308 (their sum overflows) or max_tokens 1e300 (0 x inf in
    an empty cell) gave `null` throughput."""
    result = optimize(scenario(tmp_path, **change), compare_modes=True)
    for key in ("throughput_req_per_s", "offload_frac", "egress_gbit_per_s"):
        assert math.isfinite(result[key]), key
    assert math.isfinite(result["other_mode"]["throughput_req_per_s"])


def test_trace_counts_of_1e308_are_normalised():
    e = Empirical.from_arrays([100, 1000, 5000], [1e308, 1e308, 1e308])
    assert e.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_max_tokens_far_beyond_the_mass_keeps_a_fine_grid():
    """A truncation at 1e300 tokens does not coarsen the cells: the distribution-mode needs equal
    those of the same log-normal truncated where its mass ends, to 1e-6."""
    far = TruncatedLogNormal(9.9, 1.0, 128, 1e300)
    near = TruncatedLogNormal(9.9, 1.0, 128, math.exp(9.9 + 8))
    assert far.mean() == pytest.approx(near.mean(), rel=1e-9)
    _, mass, means = far.cells(2048)
    assert np.sum(mass * means) == pytest.approx(far.mean(), rel=1e-9)
    assert np.sum(means < math.exp(9.9 + 8)) >= 2000  # the cells sit where the mass is


def test_a_lognormal_too_wide_for_floating_point_is_a_clear_error():
    with pytest.raises(PlanError, match="too wide"):
        TruncatedLogNormal(9.9, 50.0, 128, 131072)
    assert 128 < TruncatedLogNormal(9.9, 20.0, 128, 131072).mean() < 131072  # wide but representable
