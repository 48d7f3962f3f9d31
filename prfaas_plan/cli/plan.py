"""The planning commands: `scenarios` (the shipped ones), `optimize` (plan a deployment) and
`whatif` (each what-if re-planned and stressed)."""

from typing import Annotated, Optional

import typer

from ..errors import PlanError
from ._common import (BudgetOpt, DesignOpt, ExecutorOpt, FormatOpt, ModeOpt, OutputOpt, SamplesOpt, ScenarioArg, SchedulerOpt, SeedOpt, SetOpt, StrictOpt,
                      TargetOpt, UncertainOpt, WorkersOpt, _console, emit, executor_from, exit_if_warning, handles_errors)


@handles_errors
def scenarios(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the shipped scenarios: name, description and file."""
    from ..planning.scenario import list_scenarios, load_scenario

    rows = [{"name": name, "description": sc.description, "path": sc.path} for name, sc in ((n, load_scenario(n)) for n in list_scenarios())]

    def table():
        for r in rows:
            typer.echo(f"{r['name']:32s} {r['description']}")

    emit(fmt, output, rows, table)


@handles_errors
def optimize(
    scenario: ScenarioArg,
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    robust: Annotated[Optional[float], typer.Option("--robust", help="Also find the cheapest plan that meets the demand (arrival rate or target, and slo.ttft_p90_s) in at least this share of --samples Monte Carlo samples of the scenario's uncertainty (e.g. 0.95), and what that margin costs (USD/hour) over the plan for the demand; see `prfaas-plan risk`.")] = None,
    uncertain: UncertainOpt = None,
    samples: SamplesOpt = 1000,
    seed: SeedOpt = 0,
    design: DesignOpt = "lhs",
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Plan a deployment: routing threshold t (tokens), PrfaaS / local prefill / local decode
    instances, link bandwidth (Gbit/s), throughput Lambda_max (req/s), cost (USD/hour), what binds,
    and the baselines (homogeneous PD, naive heterogeneous) beside it ([PRFAAS] Eq. 3-8), each
    with its analytic TTFT (seconds) at zero load and at the scenario's arrival rate, and its
    goodput (req/s meeting the TTFT SLO) when the scenario sets one; for the plan, Lambda_max and
    the TTFT P90 at the arrival rate with the engine model's times at the low and high ends of its
    80% error band (counts and threshold held; times from a measured profile not moved). Objective kind slo (or a
    budget / target with a TTFT SLO): the cheapest plan meeting slo.ttft_p90_s / ttft_p99_s /
    ttft_mean_s (seconds) at workload.arrival_req_per_s (the most goodput within a budget; the
    cheapest whose goodput reaches a target). The first line is the verdict: WARNING with every
    stated demand missed. With --robust: the cheapest plan found that meets the demand in that
    share of the uncertain samples. A fleet scenario (sites: or candidate parts) is planned by the
    fleet MILP; there objective kind slo (and a target where a site states a TTFT level) meets every
    local site's TTFT levels at its rate: the levels are bounds inside the MILP, the plan is checked
    with the analytic model and tightened until it holds."""
    from ..latency.bands import band_columns
    from ..latency.plans import latency_columns
    from ..latency.plans import optimize as plan
    from ..planning.locality import locality_columns
    from ..planning.overrides import parse_sets
    from ..planning.planner import PLAN_KEYS
    from ..planning.scenario import load_scenario
    from ..reports.provenance import provenance, provenance_columns

    sc = load_scenario(scenario, parse_sets(set_))
    if sc.fleet is not None:
        if robust is not None or uncertain:
            raise PlanError("--robust/--uncertain: fleet scenarios (sites or candidate parts) are planned without them")
        exit_if_warning(strict, _optimize_fleet(sc, mode, budget_usd_per_hour, target_req_per_s, fmt, output)["verdict"])
        return
    result = plan(sc, mode.value if mode else None, budget_usd_per_hour, target_req_per_s)  # the plan with its latency and verdict
    for role, d in result["deployments"].items():
        for warning in d["warnings"]:
            typer.echo(f"warning: {role}.instance: {warning}", err=True)
    if robust is not None:
        from ..planning.uncertainty import parse_uncertain
        from ..risk.robust import robust_plan

        with executor_from(executor, workers, scheduler) as ex:
            result["robust"] = robust_plan(sc, robust, samples, seed, design, dict(parse_uncertain(u) for u in uncertain or ()), result["mode"],
                                           budget_usd_per_hour, target_req_per_s, ex)
    elif uncertain:
        raise PlanError("--uncertain needs --robust LEVEL here (or use `prfaas-plan risk`)")
    prov = provenance(sc, result["mode"], "optimize", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s,
                      robust=robust, uncertain=uncertain, samples=samples if robust is not None else None, seed=seed if robust is not None else None)
    extra = {"verdict": result["verdict"]["text"], "prices": result["prices"], "load": result.get("load"), **provenance_columns(prov)}
    rows = [{"plan": "prfaas", **{k: result[k] for k in PLAN_KEYS}, **latency_columns(result), **band_columns(result),
             **locality_columns(result.get("cache_locality")), **extra}]
    rows += [{"plan": name, **{k: b[k] for k in PLAN_KEYS}, **latency_columns(b), **band_columns(b), **locality_columns(None), **extra}
             for name, b in result["baselines"].items() if b]
    if robust is not None:
        rows += [{"plan": f"robust_{name}", **result["robust"][name], **extra} for name in ("for_demand", "robust")]

    def table():
        from ..reports.render import print_plan, robust_table

        print_plan(_console(), sc, result)
        if robust is not None:
            _console().print(robust_table(result["robust"]))

    def workbook():
        from ..reports.review import build_review
        from ..reports.xlsx_review import review_workbook

        return review_workbook(build_review(sc, mode.value if mode else None, budget_usd_per_hour, target_req_per_s, command="optimize"))

    emit(fmt, output, rows, table, document={**result, "provenance": prov}, workbook=workbook)
    if output is not None:  # the verdict is the table's first line; a file still says it
        typer.echo(f"wrote {output}", err=True)
        typer.echo(result["verdict"]["text"], err=True)
    exit_if_warning(strict, result["verdict"])


def _optimize_fleet(sc, mode, budget_usd_per_hour, target_req_per_s, fmt, output) -> dict:
    """`optimize` of a fleet scenario (sites or candidate parts): the MILP plan
    (prfaas_plan.fleet.plan.plan_fleet); rows are the fleet's pools, then its links and sites;
    xlsx is the fleet review's workbook of the plan (Summary, Fleet, Inputs, What-ifs re-planned).
    Returns the plan (for --strict)."""
    from ..errors import PlanError
    from ..fleet.plan import plan_fleet
    from ..reports.provenance import provenance, provenance_columns

    if mode is not None and mode.value != "distribution":
        raise PlanError("--mode paper: the fleet planner (sites or candidate parts) works in distribution mode only")
    result = plan_fleet(sc, budget_usd_per_hour, target_req_per_s)
    prov = provenance(sc, "distribution", "optimize", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s)
    cols = {"verdict": result["verdict"]["text"], **provenance_columns(prov)}
    rows = [{"table": "fleet", **e, **cols} for e in result["fleet"]] + [{"table": "links", **lk, **cols} for lk in result["links"]]
    rows += [{"table": "sites", **{k: v for k, v in st.items() if k != "latency"}, **cols} for st in result["sites"]]

    def table():
        from ..reports.render import print_fleet

        print_fleet(_console(), result)

    def workbook():  # the fleet review's workbook, as `report -o FILE.xlsx` writes it, of this plan
        from ..reports.fleet_review import build_fleet_review
        from ..reports.xlsx_fleet import fleet_review_workbook

        return fleet_review_workbook(build_fleet_review(sc, budget_usd_per_hour, target_req_per_s, command="optimize", result=result))

    emit(fmt, output, rows, table, document={**result, "provenance": prov}, workbook=workbook)
    return result


@handles_errors
def whatif(
    scenario: ScenarioArg,
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Each what-if read twice: RE-PLAN (answer the question again, buying a new fleet) and STRESS
    (keep the planned PrfaaS/local instances and link, change the conditions: can it still carry
    the arrival rate or target?). With --set: your what-if (all --set together); without: the
    standard list (evening sag: the shipped link.bandwidth_profile scenarios/evening-sag.csv, half
    the link 18:00-23:00, paid in full, the plan sized for its worst fraction; the link at 10% at
    the same $ per Gbit/s; prompts 2x longer or shorter, prefix cache hits 50%, GPU prices +50%,
    load +50%; a lossy link (loss 1e-4) where link.connections is set, which moves TTFT, not
    throughput). A fleet scenario (sites or candidate parts) is read by the fleet planner, which
    takes no bandwidth profile: each link the plan uses halves on its own (at the same $ per
    Gbit/s), then every link; prompts, cache, prices and load change at every site. Its re-plan
    table shows cost, throughput, GPUs and $/hour per role and the verdict; its stress table the
    largest multiple of every site's demand the planned fleet and links carry (routing
    re-chosen), each site's largest rate and P90 TTFT at its demand, what binds and the verdict. Keys inside sites: and links: are
    written sites.local[NAME].KEY, links[0].KEY or links[*].KEY."""
    from ..planning.overrides import parse_sets
    from ..latency.slo_plan import solve
    from ..errors import PlanError
    from ..planning.scenario import load_scenario
    from ..planning.whatif import WhatIf, whatif_rows
    from ..reports.provenance import provenance, provenance_columns

    sc = load_scenario(scenario)
    whatifs = None
    if set_:
        overrides = parse_sets(set_)
        if sc.fleet is not None:
            from ..fleet.whatif import check_fleet_keys

            check_fleet_keys([o.key for o in overrides], "--set")
        load_scenario(scenario, overrides)  # a bad key or value fails here, before any planning
        whatifs = (WhatIf("as planned"), WhatIf(", ".join(x for x in set_), overrides))
    m = mode.value if mode else None
    if sc.fleet is not None:
        from ..fleet.whatif import fleet_whatif_rows

        if m is not None and m != "distribution":
            raise PlanError("--mode paper: the fleet planner (sites or candidate parts) works in distribution mode only")
        rows = fleet_whatif_rows(sc, budget_usd_per_hour, target_req_per_s, whatifs)
        m = "distribution"
    else:
        rows = whatif_rows(sc, m, budget_usd_per_hour, target_req_per_s, whatifs, solver=solve)
    prov = provenance(sc, m or sc.mode, "whatif", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s, set=set_)

    def table():
        con = _console()
        if sc.fleet is not None:
            from ..reports.fleet_views import fleet_stress_table, fleet_whatif_table

            con.print(fleet_whatif_table(sc.name, rows, con.width))
            con.print(fleet_stress_table(sc.name, rows, con.width))
            return
        from ..reports.render import whatif_table

        for t in whatif_table(sc, rows):
            con.print(t)

    def workbook():
        from ..reports.xlsx_review import whatif_workbook

        return whatif_workbook(rows, prov)

    emit(fmt, output, [{**r, **provenance_columns(prov)} for r in rows], table, document={"provenance": prov, "whatifs": rows}, workbook=workbook)

