"""A latency SLO as a lower bound on a pool's instance count (prfaas_plan/latency/slo.py):
hand-computed cases, minimality over a grid, and the claim the planners rely on - a pool below
its bound misses the SLO in the full analytic model (the bound is necessary)."""

import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.queueing import pool_wait
from prfaas_plan.latency.slo import min_instances_for_slo, pool_slo_excess
from prfaas_plan.latency.ttft import ttft
from prfaas_plan.planning.problem import TtftSlo

from test_ttft import tiny

P90_2S = TtftSlo(p90_s=2.0)


def test_mm1_hand_value():
    """lambda 0.5 req/s, E[S] 1 s, exponential service, no delay, P90 <= 2 s.
    c = 1: P(W > 2) = rho exp(-(mu - lambda) 2) = 0.5 e^-1 = 0.184 > 0.1, fails.
    c = 2: C(2, 0.5) = 0.1 (B(2) = 1/13, C = B / (1 - rho (1 - B))), P(W > 2) = 0.1 e^-3 < 0.1."""
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.0], [1.0], P90_2S) == 2


def test_share_scales_the_tail_allowance():
    """The same pool carrying half the traffic may hold up to 20% of its requests over 2 s:
    0.184 <= 0.2, one instance is enough."""
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.0], [1.0], P90_2S, share_frac=0.5) == 1


def test_max_utilisation_rule_of_thumb():
    """0.5 Erlang at most 20% utilised: c >= 2.5, so 3 (the SLO alone needs 2)."""
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.0], [1.0], P90_2S, max_utilisation_frac=0.2) == 3


def test_mean_slo_hand_value():
    """M/M/1 mean wait rho E[S] / (1 - rho) = 1 s at rho 0.5, plus a 0.5 s delay: 1.5 s misses a
    1.2 s mean SLO; two servers wait 0.1 / 1.5 = 0.067 s on average and meet it."""
    slo = TtftSlo(mean_s=1.2)
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.5], [1.0], slo) == 2
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.5], [1.0], TtftSlo(mean_s=1.6)) == 1


def test_delays_alone_break_the_slo():
    """A quarter of the pool's requests take 3 s by themselves: no count meets P90 <= 2 s."""
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.1, 3.0], [0.75, 0.25], P90_2S) is None


def test_decode_slots_count_in_instances():
    """Servers come in groups (decode: BS_max slots per instance): 2 servers needed -> 1 instance of 4."""
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.0], [1.0], P90_2S, servers_per_instance=4) == 1


def test_no_arrivals_need_no_instances():
    assert min_instances_for_slo(0.0, 1.0, 1.0, [0.0], [1.0], P90_2S) == 0


def test_max_instances_caps_the_search():
    """An SLO that needs 2 instances cannot be met within 1."""
    assert min_instances_for_slo(0.5, 1.0, 1.0, [0.0], [1.0], P90_2S, max_instances=1) is None


@pytest.mark.parametrize("bad", [dict(arrival_req_per_s=-1.0), dict(mean_service_s=0.0), dict(share_frac=0.0),
                                 dict(max_utilisation_frac=1.5), dict(delay_mass=[-1.0])])
def test_bad_inputs_are_refused(bad):
    args = dict(arrival_req_per_s=0.5, mean_service_s=1.0, service_cv2=1.0, delay_s=[0.0], delay_mass=[1.0], slo=P90_2S)
    args.update(bad)
    with pytest.raises(PlanError):
        min_instances_for_slo(**args)


@pytest.mark.parametrize("lam", [0.3, 2.0, 9.0, 40.0])
@pytest.mark.parametrize("cv2", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("slo", [TtftSlo(p90_s=1.5), TtftSlo(p99_s=2.5), TtftSlo(mean_s=1.1), TtftSlo(p90_s=1.5, p99_s=3.0)])
def test_the_count_is_the_smallest_that_meets(lam, cv2, slo):
    """Minimality over a grid: the answer meets the SLO (pool alone) and one fewer does not."""
    d, m = np.array([0.2, 0.6, 1.0]), np.array([0.5, 0.3, 0.2])
    c = min_instances_for_slo(lam, 0.8, cv2, d, m, slo, arrival_cv2=1.5)
    assert c is not None and c >= 1

    def excess(n):
        return pool_slo_excess(pool_wait(n, lam, 0.8, cv2, 1.5), d, m, slo) if n > lam * 0.8 else math.inf

    assert excess(c) <= 1e-9
    assert excess(c - 1) > 1e-9


@pytest.mark.parametrize("lam", [1.5, 4.0, 8.0])
@pytest.mark.parametrize("slo", [TtftSlo(p90_s=1.6), TtftSlo(p99_s=2.4), TtftSlo(mean_s=1.05)])
def test_below_the_bound_the_full_model_misses(lam, slo):
    """The bound is necessary: a one-pool deployment with one instance fewer than the bound
    misses the SLO in the full analytic TTFT (which adds the decode step and the decode wait)."""
    local = (0.0, 1e-3)  # T(l) = l / 1000 s, service = latency
    lengths, weights = (400.0, 900.0, 1400.0), (0.5, 0.3, 0.2)
    d = np.array(lengths) * 1e-3
    cv2 = float(np.average((d - np.average(d, weights=weights)) ** 2, weights=weights) / np.average(d, weights=weights) ** 2)
    c = min_instances_for_slo(lam, float(np.average(d, weights=weights)), cv2, d, weights, slo)
    assert c is not None and c >= 2

    if c - 1 <= lam * float(np.average(d, weights=weights)):  # unstable below the bound: no finite TTFT
        with pytest.raises(PlanError):
            ttft(tiny(lengths, weights, local=local, instances=c - 1, step_s=1e-3), lam)
        return
    lat = ttft(tiny(lengths, weights, local=local, instances=c - 1, step_s=1e-3), lam)
    misses = [slo.p90_s is not None and lat.ttft_p90_s > slo.p90_s, slo.p99_s is not None and lat.ttft_p99_s > slo.p99_s,
              slo.mean_s is not None and lat.ttft_mean_s > slo.mean_s]
    assert any(misses)
