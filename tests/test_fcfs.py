"""The FCFS fast path (prfaas_plan/simulation/fcfs.py) against the event loop: the same requests
give the same per-request timestamps (to 1e-9 s) and the same results, with queues in every pool,
a processor-sharing link where transfers overlap, a per-transfer cap, and chunk boundaries inside
busy periods; and the simulator picks it only where it applies."""

import math

import numpy as np
import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import Deployment, PrefillPool
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.workload import Empirical
from prfaas_plan.simulation import arrivals
from prfaas_plan.simulation.fcfs import FcfsRun
from prfaas_plan.simulation.metrics import results
from prfaas_plan.simulation.policies import make_policy
from prfaas_plan.simulation.run import run, simulate

from fakes import Linear

MODEL = load_scenario("paper-case-study").model
STAMPS = ("route", "uncached", "cached", "kv_bytes", "join", "start", "free", "kv", "ready", "admit", "done")


def deployment(threshold=4000.0, n_local=2, n_remote=3, link_bytes_per_s=2e10, cap=math.inf, decode_instances=3, batch=2):
    """Local prefill 0.05 s + 50 us/token on 2 instances, PrfaaS 0.02 s + 10 us/token on 3, a link
    on which one ~0.2-0.3 GB KV transfer alone takes ~10-15 ms, 6 decode slots."""
    local = PrefillPool("pd-prefill", n_local, Linear(0.05, 5e-5), Linear(0.05, 5e-5)) if n_local else None
    remote = PrefillPool("prfaas", n_remote, Linear(0.02, 1e-5), Linear(0.02, 1e-5)) if n_remote else None
    return Deployment("prfaas", MODEL, Empirical.from_arrays([1000.0], [1.0]), threshold, remote, local, link_bytes_per_s, 0.005,
                      decode_instances, batch, 0.01, 20.0, transfer_cap_bytes_per_s=cap)


def busy_requests(n=3000, rate=25.0, seed=3):
    """Poisson arrivals and log-uniform lengths 500..12,000 tokens: both prefill pools, the link
    and the decode slots see queues."""
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.exponential(1 / rate, n))
    u = np.exp(rng.uniform(np.log(500), np.log(12_000), n))
    return arrivals.Requests(a, u * 1.25, u, np.round(rng.uniform(1, 40, n)))


def both(dep, reqs, chunk, warmup_s=10.0):
    duration = float(reqs.arrival_s[-1]) + 1.0
    sim = run(dep, reqs, duration_s=duration)
    fast = FcfsRun(dep, reqs, make_policy("static", dep.threshold_tokens), duration, 1.0, warmup_s, 5.0, keep_records=True, chunk=chunk)
    return sim, fast, results(sim, warmup_s), results(fast, warmup_s)


def flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flat(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


@pytest.mark.parametrize("label, kwargs, chunk", [
    ("link shared, chunks of 97", {}, 97),
    ("one chunk", {}, 1 << 20),
    ("capped transfers (4 Gbit/s each)", {"cap": 5e8}, 211),
    ("slow link: holds rarely bind", {"link_bytes_per_s": 3e9}, 500),
    ("everything local", {"threshold": math.inf, "n_remote": 0}, 64),
    ("no local prefill: all offloaded", {"n_local": 0}, 128),
])
def test_fast_path_gives_the_event_loops_timestamps_and_results(label, kwargs, chunk, monkeypatch):
    monkeypatch.setattr("prfaas_plan.simulation.fcfs.LINK_BATCH", 50)  # the link's events in many batches too
    dep = deployment(**kwargs)
    sim, fast, r_events, r_fast = both(dep, busy_requests(), chunk)
    for k in STAMPS:
        a, b = getattr(sim.rec, k).astype(float), getattr(fast.rec, k).astype(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), k
        assert np.nanmax(np.abs(a - b)) <= 1e-9, k
    waited = {name: (sim.rec.start - sim.rec.join)[sim.rec.route == k] for name, k in (("local", 0), ("prfaas", 1))}
    if label != "everything local":  # the cases queue somewhere, so the heap recursion runs too
        assert max(np.max(w, initial=0) for w in waited.values()) > 0 or np.max(sim.rec.admit - sim.rec.ready) > 0
    a, b = dict(flat(r_events)), dict(flat(r_fast))
    assert a.keys() == b.keys()
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-9), k
    assert r_events["engine"] == "event loop" and r_fast["engine"] == "fcfs fast path"


def test_the_shared_link_case_really_shares():
    """Transfers overlap on the link (so processor sharing, not the alone time, sets them)."""
    dep = deployment()
    sim = run(dep, busy_requests(), duration_s=200.0)
    remote = sim.rec.route == 1
    alone = sim.rec.kv_bytes[remote] / dep.link_bytes_per_s / MODEL.num_layers  # the last layer's bytes alone
    assert np.mean(sim.rec.ready[remote] - dep.rtt_s - sim.rec.kv[remote] > alone * (1 + 1e-6)) > 0.05


def test_simulate_takes_the_fast_path_only_where_it_applies():
    dep, reqs = deployment(), busy_requests(800)
    assert simulate(dep, reqs, warmup_s=5.0)["engine"] == "fcfs fast path"
    assert simulate(dep, reqs, warmup_s=5.0, policy="bandwidth-aware")["engine"] == "event loop"
    assert simulate(dep, reqs, warmup_s=5.0, link_schedule=((10.0, 1e9),))["engine"] == "event loop"
    assert simulate(dep, reqs, warmup_s=5.0, engine="events")["engine"] == "event loop"
    with pytest.raises(PlanError, match="does not apply here .policy bandwidth-aware"):
        run(dep, reqs, policy="bandwidth-aware", engine="fcfs")
    with pytest.raises(PlanError, match="engine must be one of"):
        run(dep, reqs, engine="fast")


def test_a_fast_run_refuses_results_for_another_warmup():
    dep, reqs = deployment(), busy_requests(300)
    fast = run(dep, reqs, engine="fcfs", warmup_s=2.0)
    assert results(fast, 2.0)["requests_arrived"] == 300
    with pytest.raises(PlanError, match="tallied for warm-up 2 s"):
        results(fast, 3.0)
