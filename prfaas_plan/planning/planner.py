"""The main job: a plan for a scenario, with the baselines beside it.

Wires scenario -> prefill/decode models -> throughput model -> optimizer, and reports the plan in
stable, unit-named keys (see ``PLAN_KEYS``) so that scripts can rely on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from .. import units
from ..bounds import check
from ..errors import PlanError
from ..roofline.decode import decode_capacity
from ..roofline.prefill import PrefillModel
from .locality import LocalityModel, locality_report, per_cluster
from .optimizer import cheapest_for, maximise
from .problem import Link, Plan, Problem, Range, TtftSlo
from .scenario import Scenario, link_is_fixed, one_pair_only
from .throughput import ThroughputModel
from .token_cost import served_req_per_s, usd_per_million_tokens
from .verdict import verdict

PLAN_KEYS = (
    "threshold_tokens", "n_prfaas", "n_pd_prefill", "n_pd_decode", "link_gbit_per_s", "throughput_req_per_s",
    "theta_prfaas_req_per_s", "theta_pd_prefill_req_per_s", "theta_pd_decode_req_per_s", "offload_frac",
    "mean_offloaded_tokens", "egress_gbit_per_s", "cost_usd_per_hour", "bottleneck",
    "prfaas_usd_per_gpu_hour", "local_usd_per_gpu_hour", "usd_per_million_tokens",
)


def throughput_model(sc: Scenario, mode: str | None = None) -> ThroughputModel:
    """Capacities of the scenario's instances. ``distribution`` mode prices prefill in the
    throughput regime (an instance under load batches many prompts per forward pass);
    ``paper`` mode keeps the paper's semantics, Theta = N / T_prefill(l) with T_prefill the
    latency of one request (its profiles are single-request measurements). A trace planned with
    one prefix cache per cluster (``cache.scope: per-cluster``) gets a
    :class:`~.locality.LocalityModel` (each path's lengths from the per-cluster replay)."""
    wl, mode = sc.workload, mode or sc.mode
    regime = "latency" if mode == "paper" else "throughput"
    decode = decode_capacity(sc.model, sc.local.hardware, sc.local.gpus_per_instance, sc.tpot_s,
                             wl.decode_context_tokens(), use_profile=sc.local.use_profile, instance=sc.local.instance)
    remote = PrefillModel(sc.model, sc.prfaas.hardware, sc.prfaas.gpus_per_instance, sc.prfaas.use_profile, regime, sc.prfaas.instance)
    local = PrefillModel(sc.model, sc.local.hardware, sc.local.gpus_per_instance, sc.local.use_profile, regime, sc.local.instance)
    pc = per_cluster(wl.uncached)
    if pc is not None:
        return LocalityModel(sc.model, pc[0], remote, local, decode, wl.output_tokens_mean, mode, scale=pc[1])
    return ThroughputModel(sc.model, wl.uncached, remote, local, decode, wl.output_tokens_mean, mode)


def problem_for(sc: Scenario, tm: ThroughputModel, objective: str, budget: float | None) -> Problem:
    """The scenario's question: the fleet in place (fixed-fleet), or free counts and a link bought
    (or the link an override fixed, :func:`~.scenario.link_is_fixed`)."""
    if objective == "fixed-fleet":
        return _make(sc, tm, Range.exactly(sc.prfaas.instances), Range.exactly(sc.local.instances), sc.link, None)
    link = sc.link if link_is_fixed(sc, objective) else replace(sc.link, fixed_gbit_per_s=None)
    return _make(sc, tm, sc.prfaas.instances_range, sc.local.instances_range, link, budget)


def fleet_problem(sc: Scenario, tm: ThroughputModel, plan: dict, thresholds: str = "any") -> Problem:
    """The problem of a planned fleet: its PrfaaS instances, its local total (split free) and its
    link as bought (``plan['link_gbit_per_s']`` at the scenario's price and ceiling), no budget."""
    link = Link(fixed_gbit_per_s=plan["link_gbit_per_s"], usd_per_gbit_per_s_hour=sc.link.usd_per_gbit_per_s_hour,
                max_utilisation=sc.link.max_utilisation, bandwidth_profile=sc.link.bandwidth_profile)
    local = Range.exactly(plan["n_pd_prefill"] + plan["n_pd_decode"])
    return _make(sc, tm, Range.exactly(plan["n_prfaas"]), local, link, None, thresholds)


def _make(sc: Scenario, tm: ThroughputModel, prfaas: Range, local: Range, link: Link, budget: float | None, thresholds: str = "any") -> Problem:
    return Problem(
        model=tm,
        remote_gpus_per_instance=sc.prfaas.gpus_per_instance,
        local_gpus_per_instance=sc.local.gpus_per_instance,
        remote_usd_per_gpu_hour=sc.prfaas.usd_per_gpu_hour,
        local_usd_per_gpu_hour=sc.local.usd_per_gpu_hour,
        prfaas=prfaas,
        local=local,
        link=link,
        budget_usd_per_hour=budget,
        thresholds=thresholds,
    )


def bottleneck(metrics: dict, offload_frac: float, rtol: float = 1e-6) -> str:
    """Which capacities bind at the operating point ('+' joins ties, e.g. a balanced Eq. 7)."""
    lam = float(metrics["throughput_req_per_s"][0])
    p = offload_frac
    caps = {
        "prfaas-compute": float(metrics["theta_prfaas_compute_req_per_s"][0]) / p if p > 0 else math.inf,
        "prfaas-link": float(metrics["theta_prfaas_link_req_per_s"][0]) / p if p > 0 else math.inf,
        "pd-prefill": float(metrics["cap_pd_prefill_req_per_s"][0]),
        "pd-decode": float(metrics["theta_pd_decode_req_per_s"]),
    }
    binding = [k for k, v in caps.items() if v <= lam * (1 + rtol)]
    return "+".join(binding) or "none"


def plan_dict(plan: Plan, sc: Scenario) -> dict:
    n, m = plan.needs, plan.metrics
    first = lambda a: float(a[0]) if hasattr(a, "__len__") else float(a)  # noqa: E731
    lam = plan.throughput_req_per_s
    p = first(n.offload_frac)
    egress = lam * first(n.link_bytes)
    link_gbit = units.bytes_per_s_to_gbit_per_s(sc.link.bought_bytes_per_s(plan.link_bytes_per_s))
    local_instance_usd_per_hour = sc.local.gpus_per_instance * sc.local.usd_per_gpu_hour
    decode_usd_per_hour = plan.n_pd_decode * local_instance_usd_per_hour
    served = served_req_per_s(lam, sc.workload.arrival_req_per_s)
    per_mtok = usd_per_million_tokens(plan.cost_usd_per_hour - decode_usd_per_hour, decode_usd_per_hour, served,
                                      sc.workload.input.mean(), sc.workload.output_tokens_mean)
    return {
        "threshold_tokens": None if math.isinf(plan.threshold_tokens) else plan.threshold_tokens,
        "n_prfaas": plan.n_prfaas,
        "n_pd_prefill": plan.n_pd_prefill,
        "n_pd_decode": plan.n_pd_decode,
        "link_gbit_per_s": link_gbit,
        "throughput_req_per_s": lam,
        "theta_prfaas_req_per_s": first(m["theta_prfaas_req_per_s"]) if p > 0 else 0.0,
        "theta_pd_prefill_req_per_s": first(m["theta_pd_prefill_req_per_s"]) if p < 1 else 0.0,
        "theta_pd_decode_req_per_s": first(m["theta_pd_decode_req_per_s"]),
        "offload_frac": p,
        "mean_offloaded_tokens": first(n.long_tokens) if p > 0 else None,
        "mean_local_prefill_tokens": first(n.short_tokens) if p < 1 else None,
        "egress_gbit_per_s": units.bytes_per_s_to_gbit_per_s(egress),
        "link_utilisation_frac": units.bytes_per_s_to_gbit_per_s(egress) / link_gbit if link_gbit > 0 else None,
        "cost_usd_per_hour": plan.cost_usd_per_hour,
        "bottleneck": bottleneck(m, p),
        "gpus_prfaas": plan.n_prfaas * sc.prfaas.gpus_per_instance,
        "gpus_local": (plan.n_pd_prefill + plan.n_pd_decode) * sc.local.gpus_per_instance,
        "prfaas_usd_per_gpu_hour": sc.prfaas.usd_per_gpu_hour,
        "local_usd_per_gpu_hour": sc.local.usd_per_gpu_hour,
        "usd_per_million_tokens": {**per_mtok, "served_req_per_s": served},
    }


def load_report(plan: dict, arrival_req_per_s: float) -> dict:
    """How busy the plan is at the scenario's arrival rate: utilisation of each path (arrivals it
    receives over its capacity), the egress at that load, and the headroom to Lambda_max."""
    lam, p = plan["throughput_req_per_s"], plan["offload_frac"]
    util = lambda demand, cap: demand / cap if cap > 0 else (0.0 if demand == 0 else math.inf)  # noqa: E731
    return {
        "arrival_req_per_s": arrival_req_per_s,
        "utilisation_frac": util(arrival_req_per_s, lam),
        "prfaas_utilisation_frac": util(arrival_req_per_s * p, plan["theta_prfaas_req_per_s"]),
        "pd_prefill_utilisation_frac": util(arrival_req_per_s * (1 - p), plan["theta_pd_prefill_req_per_s"]),
        "pd_decode_utilisation_frac": util(arrival_req_per_s, plan["theta_pd_decode_req_per_s"]),
        "egress_at_load_gbit_per_s": plan["egress_gbit_per_s"] * arrival_req_per_s / lam if lam > 0 else 0.0,
        "headroom_frac": lam / arrival_req_per_s - 1,
    }


def baselines(sc: Scenario, main: dict, tm: ThroughputModel) -> tuple[dict, dict]:
    """Homogeneous PD on the local part (same GPU count; same cost) and naive heterogeneous (all
    prefill remote on the plan's PrfaaS instances, every local instance decoding). Returns
    (baselines, errors): a baseline that cannot be built is None, with its reason in errors;
    it never takes the main plan down with it."""
    gpus = main["gpus_prfaas"] + main["gpus_local"]
    same_gpus = max(gpus // sc.local.gpus_per_instance, 1)
    no_link = Link(fixed_gbit_per_s=0.0)
    problems = {
        "homogeneous": _make(sc, tm, Range.exactly(0), Range.exactly(same_gpus), no_link, None, "local-only"),
        "homogeneous_equal_cost": _make(sc, tm, Range.exactly(0), Range(0, None), Link(), main["cost_usd_per_hour"], "local-only"),
        "naive": None,
    }
    if main["n_prfaas"] > 0:
        problems["naive"] = fleet_problem(sc, tm, main, "remote-only")
    out, errors = {}, {}
    for name, problem in problems.items():
        out[name] = None
        if problem is None:
            continue
        try:
            b = plan_dict(maximise(problem), sc)
        except PlanError as exc:
            errors[name] = str(exc)
            continue
        b["plan_vs_baseline"] = main["throughput_req_per_s"] / b["throughput_req_per_s"]
        out[name] = b
    return out, errors


#: How a question is answered on one throughput model: ``solver(sc, tm, objective, budget,
#: target) -> Plan``. :func:`solve_throughput` here; the latency layer adds the SLO-aware one
#: (:func:`prfaas_plan.latency.slo_plan.solve`), which the commands use.
Solver = Callable[[Scenario, ThroughputModel, str, "float | None", "float | None"], Plan]


def question(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None) -> tuple[str, float | None, float | None]:
    """(objective, budget, target): the scenario's question, or the budget / target given here
    (checked: one of them, positive)."""
    if budget_usd_per_hour is not None and target_req_per_s is not None:
        raise PlanError("give a budget or a target, not both")
    objective, budget, target = sc.objective, sc.budget_usd_per_hour, sc.target_req_per_s
    if budget_usd_per_hour is not None:
        objective, budget, target = "budget", budget_usd_per_hour, None
    elif target_req_per_s is not None:
        objective, budget, target = "target", None, target_req_per_s
    check("budget_usd_per_hour", budget_usd_per_hour)
    check("target_req_per_s", target_req_per_s)
    return objective, budget, target


def solve_throughput(sc: Scenario, tm: ThroughputModel, objective: str, budget: float | None, target: float | None) -> Plan:
    """The throughput answer ([PRFAAS] Eq. 7-8 and beyond): the most Lambda_max (fixed fleet,
    budget) or the cheapest plan reaching the target. Latency SLOs are not looked at here."""
    if objective == "slo":
        raise PlanError("objective kind slo plans for a latency SLO: use prfaas_plan.latency.slo_plan (the prfaas-plan commands do)")
    problem = problem_for(sc, tm, objective, budget)
    return cheapest_for(problem, target) if objective == "target" else maximise(problem)


def goal(result: dict) -> str | None:
    """The question an :func:`optimize` result answers, in words; None for a fixed fleet (whose
    wording depends on where it is shown)."""
    slo = result.get("slo") or {}
    levels = TtftSlo(slo.get("ttft_p90_s"), slo.get("ttft_p99_s"), slo.get("ttft_mean_s"))
    caps = slo.get("max_utilisation_frac") or {}
    parts = ([f"TTFT {levels.describe()}"] if levels.stated else []) + [f"{pool} <= {u:.0%} utilised" for pool, u in caps.items()]
    meeting = " and ".join(parts)
    obj = result["objective"]
    if obj == "slo":
        return f"the cheapest plan meeting {meeting} at {result['load']['arrival_req_per_s']:g} req/s"
    if obj == "budget":
        return f"the most goodput ({meeting}) within {result['budget_usd_per_hour']:,.0f} $/hour" if meeting else \
            f"the most requests per second within {result['budget_usd_per_hour']:,.0f} $/hour"
    if obj == "target":
        return f"the cheapest plan whose goodput ({meeting}) reaches {result['target_req_per_s']:g} req/s" if meeting else \
            f"the cheapest plan that carries {result['target_req_per_s']:g} req/s"
    return None


def optimize(sc: Scenario, mode: str | None = None, budget_usd_per_hour: float | None = None,
             target_req_per_s: float | None = None, compare_modes: bool = True, solver: Solver | None = None) -> dict:
    """Plan ``sc``: the answer to its question (or to the budget / target given here), with the
    baselines and, if ``compare_modes``, the same question answered in the other mode.
    ``solver``: how the question is answered (default :func:`solve_throughput`). A fleet scenario
    (sites or candidate parts) is refused: :func:`prfaas_plan.fleet.plan.plan_fleet` plans it."""
    one_pair_only(sc, "the one-pair planner")
    mode = mode or sc.mode
    objective, budget, target = question(sc, budget_usd_per_hour, target_req_per_s)
    solver = solver or solve_throughput

    def solve(m: str) -> tuple[dict, ThroughputModel]:
        tm = throughput_model(sc, m)
        return plan_dict(solver(sc, tm, objective, budget, target), sc), tm

    main, tm = solve(mode)
    base, base_errors = baselines(sc, main, tm)
    result = {
        "verdict": None,  # filled below, listed first
        "scenario": sc.name,
        "model": sc.model.name,
        "mode": mode,
        "objective": objective,
        "budget_usd_per_hour": budget,
        "target_req_per_s": target,
        **main,
        "baselines": base,
        "baseline_errors": base_errors,
        "slo": {"tpot_s": sc.tpot_s, "ttft_p90_s": sc.ttft_p90_slo_s, "ttft_p99_s": sc.ttft_p99_slo_s, "ttft_mean_s": sc.ttft_mean_slo_s,
                "max_utilisation_frac": dict(sc.max_utilisation_frac) or None},
        "decode": {
            "bs_max": tm.decode.bs_max,
            "step_time_s": tm.decode.step_s,
            "limited_by": tm.decode.limited_by,
            "req_per_s_per_instance": tm.decode_req_per_s_per_instance,
            "context_tokens": sc.workload.decode_context_tokens(),
            "source": tm.decode.source,
        },
        "prefill_sources": {"prfaas": tm.remote.source, "local": tm.local.source},
        "deployments": {"prfaas": sc.prfaas.instance.deployment(), "local": sc.local.instance.deployment()},  # in the engines' terms
        "prices": {
            "prfaas_usd_per_gpu_hour": sc.prfaas.usd_per_gpu_hour, "prfaas_price_source": sc.prfaas.price_source,
            "local_usd_per_gpu_hour": sc.local.usd_per_gpu_hour, "local_price_source": sc.local.price_source,
            "link_usd_per_gbit_per_s_hour": sc.link.usd_per_gbit_per_s_hour,
        },
    }
    if sc.workload.arrival_req_per_s is not None:
        result["load"] = load_report(main, sc.workload.arrival_req_per_s)
    result["cache_locality"] = locality_report(sc.workload, main["threshold_tokens"])  # None without a trace's cache model
    result["verdict"] = verdict(result)
    if compare_modes:
        other = "distribution" if mode == "paper" else "paper"
        alt, _ = solve(other)
        result["other_mode"] = {"mode": other, **{k: alt[k] for k in PLAN_KEYS}}
    return result
