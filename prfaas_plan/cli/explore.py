"""Commands that explore a scenario beyond one plan: `sweep` (re-planned over a grid of one or
two keys) and `report` (the design-review report: HTML, Markdown or workbook)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..bounds import BOUNDS
from ..errors import PlanError
from ..reports.export import write_atomic
from ._common import (BudgetOpt, ExecutorOpt, FormatOpt, ModeOpt, OutputOpt, ScenarioArg, SchedulerOpt, SetOpt, StrictOpt, TargetOpt, WorkersOpt, _console,
                      emit, executor_from, exit_if_warning, handles_errors, progress_bar)


# --- sweep --------------------------------------------------------------------------------------


@handles_errors
def sweep(
    scenario: ScenarioArg,
    vary: Annotated[list[str], typer.Option("--vary", help="A scenario key and its values: KEY=START:STOP:N (N evenly spaced values, ends included) or KEY=v1,v2,... Give one or two --vary (a 2-D grid); " f"at most {BOUNDS['sweep_axis_points'].max:,.0f} values per key and {BOUNDS['sweep_points'].max:,.0f} points.")],
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the sweep (Lambda_max, req/s) to this .png or .svg file.")] = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Answer the scenario's question at every value of one or two keys (re-planned at each
    point): threshold (tokens), instances, link (Gbit/s), Lambda_max (req/s), $/hour, $ per 1k
    requests, what binds. Shows a progress bar on a terminal. --workers N / --executor run the
    points in parallel (the same rows). A fleet scenario (sites or candidate parts) is re-planned
    by the fleet planner at each point: its cost, req/s, GPUs and $/hour per role (PrfaaS, local
    prefill, decode, links), the mix and the verdict; keys inside sites: and links: are written
    sites.local[NAME].KEY, links[0].KEY or links[*].KEY."""
    from ..planning.overrides import parse_axis, parse_sets
    from ..latency.slo_plan import solve
    from ..planning.scenario import load_scenario
    from ..planning.sweep import sweep as run_sweep
    from ..reports.provenance import provenance, provenance_columns

    axes = [parse_axis(v) for v in vary]
    sc = load_scenario(scenario, parse_sets(set_))
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise PlanError(f"--plot {plot}: name the file .png or .svg")
    m = mode.value if mode else None
    if sc.fleet is not None:
        _sweep_fleet(sc, axes, vary, m, budget_usd_per_hour, target_req_per_s, plot, executor_from(executor, workers, scheduler), fmt, output)
        return
    with executor_from(executor, workers, scheduler) as ex, progress_bar(f"sweep {', '.join(k for k, _ in axes)}", fmt, output) as tick:
        rows = run_sweep(sc, axes, m, budget_usd_per_hour, target_req_per_s, progress=tick, executor=ex, solver=solve)
    keys = [k for k, _ in axes]
    prov = provenance(sc, m or sc.mode, "sweep", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s, vary=vary)
    def table():
        from ..reports.render import sweep_table

        con = _console()
        con.print(sweep_table(sc, rows, keys, con.width))

    def workbook():
        from ..reports.xlsx_sweep import sweep_workbook

        return sweep_workbook(sc.name, rows, keys, prov)

    emit(fmt, output, [{**r, **provenance_columns(prov)} for r in rows], table, document={"provenance": prov, "points": rows}, workbook=workbook)
    if plot is not None:
        from ..reports import plots

        fig = plots.sweep(rows, keys)
        write_atomic(plot, plots.svg(fig) if plot.suffix.lower() == ".svg" else plots.png(fig))


def _sweep_fleet(sc, axes, vary, mode, budget_usd_per_hour, target_req_per_s, plot, executor_cm, fmt, output) -> None:
    """`sweep` of a fleet scenario (sites or candidate parts): the fleet planner at every point
    (prfaas_plan.fleet.sweep.fleet_sweep); rows carry the fleet's cost and per-role totals."""
    from ..fleet.sweep import fleet_sweep
    from ..reports.provenance import provenance, provenance_columns

    if mode is not None and mode != "distribution":
        raise PlanError("--mode paper: the fleet planner (sites or candidate parts) works in distribution mode only")
    if plot is not None:
        raise PlanError("--plot: a fleet sweep is not drawn yet; save it with -o FILE.xlsx (a table of the points) or -f csv")
    keys = [k for k, _ in axes]
    with executor_cm as ex, progress_bar(f"sweep {', '.join(keys)}", fmt, output) as tick:
        rows = fleet_sweep(sc, axes, budget_usd_per_hour, target_req_per_s, progress=tick, executor=ex)
    prov = provenance(sc, "distribution", "sweep", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s, vary=vary)

    def table():
        from ..reports.fleet_views import fleet_sweep_table

        con = _console()
        con.print(fleet_sweep_table(sc.name, rows, keys, con.width))

    def workbook():
        from ..reports.xlsx import rows_sheet, new_workbook, save
        from ..reports.xlsx_sweep import about_sheet

        wb = new_workbook()
        rows_sheet(wb, "Sweep", rows, f"{sc.name}: the fleet re-planned at each point of {', '.join(keys)}").finish()
        about_sheet(wb, prov)
        return save(wb)

    emit(fmt, output, [{**r, **provenance_columns(prov)} for r in rows], table, document={"provenance": prov, "points": rows}, workbook=workbook)


# --- report -------------------------------------------------------------------------------------


@handles_errors
def report(
    scenario: ScenarioArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="report.html (one self-contained file: inline SVG, nothing fetched), report.md (Markdown plus PNGs in report_files/), or report.xlsx (the reviewer's workbook).")],
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    strict: StrictOpt = False,
) -> None:
    """A design-review report: the question, every input with its source (estimates flagged), the
    length histogram, the plan beside the baselines, what binds and the headroom, the plan's
    Lambda_max and TTFT P90 at the ends of the engine model's 80% error band, plots ([PRFAAS]
    Fig. 5 a/b, link bandwidth, budget, Phi_kv), the what-ifs and the assumptions. A fleet
    scenario (sites or candidate parts): the mix (one row per site x role x part: instances,
    GPUs/instance, $/GPU-h, $/h), the links (Gbit/s, $/h, utilisation), each local site's
    threshold, rate, TTFT at its rate and goodput, the inputs and the fleet re-planned per what-if;
    no plots."""
    from ..planning.overrides import parse_sets
    from ..planning.scenario import load_scenario
    from ..reports.review import build_review

    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".xlsx"):
        raise PlanError(f"{output}: name the report .html, .md or .xlsx")
    if not output.parent.exists():
        raise PlanError(f"{output}: folder {output.parent} does not exist")
    sc = load_scenario(scenario, parse_sets(set_))
    if sc.fleet is not None and mode is not None and mode.value != "distribution":
        raise PlanError("--mode paper: the fleet planner (sites or candidate parts) works in distribution mode only")
    with progress_bar(f"report {sc.name}", None, output) as tick:
        if sc.fleet is not None:
            from ..reports.fleet_review import build_fleet_review

            rv = build_fleet_review(sc, budget_usd_per_hour, target_req_per_s, command="report", progress=tick)
        else:
            rv = build_review(sc, mode.value if mode else None, budget_usd_per_hour, target_req_per_s, command="report", progress=tick)
        if suffix == ".xlsx":
            from ..reports.xlsx_fleet import fleet_review_workbook
            from ..reports.xlsx_review import review_workbook

            write_atomic(output, fleet_review_workbook(rv) if sc.fleet is not None else review_workbook(rv))
            written = [output]
        else:
            from ..reports.html_report import write_report

            written = write_report(rv, output)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    typer.echo(rv["plan"]["verdict"]["text"], err=True)
    exit_if_warning(strict, rv["plan"]["verdict"])

