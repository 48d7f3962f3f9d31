"""The design-review workbook of a plan: Summary, Inputs, Plan & baselines, Capacities (Lambda_max
as a live MIN of the capacities), What-ifs, Sweeps (native charts).

The six sections print on four landscape pages, one per sheet: the two small tables share a sheet
with the table they explain (Capacities below Plan & baselines, Sweeps below What-ifs), since a
sheet of their own would print a near-empty page. Every section keeps its title, a workbook-level
name (Name Box / Navigator: ``Capacities``, ``Sweeps``, ...) and a line on the Summary saying
where it is. See :mod:`xlsx` for the styling."""

from __future__ import annotations

from .export import flat
from .review_tables import BASELINE_NAMES, dotted_get
from .xlsx import Sheet, define_section, new_workbook, number_format, review_summary, rows_sheet, save
from .xlsx_sweep import CHART_ROWS, about_sheet, sweep_block


def _summary(wb, rv: dict) -> Sheet:
    r, p = rv["plan"], rv["provenance"]
    s = review_summary(wb, f"PrfaaS plan review: {r['scenario']}", rv)
    lam = r["throughput_req_per_s"]
    items = [("Lambda_max", lam, "req/s", "throughput_req_per_s"), ("cost", r["cost_usd_per_hour"], "$/hour", "cost_usd_per_hour"),
             ("cost per 1k requests", r["cost_usd_per_hour"] / (lam * 3.6) if lam > 0 else None, "$", "usd_per_1k_requests"),
             ("routing threshold t", r["threshold_tokens"], "tokens", "threshold_tokens"), ("offloaded share", r["offload_frac"], "", "offload_frac"),
             ("PrfaaS instances", r["n_prfaas"], "instances", "n_prfaas"), ("local prefill instances", r["n_pd_prefill"], "instances", "n_pd_prefill"),
             ("local decode instances", r["n_pd_decode"], "instances", "n_pd_decode"), ("link", r["link_gbit_per_s"], "Gbit/s", "link_gbit_per_s"),
             ("mean egress", r["egress_gbit_per_s"], "Gbit/s", "egress_gbit_per_s"), ("binding", r["bottleneck"], "", "")]
    b = r["baselines"].get("homogeneous_equal_cost")
    if b:
        items.append(("gain vs homogeneous PD at the same cost", b["plan_vs_baseline"], "", "plan_vs_baseline"))
    load = r.get("load")
    if load:
        items += [("arrival rate", load["arrival_req_per_s"], "req/s", "arrival_req_per_s"), ("utilisation", load["utilisation_frac"], "", "utilisation_frac"),
                  ("headroom", load["headroom_frac"], "", "headroom_frac")]
    items += _cost_and_latency_items(r)
    first, _ = s.table(["key number", "value", "unit"], [[a, v, u] for a, v, u, _ in items], freeze=True)
    for i, (_, v, _, key) in enumerate(items):
        fmt = number_format(key)
        if fmt and isinstance(v, (int, float)):
            s.ws.cell(first + i, 2).number_format = fmt
    for k in ("version", "generated_utc", "mode", "command", "scenario_path"):
        s.line(k, str(p[k]))
    if p["overrides"]:
        s.line("overrides", ", ".join(p["overrides"]))
    return s


def _cost_and_latency_items(r: dict) -> list[tuple[str, object, str, str]]:
    """Summary lines: prices, cost per million tokens, and the plan's rows of the review's latency
    (the same labels and values as the report's plan table)."""
    from .review_tables import plan_rows

    m = r["usd_per_million_tokens"]
    items = [("PrfaaS price", r["prfaas_usd_per_gpu_hour"], "$/GPU-hour", "_usd_per_gpu_hour"),
             ("local price", r["local_usd_per_gpu_hour"], "$/GPU-hour", "_usd_per_gpu_hour"),
             (f"$ per M input tokens (at {m['served_req_per_s']:.3g} req/s)", m["input"], "$", "usd_per_million"),
             ("$ per million output tokens (decode)", m["output"], "$", "usd_per_million"),
             ("$ per million tokens, input + output", m["total"], "$", "usd_per_million")]
    if r.get("ttft_p90_slo_s") is not None:
        items.append(("SLO: P90 TTFT at most", r["ttft_p90_slo_s"], "s", "ttft_p90_s"))
    for label, key, _ in plan_rows(r):
        if key.startswith(("latency.", "model_error_band.")):
            v = dotted_get(r, key)
            err = (r["latency"] or {}).get("at_arrival_rate_error") if key.startswith("latency.at_arrival_rate.") else None
            err = err or (dotted_get(r, key + "_error") if key.startswith("model_error_band.ttft_") else None)
            items.append((label.rsplit(" (", 1)[0] if label.endswith(")") else label, "unstable" if v is None and err else v,
                          label.rsplit(" (", 1)[1][:-1] if label.endswith(")") else ("s" if key.endswith("_s") else "req/s"), key.rsplit(".", 1)[-1]))
    return items


def _inputs(wb, rv: dict) -> list[tuple[str, str, int, int]]:
    s = Sheet(wb, "Inputs")
    rows = rv["inputs"]
    _, last = s.table(["input", "value", "unit", "source", "estimate"], [[r["key"], r["value"], r["unit"], r["source"], "ESTIMATE" if r["estimate"] else ""] for r in rows],
                      flags=[r["estimate"] for r in rows], freeze=True)
    s.finish()
    return [("Inputs", s.ws.title, 1, last)]


_PLAN_COLS = [("plan", "plan"), ("threshold_tokens", "t (tokens)"), ("offload_frac", "offloaded"), ("n_prfaas", "PrfaaS inst."),
              ("n_pd_prefill", "PD-P inst."), ("n_pd_decode", "PD-D inst."), ("link_gbit_per_s", "link Gbit/s"),
              ("egress_gbit_per_s", "egress Gbit/s"), ("throughput_req_per_s", "Lambda req/s"), ("cost_usd_per_hour", "$/hour")]


#: Plan-sheet columns after the binding: prices, cost per million tokens, TTFT (dotted keys of a plan).
_PLAN_EXTRA = [("prfaas_usd_per_gpu_hour", "PrfaaS $/GPU-h"), ("local_usd_per_gpu_hour", "local $/GPU-h"),
               ("usd_per_million_tokens.input", "$/M input tok"), ("usd_per_million_tokens.output", "$/M output tok"),
               ("usd_per_million_tokens.total", "$/M tokens"), ("latency.zero_load.ttft_mean_s", "TTFT mean s, idle"),
               ("latency.zero_load.ttft_p90_s", "TTFT P90 s, idle"), ("latency.at_arrival_rate.ttft_mean_s", "TTFT mean s, at arrival rate"),
               ("latency.at_arrival_rate.ttft_p90_s", "TTFT P90 s, at arrival rate"), ("latency.goodput_req_per_s", "goodput req/s"),
               ("model_error_band.throughput_req_per_s_low", "Lambda_max req/s, engine band low"),
               ("model_error_band.throughput_req_per_s_high", "Lambda_max req/s, engine band high"),
               ("model_error_band.ttft_p90_s_low", "TTFT P90 s, engine band low"), ("model_error_band.ttft_p90_s_high", "TTFT P90 s, engine band high")]


def _extra(d: dict, key: str):
    """A plan's value of an extra column; "unstable" where a band end's queue is unstable."""
    v = dotted_get(d, key)
    return "unstable" if v is None and key.startswith("model_error_band.ttft_") and dotted_get(d, key + "_error") else v

PLAN_SHEET, WHATIF_SHEET = "Plan, baselines, capacities", "What-ifs, sweeps"


def _plan(wb, rv: dict) -> list[tuple[str, str, int, int]]:
    """Plan & baselines, then the Capacities section below them, on one sheet."""
    from openpyxl.utils import get_column_letter as L

    r = rv["plan"]
    s = Sheet(wb, PLAN_SHEET)
    plans = [("PrfaaS-PD (this plan)", r)] + [(BASELINE_NAMES[k], b) for k, b in r["baselines"].items() if b]
    header = [h for _, h in _PLAN_COLS] + ["$ per 1k req", "plan gain", "binding"] + [h for _, h in _PLAN_EXTRA]
    keys = [k for k, _ in _PLAN_COLS] + ["usd_per_1k_requests", "gain", "bottleneck"] + [k.rsplit(".", 1)[-1] if k.startswith("latency") else k.replace(".", "_") for k, _ in _PLAN_EXTRA]
    lam_col, cost_col = L(keys.index("throughput_req_per_s") + 1), L(keys.index("cost_usd_per_hour") + 1)
    top = s.row + 1
    rows = []
    for i, (name, d) in enumerate(plans):
        n = top + i
        rows.append([name] + [d[k] for k, _ in _PLAN_COLS[1:]]
                    + [f"=IF({lam_col}{n}>0,{cost_col}{n}/({lam_col}{n}*3.6),\"-\")", f"=IF({lam_col}{n}>0,${lam_col}${top}/{lam_col}{n},\"-\")", d["bottleneck"]]
                    + [_extra(d, k) for k, _ in _PLAN_EXTRA])
    s.table(header, rows, keys=keys, freeze=True)
    s.line("formulas", "$ per 1k requests = ($/hour) / (req/s x 3.6); plan gain = this plan's Lambda / the row's Lambda")
    s.line("baselines", "homogeneous PD: the local part alone, with the same GPU count or the same cost")
    s.line("", "naive heterogeneous: every prompt prefilled on the plan's PrfaaS instances")
    s.line("$ per M tokens", "reserved capacity: input = (PrfaaS + local prefill + link) $/hour, output = decode $/hour, over the tokens served "
           f"per hour at {r['usd_per_million_tokens']['served_req_per_s']:.3g} req/s (the arrival rate, at most Lambda_max; else Lambda_max)")
    s.line("TTFT", "analytic (M/G/c Allen-Cunneen prefill queues, own prefill, exposed KV transfer, RTT, decode slot, first step); idle = zero load"
           + (f"; SLO P90 <= {r['ttft_p90_slo_s']:g} s" if r.get("ttft_p90_slo_s") is not None else ""))
    if r.get("model_error_band"):
        s.line("engine band", f"this plan only, {r['model_error_band']['coverage']:.0%}: {r['model_error_band']['method']}"
               + ("" if r["model_error_band"]["scaled"] else " (none here: every time is a measured profile's)"))
    plan_end = s.row - 1
    s.row += 1
    caps = _capacities(s, rv)
    s.finish()
    return [("Plan & baselines", s.ws.title, 1, plan_end), ("Capacities", s.ws.title, caps, s.row - 1)]


def _capacities(s: Sheet, rv: dict) -> int:
    """The Capacities section (Eq. 3-5, Lambda_max as a live MIN); returns its first row."""
    r = rv["plan"]
    p = r["offload_frac"]
    start = s.row
    s.title("Capacities: Lambda_max is the smallest of the three")
    top = s.row + 1
    rows = [["PrfaaS prefill (Eq. 3)", r["theta_prfaas_req_per_s"], p], ["local prefill (Eq. 4)", r["theta_pd_prefill_req_per_s"], 1 - p],
            ["local decode (Eq. 5)", r["theta_pd_decode_req_per_s"], 1.0]]
    rows = [row + [f"=IF(C{top + i}>0,B{top + i}/C{top + i},\"-\")"] for i, row in enumerate(rows)]
    s.table(["path", "Theta (req/s)", "share of requests", "capacity Theta/share (req/s)"], rows,
            keys=["", "theta_req_per_s", "share_frac", "capacity_req_per_s"], freeze=True)
    end = top + 2
    c = s.ws.cell(s.row, 1, "Lambda_max = MIN(capacities)")
    c.font = s.bold
    s.ws.cell(s.row, 4, f"=MIN(D{top}:D{end})").number_format = "0.000"
    s.ws.cell(s.row + 1, 1, "Lambda_max from the planner (check)").font = s.bold
    s.ws.cell(s.row + 1, 4, r["throughput_req_per_s"]).number_format = "0.000"
    s.ws.cell(s.row + 2, 1, "binding").font = s.bold
    s.ws.cell(s.row + 2, 4, r["bottleneck"])
    s.row += 4
    d = r["decode"]
    s.line("decode", f"BS_max {d['bs_max']} at {d['step_time_s'] * 1e3:.1f} ms per step; {d['req_per_s_per_instance']:.3f} req/s per instance")
    s.line("decode source", d["source"][:100] + ("..." if len(d["source"]) > 100 else ""))
    return start


def _whatifs(wb, rv: dict) -> list[tuple[str, str, int, int]]:
    """What-ifs, then the Sweeps section (tables and native charts) below them, on one sheet."""
    s = Sheet(wb, WHATIF_SHEET)
    s.title("What-ifs: re-plan = buy again under the changed conditions; stress = the planned fleet and link under them")
    header = ["what if", "overrides", "re-plan t", "re-plan PrfaaS", "re-plan PD-P", "re-plan PD-D", "re-plan link Gbit/s", "re-plan req/s",
              "re-plan $/h", "re-plan vs plan", "stress req/s", "stress vs plan", "stress $/h", "demand req/s", "stress carries", "stress binding", "note"]
    keys = ["", "", "threshold_tokens", "n_", "n_", "n_", "link_gbit_per_s", "throughput_req_per_s", "cost_usd_per_hour", "_vs_",
            "throughput_req_per_s", "_vs_", "cost_usd_per_hour", "demand_req_per_s", "", "", ""]
    rows = []
    for w in rv["whatifs"]:
        rp, st = w["replan"], w["stress"]
        vs = w["replan_cost_vs_planned"] if w["replan_compared_by"] == "cost" else w["replan_throughput_vs_planned"]
        carries = w["stress_carries_demand"]
        rows.append([w["variant"], w["overrides"], rp["threshold_tokens"], rp["n_prfaas"], rp["n_pd_prefill"], rp["n_pd_decode"], rp["link_gbit_per_s"],
                     rp["throughput_req_per_s"], rp["cost_usd_per_hour"], vs, st["throughput_req_per_s"], w["stress_throughput_vs_planned"],
                     st["cost_usd_per_hour"], w["demand_req_per_s"], "-" if carries is None else ("yes" if carries else "NO"), st["bottleneck"],
                     rp["error"] or st["error"] or ""])
    s.table(header, rows, keys=keys, flags=[w["stress_carries_demand"] is False for w in rv["whatifs"]], freeze=True)
    whatif_end = s.row - 1
    s.row += 1
    sweeps = _sweeps(s, rv)
    s.finish()
    return [("What-ifs", s.ws.title, 1, whatif_end), ("Sweeps", s.ws.title, sweeps, s.row - 1)]


def _sweeps(s: Sheet, rv: dict) -> int:
    """The Sweeps section: the planned fleet vs link bandwidth, re-planned at each budget; returns
    its first row."""
    start = s.row
    sweep_block(s, "Sweeps: the planned fleet vs link bandwidth", rv["link_curve"], "link.bandwidth_gbit_per_s",
                ["throughput_req_per_s", "cost_usd_per_hour", "usd_per_1k_requests", "usd_per_million_tokens.total"], "G", log_x=True)
    s.row = second = max(s.row, start + CHART_ROWS + 1)
    sweep_block(s, "Sweeps: re-planned at each budget", rv["budget_curve"], "objective.budget_usd_per_hour",
                ["usd_per_1k_requests", "throughput_req_per_s", "cost_usd_per_hour", "usd_per_million_tokens.total"], "G", log_x=True)
    s.row = max(s.row, second + CHART_ROWS + 1)  # the section ends below its last chart
    return start


def review_workbook(rv: dict) -> bytes:
    """Summary, Inputs, Plan & baselines with Capacities, What-ifs with Sweeps: four printed pages.
    The Summary ends with where each section is; each section is a workbook-level name."""
    wb = new_workbook()
    summary = _summary(wb, rv)
    sections = _inputs(wb, rv) + _plan(wb, rv) + _whatifs(wb, rv)
    summary.row += 1
    summary.title("Where each section is (one printed page per sheet)")
    summary.table(["section", "sheet", "rows", "name"], [[name, sheet, f"{a}-{b}", define_section(wb, name, sheet, a, b)]
                                                         for name, sheet, a, b in sections])
    summary.finish()
    return save(wb)


def whatif_workbook(rows: list[dict], prov: dict) -> bytes:
    wb = new_workbook()
    rows_sheet(wb, "What-ifs", [flat(r) for r in rows], "Re-plan = buy again; stress = the planned fleet and link under the new conditions").finish()
    about_sheet(wb, prov)
    return save(wb)
