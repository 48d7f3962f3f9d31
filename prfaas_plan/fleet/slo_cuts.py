"""The check of a fleet plan against every local site's TTFT levels, and the cuts that a site
missing them adds to the MILP (:mod:`.slo_search` step 3; the rows they raise are :mod:`.slo`'s).

The check (:func:`misses`): each local site's deployment as :mod:`.latency` builds it (mixed pools,
its share of a shared PrfaaS pool, the link's exposed transfer at its utilisation, the decode
wait) against every level it states (:func:`~prfaas_plan.latency.ttft.slo_excess`).

A cut (:func:`tighten`) for a site that misses at an option o (a PrfaaS site and a threshold): the
cheapest growth of its pools that meets its SLO at o - best-first in $ over the lattice of (local
prefill, PrfaaS as the site sees it, decode, next link size) steps from a start, one part per
pool (the excess falls in every step, so the first lattice point that meets the SLO is the
cheapest of the lattice) - becomes o's row levels: each grown pool's R rises to the grown counts
(``slo-local``, ``slo-decode[s, o]``), the link row asks for the grown size (``slo-link[r -> s,
o]``), and the PrfaaS instances the site must see become a row that follows the other sites'
routing (``slo-shared[s, o]``: a shared pool is seen in proportion to load, :mod:`.slo`) and a
total at least that (``slo-prfaas[s, o]``). An option where no lattice point within
MAX_CUT_STATES meets the SLO is forbidden.

Every cut one check implies, in one round (:func:`cut_site`). Options of a site that offload to
the same PrfaaS site at nearby thresholds cost nearly the same, so a cut at the chosen option
alone sends the next MILP to a neighbour that misses for the same reason (the bench fleet at
P90 <= 4 s: 9 re-solves, one threshold each, 46 s). So in the same round:
- at the chosen option, the cut grows the plan's counts (which miss); its PrfaaS total is the
  one that gives the site its grown share with the other sites as planned (as before);
- at every other point option of the site with the same PrfaaS site, the cut grows that
  option's floors (:func:`floors`: each pool at its own SLO row level N_k(o), the link at the
  smallest size that carries the egress) where they miss; for one site with one-part pools
  every plan at o holds at least the floors, so this cut is the cheapest lattice plan at o.

What a cut is: a *heuristic* tightening, never a necessary condition. It holds o to at least
one cheapest growth in one part per pool from one start; a fleet with another balance (fewer
PrfaaS instances and more decode, another part, another share of a shared pool) may meet the SLO
at o more cheaply, and the cut forbids it; a forbidden option may hold a plan beyond the
lattice. Only the rows of :mod:`.slo` without cuts are necessary conditions (for one-part
pools), so a plan found after a cut is reported with its gap to the bound of those rows (status
"slo-checked"), and optimal only where it meets that bound.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import replace

import numpy as np

from .. import units
from ..errors import PlanError
from ..latency.ttft import routing, slo_excess
from ..planning.sites import Fleet
from .constraints import Milp
from .latency import SiteCounts, counts_deployment, site_counts
from .model import Option
from .needs import SiteNeeds
from .slo import SloRows, weights

#: The most grown plans one cut tries (each one full check of one site).
MAX_CUT_STATES = 400


def chosen_options(m: Milp, x) -> dict:
    """Each site's chosen option (index, :class:`~.model.Option`)."""
    choose = m.lay.values(x, "choose")
    out = {}
    for s, opts in m.options.items():
        i = max(range(len(opts)), key=lambda j: choose[s, j])
        out[s] = (i, opts[i])
    return out


def misses(model, fleet: Fleet, needs: dict[str, SiteNeeds], doc: dict) -> dict[str, tuple[float, SiteCounts, dict]]:
    """{site: (excess, its counts, its document entry)} for every site whose analytic TTFT at its
    rate misses a level it states (excess > 0; :func:`~prfaas_plan.latency.ttft.slo_excess`)."""
    parts = {p.name: p.parts for p in fleet.prfaas_sites}
    out = {}
    for st in doc["sites"]:
        sn = needs[st["site"]]
        if not sn.site.ttft_slo.stated:
            continue
        counts = site_counts(sn, doc, st, parts, needs)
        v = slo_excess(counts_deployment(model, sn, counts, st["threshold_tokens"], parts), st["rate_req_per_s"], sn.site.ttft_slo)
        if v > 0:
            out[st["site"]] = (v, counts, st)
    return out


def _signature(counts: tuple[int, ...]):
    """What a pool's routing depends on: the part of a one-part pool, the whole mix otherwise."""
    used = [k for k, n in enumerate(counts) if n]
    return ("part", used[0]) if len(used) == 1 else tuple(counts)


class Checker:
    """The SLO excess of one site's counts at a threshold (as :func:`misses` computes it), with
    each (threshold, pool parts) routing made once: the cells and per-path service times do not
    depend on a one-part pool's count, only the queues do, and a cut tries hundreds of counts."""

    def __init__(self, model, fleet: Fleet):
        self.model = model
        self.prfaas = {p.name: p.parts for p in fleet.prfaas_sites}
        self._routes: dict = {}

    def excess(self, sn: SiteNeeds, counts: SiteCounts, t: float | None, lam: float) -> float:
        dep = counts_deployment(self.model, sn, counts, t, self.prfaas)
        key = (sn.site.name, t, counts.prfaas_site, _signature(counts.local), _signature(counts.prfaas))
        cells = self._routes.get(key)
        if cells is None:
            try:
                cells = routing(dep)
            except PlanError:  # a path with requests and no pool
                return math.inf
            self._routes[key] = cells
        return slo_excess(dep, lam, sn.site.ttft_slo, cells=cells)


def _part(counts: tuple[int, ...], prices: list[float], bound) -> int:
    """The part of a pool that a cut grows: the one with the most instances in the plan, else
    the cheapest per instance of its SLO bound (price x N_k)."""
    if any(counts):
        return int(np.argmax(counts))
    return int(np.argmin([p * (n if n > 0 else 1.0) for p, n in zip(prices, bound)]))


def _grown(counts: SiteCounts, step: tuple[int, int, int, int], parts: tuple[int, int, int], link: list | None) -> SiteCounts:
    """``counts`` with step = (local, PrfaaS, decode, link) instances added to the chosen parts,
    and the link at its step[3]-th larger size."""
    def add(v, k, n):
        v = list(v)
        if n:
            v[k] += n
        return tuple(v)

    out = replace(counts, local=add(counts.local, parts[0], step[0]), prfaas=add(counts.prfaas, parts[1], step[1]) if counts.prfaas_site else (),
                  decode=add(counts.decode, parts[2], step[2]))
    if link is not None and step[3]:
        out = replace(out, link_bytes_per_s=units.gbit_per_s_to_bytes_per_s(link[step[3] - 1][0]))
    return out


def tighten(rows: SloRows, check: Checker, fleet: Fleet, needs: dict[str, SiteNeeds], s: str, o: Option, t: float | None,
            lam: float, counts: SiteCounts, total: list[int] | None = None) -> bool:
    """The cut for site ``s`` at option ``o`` (threshold ``t``, rate ``lam``) from ``counts``: the
    cheapest growth of its pools - one part per pool (:func:`_part`), the link in its sizes -
    found best-first in cost over the lattice of (local, PrfaaS, decode, link) steps (see the
    module docstring); the grown pools' counts become the option's row levels. PrfaaS: the
    instances the site must see of the pool (``SloRows.shared``, a row that follows the other
    sites' routing) and, with ``total`` (the plan's PrfaaS count per part: ``counts`` are the
    plan's), the total that gives the site that share with the other sites as planned; without
    it (``counts`` are the option's floors, :func:`floors`, tried as they are first) the total
    at least what the site must see. False (and the option forbidden) where no lattice point
    within MAX_CUT_STATES meets the SLO."""
    sn, ss = needs[s], rows.sites[s]
    prfaas = check.prfaas
    key = rows.key(o)
    r = counts.prfaas_site
    bounds = {pool: ss.option_bound(pool, o) for pool in ("local", "decode") + (("prfaas",) if o.prfaas else ())}
    which = (_part(counts.local, [c.instance_usd_per_hour for c in sn.prefill_parts], bounds["local"]),
             _part(counts.prfaas, [c.instance_usd_per_hour for c in prfaas[r]], bounds["prfaas"]) if r and o.prfaas else 0,
             _part(counts.decode, [c.instance_usd_per_hour for c in sn.decode_parts], bounds["decode"]))
    unit = [sn.prefill_parts[which[0]].instance_usd_per_hour if sum(counts.local) or sn.local_s([t or 0.0])[which[0], 0] > 0 else math.inf,
            prfaas[r][which[1]].instance_usd_per_hour / max(counts.prfaas_share_frac, 1e-12) if r else math.inf,
            sn.decode_parts[which[2]].instance_usd_per_hour]
    links = _bigger_links(fleet, counts, s) if r else []
    usd = lambda st: sum(n * u for n, u in zip(st[:3], unit) if n) + (links[st[3] - 1][1] if st[3] else 0.0)  # noqa: E731
    heap, seen, found, tried = [(0.0, (0, 0, 0, 0))], {(0, 0, 0, 0)}, None, 0
    while heap and tried < MAX_CUT_STATES:
        _, st = heapq.heappop(heap)
        if st != (0, 0, 0, 0) or total is None:
            tried += 1
            if check.excess(sn, _grown(counts, st, which, links), t, lam) <= 0:
                found = st
                break
        for d in range(4):
            nxt = tuple(n + (1 if j == d else 0) for j, n in enumerate(st))
            if nxt in seen or (d < 3 and not math.isfinite(unit[d])) or (d == 3 and nxt[3] > len(links)):
                continue
            seen.add(nxt)
            heapq.heappush(heap, (usd(nxt), nxt))
    if found is None:  # nothing within the lattice meets it here: this option is out of reach
        rows.forbidden.add((s, key))
        return False
    dl, dr, dd, dlink = found
    for pool, step, k, now in (("local", dl, which[0], counts.local), ("decode", dd, which[2], counts.decode)):
        if step:
            _raise(rows, (s, pool, key), bounds[pool], [n + (step if j == k else 0) for j, n in enumerate(now)])
    if r and o.prfaas and (dr or total is None):  # what the site must see of its PrfaaS pool (a share of it where shared)
        k = which[1]
        sees = counts.prfaas[k] + dr
        before = rows.shared.get((s, key))
        rows.shared[s, key] = (k, max(before[1], sees) if before and before[0] == k else sees)
        if total is not None:  # the plan's: the total that gives the site its grown share, the other sites as planned
            total = list(total)
            total[k] = max(total[k] + dr, math.floor((sees - 1 + 1e-9) / max(counts.prfaas_share_frac, 1e-12)) + 1)
        else:
            total = [sees if j == k else 0 for j in range(len(counts.prfaas))]
        _raise(rows, (s, "prfaas", key), bounds["prfaas"], total)
    if dlink:
        rows.cuts[s, "link", key] = max(rows.cuts.get((s, "link", key), 0.0), links[dlink - 1][0])
    return True


def cut_site(rows: SloRows, check: Checker, fleet: Fleet, needs: dict[str, SiteNeeds], m: Milp, x, options: list[Option], s: str,
             counts: SiteCounts, entry: dict) -> int:
    """Every cut one check of site ``s`` implies (see the module docstring): at its chosen option
    in plan ``(m, x)`` from the plan's counts, and at each other point option in ``options`` (the
    site's options of the next MILP) with the same PrfaaS site from that option's floors
    (:func:`floors`) where they miss. Returns the number of options cut."""
    _, chosen = chosen_options(m, x)[s]
    lam, sn = entry["rate_req_per_s"], needs[s]
    r = counts.prfaas_site
    n_r = m.lay.values(x, "n_prfaas")
    total = [n_r[r, j] for j in range(len(check.prfaas[r]))] if r else []
    done = {rows.key(chosen)}
    made = int(tighten(rows, check, fleet, needs, s, chosen, entry["threshold_tokens"], lam, counts, total))
    for o in options:
        key = rows.key(o)
        if key in done or not o.is_point or o.prfaas is None or o.prfaas != r or (s, key) in rows.forbidden:
            continue
        done.add(key)
        start = floors(rows.sites[s], fleet, o, counts)
        if start is not None and check.excess(sn, start, o.t_hi, lam) > 0:
            made += tighten(rows, check, fleet, needs, s, o, o.t_hi, lam, start)
    return made


def floors(ss, fleet: Fleet, o: Option, counts: SiteCounts) -> SiteCounts | None:
    """The least counts option ``o``'s own rows allow, one part per pool (the plan's, else the
    cheapest by :func:`_part`): each pool at its SLO row level N_k(o) (:mod:`.slo`; at least the
    stable count, so it carries the pool's load), PrfaaS as the site sees it (at the plan's
    share of the pool), and the smallest link size that carries the egress at its utilisation
    cap. For one site with one-part pools every plan at o has at least these, so the cheapest
    lattice growth from them is the cheapest plan at o with those parts. None where a pool's
    part cannot meet the SLO alone or no link size carries the egress."""
    sn, lam = ss.sn, ss.lam
    out = {}
    prfaas_parts = next(p.parts for p in fleet.prfaas_sites if p.name == o.prfaas)
    for pool, have, parts in (("local", counts.local, sn.prefill_parts), ("prfaas", counts.prfaas, prfaas_parts),
                              ("decode", counts.decode, sn.decode_parts)):
        bound = ss.option_bound(pool, o)
        k = _part(have, [c.instance_usd_per_hour for c in parts], bound)
        if not math.isfinite(bound[k]):
            return None
        out[pool] = tuple(int(bound[k]) if j == k else 0 for j in range(len(parts)))
    lk = fleet.link(o.prfaas, sn.site.name).link
    need = lam * float(sn.link_gbit([o.t_hi])[0]) / lk.max_utilisation
    if lk.sizes_gbit_per_s:
        gbit = min((g for g in lk.sizes_gbit_per_s if g >= need * (1 - 1e-12)), default=None)
    elif lk.fixed_gbit_per_s is not None:
        gbit = lk.fixed_gbit_per_s if lk.fixed_gbit_per_s >= need * (1 - 1e-12) else None
    else:
        gbit = need if lk.max_gbit_per_s is None or need <= lk.max_gbit_per_s * (1 + 1e-12) else None
    if gbit is None:
        return None
    return replace(counts, local=out["local"], prfaas=out["prfaas"], decode=out["decode"], link_bytes_per_s=units.gbit_per_s_to_bytes_per_s(gbit))


def _raise(rows: SloRows, cut: tuple, bound, counts) -> None:
    """A pool row's R such that ``counts`` (per part) just satisfies it."""
    ref, w = weights(bound)
    if ref == 0 or not math.isfinite(ref):
        ref, w = 1.0, np.ones(len(counts))
    rows.cuts[cut] = max(rows.cuts.get(cut, 1.0), float(np.dot(w, counts)) / ref * (1 - 1e-9))


def _bigger_links(fleet: Fleet, counts: SiteCounts, s: str) -> list[tuple[float, float]]:
    """[(Gbit/s, extra $/hour)] of the link sizes above the plan's (a continuous link: +25%
    steps, up to 8 of them, within its max)."""
    lk = fleet.link(counts.prfaas_site, s).link
    gbit = units.bytes_per_s_to_gbit_per_s(counts.link_bytes_per_s)
    if lk.sizes_gbit_per_s:
        now = next((u for g, u in zip(lk.sizes_gbit_per_s, lk.sizes_usd_per_hour) if abs(g - gbit) <= 1e-9 * g), 0.0)
        return [(g, u - now) for g, u in zip(lk.sizes_gbit_per_s, lk.sizes_usd_per_hour) if g > gbit * (1 + 1e-9)]
    if lk.fixed_gbit_per_s is not None:
        return []
    steps = [max(gbit, 1e-3) * 1.25**i for i in range(1, 9)]
    return [(g, (g - gbit) * lk.usd_per_gbit_per_s_hour) for g in steps if lk.max_gbit_per_s is None or g <= lk.max_gbit_per_s]
