"""The cheapest fleet that meets every local site's latency SLO at its rate (issue #16, items 1
and 5 for fleets): the SLO rows of :mod:`.slo` inside the MILP, the plan checked with the full
analytic model of :mod:`.latency`, and cuts until it holds.

Method.
1. The threshold search of :mod:`.search` with the SLO rows in every MILP (points and segments):
   the cheapest fleet whose every pool meets its necessary SLO bound, and a lower bound of its
   cost (the segment relaxation's).
2. The check: each local site's deployment as :mod:`.latency` builds it (mixed pools, its share
   of a shared PrfaaS pool, the link's exposed transfer at its utilisation, the decode wait)
   against every stated level (:func:`~prfaas_plan.latency.ttft.slo_excess`). The mixture of paths
   couples the pools: each pool may use the whole tail allowance alone, so a plan at its bounds
   can miss.
3. Tighten: the MILP over the search's last points plus GRID_POINTS thresholds per (site,
   PrfaaS site) is solved once (the SLO may move the cheapest threshold away from where the
   throughput search looked); then for each site that misses, the cheapest growth of its pools
   at its chosen option that meets its SLO - best-first in $ over the lattice of (local
   prefill, PrfaaS as the site sees it, decode, next link size) steps, one part per pool
   (:func:`tighten`) - becomes a cut on that option: each grown pool's row level R rises to the
   grown counts (``slo-*[s, o]``; a PrfaaS row on the total count that gives the site its grown
   share), the link row asks for the grown size (``slo-link[r -> s, o]``). An option where no
   lattice point within MAX_CUT_STATES meets the SLO is forbidden. The MILP is solved again with
   the cuts and the check repeats, up to MAX_TIGHTEN times.

What is optimal. Without cuts (the plan at the bounds meets the SLO, the common case) the plan
is the optimum of the SLO-bounded MILP over the threshold search (proven as :mod:`.search`
proves it, within SEARCH_ROUNDS rounds, else its gap is reported); for single-part pools the
rows are necessary, so it is the cheapest fleet meeting the SLO (given the bounds' monotonicity
inside the relaxation's segments, :mod:`.slo`). With cuts, for one local site with single-part
pools each cut option's MILP cost is the cheapest plan meeting the SLO at that threshold (the
lattice search is exact there: TTFT's excess falls in every count), so the plan is the cheapest
over the thresholds the re-solves hold - not over every threshold, hence status "slo-checked"
with the gap to the lower bound, which stays valid (every fleet meeting the SLO satisfies the
rows without cuts). Several sites sharing a PrfaaS pool: a cut grows one site with the others
as planned (greedy across sites). Pools of mixed parts: the rows and the one-part growth are
heuristics; the check still guarantees every level of every returned plan. The brute forces of
tests/bruteforce_fleet.py (one site; two sites sharing a pool) check the cost.

A budget question with TTFT levels: :func:`most_goodput_for_slo`.

When nothing meets the SLO (the MILP is infeasible with the rows) the error says "no plan within
the ranges meets ..." with each site's best achievable P90; when the cuts run out, that none was
found within them.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .. import units
from ..errors import PlanError
from ..latency.ttft import slo_excess, ttft
from ..planning.sites import Fleet
from .constraints import Milp, build
from .latency import SiteCounts, counts_deployment, site_counts
from .needs import SiteNeeds
from .model import Option
from .search import GAP_RTOL, TIME_LIMIT_S, FleetSolution, optimise
from .search import _options as point_options
from .slo import SiteSlo, SloRows, weights
from .solve import solve

#: The most check-and-cut rounds after the search.
MAX_TIGHTEN = 60

#: Relative precision of the bisection on alpha of a budget question with an SLO (0.1%).
RATE_RTOL = 1e-3

#: Rounds of the threshold search with the SLO rows (the segment relaxation's SLO bounds, taken at
#: the segments' ends, close the gap slowly: past these rounds the re-solves over the search's
#: points and a threshold grid take over, and the gap to the bound is reported).
SEARCH_ROUNDS = 12

#: Thresholds per (local site, PrfaaS site) added to the re-solves (:func:`with_grid`).
GRID_POINTS = 17

#: The most grown plans one cut tries (each one full check of one site).
MAX_CUT_STATES = 400

#: Thresholds per PrfaaS site at which the best achievable P90 is sought.
BEST_P90_THRESHOLDS = 24


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


def _part(counts: tuple[int, ...], prices: list[float], bound) -> int:
    """The part of a pool that a cut grows: the one with the most instances in the plan, else
    the cheapest per instance of its SLO bound (price x N_k)."""
    if any(counts):
        return int(np.argmax(counts))
    return int(np.argmin([p * (n if n > 0 else 1.0) for p, n in zip(prices, bound)]))


def _grown(counts: SiteCounts, step: tuple[int, int, int], parts: tuple[int, int, int], link: tuple | None) -> SiteCounts:
    """``counts`` with step = (local, PrfaaS, decode) instances added to the chosen parts, and the
    link at its step-th larger size."""
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


def tighten(rows: SloRows, model, fleet: Fleet, needs: dict[str, SiteNeeds], m: Milp, x, s: str, v: float,
            counts: SiteCounts, entry: dict) -> None:
    """The cut for site ``s`` missing its SLO (see the module docstring, step 3): the cheapest
    growth of its pools at its chosen option - one part per pool (:func:`_part`), the link in its
    sizes - found best-first in cost over the lattice of (local, PrfaaS, decode, link) steps (the
    excess falls in every step, so the first that meets the SLO is the cheapest of the lattice);
    its counts become the option's row levels."""
    sn, ss = needs[s], rows.sites[s]
    prfaas = {p.name: p.parts for p in fleet.prfaas_sites}
    i, o = chosen_options(m, x)[s]
    key, t, lam = rows.key(o), entry["threshold_tokens"], entry["rate_req_per_s"]
    r = counts.prfaas_site
    bounds = {pool: ss.option_bound(pool, o) for pool in ("local", "decode") + (("prfaas",) if o.prfaas else ())}
    which = (_part(counts.local, [c.instance_usd_per_hour for c in sn.prefill_parts], bounds["local"]),
             _part(counts.prfaas, [c.instance_usd_per_hour for c in prfaas[r]], bounds["prfaas"]) if r and o.prfaas else 0,
             _part(counts.decode, [c.instance_usd_per_hour for c in sn.decode_parts], bounds["decode"]))
    unit = [sn.prefill_parts[which[0]].instance_usd_per_hour if sum(counts.local) or ss.sn.local_s([t or 0.0])[which[0], 0] > 0 else math.inf,
            prfaas[r][which[1]].instance_usd_per_hour / max(counts.prfaas_share_frac, 1e-12) if r else math.inf,
            sn.decode_parts[which[2]].instance_usd_per_hour]
    links = _bigger_links(fleet, counts, entry) if r else []
    usd = lambda st: sum(n * u for n, u in zip(st[:3], unit) if n) + (links[st[3] - 1][1] if st[3] else 0.0)  # noqa: E731
    heap, seen, found, tried = [(0.0, (0, 0, 0, 0))], {(0, 0, 0, 0)}, None, 0
    while heap and tried < MAX_CUT_STATES:
        cost, st = heapq.heappop(heap)
        if st != (0, 0, 0, 0):
            tried += 1
            grown = _grown(counts, st, which, links)
            if slo_excess(counts_deployment(model, sn, grown, t, prfaas), lam, sn.site.ttft_slo) <= 0:
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
        return
    dl, dr, dd, dlink = found
    for pool, step, k, now in (("local", dl, which[0], counts.local), ("decode", dd, which[2], counts.decode)):
        if step:
            _raise(rows, (s, pool, key), bounds[pool], [n + (step if j == k else 0) for j, n in enumerate(now)])
    if dr:  # the row holds the PrfaaS site's total count: enough that the site's share grows by dr
        n_r = m.lay.values(x, "n_prfaas")
        total = [n_r[o.prfaas, j] for j in range(len(prfaas[r]))]
        k = which[1]
        total[k] = max(total[k] + dr, math.floor((counts.prfaas[k] + dr - 1 + 1e-9) / max(counts.prfaas_share_frac, 1e-12)) + 1)
        _raise(rows, (s, "prfaas", key), bounds["prfaas"], total)
    if dlink:
        rows.cuts[s, "link", key] = max(rows.cuts.get((s, "link", key), 0.0), links[dlink - 1][0])


def _raise(rows: SloRows, cut: tuple, bound, counts) -> None:
    """A pool row's R such that ``counts`` (per part) just satisfies it."""
    ref, w = weights(bound)
    if ref == 0 or not math.isfinite(ref):
        ref, w = 1.0, np.ones(len(counts))
    rows.cuts[cut] = max(rows.cuts.get(cut, 1.0), float(np.dot(w, counts)) / ref * (1 - 1e-9))


def _bigger_links(fleet: Fleet, counts: SiteCounts, entry: dict) -> list[tuple[float, float]]:
    """[(Gbit/s, extra $/hour)] of the link sizes above the plan's (a continuous link: +25%
    steps, up to 8 of them, within its max)."""
    lk = fleet.link(counts.prfaas_site, entry["site"]).link
    gbit = units.bytes_per_s_to_gbit_per_s(counts.link_bytes_per_s)
    if lk.sizes_gbit_per_s:
        now = next((u for g, u in zip(lk.sizes_gbit_per_s, lk.sizes_usd_per_hour) if abs(g - gbit) <= 1e-9 * g), 0.0)
        return [(g, u - now) for g, u in zip(lk.sizes_gbit_per_s, lk.sizes_usd_per_hour) if g > gbit * (1 + 1e-9)]
    if lk.fixed_gbit_per_s is not None:
        return []
    steps = [max(gbit, 1e-3) * 1.25**i for i in range(1, 9)]
    return [(g, (g - gbit) * lk.usd_per_gbit_per_s_hour) for g in steps if lk.max_gbit_per_s is None or g <= lk.max_gbit_per_s]


def with_grid(needs: dict[str, SiteNeeds], options: dict[str, list[Option]]) -> dict[str, list[Option]]:
    """Each site's point options plus, per linked PrfaaS site, GRID_POINTS thresholds spread
    evenly over its length cells (the search's points cluster where throughput is cheapest;
    an SLO may move the cheapest threshold away from there)."""
    out = {}
    for s, opts in options.items():
        sn = needs[s]
        g = sn.grid_tokens
        have = {(o.prfaas, o.t_lo) for o in opts if o.is_point}
        grid = [float(t) for t in g[np.unique(np.linspace(0, len(g) - 1, GRID_POINTS).astype(int))]]
        extra = {r: [(t, t) for t in grid if (r, t) not in have] for r in {o.prfaas for o in opts if o.prfaas}}
        out[s] = [o for o in opts if o.is_point] + point_options(sn, {r: ts for r, ts in extra.items() if ts})[1:]
    return out


def optimise_for_slo(fleet: Fleet, model, rates: dict[str, float], needs: dict[str, SiteNeeds],
                     document: Callable[[FleetSolution], dict], time_limit_s: float = TIME_LIMIT_S, explain: bool = True) -> FleetSolution:
    """The cheapest fleet serving ``rates`` (req/s per local site) whose every site meets the
    TTFT levels it states at its rate (see the module docstring). ``document(solution)`` makes
    the plan's document (:func:`~prfaas_plan.fleet.plan.fleet_document`), which the check reads.
    Raises PlanError "no plan within the ranges meets ..." with the best achievable P90s (without
    them when not ``explain``: a search that only asks whether a plan exists skips that work)."""
    rows = SloRows(fleet, model, needs, rates)
    if rows.out_of_reach():
        raise no_plan(rows, fleet, model, f"no decode pool of {', '.join(rows.out_of_reach())} can meet it within its GPUs", explain)
    try:
        sol = optimise(fleet, model, "target", rates, None, needs, time_limit_s=time_limit_s, slo=rows, max_rounds=SEARCH_ROUNDS)
    except PlanError as exc:
        raise no_plan(rows, fleet, model, str(exc), explain) from None
    cuts = 0
    for _ in range(MAX_TIGHTEN + 1):
        doc = document(sol)
        missed = misses(model, fleet, needs, doc)
        if (missed or sol.status != "optimal") and not cuts:  # the cuts' re-solves choose among more thresholds than the search's last round
            options = with_grid(needs, sol.milp.options)
            m = build(Milp(fleet, needs, options, "target", rates, slo=rows))
            sol = replace(sol, milp=m, solution=solve(m))
            doc = document(sol)
            missed = misses(model, fleet, needs, doc)
        if not missed:
            if cuts or sol.status != "optimal":
                gap = max((sol.solution.objective - sol.bound) / max(sol.solution.objective, 1e-12), 0.0)
                sol = replace(sol, status="slo-checked" if gap > GAP_RTOL else "optimal", gap_frac=gap)
            return sol
        for s, (v, counts, entry) in missed.items():
            tighten(rows, model, fleet, needs, sol.milp, sol.solution.x, s, v, counts, entry)
        cuts += 1
        m = build(Milp(fleet, needs, sol.milp.options, "target", rates, slo=rows))
        try:
            sol = replace(sol, milp=m, solution=solve(m))
        except PlanError:
            break
    raise PlanError(f"no fleet meeting every site's SLO found within {cuts} cuts (the search stops there; one may exist: "
                    f"{'; '.join(f'site {s}: TTFT {ss.slo.describe()} at {ss.lam:g} req/s' for s, ss in rows.sites.items())})")


def most_goodput_for_slo(fleet: Fleet, model, arrival: dict[str, float], needs: dict[str, SiteNeeds],
                         document: Callable[[FleetSolution], dict], budget_usd_per_hour: float) -> FleetSolution:
    """A budget question with TTFT levels (issue #16: the most goodput within the budget): the
    largest alpha such that the cheapest fleet meeting every site's levels at alpha x its
    arrival rate (:func:`optimise_for_slo`) costs at most the budget, by bisection to
    RATE_RTOL between 0 and the throughput answer's alpha (no SLO fleet serves more). Its
    ``alpha`` is that multiple, ``bound`` the smallest alpha found out of reach, status
    "slo-checked" (feasibility is taken as monotone in alpha: a fleet meeting the levels at a
    rate meets them at every lower one, and the cheapest SLO fleet costs more at a higher rate)."""
    hi = optimise(fleet, model, "budget", arrival, budget_usd_per_hour, needs).alpha
    lo, best = 0.0, None
    while hi - lo > RATE_RTOL * hi:
        mid = 0.5 * (lo + hi)
        try:
            sol = optimise_for_slo(fleet, model, {s: a * mid for s, a in arrival.items()}, needs, document, explain=False)
        except PlanError:
            sol = None
        if sol is not None and sol.solution.objective <= budget_usd_per_hour * (1 + 1e-9):
            best, lo = sol, mid
        else:
            hi = mid
    if best is None:
        raise PlanError(f"no fleet within the budget {budget_usd_per_hour:,.2f} $/hour meets every site's TTFT levels at "
                        f"{hi:.3g} x its arrival rate or above")
    return replace(best, alpha=lo, bound=hi, gap_frac=(hi - lo) / hi, status="slo-checked")


def no_plan(rows: SloRows, fleet: Fleet, model, why: str, explain: bool = True) -> PlanError:
    """The refusal: each SLO site's levels and its best achievable P90 (:func:`best_p90_s`;
    not sought when not ``explain``)."""
    parts = []
    for s, ss in rows.sites.items():
        p90 = best_p90_s(ss, fleet, model) if explain else math.nan
        best = f"best achievable P90 {p90:.3g} s" if math.isfinite(p90) else ("no plan is even stable" if explain else "")
        parts.append(f"site {s}: TTFT {ss.slo.describe()} at {ss.lam:g} req/s" + (f" ({best})" if best else ""))
    return PlanError(f"no plan within the ranges meets every site's SLO: {'; '.join(parts)} [{why}]")


def best_p90_s(ss: SiteSlo, fleet: Fleet, model) -> float:
    """The lowest analytic P90 of a site at its rate over thresholds (all local, and per linked
    PrfaaS site BEST_P90_THRESHOLDS on its grid) and parts (each pool of one part, large enough
    that its wait vanishes or at its GPU cap), the link at its largest, decode likewise."""
    sn = ss.sn
    parts = {p.name: p.parts for p in fleet.prfaas_sites}
    big = lambda a, cap: cap if cap is not None else int(a + 10 * math.sqrt(a) + 10)  # noqa: E731
    one = lambda n, k, size: tuple(n if i == k else 0 for i in range(size))  # noqa: E731
    lam, wl = ss.lam, sn.site.workload
    decode = [one(big(lam * wl.output_tokens_mean * d.step_s / d.bs_max, None), i, len(sn.decode)) for i, d in enumerate(sn.decode)]
    g = sn.grid_tokens
    ts = [(None, float(g[-1]))] + [(r, float(t)) for r in ss.remote for t in g[np.unique(np.linspace(0, len(g) - 1, BEST_P90_THRESHOLDS).astype(int))]]
    best = math.inf
    for r, t in ts:
        a_l, a_r = lam * sn.local_s([t])[:, 0], (lam * sn.remote_s(r, [t])[:, 0] if r else [0.0])
        for k, j, dec in itertools.product(range(len(a_l)), range(len(a_r)), decode):
            c = SiteCounts(one(big(a_l[k], ss.local_caps[k]) if a_l[k] > 0 else 0, k, len(a_l)), dec)
            if r is not None:
                lk = fleet.link(r, sn.site.name).link
                gbit = lk.fixed_gbit_per_s or (max(lk.sizes_gbit_per_s) if lk.sizes_gbit_per_s else lk.max_gbit_per_s) or 1e6
                c = replace(c, prfaas_site=r, prfaas=one(big(a_r[j], ss.remote_caps[r][j]) if a_r[j] > 0 else 0, j, len(a_r)),
                            link_bytes_per_s=units.gbit_per_s_to_bytes_per_s(gbit), rtt_s=lk.rtt_s)
            try:
                best = min(best, ttft(counts_deployment(model, sn, c, t if r else None, parts), lam, quantiles=("p90",)).ttft_p90_s)
            except PlanError:
                continue
    return best


def headroom_plan(fleet: Fleet, model, rates: dict[str, float], needs: dict[str, SiteNeeds],
                  document: Callable[[FleetSolution], dict], step_frac: float = 0.01, max_factor: float = 3.0) -> tuple[FleetSolution, float]:
    """What a user does by hand (issue #16, item 7): the cheapest throughput fleet for every
    site's rate x h (:func:`~.search.optimise`, no SLO rows), h raised from 1 in steps of
    ``step_frac`` until that fleet meets every site's SLO at its own rate (:func:`misses`, each
    site's entry read at ``rates``). Returns (solution, h); PlanError if no h up to ``max_factor`` does."""
    h = 1.0
    while h <= max_factor + 1e-9:
        sol = optimise(fleet, model, "target", {s: r * h for s, r in rates.items()}, None, needs)
        doc = document(sol)
        for st in doc["sites"]:
            st["rate_req_per_s"] = rates[st["site"]]
        if not misses(model, fleet, needs, doc):
            return sol, h
        h = round(h + step_frac, 10)
    raise PlanError(f"no throughput fleet oversized up to {max_factor:g}x meets every site's SLO")
