"""Issue 14, classes 3-6 at the command line: every hostile input of the issue is one line
naming the option or file and what is wrong, exit 2, nothing written; each run is a subprocess
with a timeout, so that a regression to a hang fails here instead of hanging the suite
(scripts/bench_bad_input.py times the same cases). And a run killed with SIGKILL mid-write leaves
a temporary file that the next write to the same target removes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prfaas_plan.reports.export import STALE_TEMPORARY_AGE_S, write_atomic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_bad_input import CASES, FAST, prepare, run_case  # noqa: E402

RUN_TIMEOUT_S = 60  # a hang fails the test after this long (each case returns within ~2 s)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@pytest.mark.parametrize("name, args, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line(tmp_path, name, args, words):
    prepare(tmp_path)
    r = run_case(tmp_path, args, RUN_TIMEOUT_S)
    lines = r["stderr"].strip().splitlines()
    assert r["rc"] == 2, (r["rc"], r["stderr"][-400:])
    assert len(lines) == 1 and lines[0].startswith("error: "), r["stderr"]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert r["written"] == [], r["written"]


@pytest.mark.parametrize("name, args", FAST, ids=[c[0] for c in FAST])
def test_valid_input_that_hung_returns(tmp_path, name, args):
    """Issue 14: a 1e15 $/hour budget ran for minutes (Erlang B looped over ~10^13 decode slots);
    now it is planned, exit 0, its file written (scripts/bench_bad_input.py times it)."""
    prepare(tmp_path)
    r = run_case(tmp_path, args, RUN_TIMEOUT_S)
    assert r["rc"] == 0, r["stderr"][-400:]
    assert r["written"] == ["x.json"]


def _killed_writer(target: Path, reap: bool) -> tuple[Path, subprocess.Popen]:
    """A real `write_atomic` in a child process, SIGKILLed once its temporary file holds the data."""
    code = ("import os, sys, time\n"
            "from prfaas_plan.reports import export\n"
            "os.fsync = lambda fd: time.sleep(600)\n"  # stop inside the write, the data in the temporary file
            "export.write_atomic(sys.argv[1], 'x' * 100000)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (temps := list(target.parent.glob(f".{target.name}.prfaas-tmp-{child.pid}-*"))):
        assert time.monotonic() < deadline and child.poll() is None, "the writer never started its temporary file"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    if reap:
        child.wait(RUN_TIMEOUT_S)
    else:  # killed, not yet reaped by its parent: a zombie, whose pid os.kill(pid, 0) still finds
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while Path(f"/proc/{child.pid}/stat").exists() and Path(f"/proc/{child.pid}/stat").read_bytes().rpartition(b")")[2].split()[0] != b"Z":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    return temps[0], child


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc")
@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_next_write_removes_a_killed_runs_temporary(tmp_path, reap):
    """Class 6: the README's promise, with a real SIGKILL: the killed writer's temporary file is
    left, and the next write to the same target removes it (its writer no longer runs, or is a
    zombie its parent has not reaped). A live writer's file and other targets' files stay."""
    target = tmp_path / "plan.json"
    temp, child = _killed_writer(target, reap)
    try:
        assert temp.exists() and not target.exists()
        live = tmp_path / f".plan.json.prfaas-tmp-{os.getpid()}-0badf00d"  # this process: running
        other = tmp_path / ".other.json.prfaas-tmp-1-0badf00d"
        for p in (live, other):
            p.write_text("partial")
        write_atomic(target, json.dumps({"ok": True}))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["plan.json", live.name, other.name])
        assert json.loads(target.read_text()) == {"ok": True}
    finally:
        child.wait(RUN_TIMEOUT_S)


def test_old_temporary_is_removed_whatever_its_pid(tmp_path):
    """A pid can be reused by another process: a temporary file older than STALE_TEMPORARY_AGE_S
    is removed even though a process with its pid (this one) runs."""
    old = tmp_path / f".plan.json.prfaas-tmp-{os.getpid()}-0badf00d"
    old.write_text("partial")
    t = time.time() - STALE_TEMPORARY_AGE_S - 10
    os.utime(old, (t, t))
    write_atomic(tmp_path / "plan.json", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_a_run_that_cannot_drain_stops_at_the_event_bound(monkeypatch):
    """The event loop's backstop: a run past BOUNDS['simulated_events'] stops with one PlanError line
    naming the bound (here lowered to 200 events for a 100-request run). The bandwidth-aware
    policy, so that the event loop runs (the FCFS fast path's work is fixed by its requests)."""
    from prfaas_plan import bounds
    from prfaas_plan.errors import PlanError
    from prfaas_plan.planning.scenario import load_scenario
    from prfaas_plan.simulation.run import simulate_scenario

    monkeypatch.setitem(bounds.BOUNDS, "simulated_events", bounds.Bound(1, 200, "events", "test", whole=True))
    with pytest.raises(PlanError, match=r"^simulation: events so far \(a run that cannot drain stops here\): must be a whole number in \[1, 200\] events, got 20\d"):
        simulate_scenario(load_scenario("paper-case-study"), arrival_req_per_s=2.0, duration_s=50.0, policy="bandwidth-aware")
