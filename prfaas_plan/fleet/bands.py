"""A fleet plan under the engine model's error band: each local site's TTFT P90 at its arrival
rate when the engine model's times are at the slow and at the fast end of their 80% bands.

The one-pair band (:mod:`prfaas_plan.latency.bands`) carried to a fleet: the fleet as planned
(every site x role x part count, each site's PrfaaS site, threshold and link) and, per local site,
the deployment :func:`~.latency.site_deployment` builds (mixed pools, its share of a shared PrfaaS
pool, decode slots), with each part's times scaled by its own kind's band end, by the same rule
as the one-pair band (:func:`~prfaas_plan.latency.bands.prefill_kinds`,
:func:`~prfaas_plan.latency.bands.decode_is_model`): a pool's occupancy under load by the
``prefill`` band (the fleet plans in the throughput regime), a request's own prefill by ``ttft``,
the decode step by ``decode``; a time from a measured profile keeps factor 1. The slow end takes
every factor at its high_t, the fast end at its low_t (a joint corner). A mixed pool's harmonic
and weighted means (:class:`~.latency.MixedPool`) are taken over the scaled parts; the decode step
is the slot-weighted mean of the scaled steps. An end whose queue is unstable at the site's rate
is reported in words.

**Capacity at the ends: alpha.** The largest multiple of every local site's demand (its target in
a target question, else its arrival rate) the fleet as planned carries, with the need curves
(:func:`~.needs.site_needs`) made from the times at each end: the pinned-fleet alpha of
:mod:`.stress` (every count and link fixed, routing and thresholds re-chosen, bisection to a
relative 1e-6), beside the same alpha with the plan's own times. A prefill occupancy a x longer
is a capacity a x smaller, as in the one-pair band's Lambda_max; BS_max is held; the link's
capacity does not move.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import PlanError
from ..latency.bands import ENDS, TimeScaled, decode_is_model, end_factor, prefill_kinds
from ..latency.ttft import ttft
from ..roofline.bands import band
from .latency import MixedPool, counts_deployment, site_counts
from .needs import SiteNeeds, site_needs
from .stress import Pinned, binding_rows, max_alpha, site_demand



def scaled_pool(pool: MixedPool | None, end: str) -> tuple[MixedPool | None, list[str]]:
    """``pool`` with each part's times at band end ``end`` (module docstring), and the names of
    the times scaled (``"<pool> <part> service|alone"``)."""
    if pool is None:
        return None, []
    service, alone, scaled = [], [], []
    for s, a in zip(pool.service, pool.alone):
        s_kind, a_kind = prefill_kinds(s, a)
        service.append(TimeScaled(s, end_factor(s_kind, end)))
        alone.append(TimeScaled(a, end_factor(a_kind, end)))
        scaled += [f"{pool.name} {s.hw.name} {what}" for what, k in (("service", s_kind), ("alone", a_kind)) if k is not None]
    return MixedPool(pool.name, pool.counts, tuple(service), tuple(alone)), scaled


def decode_factors(model, sn: SiteNeeds, end: str) -> list[float]:
    """The decode step's time factor of each decode part of site ``sn`` at band end ``end``."""
    return [end_factor("decode" if decode_is_model(model, c.hardware.name, c.gpus_per_instance, c.use_profile) else None, end)
            for c in sn.decode_parts]


def site_band(model, sn: SiteNeeds, doc: dict, site: dict, prfaas_parts: dict, needs: dict[str, SiteNeeds]) -> dict:
    """The band of one local site entry ``site`` of fleet document ``doc``: per end its TTFT P90
    at the site's rate (None where unstable; ``ttft_error`` then says why) and the times it
    scaled; keys ``site``, ``arrival_req_per_s``, ``ttft_p90_s`` (the plan's), ``ttft_p90_s_low``
    / ``_high`` (the fast / slow end), ``..._error``, ``scaled``, ``from_profile`` and ``ends``."""
    counts = site_counts(sn, doc, site, prfaas_parts, needs)
    dep = counts_deployment(model, sn, counts, site["threshold_tokens"], prfaas_parts)
    rate = site["rate_req_per_s"]
    slots = [n * d.bs_max for n, d in zip(counts.decode, sn.decode)]
    ends, scaled_all = {}, set()
    for end in ENDS:
        local, s_local = scaled_pool(dep.local, end)
        prfaas, s_prfaas = scaled_pool(dep.prfaas, end)
        f_dec = decode_factors(model, sn, end)
        step = sum(n * d.step_s * f for n, d, f in zip(slots, sn.decode, f_dec)) / max(sum(slots), 1)
        s_dec = [f"decode {c.hardware.name} step" for c, n, f in zip(sn.decode_parts, counts.decode, f_dec) if n > 0 and f != 1.0]
        scaled_all.update(s_local + s_prfaas + s_dec)
        row = {"ttft_p90_s": None, "ttft_error": None}
        try:
            row["ttft_p90_s"] = ttft(replace(dep, local=local, prfaas=prfaas, decode_step_s=step), rate, quantiles=("p90",)).ttft_p90_s
        except PlanError as exc:  # unstable at the site's rate at this end
            row["ttft_error"] = str(exc)
        ends[end] = row
    used = [f"{p.name} {m.hw.name} {w}" for p in (dep.local, dep.prfaas) if p is not None for m in p.service for w in ("service", "alone")]
    used += [f"decode {c.hardware.name} step" for c, n in zip(sn.decode_parts, counts.decode) if n > 0]
    at = (site.get("latency") or {}).get("at_rate") or {}
    return {"site": site["site"], "arrival_req_per_s": rate, "ttft_p90_s": at.get("ttft_p90_s"),
            "ttft_p90_s_low": ends["fast"]["ttft_p90_s"], "ttft_p90_s_high": ends["slow"]["ttft_p90_s"],
            "ttft_p90_s_low_error": ends["fast"]["ttft_error"], "ttft_p90_s_high_error": ends["slow"]["ttft_error"],
            "scaled": sorted(scaled_all), "from_profile": [u for u in used if u not in scaled_all], "ends": ends}


def fleet_alpha(sc, plan: dict, needs: dict[str, SiteNeeds], target_req_per_s: float | None = None) -> dict:
    """The pinned fleet's alpha with the need curves ``needs`` (module docstring): keys ``alpha``,
    ``carries_demand`` (alpha >= 1, the MILP at alpha = 1 itself) and ``binding`` (what runs out first)."""
    p = Pinned(sc, sc, plan, needs)
    demand = site_demand(sc, plan["objective"], target_req_per_s)
    alpha, carries, last, _ = max_alpha(p, {s: (d if d is not None else 1.0) for s, d in demand.items()})
    return {"alpha": alpha, "carries_demand": carries, "binding": binding_rows(last[0], last[1].x) if last else []}


def fleet_band(sc, needs: dict[str, SiteNeeds], doc: dict, target_req_per_s: float | None = None) -> dict:
    """The fleet plan's ``model_error_band``: per local site its TTFT P90 band (:func:`site_band`);
    the pinned fleet's alpha with the plan's times (``alpha``) and at the slow / fast ends
    (``alpha_low`` / ``alpha_high``, each with ``carries_demand_*`` and ``binding_*``); the
    band's coverage and its method."""
    prfaas_parts = {p.name: p.parts for p in sc.fleet.prfaas_sites}
    out = {"coverage": band("prefill").coverage,
           "sites": [site_band(sc.model, needs[s["site"]], doc, s, prfaas_parts, needs) for s in doc["sites"]]}
    for key, end in (("", None), ("_low", "slow"), ("_high", "fast")):
        n = needs if end is None else {s.name: site_needs(sc.fleet, sc.model, s, end) for s in sc.fleet.local_sites}
        a = fleet_alpha(sc, doc, n, target_req_per_s)
        out.update({f"alpha{key}": a["alpha"], f"carries_demand{key}": a["carries_demand"], f"binding{key}": a["binding"]})
    out["method"] = ("the fleet as planned (counts, routing, thresholds, links); per local site its deployment as the plan's latency "
                     "builds it, with each part's time the engine model predicts scaled by the end of its kind's band (roofline/bands.py; "
                     "prefill occupancy: prefill tokens/s; a request's own prefill: single-request TTFT; decode step: decode tokens/s); "
                     "all at the slow end, then all at the fast end; times from a measured profile keep factor 1; alpha: the largest "
                     "multiple of every site's demand the fleet as planned carries (counts and links pinned, routing and thresholds "
                     "re-chosen, as the fleet stress reading), with the need curves from the times at each end")
    return out
