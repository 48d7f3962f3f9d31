"""Terminal views (rich): the design-review view of a plan (:func:`print_plan`), what-ifs, sweeps,
estimates, simulations and risk, built from the tables of :mod:`.terminal` (with it, the only
modules besides the CLI that import rich or know how output looks)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .terminal import Column, fmt, kv_value_table, rows_table, rows_tables, text
from .fleet_views import fleet_band_line

if TYPE_CHECKING:
    from ..planning.scenario import Scenario


def _t(v) -> str:
    if v is None:
        return "none (all local)"
    if v == 0:
        return "0 (all remote)"
    return f"{v:,.0f} tokens"


def _ttft_pair(lat: dict | None) -> str:
    return "-" if not lat else f"{lat['ttft_mean_s']:.2f} / {lat['ttft_p90_s']:.2f}"


def _latency_cols(r: dict) -> list:
    """TTFT mean / P90 columns of the plan and baselines table (as [PRFAAS] Table 6 shows them)."""
    lat = lambda key: (lambda v: _ttft_pair((v or {}).get(key)))  # noqa: E731
    cols = [("latency", "TTFT mean / P90 s, idle", lat("zero_load"))]
    if r.get("load"):
        cols.append(("latency", f"TTFT mean / P90 s @ {r['load']['arrival_req_per_s']:g} req/s", lat("at_arrival_rate")))
    if (r.get("latency") or {}).get("goodput_req_per_s") is not None:
        slo = r.get("slo") or {}
        levels = ", ".join(f"{label} <= {slo[k]:g} s" for k, label in (("ttft_p90_s", "P90"), ("ttft_p99_s", "P99"), ("ttft_mean_s", "mean"))
                           if slo.get(k) is not None)
        cols.append(("latency", f"goodput req/s ({levels})", lambda v: f"{v['goodput_req_per_s']:.3f}" if v else "-"))
    return cols


def _latency_notes(con: Console, r: dict) -> None:
    unstable = [f"{name}: {p['latency']['at_arrival_rate_error']}" for name, p in [("PrfaaS plan", r), *r["baselines"].items()]
                if p and p.get("latency") and p["latency"].get("at_arrival_rate_error")]
    if r.get("latency"):
        con.print("TTFT: analytic (prefill queue M/G/c on batched service, own prefill, exposed KV transfer, RTT, decode slot, first step); "
                  "'idle' is zero load, as [PRFAAS] Table 6 reports." + ("" if not unstable else " Unstable at the arrival rate: " + "; ".join(unstable)))
        lat = r["latency"]
        if lat.get("transfer_cap_binds"):
            con.print(f"Per-transfer rate cap: {lat['transfer_cap_gbit_per_s']:.3g} Gbit/s (link.connections over link.rtt_ms and "
                      f"link.loss_frac, Mathis et al. 1997), below the {r['link_gbit_per_s']:.3g} Gbit/s link: each KV transfer is "
                      "rate-limited by its TCP connections, not the link.")


def _model_band(r: dict) -> str:
    """The plan's Lambda_max and TTFT P90 at the ends of the engine model's error band (latency/bands.py)."""
    b = r["model_error_band"]
    if not b["scaled"]:
        return "none: every time of this plan is a measured profile's, not the engine model's"
    at = "idle" if b["arrival_req_per_s"] is None else f"@ {b['arrival_req_per_s']:g} req/s"
    ttft = lambda k: "unstable" if b[k] is None else f"{b[k]:.2f} s"  # noqa: E731
    ends = b["ends"]
    text = (f"Lambda_max {b['throughput_req_per_s_low']:.3f} ({ends['slow']['bottleneck']} binds) to {b['throughput_req_per_s_high']:.3f} req/s "
            f"({ends['fast']['bottleneck']}); TTFT P90 {at} {ttft('ttft_p90_s_low')} to {ttft('ttft_p90_s_high')}")
    if b["ttft_p90_s_high_error"]:
        text += f" (slow end: {b['ttft_p90_s_high_error']})"
    if b["from_profile"]:
        text += f"; profiled, not moved: {', '.join(b['from_profile'])}"
    return text


def _per_mtok(m: dict) -> str:
    """The cost per million tokens line (planning/token_cost.py says how it is counted)."""
    if m["total"] is None:
        return "- (no tokens served)"
    return (f"input {m['input']:.3f}, output {m['output']:.3f}, input + output {m['total']:.3f} "
            f"(reserved capacity at {m['served_req_per_s']:.3f} req/s; input: PrfaaS + local prefill + link, output: decode)")


def _locality_row(c: dict | None) -> list:
    """The offload share static routing will see with one prefix cache per cluster (a trace
    with a cache model; planning/locality.py), beside the one-shared-cache share."""
    if not c:
        return []
    how = "planned with these caches" if c["planned_with"] == "per-cluster" else "the plan assumes one shared cache"
    return [("offload, cache per cluster", f"{c['per_cluster_offload_frac'] * 100:.1f}% under static routing with one prefix cache per "
             f"cluster ({c['shared_cache_offload_frac'] * 100:.1f}% with one shared cache; {how})")]


def print_plan(con: Console, sc: Scenario, r: dict) -> None:
    p, l = sc.prfaas, sc.local
    from ..planning.planner import goal as question

    goal = question(r) or "fixed fleet: best threshold and prefill/decode split"
    head = [
        ("question", f"{goal}; mode {r['mode']}; model {sc.model.name}"),
        ("routing threshold t", _t(r["threshold_tokens"]) + f"  -> {r['offload_frac'] * 100:.1f}% of requests offloaded"),
        *_locality_row(r.get("cache_locality")),
        ("PrfaaS cluster", f"{r['n_prfaas']} x {p.gpus_per_instance} {p.hardware.name} ({r['gpus_prfaas']} GPUs; {r['deployments']['prfaas']['text']})"),
        ("local PD cluster", f"{r['n_pd_prefill']} prefill + {r['n_pd_decode']} decode x {l.gpus_per_instance} {l.hardware.name} "
                             f"({r['gpus_local']} GPUs; {r['deployments']['local']['text']})"),
        ("cross-DC link", f"{r['link_gbit_per_s']:,.1f} Gbit/s; mean egress {r['egress_gbit_per_s']:,.1f} Gbit/s"
         + (f" ({r['link_utilisation_frac'] * 100:.0f}% of the link)" if r["link_utilisation_frac"] is not None else "")),
        ("throughput Lambda_max", f"{r['throughput_req_per_s']:.3f} req/s ({r['throughput_req_per_s'] * 3600:,.0f} req/h)"),
        ("binding", r["bottleneck"]),
        *([(f"under the engine model's {r['model_error_band']['coverage']:.0%} band", _model_band(r))] if r.get("model_error_band") else []),
        ("cost", f"{r['cost_usd_per_hour']:,.2f} $/hour"
         + (f" = {r['cost_usd_per_hour'] / (r['throughput_req_per_s'] * 3.6):.4f} $ per 1k requests" if r["throughput_req_per_s"] > 0 else "")),
        ("$ per million tokens", _per_mtok(r["usd_per_million_tokens"])),
    ]
    v = r.get("verdict")
    if v:
        con.print(v["text"], style=f"bold {'green' if v['ok'] else 'red'}")
    con.print(kv_value_table(head, title=f"PrfaaS plan: {sc.name}"))

    caps = Table(title="Capacities ([PRFAAS] Eq. 3-6), req/s", title_justify="left")
    for c in ("path", "Theta", "share of requests", "capacity Theta/share", "mean length"):
        caps.add_column(c, justify="left" if c == "path" else "right")
    share_r, share_p = r["offload_frac"], 1 - r["offload_frac"]
    caps.add_row("PrfaaS prefill (Eq. 3)", f"{r['theta_prfaas_req_per_s']:.3f}", f"{share_r:.3f}",
                 f"{r['theta_prfaas_req_per_s'] / share_r:.3f}" if share_r > 0 else "-",
                 f"{r['mean_offloaded_tokens']:,.0f} tokens" if r["mean_offloaded_tokens"] else "-")
    caps.add_row("local prefill (Eq. 4)", f"{r['theta_pd_prefill_req_per_s']:.3f}", f"{share_p:.3f}",
                 f"{r['theta_pd_prefill_req_per_s'] / share_p:.3f}" if share_p > 0 else "-",
                 f"{r['mean_local_prefill_tokens']:,.0f} tokens" if r["mean_local_prefill_tokens"] else "-")
    d = r["decode"]
    caps.add_row("local decode (Eq. 5)", f"{r['theta_pd_decode_req_per_s']:.3f}", "1.000", f"{r['theta_pd_decode_req_per_s']:.3f}",
                 f"BS_max {d['bs_max']} @ {d['step_time_s'] * 1e3:.1f} ms")
    con.print(caps)

    rows = [{"plan": "PrfaaS (this plan)", **r, "plan_vs_baseline": 1.0}]
    names = {"homogeneous": "homogeneous PD, same GPUs", "homogeneous_equal_cost": "homogeneous PD, same cost", "naive": "naive heterogeneous"}
    rows += [{"plan": names[k], **b} for k, b in r["baselines"].items() if b]
    cols = [("plan", "plan", text), ("n_prfaas", "PrfaaS", fmt("d")), ("n_pd_prefill", "PD-P", fmt("d")), ("n_pd_decode", "PD-D", fmt("d")),
            ("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.2f")),
            ("usd_per_million_tokens", "$/M tok", lambda v: fmt(".3f")((v or {}).get("total"))), ("bottleneck", "binding", text),
            ("plan_vs_baseline", "PrfaaS plan gain", lambda v: "-" if v is None else f"{v:.2f}x")]
    if r.get("latency"):
        cols += _latency_cols(r)
    for table in rows_tables(rows, cols, "Baselines", con.width):
        con.print(table)
    _latency_notes(con, r)
    load = r.get("load")
    if load:
        con.print(f"At the scenario's {load['arrival_req_per_s']:g} req/s: {load['utilisation_frac'] * 100:.0f}% of Lambda_max "
                  f"(PrfaaS {load['prfaas_utilisation_frac'] * 100:.0f}%, local prefill {load['pd_prefill_utilisation_frac'] * 100:.0f}%, "
                  f"decode {load['pd_decode_utilisation_frac'] * 100:.0f}%), egress {load['egress_at_load_gbit_per_s']:,.1f} Gbit/s, "
                  f"headroom {load['headroom_frac'] * 100:+.0f}%.")
    o = r.get("other_mode")
    if o:
        moved = (o["throughput_req_per_s"] / r["throughput_req_per_s"] - 1) * 100
        con.print(f"In {o['mode']} mode the same question gives t = {_t(o['threshold_tokens'])}, {o['n_prfaas']}/{o['n_pd_prefill']}/{o['n_pd_decode']} instances, "
                  f"{o['throughput_req_per_s']:.3f} req/s ({moved:+.1f}%).")
    con.print(f"Latencies: PrfaaS prefill from {r['prefill_sources']['prfaas']}; local prefill from {r['prefill_sources']['local']}; decode from {d['source']}.")
    con.print(f"Prices: {p.hardware.name} {r['prices']['prfaas_usd_per_gpu_hour']:.2f} $/GPU-h ({r['prices']['prfaas_price_source']}); "
              f"{l.hardware.name} {r['prices']['local_usd_per_gpu_hour']:.2f} $/GPU-h ({r['prices']['local_price_source']}); "
              f"link {r['prices']['link_usd_per_gbit_per_s_hour']:.3f} $/(Gbit/s)-h.")


WHATIF_FLEET_NOTE = "P/PD-P/PD-D: PrfaaS, local prefill and local decode instances of the new plan."


def whatif_table(sc: Scenario, rows: list[dict]) -> list[Table]:
    """Re-plan and stress readings side by side (see planning/whatif.py)."""
    from ..planning.whatif import LINK_OVERRIDE_NOTE
    by_cost = bool(rows) and rows[0]["replan_compared_by"] == "cost"
    flat = []
    for w in rows:
        rp, st = w["replan"], w["stress"]
        carries = w["stress_carries_demand"]
        flat.append({
            "variant": w["variant"], "t": rp["threshold_tokens"], "fleet": None if rp["error"] else f"{rp['n_prfaas']}/{rp['n_pd_prefill']}/{rp['n_pd_decode']}",
            "rp_link": rp["link_gbit_per_s"], "rp_req": rp["throughput_req_per_s"], "rp_cost": rp["cost_usd_per_hour"],
            "rp_vs": w["replan_cost_vs_planned"] if by_cost else w["replan_throughput_vs_planned"],
            "st_req": st["throughput_req_per_s"], "st_vs": w["stress_throughput_vs_planned"],
            "st_cost": st["cost_usd_per_hour"], "st_cost_vs": w["stress_cost_vs_planned"],
            "carries": None if carries is None else ("yes" if carries else f"NO, {w['demand_req_per_s']:g}"),
            "binding": st["bottleneck"], "note": rp["error"] or st["error"],
        })
    replan = [("variant", "what if", text), ("t", "t tokens", lambda v: "none" if v is None else f"{v:,.0f}"), ("fleet", "P/PD-P/PD-D", text),
              ("rp_link", "link Gbit/s", fmt(",.0f")), ("rp_req", "req/s", fmt(".3f")), ("rp_cost", "$/hour", fmt(",.0f")),
              ("rp_vs", "$ vs plan" if by_cost else "vs plan", fmt(".2f")), ("note", "note", text)]
    stress = [("variant", "what if", text), ("st_req", "req/s", fmt(".3f")), ("st_vs", "vs plan", fmt(".2f")), ("st_cost", "$/hour", fmt(",.0f")),
              ("st_cost_vs", "$ vs plan", fmt(".2f")), ("carries", "carries load", text), ("binding", "binding", text)]
    return [rows_table(flat, replan, title=f"What if, re-planned (buy again): {sc.name}", caption=f"{WHATIF_FLEET_NOTE} {LINK_OVERRIDE_NOTE}"),
            rows_table(flat, stress, title="What if, stressed (the planned fleet and link; threshold and split re-chosen)",
                       caption="$/hour: the planned fleet and link at the what-if's prices; $ vs plan: that over the plan's $/hour.")]


def sweep_table(sc: Scenario, rows: list[dict], keys: list[str], width: int | None = None) -> Table:
    """One row per point; on a narrow terminal the columns after req/s are left out first."""
    from .labels import axis_label

    # the varied keys in words with their units, prefix kept on a line of its own ("link." over
    # "bandwidth (Gbit/s)") so that no header breaks inside a word; the title names the exact keys
    cols: list[Column] = [(k, axis_label(k).replace(".", ".\n", 1), lambda v: f"{v:,.4g}" if isinstance(v, float) else text(v)) for k in keys]
    prices = [(f"{role}_usd_per_gpu_hour", f"{name} $/GPU-h", fmt(".2f")) for role, name in (("prfaas", "PrfaaS"), ("local", "local"))]
    moved = [c for c in prices if f"{c[0].split('_')[0]}.hardware" in keys]  # a varied part's price stays in view beside it
    cols += moved
    cols += [("threshold_tokens", "t tokens", lambda v: "none" if v is None else f"{v:,.0f}"), ("n_prfaas", "PrfaaS", fmt("d")),
             ("n_pd_prefill", "PD-P", fmt("d")), ("n_pd_decode", "PD-D", fmt("d")), ("link_gbit_per_s", "link Gbit/s", fmt(",.0f")),
             ("throughput_req_per_s", "req/s", fmt(".3f")), ("cost_usd_per_hour", "$/hour", fmt(",.0f")),
             ("usd_per_1k_requests", "$/1k req", fmt(".3f")), ("usd_per_million_tokens", "$/M tokens", lambda v: fmt(".3f")((v or {}).get("total"))),
             *[c for c in prices if c not in moved], ("bottleneck", "binding", text), ("error", "note", text)]
    return rows_table(rows, cols, title=f"Sweep: {sc.name} ({len(rows)} points, each re-planned; varied: {', '.join(keys)})",
                      caption="$/M tokens: the fleet's $/hour over the input + output tokens served per hour (reserved capacity); "
                              "$/GPU-h: the price each point used (a varied part at its catalog price unless the price is varied too).",
                      width=width, keep=len(keys) + len(moved) + 6)


def _band(r: dict, key: str, spec: str, scale: float = 1.0) -> str:
    """" (80% band lo-hi)" of an `estimate` metric where the result carries its band."""
    lo, hi = r.get(f"{key}_low"), r.get(f"{key}_high")
    if lo is None or hi is None:
        return ""
    return f" (80% band {lo * scale:{spec}}-{hi * scale:{spec}})"


def estimate_tables(r: dict) -> list[Table]:
    """`prfaas-plan estimate`: the headline numbers with their 80% error bands, then the terms of
    each time."""
    pairs = [
        ("instance", f"{r['gpus']} x {r['hardware']} ({r['deployment']}; scale-up domain {r['scaleup_domain_gpus']} GPUs)"),
        ("as engine flags", f"SGLang {r['sglang_flags']}"),
        ("dtypes", f"weights {r['weights']}, experts {r['moe_weights']}, attention {r['attention_dtype']}, KV {r['kv_dtype']}"
                   + (f", recurrent state {r['state_dtype']}" if r.get("state_dtype") else "")),
        ("weights per GPU", f"{r['weight_gb_per_gpu']:,.1f} GB of {r['usable_memory_gb_per_gpu']:,.1f} GB usable"
                            + ("" if r["weights_fit"] else "  (DO NOT FIT: the engine must offload)")),
        ("TTFT, one request alone", f"{r['ttft_single_request_s']:.3f} s{_band(r, 'ttft_single_request_s', '.3f')} at ISL {r['isl']:,}, "
                                    + (f"chunks of {r['chunk_tokens']:,} tokens" if r["chunk_tokens"] else "no chunking")),
        ("prefill, saturated", f"{r['prefill_input_tokens_per_s_per_gpu']:,.0f}{_band(r, 'prefill_input_tokens_per_s_per_gpu', ',.0f')} "
                               f"input tokens/s per GPU (bound: {r['bound_prefill']})"),
        ("decode batch", f"{r['decode_batch']:,} per instance (memory allows {r['memory_max_batch']:,}) at context {r['context_tokens']:,.0f}"),
    ]
    if r["decode_step_s"] is not None:
        pairs += [
            ("decode step / TPOT", f"{r['decode_step_s'] * 1e3:.2f} ms / {r['tpot_s'] * 1e3:.2f} ms{_band(r, 'tpot_s', '.2f', 1e3)} "
                                   f"(bound: {r['bound_decode']})"),
            ("decode throughput", f"{r['decode_output_tokens_per_s_per_gpu']:,.0f}{_band(r, 'decode_output_tokens_per_s_per_gpu', ',.0f')} output tokens/s per GPU"),
            ("co-located (offline max)", f"{r['colocated_output_tokens_per_s_per_gpu']:,.0f}{_band(r, 'colocated_output_tokens_per_s_per_gpu', ',.0f')} "
                                         f"output tokens/s per GPU at OSL {r['osl']:,}"),
        ]
    tables = [kv_value_table(pairs, title=f"{r['model']}: estimate")]
    terms = [("prefill, one request alone (s)", r["prefill_latency_terms_s"]),
             ("prefill under load (instance-s per request)", r["prefill_throughput_terms_s_per_request"]),
             ("decode step (s)", r["decode_terms_s"])]
    t = Table(title="terms", title_justify="left")
    t.add_column("term")
    for title, _ in terms:
        t.add_column(title, justify="right")
    for key in terms[0][1]:
        t.add_row(key, *(f"{d.get(key, 0.0):.4g}" for _, d in terms))
    tables.append(t)
    return tables


# --- simulate ---------------------------------------------------------------------------------


def _s(v) -> str:
    return "-" if v is None else f"{v:,.2f}"


def print_simulation(con: Console, r: dict) -> None:
    """`prfaas-plan simulate`: what was simulated, the latency and throughput, then the pools."""
    t = r["ttft"]
    books = r["conservation"][0]
    drop = r["link_drop"]
    th = r["threshold_over_time_tokens"]
    moved = "" if th["min"] == th["max"] else f" (moved: {th['min']:,.0f} to {th['max']:,.0f}, mean {th['mean']:,.0f})"
    head = [
        ("deployment", f"{r['deployment']}: t = {_t(r['threshold_tokens'])}{moved}; {r['n_prfaas']} PrfaaS / {r['n_pd_prefill']} PD-P / "
                       f"{r['n_pd_decode']} PD-D; Lambda_max {r['lambda_max_req_per_s']:.3f} req/s"),
        ("arrivals", f"{r['arrivals']}; seed {r['seed']}"),
        ("measured", f"{r['requests_measured']:,} requests arriving in [{r['warmup_s']:,.0f}, {r['duration_s']:,.0f}) s; "
                     f"{r['arrival_req_per_s']:.3f} req/s = {r['load_frac'] * 100:.1f}% of Lambda_max" if r["load_frac"] is not None else ""),
        ("policy", r["policy"] + (f"; link drops to {drop['gbit_per_s']:,.1f} Gbit/s at {drop['at_s']:,.0f} s" if drop else "")),
        ("TTFT mean / P50 / P90 / P99", f"{_s(t['mean_s'])} / {_s(t['p50_s'])} / {_s(t['p90_s'])} / {_s(t['p99_s'])} s"),
        ("TTFT by path (mean / P90)", "; ".join(f"{k} {v['share_frac'] * 100:.1f}%: {_s(v['mean_s'])} / {_s(v['p90_s'])} s"
                                                for k, v in r["ttft_by_path"].items() if v["share_frac"])),
        ("TPOT", f"{r['tpot_s'] * 1e3:.1f} ms"),
        ("SLO attainment", f"{r['slo_attainment_frac'] * 100:.1f}% with TTFT <= {r['ttft_slo_s']:g} s" if r["slo_attainment_frac"] is not None else "-"),
        ("throughput", f"{r['throughput_req_per_s']:.3f} req/s completed (offloaded {r['offload_frac'] * 100:.1f}%)"),
        ("egress", f"mean {r['egress_mean_gbit_per_s']:,.2f} Gbit/s, P99 of 1-s windows {r['egress_p99_gbit_per_s']:,.2f} Gbit/s "
                   f"(link {r['link_gbit_per_s']:,.1f})" + (f"; cache copies to PrfaaS {r['ingress_mean_gbit_per_s']:,.2f} Gbit/s" if r["ingress_mean_gbit_per_s"] else "")),
        ("prefix cache", f"{r['cache_hit_frac'] * 100:.1f}% of prompt tokens reused" + (f" (blocks: {r['cache_blocks']})" if r["cache_blocks"] else "")),
        ("books", f"at {books['time_s']:,.0f} s: {books['arrived']:,} arrived = {books['completed']:,} completed + {books['in_flight']:,} in flight; "
                  f"drained at {r['drained_at_s']:,.0f} s"),
    ]
    if r["replans"]:
        head.append(("re-plans", f"{len(r['replans'])} changes of t or the local split"))
    con.print(kv_value_table(head, title=f"Simulation: {r['scenario']}"))
    cols = [("pool", "pool", text), ("instances", "instances", fmt(",d")), ("utilisation_frac", "utilisation", fmt(".1%")),
            ("queue_mean", "queue mean", fmt(",.2f")), ("queue_max", "queue max", fmt(",d"))]
    rows = [{"pool": k, **v} for k, v in r["pools"].items()]
    con.print(rows_table(rows, cols, title="Pools over the measured window (decode: instances; queues in requests)"))


def risk_tables(r: dict) -> list[Table]:
    """`prfaas-plan risk`: the fleet and the distributions, the probability of each demand, the
    percentiles of each metric."""
    f = r["fleet"]
    head = (f"Risk: {r['scenario']} - {r['samples']:,} samples ({r['design']} design, seed {r['seed']}); the planned fleet "
            f"{f['n_prfaas']} PrfaaS + {f['n_local']} local instances, link {f['link_gbit_per_s']:,.0f} Gbit/s; t and P/D split re-chosen per sample")
    dists = rows_table([u for u in r["uncertainty"] if u["distribution"] != "1"],
                       [("quantity", "uncertain factor", text), ("distribution", "distribution", text), ("multiplies", "multiplies", text),
                        ("source", "source", text)], title=head)
    demands = rows_table(r["demands"], [("condition", "demand", text), ("probability", "P(met)", lambda v: f"{v:.1%}"),
                                        ("stderr", "+/- (1 s.e.)", lambda v: f"{v:.1%}"), ("samples_met", "samples", fmt(",d"))],
                         title="Probability of meeting each demand" if r["demands"] else
                         "No demand stated: give workload.arrival_req_per_s, a target or a budget (or slo.ttft_p90_s with a rate) to judge the plan against")
    g = lambda v: "unstable" if isinstance(v, float) and math.isinf(v) else fmt(",.4g")(v)  # noqa: E731
    names = {"throughput_req_per_s": "Lambda_max (req/s)", "goodput_req_per_s": "goodput (req/s)",
             "ttft_p90_s": "P90 TTFT at the demand (s)", "cost_usd_per_hour": "$/hour"}
    metrics = rows_table([{**m, "metric": names.get(m["metric"], m["metric"])} for m in r["metrics"]],
                         [("metric", "metric", text), ("point", "point (factors 1)", g), ("p10", "P10", g), ("p50", "P50", g), ("p90", "P90", g)],
                         title="Outcomes over the samples", caption="unstable: the sample's demand exceeds a pool's capacity (latency unbounded).")
    return [dists, demands, metrics]


def robust_table(rb: dict) -> Table:
    """`optimize --robust`: the point plan, the cheapest plan for the demand and the robust plan,
    with the share of samples in which each meets the demands."""
    names = {"point": "the plan above", "for_demand": "cheapest for the demand", "robust": f"robust ({rb['level']:.0%} of samples)"}
    rows = [{"plan": names[k], **rb[k]} for k in ("point", "for_demand", "robust")]
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    cols: list[Column] = [("plan", "plan", text), ("n_prfaas", "PrfaaS", fmt("d")), ("n_pd_prefill", "PD-P", fmt("d")), ("n_pd_decode", "PD-D", fmt("d")),
                          ("link_gbit_per_s", "link Gbit/s", fmt(",.0f")), ("throughput_req_per_s", "req/s (factors 1)", fmt(".2f")),
                          ("cost_usd_per_hour", "$/hour", fmt(",.0f")), ("meets_rate", "P(rate)", pct), ("meets_ttft_slo", "P(TTFT SLO)", pct),
                          ("meets_budget", "P(budget)", pct), ("all_frac", "P(all)", pct)]
    note = (f"Demand {rb['demand_req_per_s']:g} req/s x arrival_rate_factor over {rb['samples']:,} samples (seed {rb['seed']}, common to every plan). "
            f"The {rb['level']:.0%} margin costs {rb['margin_usd_per_hour']:+,.0f} $/hour ({rb['margin_frac']:+.0%}) over the cheapest plan for the demand "
            f"({rb['robust']['demand_factor']:.3g}x its demand, then trimmed; {rb['candidates_evaluated']} demand factors tried). "
            + ("It meets every demand, the budget included, at that level." if rb["meets_every_demand"]
               else "With the budget it meets every demand in only " + pct(rb["robust"]["all_frac"]) + " of samples.")
            + " Method and limits: prfaas_plan/risk/robust.py (an upper bound on the cheapest robust cost).")
    return rows_table(rows, cols, title="Robust plan: the cheapest found that carries the demand in the stated share of uncertain samples", caption=note)


_FLEET_COLUMNS: list[Column] = [("site", "site", text), ("role", "role", text), ("hardware", "part", text),
                                ("instances", "instances", fmt(",d")), ("gpus_per_instance", "GPUs each", fmt("d")),
                                ("usd_per_gpu_hour", "$/GPU-h", fmt(".2f")), ("usd_per_hour", "$/hour", fmt(",.2f"))]
_LINK_COLUMNS: list[Column] = [("from", "from", text), ("to", "to", text), ("gbit_per_s", "Gbit/s", fmt(",.1f")),
                               ("utilisation_frac", "mean load", fmt(".0%")), ("rtt_ms", "RTT ms", fmt("g")), ("usd_per_hour", "$/hour", fmt(",.2f"))]
_SITE_COLUMNS: list[Column] = [("site", "local site", text), ("prfaas_site", "offloads to", text), ("threshold_tokens", "threshold t", fmt(",.0f")),
                               ("offload_frac", "offloaded", fmt(".1%")), ("rate_req_per_s", "req/s", fmt(",.3f")),
                               ("egress_gbit_per_s", "egress Gbit/s", fmt(",.1f")), ("ttft", "TTFT mean / P90 s at its rate", text),
                               ("goodput_req_per_s", "goodput req/s", fmt(",.3f"))]


def print_fleet(con: Console, r: dict) -> None:
    """A fleet plan (sites, candidate parts): the verdict, the Fleet table (one row per site x
    role x part), the Links table and the local sites (routing, rate, TTFT at the rate, goodput)."""
    con.print(r["verdict"]["text"])
    solver = r["solver"]
    head = f"Fleet plan: {r['scenario']} ({r['objective']}; {r['cost_usd_per_hour']:,.2f} $/hour"
    head += f", {r['alpha']:.4g} x the sites' rates)" if r["alpha"] is not None and not r["fleet_one_pair"] else ")"
    con.print(head)
    con.print(rows_table(r["fleet"], _FLEET_COLUMNS, title="Fleet", width=con.width, keep=4))
    if r["links"]:
        con.print(rows_table(r["links"], _LINK_COLUMNS, title="Links", width=con.width, keep=3))
    sites = [{**s, "ttft": _ttft_pair((s.get("latency") or {}).get("at_rate")) if (s.get("latency") or {}).get("at_rate") else
              (s.get("latency") or {}).get("at_rate_error") and "unstable"} for s in r["sites"]]
    con.print(rows_table(sites, _SITE_COLUMNS, title="Local sites", width=con.width, keep=5))
    if r.get("model_error_band"):
        con.print(fleet_band_line(r["model_error_band"]))
    con.print(f"solver: {solver['method']}; {solver['status']}, gap {solver['gap_frac']:.1e}, {solver['rounds']} rounds")
    for note in r.get("excluded_parts") or ():
        con.print(f"left out: {note}")
