"""What-ifs of a fleet scenario (sites or candidate parts): each change of conditions re-planned
by the fleet MILP (:func:`~.plan.plan_fleet`, buy again), its cost, throughput and verdict
beside the plan's.

The standard list mirrors the one-pair list (:func:`prfaas_plan.planning.whatif.standard_whatifs`)
with each change written for the fleet's sites and links:

- *link sags*: each link the plan uses halves on its own (``evening sag: quebec -> new-york
  halves``), then every link halves and every link drops to 10%; a link's fixed bandwidth, port
  sizes or cap scale at the same price per Gbit/s (a port of half the size costs half). The
  one-pair list's evening sag applies the shipped bandwidth profile instead, which the fleet
  planner does not model;
- *prompts* 2x longer and 2x shorter at every local site (``workload.input_tokens_scale``);
- *prefix cache*: where a site states a hit rate or replays a trace through a cache model, the
  cache is removed (hits drop to none); elsewhere half of every prompt is cached;
- *prices*: every PrfaaS part, then every local part, +50% (each part's own price);
- *load +50%*: every local site's arrival rate and target.

Each what-if is read twice, as the one-pair what-ifs are: the *re-plan* (the fleet bought again)
and the *stress* reading (:func:`~.stress.stress_fleet`: the planned fleet and links held fixed,
the routing re-chosen; the largest multiple alpha of every site's demand it carries, whether each
site's demand is carried, each site's TTFT at its demand against its SLO, and what binds). Keys
the fleet planner does not model (a link's ``connections``, ``loss_frac`` and
``bandwidth_profile``: the one-pair lossy-link and evening-sag what-ifs) are refused in one line
(:func:`check_fleet_keys`; in the scenario file, :func:`~prfaas_plan.planning.sites.read_link`).
"""

from __future__ import annotations

from ..errors import PlanError
from ..planning.overrides import Override, with_price_sources
from ..planning.scenario import Scenario, load_scenario
from ..planning.sites import FLEET_UNMODELLED_LINK_KEYS
from ..planning.whatif import LINK_KEYS, WhatIf, link_scaled, moved_target
from .plan import plan_fleet
from .stress import STRESS_KEYS, stress_fleet

#: Link keys the fleet planner does not model, and why (a what-if or sweep on them is refused).
UNMODELLED_KEYS = FLEET_UNMODELLED_LINK_KEYS

#: Per-role totals of a fleet plan: (key prefix, fleet role).
ROLE_TOTALS = (("prfaas", "prfaas"), ("local_prefill", "local-prefill"), ("local_decode", "local-decode"))

#: The reading of one fleet plan: the keys a what-if row and a sweep row carry.
READING_KEYS = ("cost_usd_per_hour", "throughput_req_per_s", "alpha", *(f"{k}_{x}" for k, _ in ROLE_TOTALS for x in ("gpus", "usd_per_hour")),
                "links_gbit_per_s", "links_usd_per_hour", "mix", "verdict", "ok")

def check_fleet_keys(keys, command: str) -> None:
    """One line refusing a key the fleet planner does not model (:data:`UNMODELLED_KEYS`)."""
    for key in keys:
        leaf = key.rsplit(".", 1)[-1]
        if leaf in UNMODELLED_KEYS:
            raise PlanError(f"{command} {key}: cannot apply to a fleet scenario (sites or candidate parts): {UNMODELLED_KEYS[leaf]}")


def reading(result: dict) -> dict:
    """A fleet plan (:func:`~.plan.plan_fleet`) in :data:`READING_KEYS`: cost, throughput, the
    GPUs and $/hour of each role and of the links, the mix in words and the verdict."""
    out = {"cost_usd_per_hour": result["cost_usd_per_hour"], "throughput_req_per_s": result["throughput_req_per_s"], "alpha": result["alpha"]}
    for key, role in ROLE_TOTALS:
        pools = [e for e in result["fleet"] if e["role"] == role]
        out[f"{key}_gpus"] = sum(e["instances"] * e["gpus_per_instance"] for e in pools)
        out[f"{key}_usd_per_hour"] = sum(e["usd_per_hour"] for e in pools)
    out["links_gbit_per_s"] = sum(lk["gbit_per_s"] for lk in result["links"])
    out["links_usd_per_hour"] = sum(lk["usd_per_hour"] for lk in result["links"])
    out["mix"] = "; ".join(f"{e['site']} {e['role']} {e['instances']} x {e['hardware']}" for e in result["fleet"])
    out["verdict"], out["ok"] = result["verdict"]["text"], result["verdict"]["ok"]
    return out


def _raw_sites(sc: Scenario) -> list[tuple[str, dict, list[tuple[str, float]]]]:
    """(key of the site's mapping, role, [(part name as the file writes it, its price)]) of every
    site: ``sites.prfaas[i]`` / ``sites.local[i]``, or ``prfaas`` / ``local`` of a one-pair fleet."""
    raw, fleet = sc.raw or {}, sc.fleet

    def names(m: dict, key: str) -> list[str]:
        v = m.get(key, m.get("hardware"))
        return [v] if isinstance(v, str) else list(v)

    out = []
    for i, p in enumerate(fleet.prfaas_sites):
        m = raw["prfaas"] if fleet.one_pair else raw["sites"]["prfaas"][i]
        out.append(("prfaas" if fleet.one_pair else f"sites.prfaas[{i}]", "prfaas", list(zip(names(m, "hardware"), (c.usd_per_gpu_hour for c in p.parts)))))
    for i, s in enumerate(fleet.local_sites):
        m = raw["local"] if fleet.one_pair else raw["sites"]["local"][i]
        parts = dict(zip(names(m, "prefill_hardware"), (c.usd_per_gpu_hour for c in s.prefill_parts)))
        parts.update(zip(names(m, "decode_hardware"), (c.usd_per_gpu_hour for c in s.decode_parts)))
        out.append(("local" if fleet.one_pair else f"sites.local[{i}]", "local", list(parts.items())))
    return out


def _prices(sc: Scenario, role: str, factor: float) -> WhatIf:
    """Every part of every ``role`` site at ``factor`` x its price (a mapping part -> price)."""
    overrides = tuple(Override(f"{key}.usd_per_gpu_hour", {n: round(p * factor, 6) for n, p in parts})
                      for key, r, parts in _raw_sites(sc) if r == role)
    return WhatIf(f"{'PrfaaS' if role == 'prfaas' else 'local'} GPUs +{factor - 1:.0%} price", with_price_sources(overrides))


def _links(prefix: str, label: str, factor: float) -> WhatIf:
    return WhatIf(label, tuple(Override(f"{prefix}{k.split('.', 1)[1]}", factor, scale=True, optional=True) for k in LINK_KEYS))


def _local(sc: Scenario, key: str, value, scale: bool = False) -> tuple[Override, ...]:
    """``key`` of every local site's mapping (a one-pair fleet: the top-level key)."""
    if sc.fleet.one_pair:
        return (Override(key, value, scale=scale, optional=scale),)
    return (Override(f"sites.local[*].{key}", value, scale=scale, optional=scale),)


def fleet_whatifs(sc: Scenario, base: dict) -> tuple[WhatIf, ...]:
    """The standard what-ifs of a fleet scenario (module docstring); ``base``: its plan (the
    links it uses each get a sag of their own)."""
    fleet = sc.fleet
    out = [WhatIf("as planned")]
    if fleet.one_pair:
        out.append(link_scaled("evening sag: link halves", 0.5))
        out.append(link_scaled("link at 10%", 0.1))
    else:
        used = {(lk["from"], lk["to"]) for lk in base["links"]}
        for i, lk in enumerate(fleet.links):
            if (lk.src, lk.dst) in used:
                out.append(_links(f"links[{i}].", f"evening sag: {lk.src} -> {lk.dst} halves", 0.5))
        out.append(_links("links[*].", "evening sag: every link halves", 0.5))
        out.append(_links("links[*].", "every link at 10%", 0.1))
    out += [WhatIf("prompts 2x longer", _local(sc, "workload.input_tokens_scale", 2.0)),
            WhatIf("prompts 2x shorter", _local(sc, "workload.input_tokens_scale", 0.5))]
    cached = [s for s in fleet.local_sites if s.workload.prefix_cache_hit_frac > 0 or s.workload.uncached_input is not None]
    if cached:
        nocache = []
        for i, s in enumerate(fleet.local_sites):
            key = "" if fleet.one_pair else f"sites.local[{i}]."
            if s.workload.uncached_input is not None:
                nocache.append(Override(f"{key}workload.input_tokens.cache", {"kind": "none"}))
            elif s.workload.prefix_cache_hit_frac > 0:
                nocache.append(Override(f"{key}workload.prefix_cache_hit_frac", 0.0))
        out.append(WhatIf("no prefix cache", tuple(nocache)))
    else:
        out.append(WhatIf("prefix-cache hit 50%", _local(sc, "workload.prefix_cache_hit_frac", 0.5)))
    out += [_prices(sc, "prfaas", 1.5), _prices(sc, "local", 1.5)]
    load = _local(sc, "workload.arrival_req_per_s", 1.5, scale=True)
    load += (Override("objective.target_req_per_s", 1.5, scale=True, optional=True),) if fleet.one_pair else _local(sc, "target_req_per_s", 1.5, scale=True)
    out.append(WhatIf("load +50%", load))
    return tuple(out)


def _ratio(a, b):
    return a / b if a is not None and b else None


def fleet_whatif_rows(sc: Scenario, budget_usd_per_hour: float | None = None, target_req_per_s: float | None = None,
                      whatifs: tuple[WhatIf, ...] | None = None, base: dict | None = None) -> list[dict]:
    """One row per what-if of fleet scenario ``sc``: the re-plan's :func:`reading` and the stress
    reading (:func:`~.stress.stress_fleet`), each with its error (an infeasible variant is an
    answer, not a crash), the re-plan's cost and throughput over the plan's (``base``: the plan,
    if already computed; a target question compared by cost, a budget question by throughput),
    and the stress's alpha, whether it carries the demand and its cost over the plan's."""
    if base is None:
        base = plan_fleet(sc, budget_usd_per_hour, target_req_per_s, band=False)
    whatifs = fleet_whatifs(sc, base) if whatifs is None else whatifs
    check_fleet_keys([o.key for w in whatifs for o in w.overrides], "whatif")
    planned = reading(base)
    rows = []
    for w in whatifs:
        target = moved_target(target_req_per_s, w)
        try:
            sv = load_scenario(sc.path, sc.overrides + w.overrides) if w.overrides else sc
        except PlanError as exc:
            sv, rp, st = None, {**dict.fromkeys(READING_KEYS), "error": str(exc)}, {**dict.fromkeys(STRESS_KEYS), "error": str(exc)}
        if sv is not None:
            try:
                rp = {**reading(plan_fleet(sv, budget_usd_per_hour, target, band=False) if w.overrides else base), "error": None}
            except PlanError as exc:
                rp = {**dict.fromkeys(READING_KEYS), "error": str(exc)}
            try:
                st = stress_fleet(sc, sv, base, target)
            except PlanError as exc:
                st = {**dict.fromkeys(STRESS_KEYS), "error": str(exc)}
        rows.append({
            "variant": w.label,
            "overrides": ", ".join(o.label for o in w.overrides if not o.key.endswith("price_source")),
            "replan": rp,
            "stress": st,
            "replan_cost_vs_planned": _ratio(rp["cost_usd_per_hour"], planned["cost_usd_per_hour"]),
            "replan_throughput_vs_planned": _ratio(rp["throughput_req_per_s"], planned["throughput_req_per_s"]),
            "replan_cost_delta_usd_per_hour": None if rp["cost_usd_per_hour"] is None else rp["cost_usd_per_hour"] - planned["cost_usd_per_hour"],
            "replan_compared_by": "cost" if base["objective"] == "target" else "throughput",
            "verdict_changed": None if rp["ok"] is None else rp["ok"] != planned["ok"],
            "demand_req_per_s": st["demand_req_per_s"],
            "stress_alpha": st["alpha"],
            "stress_carries_demand": st["carries_demand"],
            "stress_cost_vs_planned": _ratio(st["cost_usd_per_hour"], planned["cost_usd_per_hour"]),
        })
    return rows
