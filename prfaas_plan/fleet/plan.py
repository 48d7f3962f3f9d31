"""A fleet scenario's plan as a document: the composition (one entry per site x role x part), the
links, and per local site its routing (PrfaaS site, threshold), served rate and egress; stable,
unit-named keys for JSON, tables and workbooks.
"""

from __future__ import annotations

import math

from .. import units
from ..errors import PlanError
from ..planning.scenario import Scenario
from .latency import TTFT_RTOL
from .needs import SiteNeeds, site_needs
from .search import TIME_LIMIT_S, FleetSolution, optimise
from .slo_search import most_goodput_for_slo, optimise_for_slo

ROLES = ("prfaas", "local-prefill", "local-decode")

FLEET_KEYS = ("site", "role", "hardware", "instances", "gpus_per_instance", "usd_per_gpu_hour", "usd_per_hour")
LINK_KEYS = ("from", "to", "gbit_per_s", "usd_per_hour", "utilisation_frac", "rtt_ms")


def question(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None) -> tuple[str, float | None, dict]:
    """(objective, budget, demand per local site) of a fleet scenario, with the command line's
    budget or target (one-pair fleets only) in place of the file's."""
    fleet = sc.fleet
    if budget_usd_per_hour is not None and target_req_per_s is not None:
        raise PlanError("give a budget or a target, not both")
    objective, budget = sc.objective, sc.budget_usd_per_hour
    target = sc.target_req_per_s
    if budget_usd_per_hour is not None:
        objective, budget = "budget", budget_usd_per_hour
    elif target_req_per_s is not None:
        if not fleet.one_pair:
            raise PlanError("--target-req-per-s: a multi-site scenario states each local site's target_req_per_s")
        objective, target = "target", target_req_per_s
    for key, v in (("budget", budget if objective == "budget" else None), ("target", target if objective == "target" and fleet.one_pair else None)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise PlanError(f"{key} must be a positive number, got {v}")
    if objective == "target":
        demand = {s.name: (target if fleet.one_pair else s.target_req_per_s) for s in fleet.local_sites}
    elif objective == "slo":
        demand = {s.name: s.workload.arrival_req_per_s for s in fleet.local_sites}
    else:
        demand = {s.name: (1.0 if fleet.one_pair else s.workload.arrival_req_per_s) for s in fleet.local_sites}
    return objective, budget, demand


def solve_fleet(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
                needs: dict[str, SiteNeeds] | None = None, time_limit_s: float = TIME_LIMIT_S) -> tuple[FleetSolution, dict[str, SiteNeeds], str, float | None, dict]:
    """The MILP's answer to the scenario's question: (solution, need curves, objective, budget,
    demand); ``time_limit_s``: the search's budget (then the best plan and its gap).

    ``slo``, and ``target`` where a local site states a TTFT level: the cheapest fleet serving
    each site's rate (its arrival rate; its target) whose analytic TTFT there meets every level
    each site states (:func:`~prfaas_plan.fleet.slo_search.optimise_for_slo`). ``budget`` with a
    TTFT level: the largest multiple of every site's arrival rate whose cheapest SLO fleet fits
    the budget (:func:`~prfaas_plan.fleet.slo_search.most_goodput_for_slo`)."""
    objective, budget, demand = question(sc, budget_usd_per_hour, target_req_per_s)
    needs = needs or {s.name: site_needs(sc.fleet, sc.model, s) for s in sc.fleet.local_sites}
    document = lambda x: fleet_document(sc, x, needs, objective, budget)  # noqa: E731
    if any(s.ttft_slo.stated for s in sc.fleet.local_sites):
        if objective in ("slo", "target"):
            return optimise_for_slo(sc.fleet, sc.model, demand, needs, document, time_limit_s), needs, objective, budget, demand
        return most_goodput_for_slo(sc.fleet, sc.model, demand, needs, document, budget), needs, objective, budget, demand
    return optimise(sc.fleet, sc.model, objective, demand, budget, needs, time_limit_s=time_limit_s), needs, objective, budget, demand


def fleet_document(sc: Scenario, sol: FleetSolution, needs: dict[str, SiteNeeds], objective: str, budget: float | None) -> dict:
    """The plan's keys (see the module docstring); costs in $/hour, rates in req/s."""
    m, x = sol.milp, sol.solution.x
    lay = m.lay
    fleet = []

    def entry(site: str, role: str, c, n: int) -> None:
        if n > 0:
            fleet.append({"site": site, "role": role, "hardware": c.hardware.name, "instances": n, "gpus_per_instance": c.gpus_per_instance,
                          "usd_per_gpu_hour": c.usd_per_gpu_hour, "usd_per_hour": n * c.instance_usd_per_hour})

    n_r, n_p, n_d = lay.values(x, "n_prfaas"), lay.values(x, "n_prefill"), lay.values(x, "n_decode")
    for p in m.fleet.prfaas_sites:
        for j, c in enumerate(p.parts):
            entry(p.name, "prfaas", c, n_r[p.name, j])
    for s, sn in needs.items():
        for k, c in enumerate(sn.prefill_parts):
            entry(s, "local-prefill", c, n_p[s, k])
        for d, c in enumerate(sn.decode_parts):
            entry(s, "local-decode", c, n_d[s, d])
    choose, rate = lay.values(x, "choose"), lay.values(x, "rate")
    sites, egress = [], {}
    prfaas_n = {r: sum(n for (r2, _), n in n_r.items() if r2 == r) for r, _ in n_r}
    for s, opts in m.options.items():
        i = max(range(len(opts)), key=lambda j: choose[s, j])
        o, lam = opts[i], sum(rate[s, j] for j in range(len(opts)))
        t = o.t_hi
        # A pool with no instances keeps no requests: a need under the solver's tolerance (a few
        # 1e-12 instance-seconds at a threshold next to the shortest prompt) is not a request.
        if o.prfaas and not any(n_p[s, k] for k in range(len(needs[s].prefill_parts))):
            t = 0.0
        elif o.prfaas and not prfaas_n.get(o.prfaas):
            o = opts[0]
        needs_t = needs[s].needs([t])
        p = float(needs_t.offload_frac[0]) if o.prfaas else 0.0
        gbit = lam * units.bytes_per_s_to_gbit_per_s(float(needs_t.link_bytes[0])) if o.prfaas else 0.0
        if o.prfaas:
            egress[o.prfaas, s] = gbit
        site = needs[s].site
        sites.append({"site": s, "prfaas_site": o.prfaas if p > 0 else None, "threshold_tokens": (t if p > 0 else None),
                      "offload_frac": p, "mean_offloaded_tokens": float(needs_t.long_tokens[0]) if p > 0 else None,
                      "rate_req_per_s": lam, "arrival_req_per_s": site.workload.arrival_req_per_s,
                      "egress_gbit_per_s": gbit, "tpot_slo_s": site.tpot_s, "ttft_p90_slo_s": site.ttft_p90_slo_s,
                      "ttft_p99_slo_s": site.ttft_p99_slo_s, "ttft_mean_slo_s": site.ttft_mean_slo_s})
    links = []
    for lk in m.fleet.links:
        if lk.dst not in m.options:
            continue
        key = (lk.src, lk.dst)
        link = lk.link
        if link.sizes_gbit_per_s:
            size = lay.values(x, "link_size")
            gbit = sum(sz for z, sz in enumerate(link.sizes_gbit_per_s) if size[key, z])
            usd = sum(u for z, u in enumerate(link.sizes_usd_per_hour) if size[key, z])
        elif link.fixed_gbit_per_s is None:
            # bought at the need (the MILP may round up its last digits), or at what an SLO cut asked for
            gbit = egress.get(key, 0.0) / link.max_utilisation
            bought = lay.values(x, "link_gbit").get(key, 0.0)
            if bought > gbit * (1 + 1e-6) and egress.get(key, 0.0) > 0 and m.slo is not None:
                gbit = bought
            usd = gbit * link.usd_per_gbit_per_s_hour
        else:
            on = lay.values(x, "link_on")[key]
            gbit, usd = link.fixed_gbit_per_s * on, link.fixed_gbit_per_s * link.usd_per_gbit_per_s_hour * on
        if gbit > 0 or egress.get(key, 0.0) > 0:
            links.append({"from": lk.src, "to": lk.dst, "gbit_per_s": gbit, "usd_per_hour": usd,
                          "utilisation_frac": egress.get(key, 0.0) / gbit if gbit > 0 else None, "rtt_ms": link.rtt_s * 1e3})
    cost = sum(e["usd_per_hour"] for e in fleet) + sum(lk["usd_per_hour"] for lk in links)
    return {
        "objective": objective,
        "budget_usd_per_hour": budget,
        "cost_usd_per_hour": cost,
        "throughput_req_per_s": sum(st["rate_req_per_s"] for st in sites),
        "alpha": sol.alpha,
        "fleet": fleet,
        "links": links,
        "sites": sites,
        "solver": {"method": "scipy.optimize.milp (HiGHS), thresholds by segment refinement"
                             + (", SLO rows, checked by the analytic model" if m.slo is not None else ""), "status": sol.status,
                   "gap_frac": sol.gap_frac, "rounds": sol.rounds, _bound_key(objective, m.slo is not None): sol.bound},
        "excluded_parts": [e for sn in needs.values() for e in sn.excluded],
    }


def _bound_key(objective: str, slo: bool) -> str:
    """The solver entry's key for ``FleetSolution.bound``: a cost question's lower bound of the
    cost ($/hour; with an SLO, the bound of its necessary rows, :mod:`.slo_search`); a budget
    question's upper bound of alpha (the relaxation's, proven); a budget question with an SLO,
    the smallest multiple of the arrival rates at which the bisection found no SLO fleet within
    the budget (:func:`~prfaas_plan.fleet.slo_search.most_goodput_for_slo`): not a proven bound,
    each probe's plan being a checked, not a proven, cheapest SLO fleet."""
    if objective != "budget":
        return "cost_lower_bound_usd_per_hour"
    return "alpha_out_of_reach" if slo else "alpha_upper_bound"


def fleet_verdict(result: dict) -> dict:
    """``{"ok", "text", "problems"}`` like the one-pair verdict: a problem for every site whose
    rate is below its arrival rate, whose analytic TTFT at its rate is unstable or misses a TTFT
    level it states (P90, P99, mean), and for a search stopped before it proved the plan optimal
    (a plan the SLO check passed, status "slo-checked", says its gap to the cost bound, not a problem: it meets
    every demand)."""
    problems, good = [], []
    for st in result["sites"]:
        arr, lam = st["arrival_req_per_s"], st["rate_req_per_s"]
        if arr is not None and lam < arr * (1 - 1e-9):
            problems.append(f"site {st['site']} serves {lam:.3g} of its {arr:g} req/s")
        at = (st.get("latency") or {}).get("at_rate")
        if st.get("latency") and at is None:
            problems.append(f"site {st['site']} is unstable at {lam:.3g} req/s ({st['latency']['at_rate_error']})")
        elif at:
            for label, key in (("P90", "p90"), ("P99", "p99"), ("mean", "mean")):
                slo = st.get(f"ttft_{key}_slo_s")
                if slo is not None and at[f"ttft_{key}_s"] > slo * (1 + TTFT_RTOL):
                    problems.append(f"site {st['site']}: {label} TTFT {at[f'ttft_{key}_s']:.3g} s at {lam:.3g} req/s exceeds its {slo:g} s SLO")
    status = result["solver"]["status"]
    if status == "slo-checked" and "alpha_out_of_reach" in result["solver"]:
        good.append(f"within {result['solver']['gap_frac']:.2g} of the smallest multiple of the rates found out of reach (not proven optimal)")
    elif status == "slo-checked":
        good.append(f"within {result['solver']['gap_frac']:.2g} of the SLO plan's cost bound (not proven optimal)")
    elif status != "optimal":
        problems.append(f"the search stopped {result['solver']['gap_frac']:.2g} from its bound (not proven optimal)")
    if result["alpha"] is not None and not result["fleet_one_pair"]:
        good.append(f"serves {result['alpha']:.3g}x every site's arrival rate")
    if any(st.get(f"ttft_{k}_slo_s") is not None for st in result["sites"] for k in ("p90", "p99", "mean")):
        good.insert(0, "every site meets its TTFT SLO at its rate")
    good.append(f"{len(result['fleet'])} pools, {len(result['links'])} links, {result['cost_usd_per_hour']:,.2f} $/hour")
    text = ("WARNING: " + "; ".join(problems)) if problems else "OK: " + "; ".join(good)
    return {"ok": not problems, "text": text, "problems": problems}


def plan_fleet(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None, latency: bool = True,
               time_limit_s: float = TIME_LIMIT_S, band: bool = True) -> dict:
    """Plan a fleet scenario (sites or candidate parts): the document ``optimize`` prints, with
    each site's TTFT at its rate and goodput and each site's TTFT P90 at the ends of the engine
    model's error band (``model_error_band``, :mod:`.bands`; ``band`` False leaves it out, as
    what-ifs and sweeps that read only cost and throughput do) with ``latency``, and the verdict first."""
    from .bands import fleet_band
    from .latency import add_site_latency

    sol, needs, objective, budget, _ = solve_fleet(sc, budget_usd_per_hour, target_req_per_s, time_limit_s=time_limit_s)
    doc = fleet_document(sc, sol, needs, objective, budget)
    if latency:
        add_site_latency(sc.model, needs, doc, sc.fleet)
        if band:
            doc["model_error_band"] = fleet_band(sc, needs, doc, target_req_per_s)
    result = {"verdict": None, "scenario": sc.name, "model": sc.model.name, "mode": "distribution", "fleet_one_pair": sc.fleet.one_pair,
              "target_req_per_s": target_req_per_s if target_req_per_s is not None else (sc.target_req_per_s if objective == "target" else None),
              **doc}
    result["verdict"] = fleet_verdict(result)
    return result
