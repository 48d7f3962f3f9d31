"""The fleet MILP's constraint families, one function each (PyPSA's
``optimization/constraints.py`` habit), each inequality in its docstring and every row named
after what it holds (``prefill[beijing, h20]``, ``budget``), so that an infeasible question can
say which rows conflict (:func:`prfaas_plan.fleet.solve.conflicting_rows`).

Notation: Lambda_s is site s's served rate (the target rate, or alpha x its arrival rate in a
budget question); options o of site s carry per-request coefficients a_ok (local prefill on part
k), r_oj (PrfaaS prefill on part j), b_o (Gbit over the link) (see :class:`.model.Option`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..planning.sites import Fleet, SiteLink
from .model import Layout, Option, Rows, add_terms, scaled
from .needs import SiteNeeds


@dataclass
class Milp:
    """One MILP: the fleet, each local site's options, and (built by :func:`build`) its layout,
    rows, cost expression and served-rate expressions Lambda_s = (terms, constant)."""

    fleet: Fleet
    needs: dict[str, SiteNeeds]
    options: dict[str, list[Option]]
    objective: str  # "target" (min cost at fixed rates) or "budget" (max alpha within the budget)
    demand_req_per_s: dict[str, float]  # target: Lambda_s; budget: the weight of alpha (arrival rate)
    budget_usd_per_hour: float | None = None
    alpha_max: float = math.inf  # budget question: an upper bound of alpha (for rate <= U choose)
    integer_counts: bool = True  # False: instance counts continuous (a weaker bound, a plan to round up)
    slo: object | None = None  # latency SLO rows (:class:`prfaas_plan.fleet.slo.SloRows`: its ``add(m)``), or None
    lay: Layout = field(default_factory=Layout)
    rows: Rows = field(default_factory=Rows)
    cost: dict = field(default_factory=dict)
    served: dict = field(default_factory=dict)

    def rate_bound(self, s: str) -> float:
        return self.demand_req_per_s[s] * (self.alpha_max if self.objective == "budget" else 1.0)


def variables(m: Milp) -> None:
    """The variable blocks of :mod:`.model`, and the cost (GPUs at their prices + links, $/hour)."""
    lay, f = m.lay, m.fleet

    sites = f.local_sites  # (GPU caps are rows, max-gpus[site], so that an infeasible cap can be named)
    n_p = lay.add("n_prefill", [(s.name, k) for s in sites for k in range(len(m.needs[s.name].prefill_parts))], integer=m.integer_counts)
    n_d = lay.add("n_decode", [(s.name, d) for s in sites for d in range(len(m.needs[s.name].decode_parts))], integer=m.integer_counts)
    prfaas = {p.name: p for p in f.prfaas_sites}
    n_r = lay.add("n_prfaas", [(p.name, j) for p in f.prfaas_sites for j in range(len(p.parts))], integer=m.integer_counts)
    opts = [(s, i) for s, os in m.options.items() for i in range(len(os))]
    lay.add("choose", opts, ub=1.0, integer=True)
    lay.add("rate", opts, ub=lambda key: m.rate_bound(key[0]))
    lay.add("local_flow", [(s, i, k) for s, i in opts for k in range(len(m.needs[s].prefill_parts))])
    lay.add("remote_flow", [(s, i, j) for s, i in opts if m.options[s][i].prfaas
                            for j in range(len(prfaas[m.options[s][i].prfaas].parts))])
    links = [lk for lk in f.links if lk.dst in m.options and lk.src in prfaas]
    lay.add("link_size", [((lk.src, lk.dst), z) for lk in links for z in range(len(lk.link.sizes_gbit_per_s))], ub=1.0, integer=True)
    continuous = [lk for lk in links if not lk.link.sizes_gbit_per_s and lk.link.fixed_gbit_per_s is None]
    lay.add("link_gbit", [(lk.src, lk.dst) for lk in continuous],
            ub=lambda key: f.link(*key).link.max_gbit_per_s if f.link(*key).link.max_gbit_per_s is not None else math.inf)
    lay.add("link_on", [(lk.src, lk.dst) for lk in links if not lk.link.sizes_gbit_per_s and lk.link.fixed_gbit_per_s is not None],
            ub=1.0, integer=True)
    lay.add("alpha", ["alpha"] if m.objective == "budget" else [], ub=m.alpha_max)
    m.cost = add_terms(
        {n_p[s, k]: c.instance_usd_per_hour for s, k in n_p for c in [m.needs[s].prefill_parts[k]]},
        {n_d[s, d]: c.instance_usd_per_hour for s, d in n_d for c in [m.needs[s].decode_parts[d]]},
        {n_r[r, j]: prfaas[r].parts[j].instance_usd_per_hour for r, j in n_r},
        *(link_cost(m, lk) for lk in links),
    )
    for s in m.options:
        if m.objective == "budget":
            m.served[s] = ({lay["alpha"]["alpha"]: m.demand_req_per_s[s]}, 0.0)
        else:
            m.served[s] = ({}, m.demand_req_per_s[s])


def link_cost(m: Milp, lk: SiteLink) -> dict[int, float]:
    """$/hour of link ``lk``: its size's price, Gbit/s bought x price, or the fixed size's rent."""
    lay, link, key = m.lay, lk.link, (lk.src, lk.dst)
    if link.sizes_gbit_per_s:
        return {lay["link_size"][key, z]: usd for z, usd in enumerate(link.sizes_usd_per_hour)}
    if link.fixed_gbit_per_s is None:
        return {lay["link_gbit"][key]: link.usd_per_gbit_per_s_hour}
    return {lay["link_on"][key]: link.fixed_gbit_per_s * link.usd_per_gbit_per_s_hour}


def _usable_gbit(m: Milp, lk: SiteLink) -> dict[int, float]:
    """Usable Gbit/s of a link: bought (or rented) x max_utilisation."""
    lay, link, key, u = m.lay, lk.link, (lk.src, lk.dst), lk.link.max_utilisation
    if link.sizes_gbit_per_s:
        return {lay["link_size"][key, z]: size * u for z, size in enumerate(link.sizes_gbit_per_s)}
    if link.fixed_gbit_per_s is None:
        return {lay["link_gbit"][key]: u}
    return {lay["link_on"][key]: link.fixed_gbit_per_s * u}


def assignment(m: Milp) -> None:
    """Each local site takes exactly one option:  sum_o choose[s, o] = 1   (``assign[s]``)."""
    for s, opts in m.options.items():
        m.rows.add(f"assign[{s}]", {m.lay["choose"][s, i]: 1.0 for i in range(len(opts))}, 1.0, 1.0)


def demand(m: Milp) -> None:
    """Site s serves its rate through its chosen option:
    sum_o rate[s, o] = Lambda_s   (``demand[s]``);  rate[s, o] <= U_s choose[s, o]   (``route[s, o]``),
    U_s an upper bound of Lambda_s, so that only the chosen option carries traffic."""
    lay = m.lay
    for s, opts in m.options.items():
        terms, const = m.served[s]
        m.rows.add(f"demand[{s}]", add_terms({lay["rate"][s, i]: 1.0 for i in range(len(opts))}, scaled(terms, -1.0)), const, const)
        u = m.rate_bound(s)
        for i in range(len(opts)):
            m.rows.add(f"route[{s}, {i}]", {lay["rate"][s, i]: 1.0, lay["choose"][s, i]: -u}, hi=0.0)


def local_prefill(m: Milp) -> None:
    """Local prefill of site s, each part k a share of the requests:
    sum_k local_flow[s, o, k] = rate[s, o]   (``split-local[s, o]``);
    sum_o a_ok local_flow[s, o, k] <= n_prefill[s, k]   (``prefill[s, part]``: instance-seconds per second)."""
    lay = m.lay
    for s, opts in m.options.items():
        parts = m.needs[s].prefill_parts
        for i in range(len(opts)):
            m.rows.add(f"split-local[{s}, {i}]", add_terms({lay["local_flow"][s, i, k]: 1.0 for k in range(len(parts))},
                                                           {lay["rate"][s, i]: -1.0}), 0.0, 0.0)
        for k, c in enumerate(parts):
            m.rows.add(f"prefill[{s}, {c.hardware.name}]", add_terms({lay["local_flow"][s, i, k]: o.local_s[k] for i, o in enumerate(opts)},
                                                                    {lay["n_prefill"][s, k]: -1.0}), hi=0.0)


def prfaas_prefill(m: Milp) -> None:
    """PrfaaS prefill, shared by every local site routed to PrfaaS site r:
    sum_j remote_flow[s, o, j] = rate[s, o]   (``split-prfaas[s, o]``, options offloading to r);
    sum_{s, o -> r} r_oj remote_flow[s, o, j] <= n_prfaas[r, j]   (``prfaas[r, part]``)."""
    lay = m.lay
    load: dict = {}
    for s, opts in m.options.items():
        for i, o in enumerate(opts):
            if o.prfaas is None:
                continue
            m.rows.add(f"split-prfaas[{s}, {i}]", add_terms({lay["remote_flow"][s, i, j]: 1.0 for j in range(len(o.remote_s))},
                                                            {lay["rate"][s, i]: -1.0}), 0.0, 0.0)
            for j, r in enumerate(o.remote_s):
                load.setdefault((o.prfaas, j), {})[lay["remote_flow"][s, i, j]] = r
    for p in m.fleet.prfaas_sites:
        for j, c in enumerate(p.parts):
            m.rows.add(f"prfaas[{p.name}, {c.hardware.name}]", add_terms(load.get((p.name, j), {}), {lay["n_prfaas"][p.name, j]: -1.0}), hi=0.0)


def decode(m: Milp) -> None:
    """Decode of site s:  sum_d theta_d n_decode[s, d] >= Lambda_s   (``decode[s]``)."""
    for s in m.options:
        terms, const = m.served[s]
        theta = m.needs[s].decode_req_per_s
        m.rows.add(f"decode[{s}]", add_terms({m.lay["n_decode"][s, d]: float(th) for d, th in enumerate(theta)}, scaled(terms, -1.0)), lo=const)


def links(m: Milp) -> None:
    """KV egress of site s over its link from r:  sum_{o -> r} b_o rate[s, o] <= usable Gbit/s
    (``link[r -> s]``); at most one purchasable size (``link-size[r -> s]``); a fixed link is
    rented when any option uses it:  choose[s, o] <= link_on[r -> s]   (``link-on[r -> s, o]``)."""
    lay = m.lay
    for lk in m.fleet.links:
        if lk.dst not in m.options:
            continue
        opts = [(i, o) for i, o in enumerate(m.options[lk.dst]) if o.prfaas == lk.src]
        name = f"{lk.src} -> {lk.dst}"
        m.rows.add(f"link[{name}]", add_terms({lay["rate"][lk.dst, i]: o.link_gbit for i, o in opts},
                                              scaled(_usable_gbit(m, lk), -1.0)), hi=0.0)
        if lk.link.sizes_gbit_per_s:
            m.rows.add(f"link-size[{name}]", {lay["link_size"][(lk.src, lk.dst), z]: 1.0 for z in range(len(lk.link.sizes_gbit_per_s))}, hi=1.0)
        elif lk.link.fixed_gbit_per_s is not None:
            for i, _ in opts:
                m.rows.add(f"link-on[{name}, {i}]", {lay["choose"][lk.dst, i]: 1.0, lay["link_on"][lk.src, lk.dst]: -1.0}, hi=0.0)


def gpu_caps(m: Milp) -> None:
    """GPUs of a site:  sum gpus_per_instance x instances <= max_gpus   (``max-gpus[site]``)."""
    lay = m.lay
    for p in m.fleet.prfaas_sites:
        if p.max_gpus is not None:
            m.rows.add(f"max-gpus[{p.name}]", {lay["n_prfaas"][p.name, j]: c.gpus_per_instance for j, c in enumerate(p.parts)}, hi=p.max_gpus)
    for s in m.options:
        sn = m.needs[s]
        if sn.site.max_gpus is not None:
            terms = add_terms({lay["n_prefill"][s, k]: c.gpus_per_instance for k, c in enumerate(sn.prefill_parts)},
                              {lay["n_decode"][s, d]: c.gpus_per_instance for d, c in enumerate(sn.decode_parts)})
            m.rows.add(f"max-gpus[{s}]", terms, hi=sn.site.max_gpus)


def budget(m: Milp) -> None:
    """The whole fleet's cost:  GPUs x $/GPU-hour + links <= budget   (``budget``)."""
    if m.budget_usd_per_hour is not None:
        m.rows.add("budget", m.cost, hi=m.budget_usd_per_hour)


FAMILIES = (assignment, demand, local_prefill, prfaas_prefill, decode, links, gpu_caps, budget)


def build(m: Milp) -> Milp:
    """Variables, then every constraint family, in order, then the SLO rows (if any)."""
    variables(m)
    for family in FAMILIES:
        family(m)
    if m.slo is not None:
        m.slo.add(m)
    return m
