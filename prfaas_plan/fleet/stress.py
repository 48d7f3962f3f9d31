"""The stress reading of a fleet what-if: the fleet as planned, held fixed, under changed
conditions (a link sags, prices move, prompts grow, the cache hit rate drops, load rises).

Held fixed: every (site, role, part) instance count of the plan and every link's bought Gbit/s
(scaled as the what-if scales that link's bandwidth, sizes or cap: :func:`stress_link_gbit_per_s`;
a link the plan does not buy stays unbought). Re-chosen, as the one-pair stress re-chooses t:
each local site's PrfaaS site (among those whose link the plan bought) and its threshold.

**Capacity: alpha.** The largest multiple alpha of every local site's demand (its target in a
target question, else its arrival rate) the pinned fleet carries: the fleet MILP of
:mod:`.constraints` (same rows: local prefill, PrfaaS prefill shared by the sites routed there,
decode, links at their usable Gbit/s = bought x max_utilisation) with every count and link fixed
(lower bound = upper bound), so only the routing binaries and the request flows are free. For a
given alpha the best threshold of a site routed to r is t_L(alpha), the largest t at which its
local prefill counts still carry its rate (:func:`~.refine.local_limit`): the PrfaaS and link
needs per request fall with t, so if any threshold serves the rate, t_L does (the argument of
:mod:`.refine`). Feasibility is therefore monotone in alpha (a smaller alpha has a larger t_L and
smaller rates), and alpha is found by bisection to a relative 1e-6 on the point MILP with options
{all local, r at t_L(alpha) for each bought link}; ``carries_demand`` is the MILP at alpha = 1
itself, not the bisection. The rows within 1e-4 of their bound at the last feasible alpha are
``binding`` (what runs out first).

**Latency at the demand.** Each site's analytic TTFT at its demand rate
(:func:`~.latency.add_site_latency`: the same pools, link and decode model as the plan's) at the
plan's own routing where the pinned fleet still carries every site's rate there (so an unchanged
scenario reproduces the plan's TTFTs), otherwise at the routing of the alpha = 1 MILP with each
site's threshold moved the least from the plan's (clipped to t_L, then raised along the line to
t_L by bisection until the PrfaaS pools and links carry it: their needs fall as t rises, so
feasibility is monotone along it). Where the fleet does not carry every site's demand, each site
has its own largest rate with the others at alpha x theirs (``max_req_per_s``, by the same
bisection); a site whose largest rate reaches its demand is read at its demand with the others at
alpha x theirs (where the fleet carries that together), and a site short of its demand has no
TTFT at it (its queues are unstable there): its TTFT keys are None, ``latency_error`` says why.

What it does not do: choose thresholds for the lowest TTFT (the routing above is the plan's, or
the nearest one that carries the rates); a part the variant can no longer use (its weights or
TPOT no longer fit) loses its instances, said in ``lost``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import PlanError
from ..planning.problem import Link
from ..planning.scenario import Scenario
from ..planning.sites import Fleet, SiteLink
from .constraints import Milp, build
from .latency import TTFT_RTOL, add_site_latency
from .needs import SiteNeeds, site_needs
from .refine import local_limit, options
from .solve import solve

ALPHA_RTOL = 1e-6  # bisection of alpha to this relative width
BINDING_RTOL = 1e-4  # a row within this share of its bound at the last feasible alpha binds
_PATH_PASSES = 30  # bisection steps along the line from the plan's thresholds to t_L
_CAPACITY_ROWS = ("prefill[", "prfaas[", "decode[", "link[")

#: The keys of a stress reading (:func:`stress_fleet`); an error row has them all None.
STRESS_KEYS = ("alpha", "carries_demand", "demand_req_per_s", "throughput_req_per_s", "cost_usd_per_hour", "gpus_usd_per_hour",
               "links_usd_per_hour", "links_gbit_per_s", "links", "sites", "routing_as_planned", "binding", "lost", "ok", "verdict", "error")


def stress_link_gbit_per_s(base: Link, variant: Link, planned_gbit_per_s: float) -> float:
    """The planned link under the variant's conditions: a fixed bandwidth the variant scales
    scales it; one the variant sets where the scenario bought sizes replaces it; scaled port sizes
    or cap scale it (the same rule as the one-pair :func:`~prfaas_plan.planning.whatif.stress_link_gbit_per_s`)."""
    if variant.fixed_gbit_per_s is not None:
        if base.fixed_gbit_per_s:
            return planned_gbit_per_s * variant.fixed_gbit_per_s / base.fixed_gbit_per_s
        return float(variant.fixed_gbit_per_s)
    if base.sizes_gbit_per_s and variant.sizes_gbit_per_s:
        return planned_gbit_per_s * variant.sizes_gbit_per_s[-1] / base.sizes_gbit_per_s[-1]
    if base.max_gbit_per_s and variant.max_gbit_per_s:
        return planned_gbit_per_s * variant.max_gbit_per_s / base.max_gbit_per_s
    return planned_gbit_per_s


def _site_link(sc: Scenario, src: str, dst: str) -> Link:
    """The link as the scenario states it (a one-pair fleet: the top-level ``link``)."""
    return sc.link if sc.fleet.one_pair else sc.fleet.link(src, dst).link


def site_demand(sv: Scenario, objective: str, target_req_per_s: float | None = None) -> dict[str, float | None]:
    """The rate each local site must carry under ``sv``: its target in a target question (a
    one-pair fleet: ``target_req_per_s`` or the file's), else its arrival rate (None if unstated)."""
    out = {}
    for s in sv.fleet.local_sites:
        if objective == "target":
            out[s.name] = (target_req_per_s if target_req_per_s is not None else sv.target_req_per_s) if sv.fleet.one_pair else s.target_req_per_s
        else:
            out[s.name] = s.workload.arrival_req_per_s
    return out


class Pinned:
    """The plan's counts and links on the variant's sites (see the module docstring)."""

    def __init__(self, sc: Scenario, sv: Scenario, plan: dict, needs: dict[str, SiteNeeds] | None = None):
        self.sv = sv
        self.needs = needs or {s.name: site_needs(sv.fleet, sv.model, s) for s in sv.fleet.local_sites}
        count = {(e["site"], e["role"], e["hardware"]): e["instances"] for e in plan["fleet"]}
        self.lost = []
        self.counts: dict[str, dict] = {"n_prefill": {}, "n_decode": {}, "n_prfaas": {}}
        kept = set()
        for s, sn in self.needs.items():
            for block, role, parts in (("n_prefill", "local-prefill", sn.prefill_parts), ("n_decode", "local-decode", sn.decode_parts)):
                for k, c in enumerate(parts):
                    self.counts[block][s, k] = count.get((s, role, c.hardware.name), 0)
                    kept.add((s, role, c.hardware.name))
        for p in sv.fleet.prfaas_sites:
            for j, c in enumerate(p.parts):
                self.counts["n_prfaas"][p.name, j] = count.get((p.name, "prfaas", c.hardware.name), 0)
                kept.add((p.name, "prfaas", c.hardware.name))
        self.lost = [f"{n} x {hw} {role} at {site}: the part cannot serve that role under these conditions"
                     for (site, role, hw), n in count.items() if (site, role, hw) not in kept and n > 0]
        self.links = []
        for lk in plan["links"]:
            if lk["gbit_per_s"] > 0:
                var = _site_link(sv, lk["from"], lk["to"])
                gbit = stress_link_gbit_per_s(_site_link(sc, lk["from"], lk["to"]), var, lk["gbit_per_s"])
                pinned = replace(var, fixed_gbit_per_s=gbit, sizes_gbit_per_s=(), sizes_usd_per_hour=(), max_gbit_per_s=None)
                self.links.append(SiteLink(lk["from"], lk["to"], pinned))
        f = sv.fleet  # caps are the plan's business, not the stress's: the counts are given
        self.fleet = Fleet(tuple(replace(p, max_gpus=None) for p in f.prfaas_sites), tuple(replace(s, max_gpus=None) for s in f.local_sites),
                           tuple(self.links), f.one_pair)
        has = {r for (r, _), n in self.counts["n_prfaas"].items() if n > 0}
        self.routes = {s: [lk.src for lk in self.links if lk.dst == s and lk.src in has] for s in self.needs}

    def local_n(self, s: str) -> np.ndarray:
        return np.array([self.counts["n_prefill"][s, k] for k in range(len(self.needs[s].prefill_parts))], float)

    def t_local(self, s: str, rate: float) -> float:
        """t_L: the largest threshold at which site s's local prefill carries ``rate``."""
        return local_limit(self.needs[s], self.local_n(s), rate, 0.0, float(self.needs[s].grid_tokens[-1]))

    def solve(self, rates: dict[str, float], points: dict[str, dict[str, float]], force: dict[str, str | None] | None = None):
        """The point MILP with every count and link fixed: (milp, solution), or None when the
        fleet cannot carry ``rates`` at those thresholds. ``force``: a site's routing fixed
        (a PrfaaS site, or None for all local)."""
        opts = {s: options(self.needs[s], {r: [(t, t)] for r, t in points[s].items()}) for s in self.needs}
        m = build(Milp(self.fleet, self.needs, opts, "target", rates))
        lay = m.lay
        for block, vals in self.counts.items():
            for key, n in vals.items():
                lay.lb[lay[block][key]] = lay.ub[lay[block][key]] = float(n)
        for col in lay["link_on"].values():
            lay.lb[col] = lay.ub[col] = 1.0
        for s, r in (force or {}).items():
            for i, o in enumerate(opts[s]):
                col = lay["choose"][s, i]
                lay.lb[col] = lay.ub[col] = float(o.prfaas == r)
        try:
            return m, solve(m, explain=False)
        except PlanError:
            return None

    def at(self, rates: dict[str, float]):
        """The pinned MILP at ``rates``, each site offered all-local and t_L at its rate per bought link."""
        return self.solve(rates, {s: {r: self.t_local(s, rates[s]) for r in self.routes[s]} for s in self.needs})

    def decode_req_per_s(self, s: str) -> float:
        """Decode capacity of site s, req/s: sum_d theta_d n_d (an upper bound of its rate)."""
        return float(sum(th * self.counts["n_decode"][s, d] for d, th in enumerate(self.needs[s].decode_req_per_s)))


def _routing(m: Milp, x) -> dict[str, tuple[str | None, float | None]]:
    choose = m.lay.values(x, "choose")
    out = {}
    for s, opts in m.options.items():
        o = opts[max(range(len(opts)), key=lambda i: choose[s, i])]
        out[s] = (o.prfaas, o.t_hi if o.prfaas else None)
    return out


def binding_rows(m: Milp, x) -> list[str]:
    """Capacity rows (local prefill, PrfaaS prefill, decode, link) within BINDING_RTOL of their bound."""
    A = m.rows.matrix(m.lay.n)
    act, scale = A @ x, abs(A) @ np.abs(x)
    out = []
    for i, name in enumerate(m.rows.names):
        if name.startswith(_CAPACITY_ROWS) and scale[i] > 0:
            bound = m.rows.hi[i] if math.isfinite(m.rows.hi[i]) else m.rows.lo[i]
            if abs(act[i] - bound) <= BINDING_RTOL * scale[i]:
                out.append(name)
    return out


def largest(rates_at, hi: float, lo: float = 0.0, known=None):
    """(the largest factor f in [lo, hi] whose ``rates_at(f)`` the pinned fleet carries, to a
    relative ALPHA_RTOL, and its (milp, solution); ``known``: that of ``lo``, or None) by bisection:
    feasibility is monotone in the rates (module docstring)."""
    top = rates_at(hi) if hi > lo else None
    if top is not None:
        return hi, top
    best = known
    while hi - lo > ALPHA_RTOL * max(hi, 1e-12):
        mid = 0.5 * (lo + hi)
        got = rates_at(mid)
        if got is not None:
            lo, best = mid, got
        else:
            hi = mid
    return lo, best


def max_alpha(p: Pinned, weights: dict[str, float]) -> tuple[float, bool, tuple | None, tuple | None]:
    """(alpha, carries alpha = 1, the MILP and solution at alpha, at alpha = 1 or None). Decode
    bounds alpha above: alpha <= min_s decode_s / weight_s."""
    hi = min((p.decode_req_per_s(s) / w for s, w in weights.items()), default=0.0)
    scaled = lambda a: p.at({s: a * w for s, w in weights.items()})  # noqa: E731
    one = scaled(1.0) if hi >= 1.0 else None
    if one is None:
        alpha, last = largest(scaled, min(hi, 1.0))
    else:
        alpha, last = largest(scaled, hi, 1.0, one)
    return alpha, one is not None, last, one


def site_max_req_per_s(p: Pinned, weights: dict[str, float], alpha: float) -> dict[str, float]:
    """Per site s, the largest rate of s the pinned fleet carries with every other site at
    min(alpha, 1) x its weight (its demand, or all of it where the fleet carries alpha >= 1)."""
    base = min(alpha, 1.0)
    out = {}
    for s, w in weights.items():
        rates_at = lambda f, s=s: p.at({o: (f if o == s else base) * v for o, v in weights.items()})  # noqa: E731
        f, _ = largest(rates_at, p.decode_req_per_s(s) / w, base, True)
        out[s] = f * w
    return out


def _latency_routing(p: Pinned, plan: dict, rates: dict[str, float], one) -> tuple[dict, bool]:
    """Each site's (PrfaaS site, threshold) for the TTFT reading (module docstring) and whether it is the plan's."""
    planned = {st["site"]: (st["prfaas_site"], st["threshold_tokens"]) for st in plan["sites"]}
    routes = {s: planned.get(s, (None, None)) for s in p.needs}
    ok = all(r is None or r in p.routes[s] for s, (r, _) in routes.items())
    if ok and p.solve(rates, {s: ({r: t or 0.0} if r else {}) for s, (r, t) in routes.items()}, {s: r for s, (r, _) in routes.items()}):
        return routes, True
    target = _routing(one[0], one[1].x)
    start = {s: (min(routes[s][1] or 0.0, t) if routes[s][0] == r else t) for s, (r, t) in target.items() if r}
    force = {s: r for s, (r, _) in target.items()}

    def path(theta: float) -> dict:
        return {s: ({r: start[s] + theta * (t - start[s])} if r else {}) for s, (r, t) in target.items()}

    lo, hi = 0.0, 1.0
    if p.solve(rates, path(0.0), force) is None:
        for _ in range(_PATH_PASSES):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if p.solve(rates, path(mid), force) else (mid, hi)
    else:
        hi = 0.0
    return {s: (r, (path(hi)[s][r] if r else None)) for s, (r, _) in target.items()}, False


def _served(p: Pinned, demand: dict, weights: dict, site_max: dict, alpha: float, one):
    """(the rates of the TTFT reading, the pinned MILP there) or None: every site at its demand
    where the fleet carries all of it (``one``); else each site that carries its own demand at
    it and the others at alpha x theirs, where the fleet carries that together; else None."""
    if one is not None:
        return dict(demand), one
    full = {s for s in demand if site_max[s] >= demand[s] * (1 - 1e-9)}
    if not full:
        return None
    rates = {s: demand[s] if s in full else alpha * weights[s] for s in demand}
    got = p.at(rates)
    return (rates, got) if got is not None else None


def _cost(p: Pinned, sc: Scenario, plan: dict) -> tuple[float, float, float]:
    """(GPUs $/hour at the variant's prices, links $/hour, total): the plan's links paid in full
    at the variant's price per Gbit/s-hour."""
    sv = p.sv
    gpus = 0.0
    for s, sn in p.needs.items():
        gpus += sum(p.counts["n_prefill"][s, k] * c.instance_usd_per_hour for k, c in enumerate(sn.prefill_parts))
        gpus += sum(p.counts["n_decode"][s, d] * c.instance_usd_per_hour for d, c in enumerate(sn.decode_parts))
    for ps in sv.fleet.prfaas_sites:
        gpus += sum(p.counts["n_prfaas"][ps.name, j] * c.instance_usd_per_hour for j, c in enumerate(ps.parts))
    links = 0.0
    for lk in plan["links"]:
        base, var = _site_link(sc, lk["from"], lk["to"]), _site_link(sv, lk["from"], lk["to"])
        links += lk["usd_per_hour"] * (var.usd_per_gbit_per_s_hour / base.usd_per_gbit_per_s_hour if base.usd_per_gbit_per_s_hour else 1.0)
    return gpus, links, gpus + links


def stress_fleet(sc: Scenario, sv: Scenario, plan: dict, target_req_per_s: float | None = None,
                 needs: dict[str, SiteNeeds] | None = None) -> dict:
    """The stress reading of fleet ``plan`` (of scenario ``sc``) under ``sv``'s conditions (see
    the module docstring): alpha, whether it carries every site's demand, cost, per site its
    routing, rate and TTFT at its demand with the SLO levels it states, the binding rows and a
    verdict. ``target_req_per_s``: a one-pair fleet's target from the command line (moved by the
    what-if)."""
    p = Pinned(sc, sv, plan, needs)
    demand = site_demand(sv, plan["objective"], target_req_per_s)
    weights = {s: (d if d is not None else 1.0) for s, d in demand.items()}
    alpha, carries, last, one = max_alpha(p, weights)
    site_max = site_max_req_per_s(p, weights, alpha)
    known = all(d is not None for d in demand.values())
    gpus_usd, links_usd, cost = _cost(p, sc, plan)
    rtt = {(lk.src, lk.dst): lk.link.rtt_s for lk in p.links}
    doc = {"fleet": plan["fleet"],
           "links": [{"from": lk.src, "to": lk.dst, "gbit_per_s": lk.link.fixed_gbit_per_s, "rtt_ms": rtt[lk.src, lk.dst] * 1e3} for lk in p.links],
           "sites": []}
    as_planned, served = None, _served(p, demand, weights, site_max, alpha, one if carries else None) if known else None
    if served is not None:
        rates, feasible = served
        routes, as_planned = _latency_routing(p, plan, rates, feasible)
        for s, (r, t) in routes.items():
            doc["sites"].append({"site": s, "prfaas_site": r, "threshold_tokens": t, "rate_req_per_s": rates[s]})
        add_site_latency(sv.model, p.needs, doc, p.fleet)
    short = {s for s in demand if served is None or served[0][s] < demand[s]}
    sites = []
    for s, sn in p.needs.items():
        entry = next((x for x in doc["sites"] if x["site"] == s and s not in short), {})
        lat = entry.get("latency")
        at = (lat or {}).get("at_rate")
        site = sn.site
        levels = {k: getattr(site, f"ttft_{k}_slo_s") for k in ("p90", "p99", "mean")}
        missed = [f"{k.upper() if k != 'mean' else 'mean'} TTFT {at[f'ttft_{k}_s']:.3g} s over its {v:g} s SLO"
                  for k, v in levels.items() if v is not None and at and at[f"ttft_{k}_s"] > v * (1 + TTFT_RTOL)]
        t = entry.get("threshold_tokens")
        sites.append({"site": s, "demand_req_per_s": demand[s], "max_req_per_s": site_max[s],
                      "carries_demand": None if demand[s] is None else site_max[s] >= demand[s] * (1 - 1e-9),
                      "prfaas_site": entry.get("prfaas_site"), "threshold_tokens": t,
                      "offload_frac": float(sn.offload_frac([t])[0]) if entry.get("prfaas_site") else (0.0 if entry else None),
                      "ttft_p90_s": at["ttft_p90_s"] if at else None, "ttft_p99_s": at["ttft_p99_s"] if at else None,
                      "ttft_mean_s": at["ttft_mean_s"] if at else None,
                      "latency_error": (lat or {}).get("at_rate_error") if lat else (None if entry else "no arrival rate stated" if demand[s] is None
                                                                                         else "the fleet does not carry this site's demand"
                                                                                         f" with the others at {min(alpha, 1):.3g}x theirs"),
                      "goodput_req_per_s": entry.get("goodput_req_per_s"),
                      **{f"ttft_{k}_slo_s": v for k, v in levels.items()},
                      "meets_slo": None if not any(v is not None for v in levels.values()) else (bool(at) and not missed),
                      "slo_missed": missed})
    problems = []
    if known and not carries:
        problems.append(f"carries {alpha:.3g}x every site's demand" + "".join(
            f"; {st['site']} at most {st['max_req_per_s']:.3g} of its {st['demand_req_per_s']:g} req/s" for st in sites if not st["carries_demand"]))
    for st in sites:
        problems += [f"{st['site']}: {m}" for m in st["slo_missed"]]
        if st["latency_error"] and st["site"] not in short:
            problems.append(f"{st['site']}: {st['latency_error']}")
    if p.lost:
        problems.append("; ".join(p.lost))
    good = [f"carries {alpha:.3g}x every site's demand"] if known else [f"carries {alpha:.3g} req/s per unit of each site's weight"]
    if any(st["meets_slo"] for st in sites) and not problems:
        good.append("every site meets its TTFT SLO")
    links_out = [{"from": lk.src, "to": lk.dst, "gbit_per_s": lk.link.fixed_gbit_per_s, "usable_gbit_per_s": lk.link.fixed_gbit_per_s * lk.link.max_utilisation}
                 for lk in p.links]
    return {"alpha": alpha, "carries_demand": carries if known else None, "demand_req_per_s": sum(demand.values()) if known else None,
            "throughput_req_per_s": alpha * sum(weights.values()), "cost_usd_per_hour": cost, "gpus_usd_per_hour": gpus_usd,
            "links_usd_per_hour": links_usd, "links_gbit_per_s": sum(lk["gbit_per_s"] for lk in links_out), "links": links_out,
            "sites": sites, "routing_as_planned": as_planned, "binding": binding_rows(last[0], last[1].x) if last else [], "lost": p.lost,
            "ok": not problems, "verdict": ("WARNING: " + "; ".join(problems)) if problems else "OK: " + "; ".join(good), "error": None}
