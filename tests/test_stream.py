"""Streaming results (prfaas_plan/simulation/stream.py): exact percentiles while small, the
sketch within its stated relative error of numpy's order statistic (as DDSketch's tests check,
on seeded adversarial data), and a tally that is the same however the records are split."""

import numpy as np
import pytest

from prfaas_plan.simulation.metrics import results
from prfaas_plan.simulation.run import run
from prfaas_plan.simulation.stream import RELATIVE_ACCURACY, Quantiles

from test_fcfs import busy_requests, deployment

PCT = [0, 1, 10, 50, 90, 99, 99.9, 100]


def data(kind: str, n: int = 50_000) -> np.ndarray:
    rng = np.random.default_rng(7)
    if kind == "lognormal, heavy tail":
        return rng.lognormal(0.0, 3.0, n)
    if kind == "atoms and a spread":
        return np.concatenate([np.full(n // 2, 0.025), np.full(n // 4, 7.5), rng.uniform(1e-3, 1e4, n - n // 2 - n // 4)])
    if kind == "sorted ascending":
        return np.sort(rng.exponential(2.0, n))
    return np.sort(rng.exponential(2.0, n))[::-1].copy()


def test_few_values_are_exact():
    x = np.random.default_rng(1).exponential(1.0, 999)
    q = Quantiles()
    q.add(x[:500])
    q.add(x[500:])
    assert q.exact and q.quantiles(PCT) == list(np.percentile(x, PCT)) and q.mean() == pytest.approx(x.mean(), rel=1e-12)


@pytest.mark.parametrize("kind", ["lognormal, heavy tail", "atoms and a spread", "sorted ascending", "sorted descending"])
def test_sketch_is_within_its_relative_accuracy(kind):
    x = data(kind)
    q = Quantiles(exact_values=1000)
    for part in np.array_split(x, 13):
        q.add(part)
    assert not q.exact and q.n == len(x)
    got, want = np.array(q.quantiles(PCT)), np.quantile(x, np.array(PCT) / 100, method="lower")
    assert np.all(np.abs(got - want) <= RELATIVE_ACCURACY * want * (1 + 1e-9)), (got, want)
    assert q.mean() == pytest.approx(x.mean(), rel=1e-12)


def test_results_do_not_depend_on_how_the_records_are_sliced(monkeypatch):
    sim = run(deployment(), busy_requests(2000), duration_s=90.0)
    whole = results(sim, 10.0)
    monkeypatch.setattr("prfaas_plan.simulation.metrics.RESULT_CHUNK", 7)
    sliced = results(sim, 10.0)
    assert _close(whole, sliced)


def _close(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-12)
        return True
    assert a == b
    return True
