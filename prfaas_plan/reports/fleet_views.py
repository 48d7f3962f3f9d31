"""Terminal tables of a fleet scenario's what-ifs and sweeps (:mod:`prfaas_plan.fleet.whatif`,
:mod:`prfaas_plan.fleet.sweep`), built from :mod:`.terminal`'s tables."""

from __future__ import annotations

from .terminal import Column, fmt, rows_table, text

#: Per-role totals of a fleet reading, as table columns.
ROLE_COLUMNS: list[Column] = [("prfaas_gpus", "PrfaaS GPUs", fmt(",d")), ("prfaas_usd_per_hour", "PrfaaS $/h", fmt(",.0f")),
                              ("local_prefill_gpus", "local prefill GPUs", fmt(",d")), ("local_prefill_usd_per_hour", "local prefill $/h", fmt(",.0f")),
                              ("local_decode_gpus", "decode GPUs", fmt(",d")), ("local_decode_usd_per_hour", "decode $/h", fmt(",.0f")),
                              ("links_gbit_per_s", "links Gbit/s", fmt(",.0f")), ("links_usd_per_hour", "links $/h", fmt(",.0f"))]

ROLE_NOTE = ("GPUs and $/h per role: every site's pools of that role added up (PrfaaS, local prefill, local decode) and every link bought; "
             "the mix (site, role, instances x part) in -f json / csv.")


def fleet_whatif_table(name: str, rows: list[dict], width: int | None = None):
    """What-ifs of a fleet: each re-plan's cost and throughput against the plan, per-role totals
    and the verdict (a changed verdict flagged)."""
    by_cost = bool(rows) and rows[0]["replan_compared_by"] == "cost"
    flat = [{**w["replan"], "variant": w["variant"], "vs": w["replan_cost_vs_planned"] if by_cost else w["replan_throughput_vs_planned"],
             "delta": w["replan_cost_delta_usd_per_hour"],
             "verdict": (("CHANGED: " if w["verdict_changed"] else "") + (w["replan"]["verdict"] or "")) or None,
             "note": w["replan"]["error"]} for w in rows]
    cols: list[Column] = [("variant", "what if", text), ("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.0f")),
                          ("delta", "$/h vs plan", fmt("+,.0f")), ("vs", "$ vs plan" if by_cost else "req/s vs plan", fmt(".2f")), *ROLE_COLUMNS,
                          ("verdict", "verdict", text), ("note", "note", text)]
    return rows_table(flat, cols, title=f"What if, re-planned (the fleet bought again): {name}", caption=ROLE_NOTE,
                      width=width, keep=5)


STRESS_CAPTION = ("Stressed: the planned fleet held fixed (every site x role x part count, every link's Gbit/s as bought, scaled where the "
                  "what-if scales that link); each site's PrfaaS site and threshold re-chosen. x demand: the largest multiple of every "
                  "site's demand it carries (fleet MILP, counts and links pinned); max req/s: a site's largest rate, the others at their "
                  "demand (or the common multiple); P90: analytic TTFT at the site's demand (the others at the common multiple where it is below 1), '-' where the site's demand is not carried; "
                  "binding: what runs out first.")


def stress_rows(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The stress reading of each what-if row, flat (per-site keys ``SITE max``, ``SITE P90``),
    and the local sites in order."""
    sites = next(([s["site"] for s in w["stress"]["sites"]] for w in rows if w["stress"]["sites"]), [])
    flat = []
    for w in rows:
        st = w["stress"]
        r = {"variant": w["variant"], "alpha": st["alpha"], "carries": None if st["carries_demand"] is None else ("yes" if st["carries_demand"] else "NO"),
             "throughput_req_per_s": st["throughput_req_per_s"], "cost_usd_per_hour": st["cost_usd_per_hour"], "vs": w["stress_cost_vs_planned"],
             "binding": ", ".join(b.replace("[", " [") for b in st["binding"] or []) or None, "verdict": st["error"] or st["verdict"]}
        for s in st["sites"] or []:
            r[f"{s['site']} max"] = s["max_req_per_s"]
            r[f"{s['site']} p90"] = s["ttft_p90_s"]
        flat.append(r)
    return flat, sites


def fleet_stress_table(name: str, rows: list[dict], width: int | None = None):
    """What-ifs of a fleet, stressed (:func:`prfaas_plan.fleet.stress.stress_fleet`): the largest
    multiple of the demand the planned fleet carries, each site's largest rate and P90 TTFT at its
    demand, the fleet's cost at the new prices, what binds, the verdict."""
    flat, sites = stress_rows(rows)
    cols: list[Column] = [("variant", "what if", text), ("alpha", "x demand", fmt(".3f")), ("carries", "carries demand", text),
                          ("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.0f")), ("vs", "$ vs plan", fmt(".2f"))]
    for s in sites:
        cols += [(f"{s} max", f"{s} max req/s", fmt(".3f")), (f"{s} p90", f"{s} P90 TTFT s", fmt(".2f"))]
    cols += [("binding", "binding", text), ("verdict", "verdict", text)]
    return rows_table(flat, cols, title=f"What if, stressed (the planned fleet and links, routing re-chosen): {name}", caption=STRESS_CAPTION,
                      width=width, keep=3)


def fleet_sweep_table(name: str, rows: list[dict], keys: list[str], width: int | None = None):
    """One row per point of a fleet sweep: the varied values, the fleet's cost and throughput,
    per-role totals and the verdict."""
    cols: list[Column] = [(k, k, lambda v: f"{v:,.4g}" if isinstance(v, float) else text(v)) for k in keys]
    cols += [("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.0f")), ("alpha", "x rates", fmt(".3g")),
             *ROLE_COLUMNS, ("verdict", "verdict", text), ("error", "note", text)]
    return rows_table(rows, cols, title=f"Fleet sweep: {name} ({len(rows)} points, each re-planned; varied: {', '.join(keys)})",
                      caption=ROLE_NOTE, width=width, keep=len(keys) + 2)


def fleet_band_line(b: dict) -> str:
    """One line: each local site's TTFT P90 at its rate at the fast and slow ends of the engine
    model's error band (:mod:`prfaas_plan.fleet.bands`), an unstable end in words, and the multiple
    of every site's demand the fleet as planned carries at the slow and fast ends."""
    def p90(s: dict, k: str) -> str:
        err = s[f"{k}_error"]
        return f"{s[k]:.2f} s" if s[k] is not None else f"unstable ({err.split(' is unstable')[0]})" if err else "unstable"

    parts = []
    for s in b["sites"]:
        if not s["scaled"]:
            parts.append(f"{s['site']} no movement (every time a measured profile's)")
            continue
        at = f"{s['ttft_p90_s']:.2f} s" if s["ttft_p90_s"] is not None else "unstable"
        parts.append(f"{s['site']} {p90(s, 'ttft_p90_s_low')} to {p90(s, 'ttft_p90_s_high')} (plan {at})")
    def alpha(k: str) -> str:
        binds = ", ".join(b[f"binding{k}"]) or "-"
        return f"{b[f'alpha{k}']:.3f}x ({binds} binds)"

    return (f"under the engine model's {b['coverage']:.0%} band: TTFT P90 at each site's rate, fast to slow end: " + "; ".join(parts)
            + f"; the fleet as planned carries {alpha('_low')} to {alpha('_high')} every site's demand, slow to fast end "
            f"(plan's times: {alpha('')})")
