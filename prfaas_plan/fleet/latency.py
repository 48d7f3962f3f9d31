"""TTFT of each local site of a fleet plan at its rate, and its goodput, with the analytic model
of :mod:`prfaas_plan.latency.ttft` (M/G/c pools, layer-wise KV transfer, decode slots).

Two approximations beyond the one-pair model, both stated in the README:
- a pool of mixed parts is one pool of sum_k n_k instances whose occupancy per request is the
  capacity-weighted harmonic mean, N / sum_k (n_k / s_k(l)) (the pool completes the same
  requests per second as its parts), and whose own prefill time is the capacity-weighted mean of
  the parts' (requests go to parts in proportion to their capacity); decode of mixed parts is
  sum_d n_d BS_max,d slots with the slot-weighted mean step;
- a PrfaaS site that serves several local sites is seen by each as its share of the pool:
  the instances in proportion to the instance-seconds the site sends there (rounded up). Exact when the
  PrfaaS site serves one local site; pooling makes a shared pool's real wait shorter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import PlanError
from ..latency.deployment import Deployment
from ..latency.plans import goodput_req_per_s
from ..latency.ttft import ttft
from ..roofline.prefill import PrefillModel
from .needs import SiteNeeds

#: A TTFT level counts as met within this relative tolerance: the percentiles are bisected to
#: QUANTILE_RTOL (1e-6), while the plan is checked on the tail probability itself.
TTFT_RTOL = 1e-5


@dataclass(frozen=True)
class MixedPool:
    """Prefill instances of several parts as one pool (see the module docstring); the interface
    of :class:`~prfaas_plan.latency.deployment.PrefillPool`."""

    name: str
    counts: tuple[int, ...]
    service: tuple[PrefillModel, ...]
    alone: tuple[PrefillModel, ...]

    @property
    def instances(self) -> int:
        return int(sum(self.counts))

    def _rates(self, lengths) -> np.ndarray:
        return np.array([n / m.time_s(lengths) for n, m in zip(self.counts, self.service)])

    def service_s(self, input_tokens) -> np.ndarray:
        return self.instances / np.sum(self._rates(input_tokens), axis=0)

    def latency_s(self, input_tokens) -> np.ndarray:
        rates = self._rates(input_tokens)
        alone = np.array([np.maximum(a.time_s(input_tokens), s.time_s(input_tokens)) for a, s in zip(self.alone, self.service)])
        return np.sum(rates * alone, axis=0) / np.sum(rates, axis=0)


def _pool(name: str, model, parts, counts) -> MixedPool | None:
    keep = [(c, n) for c, n in zip(parts, counts) if n > 0]
    if not keep:
        return None

    def pm(c, regime):
        return PrefillModel(model, c.hardware, c.gpus_per_instance, c.use_profile, regime, c.instance)

    return MixedPool(name, tuple(n for _, n in keep), tuple(pm(c, "throughput") for c, _ in keep), tuple(pm(c, "latency") for c, _ in keep))


def _prfaas_seconds(needs: dict[str, SiteNeeds], doc: dict, site: dict, counts: list[int]) -> float:
    """PrfaaS instance-seconds per second that ``site`` sends to its PrfaaS site: its rate x
    r_j(t) averaged over the parts by instance count (how a shared pool's load is split)."""
    t = site["threshold_tokens"] or 0.0
    r = needs[site["site"]].remote_s(site["prfaas_site"], [t])[:, 0]
    return site["rate_req_per_s"] * float(sum(n * x for n, x in zip(counts, r)) / max(sum(counts), 1))


@dataclass(frozen=True)
class SiteCounts:
    """The instances one local site's deployment is made of: local prefill and decode per part
    of the site, and the PrfaaS instances it sees per part of its PrfaaS site (its share of a
    shared pool, see the module docstring; ``prfaas_share_frac`` that share), with the link it
    uses (bytes/s, RTT s)."""

    local: tuple[int, ...]
    decode: tuple[int, ...]
    prfaas_site: str | None = None
    prfaas: tuple[int, ...] = ()
    prfaas_share_frac: float = 1.0
    link_bytes_per_s: float = 0.0
    rtt_s: float = 0.0


def site_counts(sn: SiteNeeds, doc: dict, site: dict, prfaas_parts: dict, needs: dict[str, SiteNeeds]) -> SiteCounts:
    """The :class:`SiteCounts` of local site entry ``site`` of fleet document ``doc``."""
    name = site["site"]
    count = {(e["site"], e["role"], e["hardware"]): e["instances"] for e in doc["fleet"]}
    local = tuple(count.get((name, "local-prefill", c.hardware.name), 0) for c in sn.prefill_parts)
    decode = tuple(count.get((name, "local-decode", c.hardware.name), 0) for c in sn.decode_parts)
    r = site["prfaas_site"]
    if r is None:
        return SiteCounts(local, decode)
    total = [count.get((r, "prfaas", c.hardware.name), 0) for c in prfaas_parts[r]]
    loads = [_prfaas_seconds(needs, doc, s, total) for s in doc["sites"] if s["prfaas_site"] == r]
    share = _prfaas_seconds(needs, doc, site, total) / sum(loads) if sum(loads) > 0 else 1.0
    link = next(lk for lk in doc["links"] if lk["from"] == r and lk["to"] == name)
    return SiteCounts(local, decode, r, tuple(math.ceil(n * share - 1e-9) for n in total), share,
                      units.gbit_per_s_to_bytes_per_s(link["gbit_per_s"]), link["rtt_ms"] / 1e3)


def counts_deployment(model, sn: SiteNeeds, counts: SiteCounts, threshold_tokens: float | None, prfaas_parts: dict) -> Deployment:
    """The deployment of one local site with ``counts`` at ``threshold_tokens`` (None: nothing
    offloaded): mixed pools as the module docstring says; decode slots sum_d n_d BS_max,d with
    the slot-weighted step."""
    local = _pool("local", model, sn.prefill_parts, counts.local)
    remote = _pool("prfaas", model, prfaas_parts[counts.prfaas_site], counts.prfaas) if counts.prfaas_site else None
    slots = [n * d.bs_max for n, d in zip(counts.decode, sn.decode)]
    step = sum(s * d.step_s for s, d in zip(slots, sn.decode)) / max(sum(slots), 1)
    accepted = sum(s * d.accepted_tokens for s, d in zip(slots, sn.decode)) / max(sum(slots), 1)
    t = threshold_tokens
    return Deployment("prfaas", model, sn.site.workload.uncached, math.inf if t is None else float(t), remote, local,
                      counts.link_bytes_per_s, counts.rtt_s, int(sum(slots)), 1, step, sn.site.workload.output_tokens_mean, accepted or 1.0)


def site_deployment(model, sn: SiteNeeds, doc: dict, site: dict, prfaas_parts: dict, needs: dict[str, SiteNeeds]) -> Deployment:
    """The deployment a local site sees (see the module docstring) from a fleet document."""
    return counts_deployment(model, sn, site_counts(sn, doc, site, prfaas_parts, needs), site["threshold_tokens"], prfaas_parts)


def add_site_latency(model, needs: dict[str, SiteNeeds], doc: dict, fleet) -> dict:
    """Each site entry of ``doc`` gains ``latency`` (TTFT at zero load and at its rate) and, with
    TTFT SLO, ``goodput_req_per_s`` (the highest rate of that site meeting every level it states,
    the others as planned)."""
    prfaas_parts = {p.name: p.parts for p in fleet.prfaas_sites}
    for site in doc["sites"]:
        sn = needs[site["site"]]
        dep = site_deployment(model, sn, doc, site, prfaas_parts, needs)
        lat = {"zero_load": ttft(dep, 0.0).as_dict(), "at_rate": None, "at_rate_error": None}
        try:
            lat["at_rate"] = ttft(dep, site["rate_req_per_s"]).as_dict()
        except PlanError as exc:
            lat["at_rate_error"] = str(exc)
        site["latency"] = lat
        if sn.site.ttft_slo.stated:
            decode_cap = dep.decode_slots / (dep.output_tokens_mean * dep.decode_step_s)
            site["goodput_req_per_s"] = goodput_req_per_s(dep, decode_cap, sn.site.ttft_slo)
    return doc
