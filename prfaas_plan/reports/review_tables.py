"""The tables of a review as plain data (title, header, rows of cells), rendered alike as HTML
and Markdown. A cell carries its text and, for the plan's numbers, the JSON key and exact value
(so a test can check the report against ``optimize -f json``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cell:
    text: str
    key: str | None = None  # dotted key of the value in `optimize -f json`
    value: float | int | str | None = None
    flag: str | None = None  # e.g. "estimate", "warning"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""


def _f(v, spec: str, key: str | None = None, dash: str = "-") -> Cell:
    return Cell(dash if v is None else format(v, spec), key, v)


def _t(v) -> str:
    return "none (all local)" if v is None else ("0 (all remote)" if v == 0 else f"{v:,.0f}")


BASELINE_NAMES = {"homogeneous": "Homogeneous PD, same GPUs", "homogeneous_equal_cost": "Homogeneous PD, same cost",
                  "naive": "Naive heterogeneous"}


def plan_table(rv: dict) -> Table:
    """[PRFAAS] Table 6 layout: one column per configuration, one row per quantity."""
    r = rv["plan"]
    cols = [("", r)] + [(k, b) for k, b in r["baselines"].items() if b]
    t = Table("Plan beside the baselines ([PRFAAS] Table 6 layout)", ["quantity", "PrfaaS-PD (this plan)"] + [BASELINE_NAMES[k] for k, _ in cols[1:]],
              note="TTFT: not modelled in this version (no queueing or latency model); capacities are steady-state maxima.")
    spec = [("threshold t (tokens)", "threshold_tokens", None), ("offloaded share of requests", "offload_frac", ".1%"),
            ("PrfaaS instances", "n_prfaas", "d"), ("local prefill instances (PD-P)", "n_pd_prefill", "d"),
            ("local decode instances (PD-D)", "n_pd_decode", "d"), ("link (Gbit/s)", "link_gbit_per_s", ",.1f"),
            ("mean egress (Gbit/s)", "egress_gbit_per_s", ",.2f"), ("Lambda_max (req/s)", "throughput_req_per_s", ".3f"),
            ("cost ($/hour)", "cost_usd_per_hour", ",.2f"), ("binding", "bottleneck", "s"), ("PrfaaS plan gain", "plan_vs_baseline", ".2f")]
    for label, key, fmt in spec:
        row = [Cell(label)]
        for name, d in cols:
            full = f"baselines.{name}.{key}" if name else key
            v = d.get(key) if name or key != "plan_vs_baseline" else None
            if key == "plan_vs_baseline" and not name:
                row.append(Cell("1.00x"))
            elif fmt is None:
                row.append(Cell(_t(v), full, v))
            else:
                row.append(_f(v, fmt, full))
                if key == "plan_vs_baseline" and v is not None:
                    row[-1].text += "x"
                    row[-1].flag = "warning" if v < 1 else None
        t.rows.append(row)
    return t


def capacity_table(rv: dict) -> Table:
    r = rv["plan"]
    p = r["offload_frac"]
    d = r["decode"]
    t = Table("What binds: capacities ([PRFAAS] Eq. 3-6), req/s", ["path", "Theta (req/s)", "share of requests", "capacity Theta/share (req/s)", "note"],
              note=f"Lambda_max = min of the capacities = {r['throughput_req_per_s']:.3f} req/s; binding: {r['bottleneck']}.")
    t.rows.append([Cell("PrfaaS prefill (Eq. 3)"), _f(r["theta_prfaas_req_per_s"], ".3f", "theta_prfaas_req_per_s"), _f(p, ".3f"),
                   _f(r["theta_prfaas_req_per_s"] / p if p > 0 else None, ".3f"),
                   Cell(f"mean offloaded prompt {r['mean_offloaded_tokens']:,.0f} tokens" if r["mean_offloaded_tokens"] else "-")])
    t.rows.append([Cell("local prefill (Eq. 4)"), _f(r["theta_pd_prefill_req_per_s"], ".3f", "theta_pd_prefill_req_per_s"), _f(1 - p, ".3f"),
                   _f(r["theta_pd_prefill_req_per_s"] / (1 - p) if p < 1 else None, ".3f"),
                   Cell(f"mean local prompt {r['mean_local_prefill_tokens']:,.0f} tokens" if r["mean_local_prefill_tokens"] else "-")])
    t.rows.append([Cell("local decode (Eq. 5)"), _f(r["theta_pd_decode_req_per_s"], ".3f", "theta_pd_decode_req_per_s"), _f(1.0, ".3f"),
                   _f(r["theta_pd_decode_req_per_s"], ".3f"), Cell(f"BS_max {d['bs_max']} at {d['step_time_s'] * 1e3:.1f} ms per step ({d['source']})")])
    load = r.get("load")
    if load:
        t.note += (f" At the scenario's {load['arrival_req_per_s']:g} req/s: {load['utilisation_frac']:.0%} of Lambda_max (PrfaaS "
                   f"{load['prfaas_utilisation_frac']:.0%}, local prefill {load['pd_prefill_utilisation_frac']:.0%}, decode "
                   f"{load['pd_decode_utilisation_frac']:.0%}); headroom {load['headroom_frac']:+.0%}.")
    else:
        t.note += " The scenario gives no arrival rate (workload.arrival_req_per_s), so no utilisation or headroom."
    return t


def inputs_table(rv: dict) -> Table:
    t = Table("Inputs and their sources", ["input", "value", "unit", "source"], note="Rows marked ESTIMATE are estimated, derived or hypothetical values.")
    for r in rv["inputs"]:
        v = r["value"]
        text = f"{v:,.4g}" if isinstance(v, float) else str(v)
        t.rows.append([Cell(r["key"]), Cell(text), Cell(r["unit"]), Cell(("ESTIMATE: " if r["estimate"] else "") + r["source"], flag="estimate" if r["estimate"] else None)])
    return t


def whatif_table(rv: dict) -> Table:
    t = Table("What-ifs: re-plan (buy again) and stress (the planned fleet and link, conditions changed)",
              ["what if", "re-plan t", "re-plan fleet P/PD-P/PD-D", "re-plan req/s", "re-plan $/h", "re-plan vs plan",
               "stress req/s", "stress vs plan", "stress carries demand", "stress binding"])
    for w in rv["whatifs"]:
        rp, st = w["replan"], w["stress"]
        by_cost = w["replan_compared_by"] == "cost"
        vs = w["replan_cost_vs_planned"] if by_cost else w["replan_throughput_vs_planned"]
        carries = w["stress_carries_demand"]
        t.rows.append([
            Cell(w["variant"]), Cell(_t(rp["threshold_tokens"]) if rp["error"] is None else "infeasible"),
            Cell("-" if rp["error"] else f"{rp['n_prfaas']}/{rp['n_pd_prefill']}/{rp['n_pd_decode']}"),
            _f(rp["throughput_req_per_s"], ".3f"), _f(rp["cost_usd_per_hour"], ",.0f"),
            Cell("-" if vs is None else f"{vs:.2f}x {'cost' if by_cost else 'req/s'}"),
            _f(st["throughput_req_per_s"], ".3f"), _f(w["stress_throughput_vs_planned"], ".2f"),
            Cell("-" if carries is None else ("yes" if carries else f"NO ({w['demand_req_per_s']:g} req/s)"), flag=None if carries is not False else "warning"),
            Cell(st["bottleneck"] or (st["error"] or "-")),
        ])
    return t


ASSUMPTIONS = [
    "Steady-state capacities ([PRFAAS] Eq. 3-6): no queueing, bursts or TTFT model; a plan at 100% utilisation has no slack for bursts.",
    "distribution mode takes E[T(L)] over each side of the threshold; paper mode one representative length per path, as the paper does.",
    "Instance counts are exact integers; the routing threshold is continuous (Eq. 7 balance); the link is bought at the scenario's price per Gbit/s.",
    "The prefix cache is a share of each prompt already cached: it costs no prefill and is not shipped; decode holds the whole prompt's cache.",
    "Prices are rents per GPU-hour as the inputs table states with their sources; per-byte transfer fees are not modelled.",
    "The Phi_kv plot uses the calibrated roofline for both models (profiles exist only for some model/part pairs).",
    "Stress readings keep the plan's PrfaaS instances, local instances and link; the threshold and the local prefill/decode split are re-chosen.",
]


def review_tables(rv: dict) -> list[Table]:
    return [plan_table(rv), capacity_table(rv), inputs_table(rv), whatif_table(rv)]
