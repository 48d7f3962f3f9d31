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
    from ..fleet.whatif import STRESS_NOTE

    by_cost = bool(rows) and rows[0]["replan_compared_by"] == "cost"
    flat = [{**w["replan"], "variant": w["variant"], "vs": w["replan_cost_vs_planned"] if by_cost else w["replan_throughput_vs_planned"],
             "delta": w["replan_cost_delta_usd_per_hour"],
             "verdict": (("CHANGED: " if w["verdict_changed"] else "") + (w["replan"]["verdict"] or "")) or None,
             "note": w["replan"]["error"]} for w in rows]
    cols: list[Column] = [("variant", "what if", text), ("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.0f")),
                          ("delta", "$/h vs plan", fmt("+,.0f")), ("vs", "$ vs plan" if by_cost else "req/s vs plan", fmt(".2f")), *ROLE_COLUMNS,
                          ("verdict", "verdict", text), ("note", "note", text)]
    return rows_table(flat, cols, title=f"What if, re-planned (the fleet bought again): {name}", caption=f"{ROLE_NOTE} {STRESS_NOTE}",
                      width=width, keep=5)


def fleet_sweep_table(name: str, rows: list[dict], keys: list[str], width: int | None = None):
    """One row per point of a fleet sweep: the varied values, the fleet's cost and throughput,
    per-role totals and the verdict."""
    cols: list[Column] = [(k, k, lambda v: f"{v:,.4g}" if isinstance(v, float) else text(v)) for k in keys]
    cols += [("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.0f")), ("alpha", "x rates", fmt(".3g")),
             *ROLE_COLUMNS, ("verdict", "verdict", text), ("error", "note", text)]
    return rows_table(rows, cols, title=f"Fleet sweep: {name} ({len(rows)} points, each re-planned; varied: {', '.join(keys)})",
                      caption=ROLE_NOTE, width=width, keep=len(keys) + 2)
