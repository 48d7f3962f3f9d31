"""The wide-area link (issue 18 item 4): a TCP connection's rate bound (window / RTT and Mathis
et al. 1997), the per-transfer cap it puts on the analytic TTFT and on the simulated pipe, the
scenario keys ``link.connections`` / ``link.loss_frac``, and the "lossy link" what-if."""

import math
from dataclasses import replace

import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import deployment, exposed_transfer_s
from prfaas_plan.latency.ttft import ttft
from prfaas_plan.latency.wan import MAX_WINDOW_BYTES, MSS_BYTES, connection_rate_bytes_per_s, transfer_cap_bytes_per_s
from prfaas_plan.planning.overrides import Override
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.whatif import standard_whatifs
from prfaas_plan.simulation.link import Pipe


# --- the connection bound ---------------------------------------------------------------------------


def test_mathis_bound_by_hand():
    """50 ms RTT, loss 1e-4: 1460 B / 0.05 s x 1.2247 / 0.01 = 3.576 MB/s, below the window
    bound 6 MiB / 0.05 s = 125.8 MB/s; four connections carry four times that."""
    r = connection_rate_bytes_per_s(0.05, 1e-4)
    assert r == pytest.approx(1460 / 0.05 * math.sqrt(1.5) / 0.01, rel=1e-12)
    assert r == pytest.approx(3.576e6, rel=1e-3)
    assert transfer_cap_bytes_per_s(4, 0.05, 1e-4) == pytest.approx(4 * r, rel=1e-12)


def test_window_binds_without_loss_and_nothing_binds_without_rtt():
    """No loss: only W_max / RTT (6 MiB / 10 ms = 629 MB/s). RTT 0 or unlimited connections: inf."""
    assert connection_rate_bytes_per_s(0.01, 0.0) == pytest.approx(MAX_WINDOW_BYTES / 0.01)
    assert connection_rate_bytes_per_s(0.0, 1e-3) == math.inf
    assert transfer_cap_bytes_per_s(None, 0.05, 1e-3) == math.inf
    # tiny loss: the Mathis term exceeds the window and the window binds
    assert connection_rate_bytes_per_s(0.05, 1e-12) == pytest.approx(MAX_WINDOW_BYTES / 0.05)
    assert MSS_BYTES == 1460.0


@pytest.mark.parametrize("bad", [(0, 0.01, 0.0), (2, 0.01, 1.0), (2, 0.01, -0.1), (2, -1.0, 0.0), (1.5, 0.01, 0.0)])
def test_bad_connection_inputs_raise(bad):
    with pytest.raises(PlanError):
        transfer_cap_bytes_per_s(*bad)


# --- scenario keys -------------------------------------------------------------------------------------


def test_scenario_keys_and_their_errors():
    sc = load_scenario("budget-case-study", [Override("link.connections", 8), Override("link.loss_frac", 1e-4)])
    assert sc.link.connections == 8 and sc.link.loss_frac == 1e-4
    base = load_scenario("budget-case-study")
    assert base.link.connections is None and base.link.loss_frac == 0.0
    for overrides, words in (([Override("link.loss_frac", 1e-4)], "needs link.connections"),
                             ([Override("link.connections", 8), Override("link.loss_frac", 1.0)], "[0, 1)"),
                             ([Override("link.connections", 0)], "link.connections")):
        with pytest.raises(PlanError, match="link") as e:
            load_scenario("budget-case-study", overrides)
        assert "loss_frac" in str(e.value) or "connections" in str(e.value)
        assert words.split()[0] in str(e.value) or words in str(e.value)


# --- the analytic model ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planned():
    sc = load_scenario("budget-case-study")
    return sc, optimize(sc, compare_modes=False)


def _dep(sc, plan, **link):
    return deployment(replace(sc, link=replace(sc.link, **link)), plan)


def test_unlimited_connections_are_todays_numbers(planned):
    """Connections unset (and so loss 0) leave TTFT exactly as before: no cap; and a cap far above
    the link (10^6 connections) gives the same numbers bit for bit, min(B (1 - u), cap) = B (1 - u)."""
    sc, plan = planned
    dep = deployment(sc, plan)
    assert dep.transfer_cap_bytes_per_s == math.inf
    lam = 0.5 * plan["throughput_req_per_s"]
    assert ttft(_dep(sc, plan, connections=10**6), lam) == ttft(dep, lam)


def test_more_loss_never_lowers_ttft_and_a_binding_cap_raises_it(planned):
    """Loss rises -> the cap falls -> TTFT (mean, P90) never falls; at 1e-3 with 4 connections
    over 10 ms (4 x 1460 / 0.01 x 1.22 / 0.0316 = 22.6 MB/s) the cap binds and the offloaded
    path's zero-load TTFT rises."""
    sc, plan = planned
    lam = 0.5 * plan["throughput_req_per_s"]
    prev = ttft(deployment(sc, plan), lam)
    for loss in (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
        cur = ttft(_dep(sc, plan, connections=4, loss_frac=loss), lam)
        assert cur.ttft_mean_s >= prev.ttft_mean_s * (1 - 1e-12) and cur.ttft_p90_s >= prev.ttft_p90_s * (1 - 1e-6)
        prev = cur
    dep = _dep(sc, plan, connections=4, loss_frac=1e-3)
    cap = 4 * 1460 / 0.01 * math.sqrt(1.5) / math.sqrt(1e-3)
    assert dep.transfer_cap_bytes_per_s == pytest.approx(cap, rel=1e-12)
    assert cap < dep.link_bytes_per_s  # the cap binds on this link
    assert ttft(dep, 0.0).paths["prfaas"].ttft_mean_s > ttft(deployment(sc, plan), 0.0).paths["prfaas"].ttft_mean_s


def test_zero_load_ttft_by_hand_with_a_cap():
    """One length (1,000 tokens), all offloaded, prefill 0.2 s, link 1 GB/s, RTT 10 ms, cap 20 MB/s:
    TTFT = 0.2 + max(S / cap - 0.2, S / (cap layers)) + 0.01 + one 10-ms decode step."""
    from test_ttft import tiny

    dep = replace(tiny(threshold=0.0, remote=(0.2, 0.0), link_bytes_per_s=1e9, rtt_s=0.01), transfer_cap_bytes_per_s=2e7)
    s_bytes, layers = float(dep.kv_bytes(1000.0)), dep.model.num_layers
    want = 0.2 + max(s_bytes / 2e7 - 0.2, s_bytes / 2e7 / layers) + 0.01 + 0.01
    assert ttft(dep, 0.0).ttft_mean_s == pytest.approx(want, rel=1e-9)


def test_optimize_reports_the_cap_when_it_binds():
    from prfaas_plan.latency.plans import optimize as optimize_with_latency

    sc = load_scenario("budget-case-study", [Override("link.connections", 4), Override("link.loss_frac", 1e-3)])
    lat = optimize_with_latency(sc, compare_modes=False)["latency"]
    assert lat["transfer_cap_binds"] is True
    assert lat["transfer_cap_gbit_per_s"] == pytest.approx(4 * 1460 / 0.01 * math.sqrt(1.5) / math.sqrt(1e-3) * 8 / 1e9)
    base = optimize_with_latency(load_scenario("budget-case-study"), compare_modes=False)["latency"]
    assert base["transfer_cap_gbit_per_s"] is None and base["transfer_cap_binds"] is False


# --- the simulated pipe -----------------------------------------------------------------------------------


def test_pipe_caps_each_flow():
    """Link 100 B/s, cap 30 B/s. One flow of 60 B alone: 30 B/s, done at 2 s (the link 30% used,
    the rest idle: nothing to give it to). Two flows: 30 each (60 <= 100). Four flows: 100 / 4 = 25
    each (PS below the cap), all done at 60 / 25 = 2.4 s."""
    p = Pipe(100.0, cap_bytes_per_s=30.0)
    p.add("a", 60.0, 0.0)
    assert p.next_time() == pytest.approx(2.0)
    assert p.pop_done(2.0) == ["a"]
    assert p.windows[:2] == pytest.approx([30.0, 30.0])
    q = Pipe(100.0, cap_bytes_per_s=30.0)
    for k in "ab":
        q.add(k, 60.0, 0.0)
    assert q.next_time() == pytest.approx(2.0)
    r = Pipe(100.0, cap_bytes_per_s=30.0)
    for k in "abcd":
        r.add(k, 60.0, 0.0)
    assert r.next_time() == pytest.approx(2.4)
    assert sorted(r.pop_done(2.4)) == list("abcd")


def test_pipe_cap_switches_as_flows_leave():
    """Link 100 B/s, cap 40: flows of 40 B and 120 B start at 0. Both at 40 B/s (80 <= 100): the
    first ends at 1 s; the second, alone, still 40 B/s (capped), ends at 1 + 80 / 40 = 3 s."""
    p = Pipe(100.0, cap_bytes_per_s=40.0)
    p.add("s", 40.0, 0.0)
    p.add("l", 120.0, 0.0)
    assert p.next_time() == pytest.approx(1.0) and p.pop_done(1.0) == ["s"]
    assert p.next_time() == pytest.approx(3.0) and p.pop_done(3.0) == ["l"]
    with pytest.raises(PlanError):
        Pipe(100.0, cap_bytes_per_s=0.0)


def test_simulated_lone_transfer_runs_at_the_cap():
    """One offloaded request on a capped link: ready - KV done = exposed transfer at min(B, cap) + RTT,
    as the analytic model takes it."""
    from prfaas_plan.simulation.run import run
    from test_simulation import MODEL, requests, tiny

    cap = 2e7
    dep = replace(tiny(threshold=0.0, remote=(0.05, 0.0), n_local=0, link_bytes_per_s=1e9, rtt_s=0.01), transfer_cap_bytes_per_s=cap)
    sim = run(dep, requests([0.0], 4096.0))
    exposed = float(exposed_transfer_s(float(dep.kv_bytes(4096.0)), 0.05, cap, MODEL.num_layers))
    assert sim.rec.ready[0] - sim.rec.kv[0] == pytest.approx(exposed + 0.01, rel=1e-9)


# --- what-ifs -------------------------------------------------------------------------------------------------


def test_lossy_link_and_evening_sag_whatifs():
    """The evening sag is always asked; the lossy link only where connections are stated (loss
    without them bounds nothing and is refused)."""
    labels = [w.label for w in standard_whatifs(load_scenario("budget-case-study"))]
    assert any(l.startswith("evening sag: link at 50%") for l in labels) and not any(l.startswith("lossy link") for l in labels)
    sc = load_scenario("budget-case-study", [Override("link.connections", 8)])
    lossy = [w for w in standard_whatifs(sc) if w.label.startswith("lossy link")]
    assert len(lossy) == 1
    sv = load_scenario(sc.path, sc.overrides + lossy[0].overrides)
    assert sv.link.loss_frac == 1e-4 and sv.link.connections == 8


# --- the CLI ------------------------------------------------------------------------------------------------


def test_cli_prints_the_cap_and_refuses_loss_without_connections():
    """`optimize --set link.connections=8 --set link.loss_frac=0.0001` says the per-transfer cap
    binds (8 x 143 Mbit/s = 1.14 Gbit/s on the 200 Gbit/s link); loss alone is one line, exit 2."""
    from typer.testing import CliRunner

    from prfaas_plan.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["optimize", "budget-case-study", "--set", "link.connections=8", "--set", "link.loss_frac=0.0001"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Per-transfer rate cap: 1.14 Gbit/s" in " ".join(res.output.split())
    bad = runner.invoke(app, ["optimize", "budget-case-study", "--set", "link.loss_frac=0.0001"])
    assert bad.exit_code == 2
    assert "link.loss_frac" in bad.output and "needs link.connections" in bad.output and "Traceback" not in bad.output
