"""A fleet of sites: where PrfaaS prefill runs, where local traffic arrives, and the links
between them (the ``sites:`` and ``links:`` sections of a scenario; :class:`Fleet`).

    sites:
      prfaas:                       # one or more PrfaaS sites
      - {name: us-east, hardware: [h200, b200], usd_per_gpu_hour: {h200: 3.2}, price_source: "...",
         gpus_per_instance: 8, max_gpus: 4096}
      local:                        # one or more local sites, each with its own traffic and SLO
      - {name: beijing, hardware: h20, gpus_per_instance: 8, max_gpus: 2048,
         workload: {input_tokens: {...}, output_tokens: 1024, arrival_req_per_s: 30},
         slo: {decode_tokens_per_s: 40}, target_req_per_s: 30}   # target: default the arrival rate
    links:                          # KV flows from a PrfaaS site to a local site
    - {from: us-east, to: beijing, rtt_ms: 30, purchasable_gbit_per_s: [100, 400],
       usd_per_gbit_per_s_hour: 0.2, max_utilisation: 0.8}

Each local site sends its long prompts to at most one PrfaaS site, over its link (a local site
without a link prefills everything itself); a PrfaaS site may serve several local sites. A
scenario without ``sites:`` whose roles list several candidate parts is the one-pair fleet
(:func:`one_pair_fleet`): sites ``prfaas`` and ``local`` and one link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..catalog.fields import Fields
from ..catalog.model import ModelSpec
from .bandwidth_profile import read_bandwidth_profile
from .parts import Cluster, candidate_parts
from .problem import Link, TtftSlo
from .workload import Workload

#: Default ceiling on the link's mean utilisation in plans (``link.max_utilisation``): the link is
#: sized for the planned egress / 0.8. A processor-sharing pipe at utilisation u stretches each
#: transfer by 1 / (1 - u), 5x at 0.8 (a 100 ms KV transfer becomes 0.5 s), and bursts of 3-s
#: arrival buckets (Mooncake) push short-term load well above the mean; 0.8 is also the common
#: engineering ceiling for WAN links. Set 1.0 to reproduce plans without headroom.
LINK_MAX_UTILISATION = 0.8

#: Roles of a local site (prefill and decode pools may use different parts).
LOCAL_ROLES = {"prefill": "prefill_hardware", "decode": "decode_hardware"}


def _loss_frac(f: Fields) -> float:
    """``link.loss_frac`` in [0, 1); it bounds each connection's rate, so it needs
    ``link.connections`` (with unlimited connections it would silently change nothing)."""
    p = f.num("loss_frac", 0.0, min_value=0.0)
    if p >= 1:
        raise f.error("loss_frac", f"must be a probability in [0, 1), got {p}")
    if p > 0 and not f.has("connections"):
        raise f.error("loss_frac", "needs link.connections (the TCP connections per transfer the loss bound applies to)")
    return p


def _profile(f: Fields, base: Path | None):
    """``link.bandwidth_profile``: a CSV path (relative to the scenario's folder), read and checked."""
    if not f.has("bandwidth_profile"):
        return None
    if base is None:
        raise f.error("bandwidth_profile", "is read for the scenario's one link (link:), not for links between sites")
    path = Path(f.str("bandwidth_profile"))
    return read_bandwidth_profile(path if path.is_absolute() else base / path)


#: Link keys the fleet planner (sites or candidate parts) does not model, and why: refused in a
#: fleet scenario's links (it would plan as if they were absent) and in its what-ifs and sweeps.
FLEET_UNMODELLED_LINK_KEYS = {
    "connections": "the TCP connections per transfer (a per-transfer rate cap) are modelled for one-pair scenarios only",
    "loss_frac": "packet loss (a per-transfer rate cap through link.connections) is modelled for one-pair scenarios only",
    "bandwidth_profile": ("a bandwidth profile is modelled for one-pair scenarios only (one part per role, no sites:); "
                          "scale the link instead, e.g. bandwidth_gbit_per_s*=0.5 or purchasable_gbit_per_s*=0.5"),
}


def read_link(f: Fields, base: Path | None = None, fleet: bool = False) -> Link:
    """A link mapping (the top-level ``link:`` or one entry of ``links:``). ``base``: the
    scenario's folder, from which ``bandwidth_profile`` (top-level link only) is read. ``fleet``:
    the link is the fleet planner's, which refuses :data:`FLEET_UNMODELLED_LINK_KEYS` in one line."""
    if fleet:
        for key, why in FLEET_UNMODELLED_LINK_KEYS.items():
            if f.has(key):
                raise f.error(key, f"the fleet planner cannot use it: {why}")
    sizes = f.num_list("purchasable_gbit_per_s", [])
    price = f.num("usd_per_gbit_per_s_hour", 0.0, min_value=0.0)
    link = Link(
        fixed_gbit_per_s=f.num("bandwidth_gbit_per_s", None),
        usd_per_gbit_per_s_hour=price,
        sizes_gbit_per_s=tuple(sorted(float(s) for s in sizes)),
        sizes_usd_per_hour=tuple(float(s) * price for s in sorted(sizes)),
        max_gbit_per_s=f.num("max_gbit_per_s", None),
        rtt_s=f.num("rtt_ms", 0.0, min_value=0.0) / 1e3,
        max_utilisation=f.frac("max_utilisation", LINK_MAX_UTILISATION),
        connections=f.int("connections", None),
        loss_frac=_loss_frac(f),
        bandwidth_profile=_profile(f, base),
    )
    f.str("price_source", "")
    f.done()
    return link


@dataclass(frozen=True)
class PrfaasSite:
    name: str
    parts: tuple[Cluster, ...]
    max_gpus: int | None = None


@dataclass(frozen=True)
class LocalSite:
    name: str
    prefill_parts: tuple[Cluster, ...]
    decode_parts: tuple[Cluster, ...]
    workload: Workload
    tpot_s: float
    ttft_p90_slo_s: float | None = None
    target_req_per_s: float | None = None  # what a target question must serve here
    max_gpus: int | None = None
    ttft_p99_slo_s: float | None = None  # slo.ttft_p99_s
    ttft_mean_slo_s: float | None = None  # slo.ttft_mean_s

    @property
    def ttft_slo(self) -> TtftSlo:
        """The TTFT levels this site states (P90, P99, mean; each None when not stated)."""
        return TtftSlo(self.ttft_p90_slo_s, self.ttft_p99_slo_s, self.ttft_mean_slo_s)


@dataclass(frozen=True)
class SiteLink:
    """KV of offloaded prompts flows ``src`` (a PrfaaS site) -> ``dst`` (a local site)."""

    src: str
    dst: str
    link: Link


@dataclass(frozen=True)
class Fleet:
    prfaas_sites: tuple[PrfaasSite, ...]
    local_sites: tuple[LocalSite, ...]
    links: tuple[SiteLink, ...]
    one_pair: bool = False  # built from the top-level prfaas/local/link (no ``sites:``)

    def link(self, src: str, dst: str) -> SiteLink | None:
        return next((lk for lk in self.links if lk.src == src and lk.dst == dst), None)


def needs_fleet(f: Fields) -> bool:
    """Whether a scenario mapping asks for the fleet planner: ``sites:``, a role listing several
    candidate parts, or local prefill and decode on named parts."""
    if f.has("sites"):
        return True
    roles = [f.data.get(k) for k in ("prfaas", "local")]
    return any(isinstance(r, dict) and (isinstance(r.get("hardware"), list) or "prefill_hardware" in r or "decode_hardware" in r)
               for r in roles)


def _max_gpus(f: Fields) -> int | None:
    return f.int("max_gpus", None)


def one_pair_fleet(f: Fields, base: Path, model: ModelSpec, workload: Workload, tpot_s: float, slo: TtftSlo,
                   target_req_per_s: float | None) -> tuple[Fleet, Cluster, Cluster, Link]:
    """The fleet of a scenario without ``sites:`` whose roles list candidate parts; also the
    first candidates and the link (what the scenario's one-pair fields hold). ``slo``: the
    scenario's TTFT levels, which its one local site states."""
    pf, lf = f.sub("prfaas"), f.sub("local")
    prfaas = candidate_parts(pf, base, model, {"prfaas": "hardware"})["prfaas"]
    pmax = _max_gpus(pf)
    pf.done()
    local = candidate_parts(lf, base, model, LOCAL_ROLES)
    lmax = _max_gpus(lf)
    lf.done()
    link = read_link(f.sub("link"), base, fleet=True)
    fleet = Fleet((PrfaasSite("prfaas", prfaas, pmax),),
                  (LocalSite("local", local["prefill"], local["decode"], workload, tpot_s, slo.p90_s, target_req_per_s, lmax,
                             slo.p99_s, slo.mean_s),),
                  # bought as the one-pair budget and target questions buy it (planner.problem_for)
                  (SiteLink("prfaas", "local", replace(link, fixed_gbit_per_s=None)),), one_pair=True)
    return fleet, prfaas[0], local["prefill"][0], link


def read_sites(f: Fields, base: Path, model: ModelSpec, read_workload: Callable[[Fields], Workload],
               read_slo: Callable[[Fields], tuple[float, TtftSlo]]) -> Fleet:
    """``sites:`` and ``links:`` of scenario mapping ``f``. ``read_workload`` and ``read_slo``
    read a site's ``workload`` and ``slo`` mappings as the top-level ones are read (``read_slo``:
    the TPOT in s and the TTFT levels)."""
    s = f.sub("sites")
    names: set[str] = set()

    def name(site: Fields) -> str:
        n = site.str("name")
        if n in names:
            raise site.error("name", f"site name {n!r} is used twice")
        names.add(n)
        return n

    prfaas = []
    for i, _ in enumerate(s.list("prfaas")):
        p = s.item("prfaas", i)
        prfaas.append(PrfaasSite(name(p), candidate_parts(p, base, model, {"prfaas": "hardware"})["prfaas"], _max_gpus(p)))
        p.done()
    local = []
    for i, _ in enumerate(s.list("local")):
        lf = s.item("local", i)
        n = name(lf)
        parts = candidate_parts(lf, base, model, LOCAL_ROLES)
        workload = read_workload(lf.sub("workload"))
        tpot_s, slo = read_slo(lf.sub("slo"))
        local.append(LocalSite(n, parts["prefill"], parts["decode"], workload, tpot_s, slo.p90_s,
                               lf.num("target_req_per_s", workload.arrival_req_per_s), _max_gpus(lf), slo.p99_s, slo.mean_s))
        lf.done()
    s.done()
    if not local:
        raise s.error("local", "list at least one local site")
    links, seen = [], set()
    prfaas_names, local_names = {p.name for p in prfaas}, {site.name for site in local}
    for i, _ in enumerate(f.list("links", [])):
        lk = f.item("links", i)
        src, dst = lk.str("from"), lk.str("to")
        if src not in prfaas_names:
            raise lk.error("from", f"must name a PrfaaS site ({', '.join(sorted(prfaas_names)) or 'none listed'}), got {src!r}")
        if dst not in local_names:
            raise lk.error("to", f"must name a local site ({', '.join(sorted(local_names))}), got {dst!r}")
        if (src, dst) in seen:
            raise lk.error("to", f"a second link {src} -> {dst}")
        seen.add((src, dst))
        links.append(SiteLink(src, dst, read_link(lk, fleet=True)))
    return Fleet(tuple(prfaas), tuple(local), tuple(links))
