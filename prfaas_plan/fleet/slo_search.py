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
3. Tighten (:mod:`.slo_cuts`): for each site that misses, the cheapest growth of its pools from
   the plan's counts that meets its SLO (best-first in $ over a lattice of one-instance and
   one-link-size steps) becomes a cut on the option: its row levels rise to the grown counts.
   One check adds every cut it implies in one round: at the chosen option, and at each point
   option of the same site and PrfaaS site where the plan's counts (local prefill raised to that
   option's row level) miss too (:func:`~.slo_cuts.cut_site`) - a cut at one threshold alone
   sent the next MILP to a neighbouring threshold that missed for the same reason, one re-solve
   each. The first round also widens the options to the search's last points plus GRID_POINTS
   thresholds per (site, PrfaaS site) (the SLO may move the cheapest threshold away from where
   the throughput search looked; a plan that meets the SLO but whose search stopped at a gap is
   re-solved over them too). The MILP is solved again and the check repeats, up to MAX_TIGHTEN
   rounds.

What is a valid bound and what is a heuristic. The rows of :mod:`.slo` without cuts are
necessary conditions for single-part pools (each pool alone, every other delay at 0, must leave
the SLO's tail allowance; a site sees at most the whole of a shared PrfaaS pool): every fleet
that meets the SLO satisfies them, so the optimum of the MILP with them, and the search's bound
(``bound``, the relaxation's, given the bounds' monotonicity inside its segments, :mod:`.slo`),
is a lower bound of the cheapest SLO fleet. For pools of mixed parts the rows are a heuristic.
The cuts are heuristic tightenings, never necessary conditions: a cut holds an option to one
cheapest growth of *this* plan's counts, and a fleet with another balance (fewer PrfaaS
instances, more decode) may meet the SLO there more cheaply.

What is optimal. Without cuts (the plan at the rows meets the SLO) the plan is the optimum of the
MILP over the rows, proven as :mod:`.search` proves it within SEARCH_ROUNDS rounds, status
"optimal" (else its gap, status "gap"): the cheapest fleet meeting the SLO where every pool has
one part (the rows then are necessary; with mixed parts the rows are heuristic and so is the
claim). With cuts the plan meets every level (checked) and is reported optimal only where its
cost meets the bound of the rows without cuts (to GAP_RTOL); otherwise its status is
"slo-checked" with that gap: for one-part pools the true optimum lies between the bound and the
plan. Several sites sharing a PrfaaS pool: a cut grows
one site with the others as planned (greedy across sites). The check guarantees every level of
every returned plan. The brute forces of tests/bruteforce_fleet.py (one site; two sites sharing
a pool) check the cost.

A budget question with TTFT levels: :func:`most_goodput_for_slo`.

When nothing meets the SLO (the MILP is infeasible with the rows) the error says "no plan within
the ranges meets ..." with each site's best achievable P90; when the cuts run out, that none was
found within them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .. import units
from ..errors import PlanError
from ..latency.ttft import ttft
from ..planning.sites import Fleet
from .constraints import Milp, build
from .latency import SiteCounts, counts_deployment
from .needs import SiteNeeds
from .model import Option
from .search import GAP_RTOL, TIME_LIMIT_S, FleetSolution, optimise
from .search import _options as point_options
from .slo import SiteSlo, SloRows
from .slo_cuts import Checker, cut_site, misses
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

#: Thresholds per PrfaaS site at which the best achievable P90 is sought.
BEST_P90_THRESHOLDS = 24


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
        extra = {r: [(t, t) for t in grid if (r, t) not in have] for r in sn.prfaas_sites}
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
        raise no_plan(rows, fleet, model, (f"at {', '.join(rows.out_of_reach())} every request's fastest prefill path already leaves too little of the TTFT "
                                               "level for any decode pool within the site's GPUs"), explain)
    try:
        sol = optimise(fleet, model, "target", rates, None, needs, time_limit_s=time_limit_s, slo=rows, max_rounds=SEARCH_ROUNDS)
    except PlanError as exc:
        raise no_plan(rows, fleet, model, str(exc), explain) from None
    check, options, cuts = Checker(model, fleet), None, 0
    for _ in range(MAX_TIGHTEN + 2):
        missed = misses(model, fleet, needs, document(sol))
        if not missed and (options is not None or sol.status == "optimal"):
            if options is not None:  # re-solved: the plan's gap to the bound of the rows without cuts
                gap = max((sol.solution.objective - sol.bound) / max(sol.solution.objective, 1e-12), 0.0)
                sol = replace(sol, status="slo-checked" if gap > GAP_RTOL else "optimal", gap_frac=gap)
            return sol
        if options is None:  # the re-solves choose among more thresholds than the search's last round
            options = with_grid(needs, sol.milp.options)
        for s, (_, counts, entry) in missed.items():
            cut_site(rows, check, fleet, needs, sol.milp, sol.solution.x, options[s], s, counts, entry)
        cuts += bool(missed)
        if cuts > MAX_TIGHTEN:
            break
        m = build(Milp(fleet, needs, options, "target", rates, slo=rows))
        try:
            sol = replace(sol, milp=m, solution=solve(m))
        except PlanError:
            break
    raise PlanError(f"no fleet meeting every site's SLO found within {cuts} cut rounds (the search stops there; one may exist: "
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
