"""Latency SLOs inside the fleet MILP: each local site's TTFT levels (P90, P99, mean) as lower
bounds on the instance counts of the pools its requests use, one row per (site, option, pool).

What is linear. For an option o of local site s (a PrfaaS site r and a threshold t, or nothing
offloaded; see :class:`.model.Option`) the requests of each pool are fixed: local prefill takes
the cells below t, PrfaaS prefill the cells above, decode every request. For each pool and each
candidate part k, :func:`~prfaas_plan.latency.slo.min_instances_for_slo` gives N_k(o), the fewest
instances of part k alone that can meet the site's SLO (the pool's own M/G/c wait plus its
requests' own latency-regime prefill, RTT and the first decode step must leave each percentile's
tail allowance; a *necessary* bound: every other term of TTFT is >= 0). With the binary
choose[s, o] the bound is a linear row (``slo-local[s, o]``, ``slo-prfaas[s, o]``,
``slo-decode[s]``):

    sum_k n_k / N_k(o)  >=  R choose[s, o]           (R = 1; a tightening cut raises R)

For one part this is n >= N(o) when o is chosen: exact as a necessary condition. For a pool of
mixed parts it counts each instance as the share 1 / N_k of the SLO's need (Melange's habit):
a heuristic, neither necessary nor sufficient, and the full check below decides. A PrfaaS site
serving several local sites gets one row per site on its *total* count (a site sees a share of
the pool, never more than all of it: necessary). A pool whose own delays already miss the SLO
(N = inf for every part) forbids the option: choose[s, o] <= 0 (``slo-out-of-reach[s, o]``).

What is enumerated. The thresholds, as in :mod:`.search`: at a point option the bound is
evaluated at its t; at a segment option [t_lo, t_hi] (the relaxation) at both ends, the smaller
taken - a lower bound where the bound is monotone in t inside the segment (a pool's load only
grows as cells join it; its mean service and tail allowance move with it, so this is usual, not
proven).

TPOT holds by construction: each decode part runs at the batch whose step meets the site's TPOT
SLO (:func:`~prfaas_plan.roofline.decode.decode_capacity`, used by :mod:`.needs`).

The check and the cuts are in :mod:`.slo_cuts` (the loop in :mod:`.slo_search`); a cut may also
raise what a site must see of a shared PrfaaS pool, a row that follows the other sites' routing
(``slo-shared[s, o]``, :meth:`SloRows._shared`).
"""

from __future__ import annotations

import math

import numpy as np

from ..latency.slo import min_instances_for_slo
from ..latency.slo_plan import SLO_CELLS
from ..latency.ttft import length_cells, split_cv2
from ..planning.sites import Fleet
from ..roofline.prefill import PrefillModel
from .constraints import Milp, _usable_gbit
from .model import Option, add_terms
from .needs import SiteNeeds

#: Pools of a local site's requests the rows bound.
POOLS = ("local", "prfaas", "decode")


class _Times:
    """A prefill model's time per length (s), each length computed once: the cells of every
    threshold are the same cells but the one the threshold splits, so a search over thresholds
    asks for the same means again and again (the model is elementwise in the lengths)."""

    def __init__(self, pm: PrefillModel):
        self.pm, self.x, self.t = pm, np.zeros(0), np.zeros(0)

    def time_s(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        i = np.minimum(np.searchsorted(self.x, x), max(len(self.x) - 1, 0))
        hit = self.x[i] == x if len(self.x) else np.zeros(len(x), bool)
        out = np.empty(len(x))
        out[hit] = self.t[i[hit]]
        if not hit.all():
            new = np.unique(x[~hit])
            t_new = self.pm.time_s(new)
            out[~hit] = t_new[np.searchsorted(new, x[~hit])]
            order = np.argsort(np.concatenate([self.x, new]), kind="stable")
            self.x, self.t = np.concatenate([self.x, new])[order], np.concatenate([self.t, t_new])[order]
        return out


def _models(model, c) -> tuple[_Times, _Times]:
    """(throughput-regime, latency-regime) prefill times of part ``c`` (as fleet/latency.py's pools)."""
    return (_Times(PrefillModel(model, c.hardware, c.gpus_per_instance, c.use_profile, "throughput", c.instance)),
            _Times(PrefillModel(model, c.hardware, c.gpus_per_instance, c.use_profile, "latency", c.instance)))


def _cap(max_gpus: int | None, c) -> int | None:
    return None if max_gpus is None else max_gpus // c.gpus_per_instance


class SiteSlo:
    """One local site's SLO bounds (see the module docstring) at its planned rate: for each
    pool, threshold and part, the fewest instances of that part alone that can meet its SLO."""

    def __init__(self, fleet: Fleet, model, sn: SiteNeeds, rate_req_per_s: float):
        self.sn, self.site, self.lam = sn, sn.site, float(rate_req_per_s)
        self.slo = sn.site.ttft_slo
        self.lengths = sn.site.workload.uncached
        self.step_s = min(d.step_s for d in sn.decode)  # the first decode step, at its fastest part
        self.local = [_models(model, c) for c in sn.prefill_parts]
        self.local_caps = [_cap(sn.site.max_gpus, c) for c in sn.prefill_parts]
        self.remote, self.rtt_s, self.remote_caps = {}, {}, {}
        for p in fleet.prfaas_sites:
            lk = fleet.link(p.name, sn.site.name)
            if lk is not None:
                self.remote[p.name] = [_models(model, c) for c in p.parts]
                self.rtt_s[p.name] = lk.link.rtt_s
                self.remote_caps[p.name] = [_cap(p.max_gpus, c) for c in p.parts]
        self._cells: dict = {}
        self._bounds: dict = {}

    def cells(self, t: float):
        """(mass, mean length, offloaded?) of the length cells with t as a cell boundary, and per
        part the throughput-regime service and latency-regime own prefill time per cell."""
        if t not in self._cells:
            mass, x, lower = length_cells(self.lengths, SLO_CELLS, t)
            svc = lambda pair: (pair[0].time_s(x), np.maximum(pair[1].time_s(x), pair[0].time_s(x)))  # noqa: E731
            self._cells[t] = (mass, x, lower >= t, [svc(p) for p in self.local],
                              {r: [svc(p) for p in parts] for r, parts in self.remote.items()})
        return self._cells[t]

    def _pool(self, mass, sel, service, delay, cap: int | None) -> float:
        """N for one pool of one part: its cells ``sel``, per-cell service and delay, s."""
        m = mass[sel]
        share = float(m.sum())
        if share <= 1e-15:
            return 0.0
        s = service[sel]
        mean = float(np.sum(m * s) / share)
        cv2 = max(float(np.sum(m * s * s) / share) / mean**2 - 1.0, 0.0)
        n = min_instances_for_slo(self.lam * share, mean, cv2, delay[sel], m, self.slo, arrival_cv2=split_cv2(1.0, share),
                                  share_frac=min(share, 1.0), max_instances=cap)
        return math.inf if n is None else float(n)

    def bound(self, pool: str, r: str | None, t: float) -> np.ndarray:
        """N_k at threshold t, per part of the pool (``pool`` "local" or "prfaas" at PrfaaS site
        ``r``); 0: the pool gets no requests; inf: no count of that part alone meets the SLO."""
        key = (pool, r, t)
        if key not in self._bounds:
            mass, _, remote, local_t, remote_t = self.cells(t)
            if pool == "local":
                out = [self._pool(mass, ~remote, svc, lat + self.step_s, cap) for (svc, lat), cap in zip(local_t, self.local_caps)]
            else:
                out = [self._pool(mass, remote, svc, lat + self.rtt_s[r] + self.step_s, cap)
                       for (svc, lat), cap in zip(remote_t[r], self.remote_caps[r])]
            self._bounds[key] = np.array(out)
        return self._bounds[key]

    def decode_bound(self) -> np.ndarray:
        """N_d per decode part: its slots (BS_max per instance, each held L_out x step) must meet
        the SLO with every request at its smallest delay over every path (any threshold, any
        part): a bound that holds for every option."""
        if "decode" not in self._bounds:
            mass, x, _, local_t, remote_t = self.cells(math.inf)
            delay = np.min([lat for _, lat in local_t], axis=0)
            for r, parts in remote_t.items():
                delay = np.minimum(delay, np.min([lat for _, lat in parts], axis=0) + self.rtt_s[r])
            out_tokens = self.site.workload.output_tokens_mean
            out = []
            for c, d in zip(self.sn.decode_parts, self.sn.decode):
                n = min_instances_for_slo(self.lam, out_tokens * d.step_s, 0.0, delay + self.step_s, mass, self.slo,
                                          servers_per_instance=d.bs_max, max_instances=_cap(self.site.max_gpus, c))
                out.append(math.inf if n is None else float(n))
            self._bounds["decode"] = np.array(out)
        return self._bounds["decode"]

    def option_bound(self, pool: str, o: Option) -> np.ndarray:
        """N_k of option o: at its threshold (a point), or the smaller of its two ends (a segment)."""
        if pool == "decode":
            return self.decode_bound()
        r = o.prfaas if pool == "prfaas" else None
        if o.is_point:
            return self.bound(pool, r, o.t_lo)
        return np.minimum(self.bound(pool, r, o.t_lo), self.bound(pool, r, o.t_hi))


def weights(n: np.ndarray) -> tuple[float, np.ndarray]:
    """(reference count N_ref, per-part weight N_ref / N_k) of a bound: N_ref the smallest finite
    positive N_k; a part that cannot meet the SLO alone weighs 0. N_ref 0: no requests; inf:
    no part can."""
    finite = n[np.isfinite(n) & (n > 0)]
    if np.all(n == 0):
        return 0.0, np.zeros_like(n)
    if not len(finite):
        return math.inf, np.zeros_like(n)
    ref = float(finite.min())
    return ref, np.where(np.isfinite(n) & (n > 0), ref / np.where(n > 0, n, 1.0), 0.0)


class SloRows:
    """The SLO rows of every local site that states a TTFT level (see the module docstring),
    added to a :class:`~.constraints.Milp` by :func:`~.constraints.build`, with the cuts the
    check adds (:mod:`.slo_search`): ``cuts[(site, pool, option key)] = R`` (pools: local,
    prfaas, decode, and "link": the Gbit/s the link must be bought at), ``forbidden`` options."""

    def __init__(self, fleet: Fleet, model, needs: dict[str, SiteNeeds], rates: dict[str, float]):
        self.fleet = fleet
        self.sites = {s: SiteSlo(fleet, model, sn, rates[s]) for s, sn in needs.items() if sn.site.ttft_slo.stated}
        self.cuts: dict = {}
        self.forbidden: set = set()
        self.shared: dict = {}  # (site, option key) -> (part k, instances of k the site must see of its PrfaaS pool): :meth:`_shared`

    def out_of_reach(self) -> list[str]:
        """Sites whose decode pool alone cannot meet the SLO within their GPUs (every request at
        its smallest prefill delay on any path leaves too little of it): no fleet can."""
        return [s for s, ss in self.sites.items() if weights(ss.decode_bound())[0] == math.inf]

    @staticmethod
    def key(o: Option) -> tuple:
        return (o.prfaas, o.t_lo, o.t_hi)

    def add(self, m: Milp) -> None:
        """Rows ``slo-local[s, o]``, ``slo-prfaas[s, o]``, ``slo-decode[s]`` (and per option
        where a cut raised it), ``slo-link[r -> s, o]`` and ``slo-out-of-reach[s, o]``."""
        lay = m.lay
        for s, opts in m.options.items():
            ss = self.sites.get(s)
            if ss is None:
                continue
            decode_cols = [lay["n_decode"][s, d] for d in range(len(ss.sn.decode_parts))]
            self._row(m, f"slo-decode[{s}]", decode_cols, ss.decode_bound(), None, 1.0)
            for i, o in enumerate(opts):
                key, ch = self.key(o), lay["choose"][s, i]
                if (s, key) in self.forbidden:
                    m.rows.add(f"slo-out-of-reach[{s}, {i}]", {ch: 1.0}, hi=0.0)
                    continue
                pools = [("local", [lay["n_prefill"][s, k] for k in range(len(ss.sn.prefill_parts))])]
                if o.prfaas is not None:
                    pools.append(("prfaas", [lay["n_prfaas"][o.prfaas, j] for j in range(len(o.remote_s))]))
                for pool, cols in pools:
                    self._row(m, f"slo-{pool}[{s}, {i}]", cols, ss.option_bound(pool, o), ch, self.cuts.get((s, pool, key), 1.0))
                if (s, "decode", key) in self.cuts:
                    self._row(m, f"slo-decode[{s}, {i}]", decode_cols, ss.decode_bound(), ch, self.cuts[s, "decode", key])
                if (s, "link", key) in self.cuts:
                    lk = self.fleet.link(o.prfaas, s)
                    m.rows.add(f"slo-link[{o.prfaas} -> {s}, {i}]", add_terms(_usable_gbit(m, lk), {ch: -self.cuts[s, "link", key] * lk.link.max_utilisation}),
                               lo=0.0)
        self._shared(m)

    def _shared(self, m: Milp) -> None:
        """Rows ``slo-shared[s, o]`` for the cuts that ask site s at option o to see G instances of
        part k of its PrfaaS site r's pool (``shared``, set by :mod:`.slo_cuts`). The site sees
        its share of the pool (:mod:`.latency`: ceil(n_k share); for one part, share = L_s /
        (L_s + sum of the other sites' loads L_s'), L = rate x r_k(t) the instance-seconds per
        second a site sends there), so it needs n_k share > G - 1, that is
        n_k > (G - 1) (1 + sum_s' rho_s'), rho_s' = L_s' / L_s:

            sum_j (w_j / w_k) n_j  >=  (G - 1) choose[s, o]
                                       + sum_(s', o' -> r) (G - 1) rho(s', o') [choose[s', o'] + choose[s, o] - 1]

        (w the row weights N_ref / N_j, so another part counts as in ``slo-prfaas``; each other
        site's bracket with its largest rho as the big-M: it vanishes unless s is at o). The
        other sites' routing is a variable, so the cut follows them when they leave r (a total
        count fixed at the plan's shares would hold a site to a share it no longer has)."""
        lay = m.lay
        at: dict = {}  # PrfaaS site -> [(site, choose column, load per part)]
        for s, opts in m.options.items():
            for i, o in enumerate(opts):
                if o.prfaas is not None:
                    at.setdefault(o.prfaas, []).append((s, lay["choose"][s, i], m.demand_req_per_s[s] * np.asarray(o.remote_s, float)))
        for s, opts in m.options.items():
            ss = self.sites.get(s)
            if ss is None:
                continue
            for i, o in enumerate(opts):
                key, r = self.key(o), o.prfaas
                if r is None or (s, key) not in self.shared or (s, key) in self.forbidden:
                    continue
                k, need = self.shared[s, key]
                _, w = weights(ss.option_bound("prfaas", o))
                mine = m.demand_req_per_s[s] * float(o.remote_s[k])
                if w[k] <= 0 or mine <= 0 or need <= 1:
                    continue
                g, ch = need - 1.0, lay["choose"][s, i]
                coefs = {lay["n_prfaas"][r, j]: float(v / w[k]) for j, v in enumerate(w) if v > 0}
                coefs[ch] = -g
                big: dict = {}
                for s2, ch2, load in at[r]:
                    if s2 != s and load[k] > 0:
                        coefs[ch2] = coefs.get(ch2, 0.0) - g * load[k] / mine
                        big[s2] = max(big.get(s2, 0.0), g * load[k] / mine)
                coefs[ch] -= sum(big.values())
                m.rows.add(f"slo-shared[{s}, {i}]", coefs, lo=-sum(big.values()))

    @staticmethod
    def _row(m: Milp, name: str, cols: list[int], n: np.ndarray, choose: int | None, r: float) -> None:
        """sum_k (N_ref / N_k) n_k >= R N_ref [choose]; choose <= 0 where no part can."""
        ref, w = weights(n)
        if ref == 0:
            return
        if ref == math.inf:
            if choose is not None:
                m.rows.add(name.replace("slo-", "slo-out-of-reach-", 1), {choose: 1.0}, hi=0.0)
            return
        coefs = {c: float(v) for c, v in zip(cols, w) if v > 0}
        if choose is None:
            m.rows.add(name, coefs, lo=r * ref)
        else:
            m.rows.add(name, add_terms(coefs, {choose: -r * ref}), lo=0.0)
