"""The design review of a fleet scenario (sites or candidate parts), computed once: the fleet plan
(:func:`prfaas_plan.fleet.plan.plan_fleet`, what ``optimize -f json`` prints), every input with
its source, and the what-ifs re-planned (:mod:`prfaas_plan.fleet.whatif`); and its tables, as
plain data rendered alike as HTML, Markdown (:mod:`.html_report`) and workbook
(:mod:`.xlsx_fleet`). Plan cells carry their dotted JSON key (``fleet.0.instances``,
``sites.1.latency.at_rate.ttft_p90_s``) and exact value, so a test can hold the report to
``optimize -f json``.

The one-pair review's curves (Fig. 5, link and budget sweeps, Phi_kv) are not drawn for a fleet:
each is a one-pair question (one threshold, one link, one PrfaaS part)."""

from __future__ import annotations

from ..fleet.plan import plan_fleet
from ..fleet.whatif import fleet_whatif_rows
from ..planning.inputs import input_rows
from ..planning.scenario import Scenario
from .provenance import provenance
from .review_tables import Cell, Table, _f, _t, inputs_table

#: The slow steps of :func:`build_fleet_review`: the plan, the what-ifs.
FLEET_REVIEW_STEPS = 2

FLEET_ASSUMPTIONS = [
    "The composition is a scipy.optimize.milp (HiGHS) answer: integer instances per site x role x part, link sizes and each local "
    "site's routing (one PrfaaS site, one threshold) chosen together at each part's own price (prfaas_plan/fleet/search.py says "
    "what is linear, what is enumerated and why the result is optimal); a site's TTFT levels are lower bounds on its pools' "
    "counts, the plan checked with the full analytic model and cut until every site meets them (prfaas_plan/fleet/slo_search.py).",
    "Capacities are steady-state maxima per pool ([PRFAAS] Eq. 3-6 per site); a pool at 100% utilisation has no slack for bursts.",
    "TTFT per local site is analytic (M/G/c prefill queues, layer-wise KV transfer over its link, RTT, decode slot). A pool of mixed "
    "parts is one pool with the capacity-weighted service; a PrfaaS site serving several local sites is seen by each as its share "
    "of the pool (prfaas_plan/fleet/latency.py).",
    "Goodput per site is the highest rate of that site whose P90 TTFT meets its SLO, the other sites as planned.",
    "Prices are rents per GPU-hour (inputs table, with sources); links cost their size x price per Gbit/s-hour; transfer fees are not modelled.",
    "What-ifs are read twice: re-planned (the fleet bought again) and stressed (the planned counts and links held fixed, each site's "
    "PrfaaS site and threshold re-chosen; the largest common multiple of every site's demand found by the fleet MILP with counts and "
    "links pinned, TTFT at each site's demand at the plan's routing where it still carries the rates, else the nearest routing that "
    "does; prfaas_plan/fleet/stress.py).",
]


def fleet_question(sc: Scenario, r: dict) -> str:
    """The fleet scenario's question in words."""
    f = sc.fleet
    sites = ", ".join(f"{s.name} ({s.workload.arrival_req_per_s:g} req/s)" if s.workload.arrival_req_per_s is not None else s.name
                      for s in f.local_sites)
    parts = sorted({c.hardware.name for p in f.prfaas_sites for c in p.parts})
    goal = {"budget": f"the most throughput (a common multiple of every site's rate) within {r['budget_usd_per_hour'] or 0:,.0f} $/hour",
            "slo": "the cheapest fleet whose TTFT at every site's arrival rate meets its SLO"}.get(r["objective"], "the cheapest fleet that carries every site's target")
    return (f"Serve {sc.model.name} at local sites {sites}, long prompts prefilled at PrfaaS sites "
            f"{', '.join(p.name for p in f.prfaas_sites)} (candidate parts {', '.join(parts)}) over priced links: {goal}?")


def fleet_answer(r: dict) -> str:
    """The plan in one sentence: each local site's routing, the PrfaaS pools, the cost."""
    routes = []
    for s in r["sites"]:
        if s["prfaas_site"] is None:
            routes.append(f"{s['site']} prefills everything locally")
        else:
            t = "every prompt" if not s["threshold_tokens"] else f"prompts longer than {s['threshold_tokens']:,.0f} tokens"
            routes.append(f"{s['site']} offloads {t} ({s['offload_frac']:.1%}) to {s['prfaas_site']}")
    pools = ", ".join(f"{e['instances']} x {e['gpus_per_instance']} {e['hardware']} {e['role']} at {e['site']}" for e in r["fleet"])
    return f"{'; '.join(routes)}. Pools: {pools}. {r['throughput_req_per_s']:.3f} req/s for {r['cost_usd_per_hour']:,.2f} $/hour."


def build_fleet_review(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
                       command: str = "report", progress=None, result: dict | None = None) -> dict:
    """Everything the fleet review shows; ``progress(done, total)`` after each slow step.
    ``result``: the plan of this question if already made (:func:`~prfaas_plan.fleet.plan.plan_fleet`)."""
    result = result if result is not None else plan_fleet(sc, budget_usd_per_hour, target_req_per_s)
    if progress is not None:
        progress(1, FLEET_REVIEW_STEPS)
    whatifs = fleet_whatif_rows(sc, budget_usd_per_hour, target_req_per_s, base=result)
    if progress is not None:
        progress(2, FLEET_REVIEW_STEPS)
    return {"kind": "fleet", "provenance": provenance(sc, "distribution", command, budget_usd_per_hour=budget_usd_per_hour,
                                                      target_req_per_s=target_req_per_s),
            "question": fleet_question(sc, result), "answer": fleet_answer(result), "plan": result, "inputs": input_rows(sc),
            "whatifs": whatifs}


def mix_table(rv: dict) -> Table:
    """One row per site x role x part (the plan's ``fleet``)."""
    r = rv["plan"]
    t = Table("Fleet: the mix (one row per site x role x part)", ["site", "role", "hardware", "instances", "GPUs/instance", "$/GPU-h", "$/h"],
              note=f"Total {r['cost_usd_per_hour']:,.2f} $/hour with the links; roles: prfaas (long-prompt prefill), local-prefill, local-decode.")
    for i, e in enumerate(r["fleet"]):
        k = f"fleet.{i}."
        t.rows.append([Cell(e["site"]), Cell(e["role"]), Cell(e["hardware"]), _f(e["instances"], ",d", k + "instances"),
                       _f(e["gpus_per_instance"], "d", k + "gpus_per_instance"), _f(e["usd_per_gpu_hour"], ".2f", k + "usd_per_gpu_hour"),
                       _f(e["usd_per_hour"], ",.2f", k + "usd_per_hour")])
    return t


def links_table(rv: dict) -> Table:
    """One row per link the plan buys or uses."""
    t = Table("Links", ["from", "to", "Gbit/s", "$/h", "utilisation", "RTT ms"],
              note="Utilisation: the mean KV egress over the link bought (a link is sized for at most its max_utilisation).")
    for i, lk in enumerate(rv["plan"]["links"]):
        k = f"links.{i}."
        t.rows.append([Cell(lk["from"]), Cell(lk["to"]), _f(lk["gbit_per_s"], ",.1f", k + "gbit_per_s"), _f(lk["usd_per_hour"], ",.2f", k + "usd_per_hour"),
                       _f(lk["utilisation_frac"], ".1%", k + "utilisation_frac"), _f(lk["rtt_ms"], "g", k + "rtt_ms")])
    return t


#: TTFT levels a local site may state: (statistic, plan key, label).
SLO_LEVELS = (("mean", "ttft_mean_slo_s", "mean"), ("p90", "ttft_p90_slo_s", "P90"), ("p99", "ttft_p99_slo_s", "P99"))


def sites_table(rv: dict) -> Table:
    """Per local site: routing, threshold, rate, TTFT at its rate (a level over its SLO flagged),
    its SLO levels and goodput."""
    t = Table("Local sites: routing, rate, TTFT at the rate, goodput",
              ["local site", "offloads to", "threshold t (tokens)", "offloaded", "rate req/s", "arrival req/s", "TTFT mean at rate (s)",
               "TTFT P90 at rate (s)", "TTFT P99 at rate (s)", "TTFT SLO (s)", "goodput req/s"],
              note="TTFT: analytic at the site's planned rate (see Assumptions); goodput: the highest rate of the site meeting every "
                   "TTFT level it states, the other sites as planned.")
    for i, s in enumerate(rv["plan"]["sites"]):
        k = f"sites.{i}."
        lat = s.get("latency") or {}
        at = lat.get("at_rate")
        row = [Cell(s["site"]), Cell(s["prfaas_site"] or "none (all local)"), Cell(_t(s["threshold_tokens"]), k + "threshold_tokens", s["threshold_tokens"]),
               _f(s["offload_frac"], ".1%", k + "offload_frac"), _f(s["rate_req_per_s"], ".3f", k + "rate_req_per_s"),
               _f(s["arrival_req_per_s"], "g", k + "arrival_req_per_s")]
        for stat, slo_key, _ in SLO_LEVELS:
            if at is None:
                row.append(Cell("unstable" if lat.get("at_rate_error") else "-", flag="warning" if lat.get("at_rate_error") else None))
                continue
            c = _f(at[f"ttft_{stat}_s"], ".2f", f"{k}latency.at_rate.ttft_{stat}_s")
            slo = s.get(slo_key)
            c.flag = "warning" if slo is not None and at[f"ttft_{stat}_s"] > slo else None
            row.append(c)
        levels = [f"{label} <= {s[key]:g}" for _, key, label in SLO_LEVELS if s.get(key) is not None]
        row += [Cell(", ".join(levels) or "none"), _f(s.get("goodput_req_per_s"), ".3f", k + "goodput_req_per_s")]
        t.rows.append(row)
    return t


def fleet_whatif_table(rv: dict) -> Table:
    t = Table("What-ifs: the fleet re-planned (bought again) under each change",
              ["what if", "req/s", "$/h", "$/h vs plan", "vs plan", "PrfaaS GPUs", "local prefill GPUs", "decode GPUs", "links Gbit/s", "mix", "verdict"],
              note="Re-planned: the scenario's question answered again under each change; the stressed reading of the same "
                   "what-ifs follows.")
    for w in rv["whatifs"]:
        rp = w["replan"]
        by_cost = w["replan_compared_by"] == "cost"
        vs = w["replan_cost_vs_planned"] if by_cost else w["replan_throughput_vs_planned"]
        verdict = rp["error"] or rp["verdict"]
        t.rows.append([Cell(w["variant"]), _f(rp["throughput_req_per_s"], ".3f"), _f(rp["cost_usd_per_hour"], ",.0f"),
                       _f(w["replan_cost_delta_usd_per_hour"], "+,.0f"), Cell("-" if vs is None else f"{vs:.2f}x {'cost' if by_cost else 'req/s'}"),
                       _f(rp["prfaas_gpus"], ",d"), _f(rp["local_prefill_gpus"], ",d"), _f(rp["local_decode_gpus"], ",d"),
                       _f(rp["links_gbit_per_s"], ",.0f"), Cell(rp["mix"] or "-"),
                       Cell(verdict or "-", flag="warning" if rp["error"] or rp["ok"] is False else None)])
    return t


def fleet_stress_table(rv: dict) -> Table:
    """Each what-if's stress reading (:func:`prfaas_plan.fleet.stress.stress_fleet`): the multiple
    of the demand the planned fleet carries, per site its largest rate and P90 TTFT at its demand
    (over its SLO flagged), cost at the new prices, what binds, the verdict."""
    rows = rv["whatifs"]
    sites = next(([s["site"] for s in w["stress"]["sites"]] for w in rows if w["stress"]["sites"]), [])
    head = ["what if", "x demand", "carries demand", "req/s", "$/h", "$ vs plan"]
    for name in sites:
        head += [f"{name} max req/s", f"{name} P90 TTFT (s)"]
    t = Table("What-ifs: the planned fleet stressed (counts and links held, routing re-chosen)", head + ["binding", "verdict"],
              note="x demand: the largest multiple of every site's demand the planned fleet and links carry; max req/s: a site's largest "
                   "rate with the others at their demand (or that multiple); P90 TTFT at the site's demand (the others at that "
                   "multiple where it is below 1; '-' where the site's demand is not carried); binding: the capacity rows that run out first.")
    for w in rows:
        st = w["stress"]
        carries = st["carries_demand"]
        row = [Cell(w["variant"]), _f(st["alpha"], ".3f"), Cell("-" if carries is None else ("yes" if carries else "NO"), flag="warning" if carries is False else None),
               _f(st["throughput_req_per_s"], ".3f"), _f(st["cost_usd_per_hour"], ",.0f"), _f(w["stress_cost_vs_planned"], ".2f")]
        by_site = {s["site"]: s for s in st["sites"] or []}
        for name in sites:
            s = by_site.get(name, {})
            p90 = _f(s.get("ttft_p90_s"), ".2f")
            p90.flag = "warning" if s.get("meets_slo") is False and s.get("ttft_p90_s") is not None else None
            row += [_f(s.get("max_req_per_s"), ".3f"), p90]
        row += [Cell(", ".join(st["binding"] or []) or "-"), Cell(st["error"] or st["verdict"] or "-", flag="warning" if st["error"] or st["ok"] is False else None)]
        t.rows.append(row)
    return t


def fleet_tables(rv: dict) -> list[Table]:
    """The fleet review's tables, in the report's order."""
    return [mix_table(rv), links_table(rv), sites_table(rv), inputs_table(rv), fleet_whatif_table(rv), fleet_stress_table(rv)]
