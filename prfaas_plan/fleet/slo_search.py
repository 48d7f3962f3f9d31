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
3. Tighten: for each site that misses, the unit of capacity whose excess falls most per $ (one
   local prefill instance of some part, one PrfaaS instance as the site sees it, one decode
   instance, or the next link size) becomes a cut on the site's chosen option: its pool row's R
   rises so that the plan's counts no longer satisfy it and the counts plus that unit do
   (``slo-*[s, o]``), or the link row asks for the larger size. An option where no unit lowers
   the excess is forbidden. The point MILP of the plan's round (its thresholds) is solved again
   with the cuts, and the check repeats, up to MAX_TIGHTEN times.

What is optimal. Without cuts (the plan at the bounds meets the SLO, the common case) the plan
is the optimum of the SLO-bounded MILP over the threshold search, proven as :mod:`.search`
proves it; for single-part pools the rows are necessary, so it is the cheapest fleet meeting the
SLO (given the bounds' monotonicity inside the relaxation's segments, :mod:`.slo`). With cuts it
is not proven: a cut is greedy (marginal analysis, as the one-pair
:mod:`~prfaas_plan.latency.slo_plan` tightens), the re-solves keep the thresholds of the plan's
round, and the status is "tightened" with the gap to the lower bound, which stays valid (every
fleet meeting the SLO satisfies the rows without cuts). Pools of mixed parts: the rows are a
heuristic there, so the optimality claim holds for the rows, not for the SLO.

When nothing meets the SLO (the MILP is infeasible with the rows, or the cuts run out) the error
says "no plan within the ranges meets ..." with each site's best achievable P90.
"""

from __future__ import annotations

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
from .search import TIME_LIMIT_S, FleetSolution, optimise
from .slo import SiteSlo, SloRows, weights
from .solve import solve

#: The most check-and-cut rounds after the search.
MAX_TIGHTEN = 60

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


def _plus(counts: SiteCounts, pool: str, k: int) -> SiteCounts:
    field = {"local": "local", "prfaas": "prfaas", "decode": "decode"}[pool]
    v = list(getattr(counts, field))
    v[k] += 1
    return replace(counts, **{field: tuple(v)})


def tighten(rows: SloRows, model, fleet: Fleet, needs: dict[str, SiteNeeds], m: Milp, x, s: str, v: float,
            counts: SiteCounts, entry: dict) -> None:
    """One cut for site ``s`` missing its SLO by ``v`` (see the module docstring, step 3)."""
    sn, ss = needs[s], rows.sites[s]
    parts = {p.name: p.parts for p in fleet.prfaas_sites}
    i, o = chosen_options(m, x)[s]
    key, t, lam = rows.key(o), entry["threshold_tokens"], entry["rate_req_per_s"]
    best = None  # (gain per $, pool, part)

    def consider(pool, k, c: SiteCounts, usd: float):
        nonlocal best
        gain = (v - slo_excess(counts_deployment(model, sn, c, t, parts), lam, sn.site.ttft_slo)) / max(usd, 1e-12)
        if gain > 0 and (best is None or gain > best[0]):
            best = (gain, pool, k)

    for k, c in enumerate(sn.prefill_parts):
        consider("local", k, _plus(counts, "local", k), c.instance_usd_per_hour)
    for d, c in enumerate(sn.decode_parts):
        consider("decode", d, _plus(counts, "decode", d), c.instance_usd_per_hour)
    link = None
    if counts.prfaas_site is not None:
        for j, c in enumerate(parts[counts.prfaas_site]):
            consider("prfaas", j, _plus(counts, "prfaas", j), c.instance_usd_per_hour / max(counts.prfaas_share_frac, 1e-12))
        link = _next_link(fleet, counts, entry)
        if link is not None:
            consider("link", 0, replace(counts, link_bytes_per_s=units.gbit_per_s_to_bytes_per_s(link[0])), link[1])
    if best is None:
        rows.forbidden.add((s, key))
        return
    _, pool, k = best
    if pool == "link":
        rows.cuts[s, "link", key] = max(rows.cuts.get((s, "link", key), 0.0), link[0])
        return
    ref, w = weights(ss.option_bound(pool, o))
    if pool == "prfaas":  # the row holds the site's PrfaaS site's total count: enough that its share rises by one
        n_r = m.lay.values(x, "n_prfaas")
        total = [n_r[o.prfaas, j] for j in range(len(w))]
        n = list(total)
        n[k] = max(total[k] + 1, math.floor((counts.prfaas[k] + 1e-9) / max(counts.prfaas_share_frac, 1e-12)) + 1)
    else:
        n = list(counts.local if pool == "local" else counts.decode)
        n[k] += 1
    if ref == 0 or not math.isfinite(ref) or w[k] == 0:
        rows.forbidden.add((s, key))
        return
    need = float(np.dot(w, n)) / ref
    rows.cuts[s, pool, key] = max(rows.cuts.get((s, pool, key), 1.0), need * (1 - 1e-9))


def _next_link(fleet: Fleet, counts: SiteCounts, entry: dict) -> tuple[float, float] | None:
    """(Gbit/s, extra $/hour) of the next link size above the plan's (a continuous link: +25%)."""
    lk = fleet.link(counts.prfaas_site, entry["site"]).link
    gbit = units.bytes_per_s_to_gbit_per_s(counts.link_bytes_per_s)
    if lk.sizes_gbit_per_s:
        bigger = [(g, u) for g, u in zip(lk.sizes_gbit_per_s, lk.sizes_usd_per_hour) if g > gbit * (1 + 1e-9)]
        if not bigger:
            return None
        now = next((u for g, u in zip(lk.sizes_gbit_per_s, lk.sizes_usd_per_hour) if abs(g - gbit) <= 1e-9 * g), 0.0)
        return bigger[0][0], bigger[0][1] - now
    if lk.fixed_gbit_per_s is not None:
        return None
    g = max(gbit * 1.25, 1e-3)
    if lk.max_gbit_per_s is not None and g > lk.max_gbit_per_s:
        return None
    return g, (g - gbit) * lk.usd_per_gbit_per_s_hour


def optimise_for_slo(fleet: Fleet, model, rates: dict[str, float], needs: dict[str, SiteNeeds],
                     document: Callable[[FleetSolution], dict], time_limit_s: float = TIME_LIMIT_S) -> FleetSolution:
    """The cheapest fleet serving ``rates`` (req/s per local site) whose every site meets the
    TTFT levels it states at its rate (see the module docstring). ``document(solution)`` makes
    the plan's document (:func:`~prfaas_plan.fleet.plan.fleet_document`), which the check reads.
    Raises PlanError "no plan within the ranges meets ..." with the best achievable P90s."""
    rows = SloRows(fleet, model, needs, rates)
    if rows.out_of_reach():
        raise no_plan(rows, fleet, model, f"no decode pool of {', '.join(rows.out_of_reach())} can meet it within its GPUs")
    try:
        sol = optimise(fleet, model, "target", rates, None, needs, time_limit_s=time_limit_s, slo=rows)
    except PlanError as exc:
        raise no_plan(rows, fleet, model, str(exc)) from None
    cuts = 0
    for _ in range(MAX_TIGHTEN + 1):
        doc = document(sol)
        missed = misses(model, fleet, needs, doc)
        if not missed:
            if cuts:
                gap = max((sol.solution.objective - sol.bound) / max(sol.solution.objective, 1e-12), 0.0)
                sol = replace(sol, status="tightened", gap_frac=gap)
            return sol
        for s, (v, counts, entry) in missed.items():
            tighten(rows, model, fleet, needs, sol.milp, sol.solution.x, s, v, counts, entry)
        cuts += 1
        m = build(Milp(fleet, needs, sol.milp.options, "target", rates, slo=rows))
        try:
            sol = replace(sol, milp=m, solution=solve(m))
        except PlanError:
            break
    raise no_plan(rows, fleet, model, f"the check still failed after {cuts} cuts")


def no_plan(rows: SloRows, fleet: Fleet, model, why: str) -> PlanError:
    """The refusal: each SLO site's levels and its best achievable P90 (:func:`best_p90_s`)."""
    parts = []
    for s, ss in rows.sites.items():
        p90 = best_p90_s(ss, fleet, model)
        best = f"best achievable P90 {p90:.3g} s" if math.isfinite(p90) else "no plan is even stable"
        parts.append(f"site {s}: TTFT {ss.slo.describe()} at {ss.lam:g} req/s ({best})")
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
