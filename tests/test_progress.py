"""Progress on long work (issue 15 item 7): `report` and `simulate` show a bar on a terminal's stderr,
as `sweep` does; the library takes an optional ``progress(done, total)`` callback; pipes and logs
get nothing. Regression: on old main both commands were silent until done."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.reports.review import REVIEW_STEPS, build_review
from prfaas_plan.simulation.run import simulate_scenario

runner = CliRunner()


def test_build_review_reports_each_step():
    calls = []
    build_review(load_scenario("paper-case-study"), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, REVIEW_STEPS) for i in range(1, REVIEW_STEPS + 1)]


def test_simulation_reports_arrivals_up_to_all():
    """Every 1,024 arrivals and once at the end; the count never goes back; the callback does not
    change the result."""
    calls = []
    sc = load_scenario("paper-case-study")
    with_bar = simulate_scenario(sc, duration_s=1200, load=0.8, progress=lambda done, total: calls.append((done, total)))
    n = calls[-1][1]
    assert calls[-1] == (n, n) and n > 2048
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == n // 1024 + 2 - (n % 1024 == 0)
    assert with_bar["ttft"] == simulate_scenario(sc, duration_s=1200, load=0.8)["ttft"]


def test_bar_on_a_terminal_only(tmp_path):
    """FORCE_COLOR makes rich treat stderr as a terminal: the bar's label appears there; without
    it (a pipe) stderr holds only the command's own lines. JSON on stdout stays clean either way."""
    args = ["simulate", "paper-case-study", "--duration-s", "300", "--load", "0.5", "-o", str(tmp_path / "s.json")]
    tty = runner.invoke(app, args, env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert tty.exit_code == 0, tty.output
    assert "simulate: arrivals" in tty.stderr
    pipe = runner.invoke(app, args, env={"FORCE_COLOR": None, "TTY_COMPATIBLE": None})
    assert pipe.exit_code == 0 and pipe.stderr == ""
    report = runner.invoke(app, ["report", "paper-case-study", "-o", str(tmp_path / "r.xlsx")], env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert report.exit_code == 0, report.output
    assert "report paper-case-study" in report.stderr
    stdout_json = runner.invoke(app, ["simulate", "paper-case-study", "--duration-s", "300", "-f", "json"], env={"FORCE_COLOR": "1"})
    assert json.loads(stdout_json.stdout)["scenario"] == "paper-case-study" and "arrivals" not in stdout_json.stderr
