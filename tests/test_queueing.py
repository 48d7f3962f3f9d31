"""Queueing in a prefill pool (prfaas_plan/latency/queueing.py) against closed forms and a
direct simulation of a FCFS multi-server queue."""

import heapq
import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.queueing import erlang_b, erlang_c, pool_wait


def erlang_c_by_definition(c: int, a: float) -> float:
    """C(c, a) = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a)))."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def test_erlang_c_hand_value():
    """Two servers at one Erlang: C = (1/2 * 2) / (1 + 1 + 1) = 1/3."""
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("c", [1, 2, 3, 5, 8, 20, 60])
@pytest.mark.parametrize("rho", [0.05, 0.3, 0.7, 0.95])
def test_erlang_c_matches_its_definition(c, rho):
    assert erlang_c(c, rho * c) == pytest.approx(erlang_c_by_definition(c, rho * c), rel=1e-10)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_mm1_closed_forms(rho):
    """M/M/1: P(wait) = rho, E[W] = rho E[S] / (1 - rho), P(W > x) = rho exp(-(mu - lambda) x)."""
    service_s = 2.0
    w = pool_wait(1, rho / service_s, service_s)
    assert w.p_wait == pytest.approx(rho, rel=1e-12)
    assert w.mean_s == pytest.approx(rho * service_s / (1 - rho), rel=1e-12)
    mu, lam = 1 / service_s, rho / service_s
    assert w.survival(3.0) == pytest.approx(rho * math.exp(-(mu - lam) * 3.0), rel=1e-12)
    assert w.survival(w.quantile_s(0.95)) == pytest.approx(0.05, rel=1e-9)


@pytest.mark.parametrize("cv2", [0.0, 0.5, 2.0])
def test_mg1_is_pollaczek_khinchine(cv2):
    """For one server Allen-Cunneen is exact in the mean: E[W] = rho E[S] (1 + cv^2) / (2 (1 - rho))."""
    service_s, rho = 1.5, 0.8
    w = pool_wait(1, rho / service_s, service_s, cv2)
    assert w.mean_s == pytest.approx(rho * service_s * (1 + cv2) / (2 * (1 - rho)), rel=1e-12)


def simulate_fcfs(servers: int, lam: float, service, n: int, seed: int) -> np.ndarray:
    """Waiting times of n Poisson arrivals in a FCFS pool (each takes the first free server)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    services = service(rng, n)
    free = [0.0] * servers
    waits = np.empty(n)
    for i, (t, s) in enumerate(zip(arrivals, services)):
        start = max(t, heapq.heappop(free))
        waits[i] = start - t
        heapq.heappush(free, start + s)
    return waits[n // 10:]  # drop the warm-up


@pytest.mark.parametrize("servers,rho", [(1, 0.7), (4, 0.8), (10, 0.85)])
def test_mmc_against_simulation(servers, rho):
    """M/M/c: P(wait), mean wait and the P95 of the wait within a few percent of 600k simulated
    requests (exact formulas; the tolerance is the simulation's noise: at rho = 0.85 and 1M
    requests, P(wait) spreads by ~1% between seeds, the mean wait by ~2%)."""
    service_s = 1.0
    lam = rho * servers / service_s
    waits = simulate_fcfs(servers, lam, lambda rng, n: rng.exponential(service_s, n), 600_000, seed=servers)
    w = pool_wait(servers, lam, service_s)
    assert np.mean(waits > 0) == pytest.approx(w.p_wait, rel=0.03)
    assert np.mean(waits) == pytest.approx(w.mean_s, rel=0.06)
    assert np.quantile(waits, 0.95) == pytest.approx(w.quantile_s(0.95), rel=0.06)


def test_mdc_allen_cunneen_is_close_to_simulation():
    """M/D/c: Allen-Cunneen's mean wait (half the M/M/c one) within 10% of simulation."""
    servers, rho, service_s = 4, 0.8, 1.0
    lam = rho * servers / service_s
    waits = simulate_fcfs(servers, lam, lambda rng, n: np.full(n, service_s), 200_000, seed=7)
    assert np.mean(waits) == pytest.approx(pool_wait(servers, lam, service_s, 0.0).mean_s, rel=0.10)


@pytest.mark.parametrize("rho", [1.0, 1.5])
def test_an_unstable_pool_is_an_error_not_infinity(rho):
    with pytest.raises(PlanError, match="unstable"):
        pool_wait(3, rho * 3 / 2.0, 2.0)


def test_no_load_no_wait():
    w = pool_wait(2, 0.0, 1.0)
    assert w.mean_s == 0 and w.quantile_s(0.99) == 0


@pytest.mark.parametrize("servers, load", [(10_001, 9_000.0), (12_000, 11_990.0), (20_000, 19_900.0), (200_000, 199_000.5)])
def test_erlang_b_poisson_form_equals_the_recursion(servers, load):
    """Issue 14: above ERLANG_RECURSION_SERVERS servers Erlang B is read in its Poisson form
    (cost ~sqrt(a), not c: a 10^8-slot fleet hung the latency for minutes); it agrees with the
    exact recursion to 1e-12."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    assert erlang_b(servers, load) == pytest.approx(b, rel=1e-12)
