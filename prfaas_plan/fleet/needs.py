"""What each local site needs per request, per candidate part, at any routing threshold.

For a local site s with uncached length distribution L_s and threshold t (prompts with L > t go
to its PrfaaS site), per request ([PRFAAS] Eq. 3-5 as needs, :mod:`prfaas_plan.planning.throughput`,
``distribution`` mode):

    local prefill on part k:  a_k(t) = E[T_k(L) 1{L <= t}]     instance-seconds, rises with t
    PrfaaS prefill on part j: r_j(t) = E[T_j(L) 1{L > t}]      instance-seconds, falls with t
    link:                     b(t)   = E[S_kv(L) 1{L > t}]     bytes, falls with t
    decode on part d:         1 / theta_d                       instance-seconds per req/s (no t)

Each is a sum over the cells of the length distribution (exact masses, each cell at its mean; a
threshold inside a cell splits it exactly), computed by one ThroughputModel per (site, part):
the same cells for every part of a site, so the grid thresholds agree. The monotonicity in t is
what makes the fleet MILP's threshold relaxation exact (see :mod:`prfaas_plan.fleet.solve`).

A candidate part that cannot serve a role (the weights do not fit; no decode batch meets the
TPOT SLO) is left out with its reason; a role with no usable part is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import PlanError
from ..latency.bands import TimeScaled, decode_is_model, end_factor, prefill_kinds
from ..planning.parts import Cluster
from ..planning.sites import Fleet, LocalSite
from ..planning.throughput import ThroughputModel
from ..roofline.decode import DecodeCapacity, decode_capacity
from ..roofline.prefill import PrefillModel
from .. import units


@dataclass
class SiteNeeds:
    """Need curves of one local site (see the module docstring)."""

    site: LocalSite
    grid_tokens: np.ndarray  # the grid thresholds [0, e_1, ..., e_m]; the last keeps everything local
    prefill_parts: list[Cluster]
    decode_parts: list[Cluster]
    decode_req_per_s: np.ndarray  # theta_d per instance, per decode part
    decode: list[DecodeCapacity]
    _local: list[ThroughputModel]
    _remote: dict[str, list[ThroughputModel]]  # PrfaaS site -> one model per part of that site
    excluded: list[str] = field(default_factory=list)

    @property
    def prfaas_sites(self) -> list[str]:
        """The PrfaaS sites linked to this site."""
        return list(self._remote)

    def local_s(self, t) -> np.ndarray:
        """a_k(t): [part, threshold] instance-seconds of local prefill per request."""
        return np.array([tm.needs_at(t).local_s for tm in self._local])

    def remote_s(self, prfaas_site: str, t) -> np.ndarray:
        """r_j(t): [part, threshold] PrfaaS instance-seconds per request (parts of that site)."""
        return np.array([tm.needs_at(t).remote_s for tm in self._remote[prfaas_site]])

    def link_gbit(self, t) -> np.ndarray:
        """b(t) in Gbit per request (the unit the MILP's link rows use)."""
        return units.bytes_per_s_to_gbit_per_s(self._local[0].needs_at(t).link_bytes)

    def offload_frac(self, t) -> np.ndarray:
        return self._local[0].needs_at(t).offload_frac

    def needs(self, t):
        """The site's :class:`~prfaas_plan.planning.throughput.Needs` at thresholds t (offload
        share, mean lengths, link bytes; the prefill seconds of its first local part)."""
        return self._local[0].needs_at(t)


def _usable(parts, make, role: str, site: str, excluded: list[str]) -> tuple[list, list]:
    kept, made = [], []
    for c in parts:
        try:
            made.append(make(c))
            kept.append(c)
        except PlanError as exc:
            excluded.append(f"{site} {role} {c.hardware.name}: {exc}")
    if not kept:
        raise PlanError(f"site {site}: no candidate part can serve {role}: " + "; ".join(e.split(": ", 1)[1] for e in excluded[-len(parts):]))
    return kept, made


def site_needs(fleet: Fleet, model, site: LocalSite, band_end: str | None = None) -> SiteNeeds:
    """The need curves of ``site`` for its parts and for the parts of every PrfaaS site linked to it.
    ``band_end`` ("slow" or "fast"): with each time the engine model predicts at that end of its
    kind's error band (prefill occupancy: the ``prefill`` band; decode step at BS_max: ``decode``;
    a profile's time keeps factor 1; :mod:`prfaas_plan.latency.bands`), BS_max held."""
    wl, excluded = site.workload, []
    context = wl.decode_context_tokens()

    def prefill(c: Cluster) -> PrefillModel:
        pm = PrefillModel(model, c.hardware, c.gpus_per_instance, c.use_profile, "throughput", c.instance)
        return pm if band_end is None else TimeScaled(pm, end_factor(prefill_kinds(pm, None)[0], band_end))

    def decode(c: Cluster) -> DecodeCapacity:
        d = decode_capacity(model, c.hardware, c.gpus_per_instance, site.tpot_s, context, c.use_profile, c.instance)
        if band_end is None:
            return d
        kind = "decode" if decode_is_model(model, c.hardware.name, c.gpus_per_instance, c.use_profile) else None
        return replace(d, step_s=d.step_s * end_factor(kind, band_end))

    decode_parts, decodes = _usable(site.decode_parts, decode, "decode", site.name, excluded)
    prefill_parts, locals_ = _usable(site.prefill_parts, prefill, "local prefill", site.name, excluded)

    def tm(remote: PrefillModel | None, local: PrefillModel) -> ThroughputModel:
        return ThroughputModel(model, wl.uncached, remote, local, decodes[0], wl.output_tokens_mean, "distribution")

    local_models = [tm(None, pm) for pm in locals_]
    remote = {}
    for ps in fleet.prfaas_sites:
        if fleet.link(ps.name, site.name) is None:
            continue
        parts, pms = _usable(ps.parts, prefill, "PrfaaS prefill", ps.name, excluded)
        remote[ps.name] = [tm(pm, locals_[0]) for pm in pms]
        if len(parts) != len(ps.parts):
            raise PlanError(f"PrfaaS site {ps.name}: part {next(c.hardware.name for c in ps.parts if c not in parts)} cannot prefill "
                            f"{model.name} ({excluded[-1].split(': ', 1)[1]}); remove it from the candidates")
    return SiteNeeds(site, np.asarray(local_models[0].needs.threshold_tokens), prefill_parts, decode_parts,
                     np.array([d.req_per_s(wl.output_tokens_mean) for d in decodes]), decodes, local_models, remote, excluded)
