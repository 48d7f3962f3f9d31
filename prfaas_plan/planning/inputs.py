"""Every input of a scenario, resolved (catalog defaults filled in, overrides applied), with its
unit and source, estimates flagged: what a reviewer needs to check a plan, and what every saved
output carries as provenance."""

from __future__ import annotations

from .scenario import Cluster, Scenario
from .workload import Empirical, Mixture, Scaled, TruncatedLogNormal

_ESTIMATE_WORDS = ("estimate", "derived", "assum", "hypothetical")


def _is_estimate(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _ESTIMATE_WORDS)


def _row(key: str, value, unit: str, source: str, estimate: bool | None = None) -> dict:
    return {"key": key, "value": value, "unit": unit, "source": source,
            "estimate": _is_estimate(source) if estimate is None else estimate}


def describe_lengths(d) -> str:
    if isinstance(d, TruncatedLogNormal):
        return f"log-normal mu {d.mu:g}, sigma {d.sigma:g}, truncated to [{d.min_tokens:,.0f}, {d.max_tokens:,.0f}] tokens"
    if isinstance(d, Empirical):
        return f"trace of {len(d.values):,} distinct lengths, {d.values[0]:,.0f}..{d.values[-1]:,.0f} tokens"
    if isinstance(d, Scaled):
        return f"{describe_lengths(d.base)}, every length x {d.factor:g}"
    if isinstance(d, Mixture):
        return "mixture: " + "; ".join(f"{w:.0%} {describe_lengths(c)}" for c, w in zip(d.components, d.weights))
    return type(d).__name__


def _cluster_rows(role: str, c: Cluster, objective: str) -> list[dict]:
    hw = c.hardware
    hw_note = "hypothetical part, figures estimated" if hw.hypothetical else f"{len(hw.estimates)} estimated fields"
    rows = [
        _row(f"{role}.hardware", hw.name, "", f"{hw.path} ({hw_note})", hw.hypothetical),
        _row(f"{role}.gpus_per_instance", c.gpus_per_instance, "GPUs", "scenario"),
    ]
    if objective == "fixed-fleet":
        rows.append(_row(f"{role}.instances", c.instances, "instances", "scenario"))
    else:
        hi = "unbounded" if c.instances_range.max is None else c.instances_range.max
        rows.append(_row(f"{role}.instances_range", f"{c.instances_range.min}..{hi}", "instances", "scenario"))
    rows.append(_row(f"{role}.latency", "measured profile where one exists" if c.use_profile else "roofline", "",
                     "scenario use_profile", not c.use_profile))
    rows.append(_row(f"{role}.usd_per_gpu_hour", c.usd_per_gpu_hour, "$/GPU-h", c.price_source))
    return rows


def _fleet_rows(sc: Scenario) -> list[dict]:
    """A fleet's sites, candidate parts, demands and links (what replaces the one-pair clusters)."""
    rows = []
    for p in sc.fleet.prfaas_sites:
        for c in p.parts:
            rows.append(_row(f"sites.prfaas.{p.name}.{c.hardware.name}", c.gpus_per_instance, "GPUs/instance", "scenario"))
            rows.append(_row(f"sites.prfaas.{p.name}.{c.hardware.name}.usd_per_gpu_hour", c.usd_per_gpu_hour, "$/GPU-h", c.price_source))
        if p.max_gpus is not None:
            rows.append(_row(f"sites.prfaas.{p.name}.max_gpus", p.max_gpus, "GPUs", "scenario"))
    for site in sc.fleet.local_sites:
        key = f"sites.local.{site.name}"
        for role, parts in (("prefill", site.prefill_parts), ("decode", site.decode_parts)):
            for c in parts:
                rows.append(_row(f"{key}.{role}.{c.hardware.name}.usd_per_gpu_hour", c.usd_per_gpu_hour, "$/GPU-h", c.price_source))
        rows += [_row(f"{key}.workload.input_tokens", describe_lengths(site.workload.input), "tokens", "scenario"),
                 _row(f"{key}.workload.output_tokens", site.workload.output_tokens_mean, "tokens", "scenario"),
                 _row(f"{key}.workload.arrival_req_per_s", site.workload.arrival_req_per_s, "req/s", "scenario"),
                 _row(f"{key}.target_req_per_s", site.target_req_per_s, "req/s", "scenario"),
                 _row(f"{key}.slo.tpot_ms", site.tpot_s * 1e3, "ms", "scenario slo")]
    for lk in sc.fleet.links:
        link = lk.link
        size = (", ".join(f"{s:g}" for s in link.sizes_gbit_per_s) if link.sizes_gbit_per_s else
                f"{link.fixed_gbit_per_s:g}" if link.fixed_gbit_per_s is not None else "bought at the need")
        rows += [_row(f"links.{lk.src}->{lk.dst}.gbit_per_s", size, "Gbit/s", "scenario"),
                 _row(f"links.{lk.src}->{lk.dst}.usd_per_gbit_per_s_hour", link.usd_per_gbit_per_s_hour, "$/(Gbit/s)-h", "scenario"),
                 _row(f"links.{lk.src}->{lk.dst}.rtt_ms", link.rtt_s * 1e3, "ms", "scenario")]
    return rows


def input_rows(sc: Scenario) -> list[dict]:
    """One row per input: key (scenario key), value, unit, source, estimate (bool)."""
    if sc.fleet is not None and not sc.fleet.one_pair:
        return [_row("scenario", sc.name, "", sc.path), _row("question", sc.objective, "", "scenario objective.kind"),
                _row("model", sc.model.name, "", f"{sc.model.path} ({len(sc.model.estimates)} estimated fields)", False),
                *_fleet_rows(sc), *(_row("override", o.label, "", "command line") for o in sc.overrides),
                *(_row("source", s, "", "scenario sources", _is_estimate(s)) for s in sc.sources)]
    wl, link = sc.workload, sc.link
    link_src = ((sc.raw or {}).get("link") or {}).get("price_source", "scenario")
    rows = [
        _row("scenario", sc.name, "", sc.path),
        _row("question", sc.objective, "", "scenario objective.kind"),
        _row("model", sc.model.name, "", f"{sc.model.path} ({len(sc.model.estimates)} estimated fields)", False),
    ]
    if sc.budget_usd_per_hour is not None:
        rows.append(_row("objective.budget_usd_per_hour", sc.budget_usd_per_hour, "$/h", "scenario"))
    if sc.target_req_per_s is not None:
        rows.append(_row("objective.target_req_per_s", sc.target_req_per_s, "req/s", "scenario"))
    if sc.fleet is not None:  # one pair with candidate parts
        rows += _fleet_rows(sc)
    else:
        rows += _cluster_rows("prfaas", sc.prfaas, sc.objective) + _cluster_rows("local", sc.local, sc.objective)
    if link.fixed_gbit_per_s is not None:
        rows.append(_row("link.bandwidth_gbit_per_s", link.fixed_gbit_per_s, "Gbit/s", "scenario"))
    if link.sizes_gbit_per_s:
        rows.append(_row("link.purchasable_gbit_per_s", ", ".join(f"{s:g}" for s in link.sizes_gbit_per_s), "Gbit/s", "scenario"))
    if link.max_gbit_per_s is not None:
        rows.append(_row("link.max_gbit_per_s", link.max_gbit_per_s, "Gbit/s", "scenario"))
    rows += [
        _row("link.usd_per_gbit_per_s_hour", link.usd_per_gbit_per_s_hour, "$/(Gbit/s)-h", link_src),
        _row("link.rtt_ms", link.rtt_s * 1e3, "ms", "scenario"),
        *([_row("link.connections", link.connections, "TCP connections per transfer", "scenario"),
           _row("link.loss_frac", link.loss_frac, "fraction", "scenario")] if link.connections is not None else []),
        _row("workload.input_tokens", describe_lengths(wl.input), "tokens", "scenario"),
        _row("workload.mean_input_tokens", wl.input.mean(), "tokens", "computed from the distribution"),
        _row("workload.output_tokens", wl.output_tokens_mean, "tokens", "scenario"),
        _row("workload.prefix_cache_hit_frac", wl.prefix_cache_hit_frac, "fraction", "scenario"),
    ]
    if wl.uncached_input is not None:
        rows += [
            _row("workload.prefix_cache_model", wl.prefix_cache_model, "", "scenario input_tokens.cache"),
            _row("workload.mean_uncached_input_tokens", wl.uncached_input.mean(), "tokens", "prefix-cache replay of the trace"),
            _row("workload.cached_input_token_frac", 1.0 - wl.uncached_input.mean() / wl.input.mean(), "fraction",
                 "prefix-cache replay of the trace (uncached lengths at least 1 token)"),
        ]
    if wl.arrival_req_per_s is not None:
        rows.append(_row("workload.arrival_req_per_s", wl.arrival_req_per_s, "req/s", "scenario"))
    rows.append(_row("slo.tpot_ms", sc.tpot_s * 1e3, "ms", "scenario slo (decode_tokens_per_s = 1000 / tpot_ms)"))
    if sc.ttft_p90_slo_s is not None:
        rows.append(_row("slo.ttft_p90_s", sc.ttft_p90_slo_s, "s", "scenario slo (goodput: the highest load whose P90 TTFT meets it)"))
    rows += [_row("override", o.label, "", "command line") for o in sc.overrides]
    for owner, items in ((sc.prfaas.hardware.name, sc.prfaas.hardware.estimates), (sc.local.hardware.name, sc.local.hardware.estimates),
                         (sc.model.name, sc.model.estimates)):
        rows += [_row(f"estimate: {owner} {k}", "", "", note, True) for k, note in items]
    rows += [_row("source", s, "", "scenario sources", _is_estimate(s)) for s in sc.sources]
    return rows


def inputs_mapping(sc: Scenario) -> dict:
    """The resolved inputs as one flat mapping (key -> value), for JSON and CSV provenance."""
    return {r["key"]: r["value"] for r in input_rows(sc) if not r["key"].startswith(("estimate:", "source", "override"))}
