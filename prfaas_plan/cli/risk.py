"""`prfaas-plan risk`: the planned fleet under uncertainty (Monte Carlo over stated distributions)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import PlanError
from ..reports.export import write_atomic
from ._common import (BudgetOpt, DesignOpt, ExecutorOpt, FormatOpt, ModeOpt, OutputOpt, SamplesOpt, ScenarioArg, SchedulerOpt, SeedOpt, SetOpt, TargetOpt,
                      UncertainOpt, WorkersOpt, _console, emit, executor_from, handles_errors)


@handles_errors
def risk(
    scenario: ScenarioArg,
    uncertain: UncertainOpt = None,
    samples: SamplesOpt = 1000,
    seed: SeedOpt = 0,
    design: DesignOpt = "lhs",
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the outcomes' distributions (CDFs of Lambda_max, P90 TTFT, $/hour, goodput) to this .png or .svg file.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """How likely the planned fleet (as `optimize` buys it) meets its demands when traffic, prompt
    lengths, prices, the link and the engine model's own error are uncertain: the probability of
    meeting the rate (req/s), each TTFT SLO (s) and the budget (USD/hour), and P10/P50/P90 of
    Lambda_max (req/s), goodput (req/s), P90 TTFT (s) and $/hour over --samples samples; the
    threshold and P/D split are re-chosen in each sample. JSON adds every sample; CSV is one row
    per sample."""
    from ..planning.overrides import parse_sets
    from ..planning.scenario import load_scenario, one_pair_only
    from ..planning.uncertainty import parse_uncertain
    from ..reports.provenance import provenance, provenance_columns
    from ..risk.analysis import risk as run_risk

    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise PlanError(f"--plot {plot}: name the file .png or .svg")
    if budget_usd_per_hour is not None and target_req_per_s is not None:
        raise PlanError("give a budget or a target, not both")
    sc = one_pair_only(load_scenario(scenario, parse_sets(set_)), "risk",
                       "`prfaas-plan whatif` and `prfaas-plan sweep` re-plan the fleet under changed prices, prompts, load and links")
    dists = dict(parse_uncertain(u) for u in uncertain or ())
    m = mode.value if mode else None
    with executor_from(executor, workers, scheduler) as ex:
        r = run_risk(sc, samples, seed, design, dists, m, budget_usd_per_hour, target_req_per_s, ex)
    prov = provenance(sc, r["mode"], "risk", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s, uncertain=uncertain,
                      samples=samples, seed=seed, design=design, set=set_)

    def table():
        from ..reports.render import risk_tables

        con = _console()
        for t in risk_tables(r):
            con.print(t)

    emit(fmt, output, [{**s, **provenance_columns(prov)} for s in r["sample_rows"]], table, document={**r, "provenance": prov},
         sheets={"summary": r["demands"] + r["metrics"], "samples": r["sample_rows"]})
    if plot is not None:
        from ..reports import plots

        fig = plots.risk(r)
        write_atomic(plot, plots.svg(fig) if plot.suffix.lower() == ".svg" else plots.png(fig))
