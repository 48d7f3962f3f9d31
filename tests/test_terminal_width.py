"""The terminal at 80 and 120 columns (issue 15 item 9): optimize's Baselines table crops no TTFT
or goodput and breaks no header inside a word; a column with nothing in it is left out; `--help`
shows no `<bool>` after a flag. CliRunner with a fixed COLUMNS, as fastapi-cli tests. Regressions:
on old main at 80 columns the table lost its TTFT columns past the edge ("Prfa aS" in the
header), at 120 the goodput column, and `--help` printed `--version <bool>`."""

from __future__ import annotations

import json

import pytest
import typer.main
from typer.testing import CliRunner

from prfaas_plan.cli import app
from prfaas_plan.reports.terminal import console, rows_table, rows_tables, text

runner = CliRunner()
ARGS = ["optimize", "budget-case-study", "--set", "slo.ttft_p90_s=5"]  # arrival rate and SLO: all three latency columns


@pytest.mark.parametrize("columns", [80, 120])
def test_baselines_fit_the_terminal(columns):
    doc = json.loads(runner.invoke(app, [*ARGS, "-f", "json"]).stdout)
    res = runner.invoke(app, ARGS, env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert max(len(line) for line in out.splitlines()) <= columns
    baselines = out[out.index("Baselines"):out.index("TTFT: analytic")]
    plans = [doc, *(b for b in doc["baselines"].values() if b)]
    for p in plans:  # every TTFT pair and goodput printed whole
        for key in ("zero_load", "at_arrival_rate"):
            lat = p["latency"][key]
            if lat:
                assert f"{lat['ttft_mean_s']:.2f} / {lat['ttft_p90_s']:.2f}" in baselines
        assert f"{p['latency']['goodput_req_per_s']:.3f}" in baselines
    for word in ("PrfaaS", "binding", "goodput", "TTFT", "heterogeneous"):  # no header or name broken inside a word
        assert word in baselines


def test_rows_tables_repeat_the_name_and_fit():
    """Ten 9-digit columns do not fit 60 characters: they go to further tables, each led by the
    name column, none wider than 60."""
    rows = [{"name": "a", **{f"c{i}": 123456789 for i in range(10)}}]
    cols = [("name", "name", text), *[(f"c{i}", f"c{i}", lambda v: f"{v:d}") for i in range(10)]]
    tables = rows_tables(rows, cols, "T", 60)
    assert len(tables) > 1 and all(str(t.columns[0].header) == "name" for t in tables)
    assert sum(len(t.columns) - 1 for t in tables) == 10
    con = console(60)
    for t in tables:
        with con.capture() as cap:
            con.print(t)
        assert max(len(line) for line in cap.get().splitlines()) <= 60


def test_a_column_with_nothing_in_it_is_left_out():
    rows = [{"plan": "a", "x": 1.0, "note": None}, {"plan": "b", "x": 2.0, "note": None}]
    cols = [("plan", "plan", text), ("x", "x", lambda v: f"{v:.1f}"), ("note", "note", text)]
    assert [str(c.header) for c in rows_table(rows, cols).columns] == ["plan", "x"]
    rows[1]["note"] = "failed"
    assert [str(c.header) for c in rows_table(rows, cols).columns] == ["plan", "x", "note"]


def _commands():
    root = typer.main.get_command(app)
    out = [[]]
    for name, cmd in root.commands.items():
        out.append([name])
        out += [[name, sub] for sub in getattr(cmd, "commands", {})]
    return out


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "root")
def test_help_shows_no_type_after_flags(path):
    res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.stdout and "--help" in res.stdout


def test_square_brackets_are_shown_as_written():
    """Rich reads ``[chicago]`` and ``[bold]`` as markup: on old main `sites.local[chicago].x`
    printed as `sites.local.x` and a `[bold]` cell vanished. Every table built here shows its
    title, caption, headers and cells literally (``links[0]`` too, and a backslash stays one)."""
    from rich.console import Console

    from prfaas_plan.reports.terminal import kv_value_table

    names = ["sites.local[chicago].workload.arrival_req_per_s", "links[0].gbit_per_s", "[bold]loud[/]", "a\\[b]"]
    con = Console(width=200, record=True, soft_wrap=False)
    con.print(rows_table([{"k": n, "v": n} for n in names], [("k", "key [site]", text), ("v", "value", text)],
                         title="varied: sites.local[chicago]", caption="see links[0] and [e]"))
    con.print(kv_value_table([(n, n) for n in names], title="[red]title[/red]"))
    out = con.export_text()
    for n in [*names, "key [site]", "varied: sites.local[chicago]", "see links[0] and [e]", "[red]title[/red]"]:
        assert n in out, n


def test_lines_print_as_written():
    """The console reads no markup: a line with a price source such as `[PRFAAS] Table 6` or a
    key such as `links[0]` prints whole (rich markup dropped both)."""
    con = console(120)
    with con.capture() as cap:
        con.print("Prices: h200 4.50 $/GPU-h ([PRFAAS] Table 6); links[0] [bold]x[/]")
    assert "([PRFAAS] Table 6); links[0] [bold]x[/]" in cap.get()
