"""An independent brute force for fleet target questions (small instances): every assignment of
local sites to PrfaaS sites (or none), every threshold on a fine grid per site, and for each such
routing the cheapest integer counts found by enumeration - no MILP, no relaxation.

Per routing: local prefill on up to two parts (every count of the first part, the second at the
ceiling of what is left), decode likewise, each link at the cheapest size that carries the
egress (or bought at the need), and each PrfaaS site's parts: every count of the first part, the
second at the ceiling of the smallest load left to it (the sites' requests split between the two
parts greedily by the ratio of their prefill times: a fractional knapsack, exact for two parts).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from prfaas_plan.fleet.needs import site_needs
from prfaas_plan.planning.sites import Fleet

RTOL = 1e-9


def _ceil(x: float) -> int:
    return math.ceil(x - min(abs(x) * RTOL, 1e-6)) if x > 0 else 0


def _two_parts(need: list[float], price: list[float]) -> float:
    """Cheapest sum_k price_k n_k with sum_k n_k / need_k >= 1 (need_k: instances of part k alone
    for the whole load), one or two parts; 0 for no load."""
    if any(n <= 0 for n in need):
        return 0.0
    if len(need) == 1:
        return price[0] * _ceil(need[0])
    best = math.inf
    for n1 in range(_ceil(need[0]) + 1):
        rest = 1.0 - n1 / need[0]
        best = min(best, price[0] * n1 + price[1] * (_ceil(rest * need[1]) if rest > 0 else 0))
    return best


def _prfaas_cost(loads: list[tuple[float, np.ndarray]], price: list[float]) -> float:
    """Cheapest PrfaaS instances for sites' loads (rate, per-part seconds per request)."""
    if not loads:
        return 0.0
    if len(price) == 1:
        return price[0] * _ceil(sum(lam * r[0] for lam, r in loads))
    assert len(price) == 2
    total1 = sum(lam * r[0] for lam, r in loads)
    # part 1 takes the requests whose part-2 time is largest per part-1 second first
    order = sorted(loads, key=lambda lr: -(lr[1][1] / lr[1][0]) if lr[1][0] > 0 else -math.inf)
    best = math.inf
    for n1 in range(_ceil(total1) + 1):
        cap1, load2 = float(n1), 0.0
        for lam, r in order:
            take = min(lam, cap1 / r[0]) if r[0] > 0 else lam
            cap1 -= take * r[0]
            load2 += (lam - take) * r[1]
        best = min(best, price[0] * n1 + price[1] * _ceil(load2))
    return best


def _link_cost(link, gbit_per_s: float) -> float:
    need = gbit_per_s / link.max_utilisation
    if need <= 0:
        return 0.0
    if link.sizes_gbit_per_s:
        fits = [u for s, u in zip(link.sizes_gbit_per_s, link.sizes_usd_per_hour) if s * (1 + RTOL) >= need]
        return min(fits) if fits else math.inf
    return need * link.usd_per_gbit_per_s_hour


def brute_force(fleet: Fleet, model, rates: dict[str, float], n_thresholds: int = 24) -> tuple[float, dict]:
    """(cost $/hour, {site: (PrfaaS site or None, threshold)}) of the cheapest routing found."""
    needs = {s.name: site_needs(fleet, model, s) for s in fleet.local_sites}
    options, fixed = {}, {}
    for s, sn in needs.items():
        lam = rates[s]
        g = sn.grid_tokens
        ts = np.concatenate([[0.0], np.geomspace(max(g[1], 1.0), g[-1], n_thresholds - 1)])
        local = sn.local_s(ts)
        decode = _two_parts([lam / th for th in sn.decode_req_per_s], [c.instance_usd_per_hour for c in sn.decode_parts])
        lp = [c.instance_usd_per_hour for c in sn.prefill_parts]
        opts = [(None, float(g[-1]), decode + _two_parts(list(lam * sn.local_s([g[-1]])[:, 0]), lp), None)]
        for lk in fleet.links:
            if lk.dst != s:
                continue
            rem, link = sn.remote_s(lk.src, ts), sn.link_gbit(ts)
            for i, t in enumerate(ts):
                own = decode + _two_parts(list(lam * local[:, i]), lp) + _link_cost(lk.link, lam * link[i])
                opts.append((lk.src, float(t), own, rem[:, i]))
        options[s] = opts
        fixed[s] = lam
    prices = {p.name: [c.instance_usd_per_hour for c in p.parts] for p in fleet.prfaas_sites}
    best, best_route = math.inf, None
    names = list(options)
    for combo in itertools.product(*(options[s] for s in names)):
        cost = sum(o[2] for o in combo)
        if cost >= best:
            continue
        for r, price in prices.items():
            cost += _prfaas_cost([(fixed[s], o[3]) for s, o in zip(names, combo) if o[0] == r], price)
        if cost < best:
            best, best_route = cost, {s: (o[0], o[1]) for s, o in zip(names, combo)}
    return best, best_route


def cost_at(fleet: Fleet, model, rates: dict[str, float], route: dict) -> float:
    """The cheapest counts for one routing {site: (PrfaaS site or None, threshold)}, by the same
    enumeration (what a plan's own routing should cost)."""
    needs = {s.name: site_needs(fleet, model, s) for s in fleet.local_sites}
    total, loads = 0.0, {}
    for s, (r, t) in route.items():
        sn, lam = needs[s], rates[s]
        t = sn.grid_tokens[-1] if t is None else t
        total += _two_parts([lam / th for th in sn.decode_req_per_s], [c.instance_usd_per_hour for c in sn.decode_parts])
        total += _two_parts(list(lam * sn.local_s([t])[:, 0]), [c.instance_usd_per_hour for c in sn.prefill_parts])
        if r is not None:
            total += _link_cost(fleet.link(r, s).link, lam * float(sn.link_gbit([t])[0]))
            loads.setdefault(r, []).append((lam, sn.remote_s(r, [t])[:, 0]))
    for p in fleet.prfaas_sites:
        total += _prfaas_cost(loads.get(p.name, []), [c.instance_usd_per_hour for c in p.parts])
    return total


def brute_force_slo(fleet: Fleet, model, rate: float, n_thresholds: int = 10, extra: int = 6) -> tuple[float, tuple | None]:
    """The cheapest plan of a one-local-site fleet (one part per role, links in sizes) whose
    analytic TTFT at ``rate`` (fleet/latency.py's deployment, latency/ttft.py's slo_excess) meets
    the site's SLO, by enumeration: routing (nothing offloaded, or each linked PrfaaS site at each
    of ``n_thresholds`` grid thresholds), every link size that carries the egress, every count of
    each pool from its stability minimum up to ``extra`` more, the pairs (local prefill, decode)
    walked along the SLO's monotone boundary. Returns (cost, (PrfaaS site, t, n_r, n_p, n_d, Gbit/s))."""
    from prfaas_plan import units
    from prfaas_plan.fleet.latency import SiteCounts, counts_deployment
    from prfaas_plan.latency.ttft import slo_excess

    (site,) = fleet.local_sites
    sn = site_needs(fleet, model, site)
    parts = {p.name: p.parts for p in fleet.prfaas_sites}
    assert len(sn.prefill_parts) == len(sn.decode_parts) == 1 and all(len(p) == 1 for p in parts.values())
    g = sn.grid_tokens
    ts = np.concatenate([[0.0], np.geomspace(max(g[1], 1.0), g[-2], n_thresholds - 1)])
    dec = sn.decode[0]
    a_d = rate * site.workload.output_tokens_mean * dec.step_s / dec.bs_max
    d_lo = max(math.floor(a_d) + 1, _ceil(rate / sn.decode_req_per_s[0]))
    p_price, d_price = sn.prefill_parts[0].instance_usd_per_hour, sn.decode_parts[0].instance_usd_per_hour

    def lo(a: float) -> int:
        return 0 if a <= 0 else math.floor(a) + 1

    cases = []  # (lower bound of cost, r, t, n_r, link Gbit/s, link $/hour)
    for r, t in [(None, float(g[-1]))] + [(lk.src, float(t)) for lk in fleet.links for t in ts]:
        a_l = rate * float(sn.local_s([t])[0, 0])
        if r is None:
            cases.append((lo(a_l) * p_price + d_lo * d_price, r, t, 0, 0.0, 0.0))
            continue
        a_r = rate * float(sn.remote_s(r, [t])[0, 0])
        link = fleet.link(r, site.name).link
        egress = rate * float(sn.link_gbit([t])[0])
        for size, usd in zip(link.sizes_gbit_per_s, link.sizes_usd_per_hour):
            if egress > size * link.max_utilisation * (1 + RTOL):
                continue
            for n_r in range(lo(a_r), lo(a_r) + extra + 1):
                price_r = parts[r][0].instance_usd_per_hour
                cases.append((lo(a_l) * p_price + d_lo * d_price + n_r * price_r + usd, r, t, n_r, size, usd))
    best, plan = math.inf, None
    for bound, r, t, n_r, size, usd in sorted(cases, key=lambda c: c[0]):
        if bound >= best:
            break
        a_l = rate * float(sn.local_s([t])[0, 0])
        p_lo = lo(a_l)

        def meets(n_p: int, n_d: int) -> bool:
            c = SiteCounts((n_p,), (n_d,), r, (n_r,) if r else (), 1.0, units.gbit_per_s_to_bytes_per_s(size),
                           fleet.link(r, site.name).link.rtt_s if r else 0.0)
            return slo_excess(counts_deployment(model, sn, c, t if r else None, parts), rate, site.ttft_slo) <= 0

        fixed = bound - p_lo * p_price - d_lo * d_price
        n_d = d_lo + extra
        for n_p in range(p_lo, p_lo + extra + 1) if p_lo > 0 else [0]:
            if fixed + n_p * p_price + d_lo * d_price >= best or not meets(n_p, n_d):
                continue
            while n_d > d_lo and meets(n_p, n_d - 1):
                n_d -= 1
            cost = fixed + n_p * p_price + n_d * d_price
            if cost < best:
                best, plan = cost, (r, t, n_r, n_p, n_d, size)
    return best, plan


def brute_force_slo_sites(fleet: Fleet, model, rates: dict[str, float], n_thresholds: int = 6, extra: int = 5) -> tuple[float, dict | None]:
    """brute_force_slo for several local sites (one part per role) that may share a PrfaaS site:
    every routing of every site (nothing offloaded, or a linked PrfaaS site at one of
    ``n_thresholds`` grid thresholds), every total count of each PrfaaS site in use from its
    stability minimum up to ``extra`` more, each site seeing its share of it as fleet/latency.py
    splits a shared pool (in proportion to the instance-seconds it sends, rounded up), and per
    site every link size and the cheapest (local prefill, decode) pair meeting its SLO (walked
    along the monotone boundary). Returns (cost, {site: (PrfaaS site, t)})."""
    from prfaas_plan import units
    from prfaas_plan.fleet.latency import SiteCounts, counts_deployment
    from prfaas_plan.latency.ttft import slo_excess

    parts = {p.name: p.parts for p in fleet.prfaas_sites}
    assert all(len(p) == 1 for p in parts.values())
    sns = {s.name: site_needs(fleet, model, s) for s in fleet.local_sites}
    lo = lambda a: 0 if a <= 0 else math.floor(a) + 1  # noqa: E731
    memo: dict = {}

    def site_cost(s: str, r: str | None, t: float, seen: int) -> float:
        """Cheapest local prefill + decode + link of site s at (r, t) seeing ``seen`` PrfaaS instances."""
        key = (s, r, t, seen)
        if key in memo:
            return memo[key]
        sn, lam, site = sns[s], rates[s], sns[s].site
        dec = sn.decode[0]
        d_lo = max(math.floor(lam * site.workload.output_tokens_mean * dec.step_s / dec.bs_max) + 1, _ceil(lam / sn.decode_req_per_s[0]))
        p_price, d_price = sn.prefill_parts[0].instance_usd_per_hour, sn.decode_parts[0].instance_usd_per_hour
        p_lo = lo(lam * float(sn.local_s([t])[0, 0]))
        sizes = [(0.0, 0.0)]
        if r is not None:
            link = fleet.link(r, s).link
            egress = lam * float(sn.link_gbit([t])[0])
            sizes = [(g, u) for g, u in zip(link.sizes_gbit_per_s, link.sizes_usd_per_hour) if egress <= g * link.max_utilisation * (1 + RTOL)]
        best = math.inf
        for size, usd in sizes:
            def meets(n_p: int, n_d: int) -> bool:
                c = SiteCounts((n_p,), (n_d,), r, (seen,) if r else (), 1.0, units.gbit_per_s_to_bytes_per_s(size), fleet.link(r, s).link.rtt_s if r else 0.0)
                return slo_excess(counts_deployment(model, sn, c, t if r else None, parts), lam, site.ttft_slo) <= 0
            n_d = d_lo + extra
            for n_p in range(p_lo, p_lo + extra + 1) if p_lo > 0 else [0]:
                if usd + n_p * p_price + d_lo * d_price >= best or not meets(n_p, n_d):
                    continue
                while n_d > d_lo and meets(n_p, n_d - 1):
                    n_d -= 1
                best = min(best, usd + n_p * p_price + n_d * d_price)
        memo[key] = best
        return best

    routes = {}
    for s, sn in sns.items():
        g = sn.grid_tokens
        ts = np.concatenate([[0.0], np.geomspace(max(g[1], 1.0), g[-2], n_thresholds - 1)])
        routes[s] = [(None, float(g[-1]))] + [(lk.src, float(t)) for lk in fleet.links if lk.dst == s for t in ts]
    best, best_route = math.inf, None
    names = list(sns)
    for combo in itertools.product(*(routes[s] for s in names)):
        route = dict(zip(names, combo))
        cost = sum(site_cost(s, None, t, 0) for s, (r, t) in route.items() if r is None)
        for r in {r for r, _ in combo if r is not None}:
            users = [s for s in names if route[s][0] == r]
            load = {s: rates[s] * float(sns[s].remote_s(r, [route[s][1]])[0, 0]) for s in users}
            total_load = sum(load.values())
            price = parts[r][0].instance_usd_per_hour
            cheapest = math.inf
            for n in range(lo(total_load), lo(total_load) + extra + 1):
                c = price * n
                for s in users:
                    share = load[s] / total_load if total_load > 0 else 1.0
                    c += site_cost(s, r, route[s][1], math.ceil(n * share - 1e-9))
                cheapest = min(cheapest, c)
            cost += cheapest
        if cost < best:
            best, best_route = cost, route
    return best, best_route
