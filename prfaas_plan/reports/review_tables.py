"""The tables of a review as plain data (title, header, rows of cells), rendered alike as HTML
and Markdown. A cell carries its text and, for the plan's numbers, the JSON key and exact value
(so a test can check the report against ``optimize -f json``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..planning.whatif import LINK_OVERRIDE_NOTE


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


def dotted_get(d: dict, dotted: str):
    """``d["a"]["b"]`` for ``"a.b"``; None where a part is missing."""
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def plan_rows(r: dict) -> list[tuple[str, str, str | None]]:
    """(label, dotted JSON key, format) of each row of the plan table: the plan's keys, prices,
    cost per million tokens and the analytic latency that ``optimize`` prints. A format of None
    is the threshold (in words)."""
    rows = [("threshold t (tokens)", "threshold_tokens", None), ("offloaded share of requests", "offload_frac", ".1%"),
            ("PrfaaS instances", "n_prfaas", "d"), ("local prefill instances (PD-P)", "n_pd_prefill", "d"),
            ("local decode instances (PD-D)", "n_pd_decode", "d"), ("link (Gbit/s)", "link_gbit_per_s", ",.1f"),
            ("mean egress (Gbit/s)", "egress_gbit_per_s", ",.2f"), ("Lambda_max (req/s)", "throughput_req_per_s", ".3f"),
            ("cost ($/hour)", "cost_usd_per_hour", ",.2f"), ("PrfaaS price ($/GPU-hour)", "prfaas_usd_per_gpu_hour", ".2f"),
            ("local price ($/GPU-hour)", "local_usd_per_gpu_hour", ".2f"),
            ("$ per million input tokens (prefill side)", "usd_per_million_tokens.input", ".3f"),
            ("$ per million output tokens (decode)", "usd_per_million_tokens.output", ".3f"),
            ("$ per million tokens, input + output", "usd_per_million_tokens.total", ".3f"),
            ("rate served, for the token costs (req/s)", "usd_per_million_tokens.served_req_per_s", ".3f"),
            ("binding", "bottleneck", "s"), ("PrfaaS plan gain", "plan_vs_baseline", ".2f")]
    if r.get("cache_locality"):  # a trace with a cache model: what static routing sees with a cache per cluster
        rows.insert(2, ("offloaded share, a prefix cache per cluster (static routing)", "cache_locality.per_cluster_offload_frac", ".1%"))
    if not r.get("latency"):
        return rows
    at = ("idle", "zero_load")
    points = [at] + ([(f"at {r['load']['arrival_req_per_s']:g} req/s", "at_arrival_rate")] if r.get("load") else [])
    for words, key in points:
        rows += [(f"TTFT {stat}, {words} (s)", f"latency.{key}.ttft_{stat.lower()}_s", ".2f") for stat in ("mean", "P50", "P90", "P99")]
    if r.get("ttft_p90_slo_s") is not None:
        rows.append((f"goodput: req/s with P90 TTFT <= {r['ttft_p90_slo_s']:g} s", "latency.goodput_req_per_s", ".3f"))
    b = r.get("model_error_band")
    if b and b["scaled"]:
        words = "idle" if b["arrival_req_per_s"] is None else f"at {b['arrival_req_per_s']:g} req/s"
        band = f"engine model's {b['coverage']:.0%} band"
        rows += [(f"Lambda_max, {band} low end (req/s)", "model_error_band.throughput_req_per_s_low", ".3f"),
                 (f"Lambda_max, {band} high end (req/s)", "model_error_band.throughput_req_per_s_high", ".3f"),
                 (f"TTFT P90 {words}, {band} low end (s)", "model_error_band.ttft_p90_s_low", ".2f"),
                 (f"TTFT P90 {words}, {band} high end (s)", "model_error_band.ttft_p90_s_high", ".2f")]
    return rows


def _plan_cell(d: dict, key: str, full: str, fmt: str | None, is_plan: bool) -> Cell:
    if key == "plan_vs_baseline":
        v = None if is_plan else d.get(key)
        c = Cell("1.00x") if is_plan else _f(v, fmt, full)
        if v is not None:
            c.text += "x"
            c.flag = "warning" if v < 1 else None
        return c
    v = dotted_get(d, key)
    if fmt is None:
        return Cell(_t(v), full, v)
    if v is None and key.startswith("latency.at_arrival_rate.") and (d.get("latency") or {}).get("at_arrival_rate_error"):
        return Cell("unstable", flag="warning")
    if v is None and key.startswith("model_error_band.ttft_") and dotted_get(d, key + "_error"):
        return Cell("unstable", flag="warning")
    return _f(v, fmt, full)


def plan_table(rv: dict) -> Table:
    """[PRFAAS] Table 6 layout: one column per configuration, one row per quantity, TTFT included."""
    r = rv["plan"]
    cols = [("", r)] + [(k, b) for k, b in r["baselines"].items() if b]
    t = Table("Plan beside the baselines ([PRFAAS] Table 6 layout)", ["quantity", "PrfaaS-PD (this plan)"] + [BASELINE_NAMES[k] for k, _ in cols[1:]],
              note=latency_note(r))
    for label, key, fmt in plan_rows(r):
        t.rows.append([Cell(label)] + [_plan_cell(d, key, f"baselines.{name}.{key}" if name else key, fmt, not name) for name, d in cols])
    return t


def latency_note(r: dict) -> str:
    """What the plan table's TTFT and token-cost rows are (and which configurations are unstable)."""
    note = ("TTFT: analytic, from the queueing model (see Assumptions); 'idle' is zero load, as [PRFAAS] Table 6 reports. "
            "Token costs: the fleet's $/hour (reserved capacity, paid busy or idle) over the tokens served in an hour at the rate shown "
            "(the arrival rate, at most Lambda_max; else Lambda_max); input = PrfaaS + local prefill + link, output = decode.")
    if r.get("ttft_p90_slo_s") is not None:
        note += f" SLO: P90 TTFT <= {r['ttft_p90_slo_s']:g} s (slo.ttft_p90_s); goodput is the highest load meeting it."
    names = {"": "this plan", **BASELINE_NAMES}
    unstable = [f"{names[k]}: {p['latency']['at_arrival_rate_error']}" for k, p in [("", r), *r["baselines"].items()]
                if p and (p.get("latency") or {}).get("at_arrival_rate_error")]
    if unstable:
        note += " Unstable at the arrival rate: " + "; ".join(unstable) + "."
    b = r.get("model_error_band")
    if b and b["scaled"]:
        note += (f" Engine model's {b['coverage']:.0%} band (this plan only): {b['method']}."
                 + "".join(f" At its {end} end: {b[f'ttft_p90_s_{k}_error']}." for k, end in (("low", "fast"), ("high", "slow")) if b[f"ttft_p90_s_{k}_error"]))
    elif b:
        note += " Engine model's error band: none, every time of this plan is a measured profile's."
    return note


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
        t.rows.append([Cell(r["key"]), Cell(text), Cell(r["unit"]), Cell(("ESTIMATE: " if r["estimate"] and not r["source"].startswith("ESTIMATE") else "") + r["source"], flag="estimate" if r["estimate"] else None)])
    return t


def whatif_table(rv: dict) -> Table:
    t = Table("What-ifs: re-plan (buy again) and stress (the planned fleet and link, conditions changed)",
              ["what if", "re-plan t", "re-plan fleet P/PD-P/PD-D", "re-plan link Gbit/s", "re-plan req/s", "re-plan $/h", "re-plan vs plan",
               "stress req/s", "stress vs plan", "stress $/h", "stress $ vs plan", "stress carries demand", "stress binding"],
              note=f"Stress $/h: the planned fleet and link at the what-if's prices. {LINK_OVERRIDE_NOTE}")
    for w in rv["whatifs"]:
        rp, st = w["replan"], w["stress"]
        by_cost = w["replan_compared_by"] == "cost"
        vs = w["replan_cost_vs_planned"] if by_cost else w["replan_throughput_vs_planned"]
        carries = w["stress_carries_demand"]
        t.rows.append([
            Cell(w["variant"]), Cell(_t(rp["threshold_tokens"]) if rp["error"] is None else "infeasible"),
            Cell("-" if rp["error"] else f"{rp['n_prfaas']}/{rp['n_pd_prefill']}/{rp['n_pd_decode']}"), _f(rp["link_gbit_per_s"], ",.0f"),
            _f(rp["throughput_req_per_s"], ".3f"), _f(rp["cost_usd_per_hour"], ",.0f"),
            Cell("-" if vs is None else f"{vs:.2f}x {'cost' if by_cost else 'req/s'}"),
            _f(st["throughput_req_per_s"], ".3f"), _f(w["stress_throughput_vs_planned"], ".2f"),
            _f(st["cost_usd_per_hour"], ",.0f"), _f(w["stress_cost_vs_planned"], ".2f"),
            Cell("-" if carries is None else ("yes" if carries else f"NO ({w['demand_req_per_s']:g} req/s)"), flag=None if carries is not False else "warning"),
            Cell(st["bottleneck"] or (st["error"] or "-")),
        ])
    return t


ASSUMPTIONS = [
    "Capacities are steady-state maxima ([PRFAAS] Eq. 3-6); a plan at 100% utilisation has no slack for bursts, which the TTFT rows show.",
    "TTFT is analytic: each prefill pool is an M/G/c FCFS queue (Allen-Cunneen waits on the batched service time of its slice of "
    "lengths), bursty arrivals GI/G/c (the same with the arrivals' squared coefficient of variation), plus the request's own prefill, "
    "the KV transfer left exposed after layer-wise pipelining on the shared link, the RTT, the wait for a decode slot and the first step.",
    "Percentiles sum the closed-form tail over the cells of the length distribution; goodput is the highest load whose P90 meets the SLO. "
    "The command prfaas-plan simulate runs the same plan as a discrete-event simulation to check the model (traces, bursts, policies).",
    "distribution mode takes E[T(L)] over each side of the threshold; paper mode one representative length per path, as the paper does.",
    "Instance counts are exact integers; the routing threshold is continuous (Eq. 7 balance); the link is bought at the scenario's price per Gbit/s.",
    "The prefix cache is a share of each prompt already cached: it costs no prefill and is not shipped; decode holds the whole prompt's cache.",
    "Prices are rents per GPU-hour as the inputs table states with their sources; per-byte transfer fees are not modelled.",
    "The Phi_kv plot uses the calibrated roofline for both models (profiles exist only for some model/part pairs).",
    "Stress readings keep the plan's PrfaaS instances, local instances and link; the threshold and the local prefill/decode split are re-chosen.",
]


def review_tables(rv: dict) -> list[Table]:
    return [plan_table(rv), capacity_table(rv), inputs_table(rv), whatif_table(rv)]
