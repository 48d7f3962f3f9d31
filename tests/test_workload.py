"""Length distributions: closed forms against numerical integration, and the paper's numbers."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from prfaas_plan.errors import PlanError
from prfaas_plan.planning.workload import Empirical, Mixture, Scaled, TruncatedLogNormal, Workload, load_trace_csv

CASE = TruncatedLogNormal(9.90, 1.00, 128, 131072)


def _pdf(x, d=CASE):
    z = stats.norm.cdf((math.log(d.max_tokens) - d.mu) / d.sigma) - stats.norm.cdf((math.log(d.min_tokens) - d.mu) / d.sigma)
    return stats.lognorm.pdf(x, d.sigma, scale=math.exp(d.mu)) / z


@pytest.mark.parametrize("t", [500, 5_000, 19_400, 60_000, 120_000])
def test_lognormal_tail_and_partial_means_match_quadrature(t):
    """P(L > t), E[L | L > t] and E[L | L <= t] from the closed forms equal direct integration."""
    p = integrate.quad(_pdf, t, CASE.max_tokens, limit=200)[0]
    above = integrate.quad(lambda x: x * _pdf(x), t, CASE.max_tokens, limit=200)[0] / p
    below = integrate.quad(lambda x: x * _pdf(x), CASE.min_tokens, t, limit=200)[0] / (1 - p)
    assert CASE.tail_prob(t) == pytest.approx(p, rel=1e-6)
    assert CASE.mean_above(t) == pytest.approx(above, rel=1e-6)
    assert CASE.mean_below(t) == pytest.approx(below, rel=1e-6)


def test_case_study_distribution_matches_the_papers_derived_numbers():
    """prfaas-paper.md: with t = 19,400, p = 0.496, E[L|L>t] ~ 45K, E[L|L<=t] ~ 10.2K, E[L] ~ 27.5K."""
    assert CASE.tail_prob(19_400) == pytest.approx(0.496, abs=0.001)
    assert CASE.mean_above(19_400) == pytest.approx(45_000, rel=0.01)
    assert CASE.mean_below(19_400) == pytest.approx(10_200, rel=0.01)
    assert CASE.mean() == pytest.approx(27_500, rel=0.01)


def test_cells_conserve_mass_and_mean_and_expect_integrates():
    """Cells sum to 1 and keep E[L] exactly; expect() of a smooth function matches quadrature."""
    edges, mass, means = CASE.cells(512)
    assert mass.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(np.sum(mass * means)) == pytest.approx(CASE.mean(), rel=1e-12)
    f = lambda x: 0.4 + 4e-5 * x + 1e-10 * x**2  # noqa: E731  (a prefill-latency shape)
    exact = integrate.quad(lambda x: f(x) * _pdf(x), CASE.min_tokens, CASE.max_tokens, limit=400)[0]
    assert CASE.expect(f) == pytest.approx(exact, rel=1e-5)


def test_empirical_trace_and_histogram(tmp_path):
    """A CSV trace with counts is a discrete distribution; thresholds fall between recorded lengths."""
    path = tmp_path / "trace.csv"
    path.write_text("input_tokens,count\n1000,3\n4000,1\n")
    d = load_trace_csv(path, "test")
    assert d.mean() == pytest.approx((3 * 1000 + 4000) / 4)
    assert d.tail_prob(1000) == pytest.approx(0.25)
    assert d.tail_prob(999) == pytest.approx(1.0)
    assert d.mean_below(2000) == pytest.approx(1000)


@pytest.mark.parametrize("text, problem", [("input_tokens\nabc\n", "line 2"), ("tokens\n5\n", "input_tokens"), ("input_tokens,count\n10,-1\n", "weights")])
def test_bad_trace_is_one_clear_error(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PlanError, match=problem):
        load_trace_csv(path, "scenario.yaml: key 'workload.input_tokens.csv'")


def test_mixture_and_scaling():
    """A mixture's mean is the weighted mean; scaling by 0.5 (50% prefix hits) halves every length."""
    a, b = TruncatedLogNormal(7, 0.5, 64, 8192), TruncatedLogNormal(10, 0.5, 1024, 131072)
    m = Mixture((a, b), (0.25, 0.75))
    assert m.mean() == pytest.approx(0.25 * a.mean() + 0.75 * b.mean(), rel=1e-12)
    s = Scaled(CASE, 0.5)
    assert s.mean() == pytest.approx(CASE.mean() / 2, rel=1e-12)
    assert s.tail_prob(10_000) == pytest.approx(CASE.tail_prob(20_000), rel=1e-12)
    w = Workload(CASE, 1024, prefix_cache_hit_frac=0.5)
    assert w.uncached.mean() == pytest.approx(CASE.mean() / 2)
    assert w.decode_context_tokens() == pytest.approx(CASE.mean() + 512)  # decode holds the whole prompt


@pytest.mark.parametrize("args", [(9.9, 0.0, 128, 1000), (9.9, -1, 128, 1000), (9.9, 1.0, 1000, 128), (9.9, 1.0, 0, 1000), (60.0, 0.1, 128, 1000)])
def test_invalid_lognormal_parameters_raise(args):
    with pytest.raises(PlanError):
        TruncatedLogNormal(*args)


def test_invalid_workload_raises():
    with pytest.raises(PlanError, match="prefix_cache_hit_frac"):
        Workload(CASE, 1024, prefix_cache_hit_frac=1.0)
    with pytest.raises(PlanError, match="output"):
        Workload(CASE, 0)
    with pytest.raises(PlanError):
        Empirical.from_arrays([], [], "x")
