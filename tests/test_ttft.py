"""The analytic TTFT model (prfaas_plan/latency/ttft.py): hand-computable cases, invariants over
load, the zero-load limit, unstable loads, and Table 6's TTFTs."""

import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import Deployment, PrefillPool, deployment, exposed_transfer_s
from prfaas_plan.latency.queueing import erlang_c
from prfaas_plan.latency.ttft import QUANTILE_RTOL, ttft
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.workload import Empirical

from fakes import Linear


def tiny(lengths=(1000.0,), weights=(1.0,), threshold=math.inf, local=(1.0, 0.0), remote=None, instances=1,
         link_bytes_per_s=0.0, rtt_s=0.0, slots=1000, step_s=0.01, output_tokens=10.0, alone=None):
    """A deployment whose every number is chosen by the test."""
    model = load_scenario("paper-case-study").model
    service = Linear(*local)
    lpool = PrefillPool("pd-prefill", instances, service, Linear(*(alone or local)))
    rpool = PrefillPool("prfaas", instances, Linear(*remote), Linear(*remote)) if remote else None
    return Deployment("prfaas", model, Empirical.from_arrays(lengths, weights), threshold, rpool, lpool,
                      link_bytes_per_s, rtt_s, slots, 1, step_s, output_tokens)


def test_zero_load_ttft_is_service_time_plus_first_step():
    """One length, no queue: TTFT = T(l) + one decode step, for every statistic."""
    lat = ttft(tiny(local=(0.5, 0.0)), 0.0)
    for v in (lat.ttft_mean_s, lat.ttft_p50_s, lat.ttft_p90_s, lat.ttft_p99_s):
        assert v == pytest.approx(0.51, rel=1e-6)


def test_md1_mean_wait_is_pollaczek_khinchine():
    """One instance, one prompt length (deterministic 1 s service) at 0.5 req/s: M/D/1,
    E[W] = rho S / (2 (1 - rho)) = 0.5 s; the decode pool (1,000 slots) never waits."""
    lat = ttft(tiny(local=(1.0, 0.0)), 0.5)
    assert lat.paths["local"].wait_mean_s == pytest.approx(0.5, rel=1e-9)
    assert lat.ttft_mean_s == pytest.approx(1.0 + 0.5 + 0.01, rel=1e-6)


def test_mdc_wait_probability_is_erlang_c():
    """Three instances at 2.4 Erlang: P(wait) is Erlang C, the mean halved for deterministic service."""
    lat = ttft(tiny(local=(1.0, 0.0), instances=3), 2.4)
    c = erlang_c(3, 2.4)
    assert lat.paths["local"].p_wait == pytest.approx(c, rel=1e-12)
    assert lat.paths["local"].wait_mean_s == pytest.approx(c * 1.0 / (3 - 2.4) / 2, rel=1e-9)


def test_percentiles_of_an_atom_plus_exponential_wait():
    """M/D/1 at rho 0.5: P(W > x) = 0.5 exp(-x / 1) (Allen-Cunneen tail, mean if waiting 1 s),
    so P90 of TTFT = S + ln(0.5 / 0.1) + step and P50 = S + step (half the requests never wait)."""
    lat = ttft(tiny(local=(1.0, 0.0)), 0.5)
    assert lat.ttft_p90_s == pytest.approx(1.0 + math.log(5) + 0.01, rel=1e-6)
    assert lat.ttft_p50_s == pytest.approx(1.01, rel=1e-6)


def test_latency_regime_adds_to_the_wait_of_the_service_regime():
    """The queue is priced with the service (throughput) time, the request's own prefill with
    the latency time: at zero load TTFT = latency time; the wait at load uses service times."""
    d = tiny(local=(0.5, 0.0), alone=(2.0, 0.0))
    assert ttft(d, 0.0).ttft_mean_s == pytest.approx(2.01, rel=1e-6)
    assert ttft(d, 1.0).paths["local"].utilisation_frac == pytest.approx(0.5, rel=1e-12)


def test_threshold_splits_requests_between_paths():
    """Two lengths, t between them: the long one goes remote (RTT added), the short one local."""
    d = tiny(lengths=(1000.0, 9000.0), weights=(3.0, 1.0), threshold=5000.0, local=(0.0, 1e-3), remote=(0.0, 1e-4),
             link_bytes_per_s=1e12, rtt_s=0.05)
    lat = ttft(d, 0.0)
    assert lat.paths["prfaas"].share_frac == pytest.approx(0.25)
    kv = d.kv_bytes(9000.0)
    remote = 0.9 + float(np.squeeze(exposed_transfer_s(kv, 0.9, 1e12, d.model.num_layers))) + 0.05 + 0.01
    assert lat.paths["prfaas"].ttft_mean_s == pytest.approx(remote, rel=1e-9)
    assert lat.paths["local"].ttft_mean_s == pytest.approx(1.01, rel=1e-9)
    assert lat.ttft_mean_s == pytest.approx(0.75 * 1.01 + 0.25 * remote, rel=1e-9)


def test_exposed_transfer_hand_values():
    """1 GB at 1 GB/s behind a 0.4 s prefill: 0.6 s left; behind a 10 s prefill: the last of 50 layers."""
    assert exposed_transfer_s(1e9, 0.4, 1e9, 50)[()] == pytest.approx(0.6)
    assert exposed_transfer_s(1e9, 10.0, 1e9, 50)[()] == pytest.approx(0.02)


@pytest.mark.parametrize("load", [1.0, 1.5])
def test_unstable_load_is_one_clear_error(load):
    with pytest.raises(PlanError, match="unstable"):
        ttft(tiny(local=(1.0, 0.0)), load)


def test_link_overload_is_unstable():
    d = tiny(lengths=(9000.0,), threshold=0.0, remote=(0.1, 0.0), link_bytes_per_s=1e6)
    with pytest.raises(PlanError, match="link .* unstable"):
        ttft(d, 1.0)


def _case_study(mode: str) -> dict:
    sc = load_scenario("paper-case-study")
    r = optimize(sc, mode=mode, compare_modes=False)
    plans = {"prfaas": r, **r["baselines"]}
    return {k: (deployment(sc, plans[k], k, mode), plans[k]["throughput_req_per_s"]) for k in ("prfaas", "homogeneous", "naive")}


@pytest.fixture(scope="module")
def case_study():
    """The case study planned in distribution mode: capacities are E[T(L)] over each slice, the
    same service times the queues see, so Lambda_max is where a queue saturates."""
    return _case_study("distribution")


@pytest.fixture(scope="module")
def case_study_paper():
    """Paper mode (Theta = N / T(E[L]), the paper's own semantics) for Table 6."""
    return _case_study("paper")


@pytest.mark.parametrize("kind", ["prfaas", "homogeneous", "naive"])
def test_latency_never_falls_with_load(case_study, kind):
    d, lam = case_study[kind]
    prev = None
    for frac in (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.97):
        lat = ttft(d, frac * lam)
        stats = (lat.ttft_mean_s, lat.ttft_p50_s, lat.ttft_p90_s, lat.ttft_p99_s)
        assert lat.ttft_p50_s <= lat.ttft_p90_s <= lat.ttft_p99_s
        if prev is not None:
            assert all(b >= a * (1 - 2 * QUANTILE_RTOL) for a, b in zip(prev, stats))  # percentiles are bisected to QUANTILE_RTOL
        prev = stats


@pytest.mark.parametrize("kind", ["prfaas", "homogeneous", "naive"])
def test_lambda_max_is_where_latency_diverges(case_study, kind):
    """Just below Lambda_max the model answers; at it, it refuses (the binding pool saturates)."""
    d, lam = case_study[kind]
    assert math.isfinite(ttft(d, 0.999 * lam).ttft_p90_s)
    with pytest.raises(PlanError, match="unstable"):
        ttft(d, lam * 1.0001)


TABLE6_TTFT = {"prfaas": (2.22, 3.51), "homogeneous": (4.44, 9.73), "naive": (1.74, 3.51)}


@pytest.mark.parametrize("kind", ["prfaas", "homogeneous", "naive"])
def test_table6_ttft_within_5_percent_at_zero_load(case_study_paper, kind):
    """[PRFAAS] Table 6's TTFTs are zero-load service times (shared reference, section 5)."""
    lat = ttft(case_study_paper[kind][0], 0.0)
    mean, p90 = TABLE6_TTFT[kind]
    assert lat.ttft_mean_s == pytest.approx(mean, rel=0.05)
    assert lat.ttft_p90_s == pytest.approx(p90, rel=0.05)
