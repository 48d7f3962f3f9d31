"""Scenario files: the model, the PrfaaS and local clusters, the link, the traffic, the SLO, prices
and the question (fixed fleet, budget or target). Shipped examples live in ``scenarios/``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..catalog.fields import Fields, open_catalog_file
from ..catalog.files import show_path
from ..bounds import check
from ..catalog.model import RECURRENT_KINDS, ModelSpec
from ..catalog.paths import catalog_names, in_catalog
from ..errors import PlanError
from .overrides import Override, apply_overrides
from .parts import Cluster, catalog_entry, cluster
from .problem import Link, TtftSlo
from .sites import LINK_MAX_UTILISATION, Fleet, needs_fleet, one_pair_fleet, read_link, read_sites  # noqa: F401  (LINK_MAX_UTILISATION: re-exported)
from .throughput import MODES
from .trace_input import TraceInput, trace_input
from .uncertainty import Distribution, read_uncertainty
from .workload import LengthDistribution, Mixture, Scaled, TruncatedLogNormal, Workload

OBJECTIVES = ("fixed-fleet", "budget", "target", "slo")

#: The pools ``slo.max_utilisation_frac`` may cap (a number caps all three).
POOLS = ("prfaas", "local_prefill", "local_decode")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    model: ModelSpec
    mode: str
    prfaas: Cluster
    local: Cluster
    link: Link
    workload: Workload
    tpot_s: float
    objective: str
    budget_usd_per_hour: float | None
    target_req_per_s: float | None
    sources: tuple[str, ...]
    path: str
    overrides: tuple[Override, ...] = ()
    raw: dict | None = field(default=None, compare=False)  # the resolved YAML mapping (overrides applied), for provenance
    ttft_p90_slo_s: float | None = None  # slo.ttft_p90_s: goodput is the highest load meeting it
    fleet: Fleet | None = None  # sites and candidate parts: planned by prfaas_plan.fleet (see planning/sites.py)
    uncertainty: dict[str, Distribution] = field(default_factory=dict, compare=False)  # `uncertainty:` (read by `risk`)
    link_fixed_by_override: bool = False  # see link_is_fixed
    ttft_p99_slo_s: float | None = None  # slo.ttft_p99_s
    ttft_mean_slo_s: float | None = None  # slo.ttft_mean_s
    max_utilisation_frac: tuple[tuple[str, float], ...] = ()  # slo.max_utilisation_frac: (pool, cap) per capped pool

    @property
    def ttft_slo(self) -> TtftSlo:
        """The TTFT levels the scenario states (P90, P99, mean)."""
        return TtftSlo(self.ttft_p90_slo_s, self.ttft_p99_slo_s, self.ttft_mean_slo_s)

    @property
    def slo_aware(self) -> bool:
        """Whether a plan must meet latency levels or utilisation caps at a rate (issue #16): a
        TTFT level or a utilisation cap is stated."""
        return self.ttft_slo.stated or bool(self.max_utilisation_frac)


#: The override that fixes the link in every question (see :func:`link_is_fixed`).
LINK_BANDWIDTH_KEY = "link.bandwidth_gbit_per_s"


def link_is_fixed(sc: Scenario, objective: str) -> bool:
    """Whether a plan for ``objective`` must use ``link.bandwidth_gbit_per_s`` as it stands. In a
    file that key is the link in place, which only a fixed-fleet question keeps (a budget or
    target question buys its link: purchasable sizes, the cap, or continuous). Set by an override
    (``--set``, ``--vary``, a what-if), it fixes the link in every question: the question is then
    "what if the link were this", and a re-plan buys its fleet around that link at its price."""
    return objective == "fixed-fleet" or (sc.link_fixed_by_override and sc.link.fixed_gbit_per_s is not None)


#: The most length distributions (log-normals and traces, counting those inside nested mixtures)
#: one scenario may combine. Every component costs a pass over the 2,048 cells at every
#: threshold the optimizer tries; a larger mix belongs in a trace (a histogram CSV).
MAX_MIXTURE_COMPONENTS = 100


def _lengths(f: Fields, base: Path, budget: list[int] | None = None) -> LengthDistribution:
    """A length distribution; ``budget`` counts down the components left (see above)."""
    budget = [MAX_MIXTURE_COMPONENTS] if budget is None else budget
    kind = f.str("kind", choices=("lognormal", "trace", "mixture"))
    if kind != "mixture":
        budget[0] -= 1
        if budget[0] < 0:
            raise PlanError(f"{f.source}: key '{f.prefix}': more than {MAX_MIXTURE_COMPONENTS} length distributions in one workload (use a trace histogram)")
    if kind == "lognormal":
        try:
            d = TruncatedLogNormal(f.num("mu", min_value=-1e9), f.num("sigma"), f.num("min_tokens"), f.num("max_tokens"))
        except PlanError as exc:
            raise PlanError(f"{f.source}: key '{f.prefix}': {exc}") from None
    elif kind == "trace":
        d = trace_input(f, base, allow_cache=False).full
    else:
        comps, weights = [], []
        for i, _ in enumerate(f.list("components")):
            c = f.item("components", i)
            weights.append(c.num("weight"))
            comps.append(_lengths(c.sub("distribution"), base, budget))
            c.done()
        if not comps:
            raise f.error("components", "a mixture needs at least one component")
        d = Mixture.of(comps, weights, f"{f.source}: key '{f.key_path('components')}'")
    f.done()
    return d


def _input_lengths(f: Fields, base: Path) -> TraceInput:
    """``workload.input_tokens``: a trace there may carry a prefix-cache model (uncached lengths)."""
    if f.raw("kind", None) != "trace":
        return TraceInput(_lengths(f, base), None, None, None, None)
    f.str("kind")
    t = trace_input(f, base)
    f.done()
    return t


def _output_tokens(f: Fields, key: str, base: Path, inputs: LengthDistribution) -> float:
    """Output length: a number, or a distribution mapping (its mean is what Eq. 5 uses). A trace
    with an output column supplies it; giving both is an error rather than a silent choice."""
    from_trace = getattr(inputs, "output_tokens_mean", None)
    if from_trace is not None:
        if f.has(key):
            raise f.error(key, f"the input_tokens trace has an output-token column (mean {from_trace:,.0f}); remove this key or the column")
        f.raw(key, None)
        return from_trace
    raw = f.raw(key)
    if isinstance(raw, dict):
        return _lengths(f.sub(key), base).mean()
    return float(f.num(key))


def _max_utilisation(slo: Fields) -> tuple[tuple[str, float], ...]:
    """``slo.max_utilisation_frac``: one fraction for every pool, or a mapping pool -> fraction
    (pools: prfaas, local_prefill, local_decode); absent: no cap."""
    raw = slo.raw("max_utilisation_frac", None)
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        return tuple((pool, slo.frac("max_utilisation_frac")) for pool in POOLS)
    caps = slo.sub("max_utilisation_frac")
    out = tuple((pool, caps.frac(pool)) for pool in POOLS if caps.has(pool))
    caps.done()
    return out


def load_scenario(name_or_path: str | Path, overrides: tuple[Override, ...] | list[Override] = ()) -> Scenario:
    """Read a scenario (catalog name or path). Paths inside it (model, hardware, traces) are taken
    from the scenario file's folder. ``overrides`` change keys before anything is checked."""
    path, f, name = open_catalog_file("scenarios", name_or_path)
    return scenario_from_mapping(f.data, path, name, overrides)


def _read_workload(w: Fields, base: Path) -> tuple[Workload, str | None]:
    """A ``workload`` mapping, and the source line of its trace (None for a distribution)."""
    inputs = _input_lengths(w.sub("input_tokens"), base)
    lengths, uncached = inputs.full, inputs.uncached
    scale = w.num("input_tokens_scale", 1.0)  # what-if knob: every prompt this many times longer
    hit_frac = w.num("prefix_cache_hit_frac", 0.0, min_value=0.0)
    if hit_frac >= 1:  # checked here, before Workload (whose own check cannot name the file)
        raise w.error("prefix_cache_hit_frac", f"must be < 1 (a share of each prompt), got {hit_frac}")
    if hit_frac > 0 and uncached is not None:
        raise w.error("prefix_cache_hit_frac", f"the input_tokens trace already models the prefix cache ({inputs.cache_model}); "
                                               "give one or the other (cache kind none, or no prefix_cache_hit_frac)")
    workload = Workload(
        input=Scaled(lengths, scale) if scale != 1.0 else lengths,
        output_tokens_mean=_output_tokens(w, "output_tokens", base, lengths),
        prefix_cache_hit_frac=hit_frac,
        arrival_req_per_s=w.num("arrival_req_per_s", None),
        uncached_input=(Scaled(uncached, scale) if scale != 1.0 else uncached) if uncached is not None else None,
        prefix_cache_model=inputs.cache_model,
    )
    w.done()
    return workload, inputs.source


#: The TTFT levels an ``slo`` mapping may state, s (issue #16).
TTFT_LEVELS = ("ttft_p90_s", "ttft_p99_s", "ttft_mean_s")


def _read_slo_levels(slo: Fields) -> tuple[float, dict, tuple[tuple[str, float], ...]]:
    """An ``slo`` mapping: (TPOT in s, {TTFT level key: s or None}, utilisation caps)."""
    if slo.has("decode_tokens_per_s") == slo.has("tpot_ms"):
        raise slo.error("decode_tokens_per_s", "give exactly one of decode_tokens_per_s and tpot_ms")
    tpot_s = 1.0 / slo.num("decode_tokens_per_s") if slo.has("decode_tokens_per_s") else slo.num("tpot_ms") / 1e3
    levels = {key: slo.num(key, None) for key in TTFT_LEVELS}
    max_util = _max_utilisation(slo)
    slo.done()
    return tpot_s, levels, max_util


def _read_slo(slo: Fields) -> tuple[float, TtftSlo]:
    """A site's ``slo`` mapping: (TPOT in s, its TTFT levels: ``ttft_p90_s``, ``ttft_p99_s``,
    ``ttft_mean_s``, each a positive number of seconds or absent). The fleet planner has no
    utilisation caps (a PrfaaS pool shared by several sites has no one site's cap), so
    ``max_utilisation_frac`` is refused there rather than ignored."""
    if slo.has("max_utilisation_frac"):
        raise slo.error("max_utilisation_frac", "the fleet planner (sites or candidate parts) plans for TTFT levels "
                                                "(ttft_p90_s, ttft_p99_s, ttft_mean_s) and TPOT, not utilisation caps")
    tpot_s, levels, _ = _read_slo_levels(slo)
    return tpot_s, TtftSlo(levels["ttft_p90_s"], levels["ttft_p99_s"], levels["ttft_mean_s"])


#: What ``sites:`` replaces at the top level (each site states its own).
_SITE_KEYS = ("prfaas", "local", "link", "workload", "slo")


def scenario_from_mapping(data: dict, path: Path, name: str, overrides: tuple[Override, ...] | list[Override] = ()) -> Scenario:
    """A scenario from its YAML mapping ``data`` (read from ``path``), with ``overrides`` applied.
    With ``sites:`` (or candidate parts) ``fleet`` holds the sites and links, and the one-pair
    fields hold the first site's first parts (see :mod:`prfaas_plan.planning.sites`)."""
    f = Fields(apply_overrides(data, overrides, str(path)) if overrides else data, path)
    f.str("name", None)
    raw = f.data
    base = path.parent
    try:
        model = catalog_entry("models", f.str("model"), base)
    except PlanError as exc:
        raise f.error("model", str(exc)) from None
    fleet, trace_sources = None, []
    if f.has("sites"):
        for key in _SITE_KEYS:
            if f.has(key):
                raise f.error(key, "a scenario with sites: states this per site (remove it here)")
        fleet = read_sites(f, base, model, lambda w: _read_workload(w, base)[0], _read_slo)
        site = fleet.local_sites[0]
        workload, tpot_s = site.workload, site.tpot_s
        levels = dict(zip(TTFT_LEVELS, (site.ttft_p90_slo_s, site.ttft_p99_slo_s, site.ttft_mean_slo_s)))
        max_util = ()
    else:
        workload, trace_source = _read_workload(f.sub("workload"), base)
        trace_sources = [trace_source] if trace_source and trace_source not in f.data.get("sources", ()) else []
        tpot_s, levels, max_util = _read_slo_levels(f.sub("slo"))
    obj = f.sub("objective")
    objective = obj.str("kind", choices=OBJECTIVES)
    budget = check("budget_usd_per_hour", obj.num("budget_usd_per_hour", None), f"{path}: key 'objective.budget_usd_per_hour'")
    target = check("target_req_per_s", obj.num("target_req_per_s", None), f"{path}: key 'objective.target_req_per_s'")
    if objective == "budget" and budget is None:
        raise obj.error("budget_usd_per_hour", "missing (objective kind is budget)")
    if objective == "target" and target is None and not f.has("sites"):
        raise obj.error("target_req_per_s", "missing (objective kind is target)")
    if target is not None and f.has("sites"):
        raise obj.error("target_req_per_s", "with sites: each local site states its target_req_per_s")
    obj.done()
    if objective == "slo" and f.has("sites"):
        _check_site_slos(f, fleet)
    elif objective == "slo":
        where = f"{show_path(path)}: key"
        if workload.arrival_req_per_s is None:
            raise PlanError(f"{where} 'workload.arrival_req_per_s': missing (objective kind slo plans for the SLO at this rate)")
        if all(v is None for v in levels.values()) and not max_util:
            raise PlanError(f"{where} 'slo.ttft_p90_s': objective kind slo needs a TTFT level (ttft_p90_s, ttft_p99_s or ttft_mean_s) "
                            "or max_utilisation_frac")
    if fleet is not None:
        prfaas, local, link = fleet.prfaas_sites[0].parts[0] if fleet.prfaas_sites else site.prefill_parts[0], \
            site.prefill_parts[0], fleet.links[0].link if fleet.links else Link(fixed_gbit_per_s=0.0)
    elif needs_fleet(f):
        if max_util:
            raise f.sub("slo").error("max_utilisation_frac", "the fleet planner (sites or candidate parts) plans for TTFT levels "
                                                             "(ttft_p90_s, ttft_p99_s, ttft_mean_s) and TPOT, not utilisation caps")
        fleet, prfaas, local, link = one_pair_fleet(f, base, model, workload, tpot_s, TtftSlo(*(levels[k] for k in TTFT_LEVELS)), target)
    else:
        prfaas, local = cluster(f.sub("prfaas"), "prfaas", base, model), cluster(f.sub("local"), "local", base, model)
        link = read_link(f.sub("link"), base)
        recurrent = any(isinstance(g, RECURRENT_KINDS) for g in model.layers)
        if recurrent and prfaas.instance.model.dtypes != local.instance.model.dtypes:  # one request's state crosses the link
            d, e = prfaas.instance.model.dtypes, local.instance.model.dtypes
            raise PlanError(f"{show_path(path)}: key 'local.instance.state_dtype': the clusters keep the recurrent state in "
                            f"{d.linear_state}/{d.conv_state} (prfaas) and {e.linear_state}/{e.conv_state} (local); give both the same engine or state_dtype")
        model = prfaas.instance.model
    mode = f.str("mode", "distribution", choices=MODES)
    if fleet is not None:
        if mode != "distribution":
            raise f.error("mode", "the fleet planner (sites or candidate parts) works in distribution mode only")
        if objective == "fixed-fleet":
            raise obj.error("kind", "the fleet planner (sites or candidate parts) answers budget, target and slo questions; "
                                    f"{objective} needs one part per role")
        _check_demands(obj, fleet, objective)
    # A shipped scenario documents itself; one of the user's own (outside scenarios/) may leave
    # description and sources out, and says so wherever they would be shown.
    shipped = in_catalog("scenarios", Path(path))
    own = "a user scenario outside scenarios/; only shipped scenarios must give"
    sc = Scenario(
        name=name,
        description=f.str("description") if shipped or f.has("description") else f"(no description: {own} one)",
        model=model,
        mode=mode,
        prfaas=prfaas,
        local=local,
        link=link,
        workload=workload,
        tpot_s=tpot_s,
        ttft_p90_slo_s=levels["ttft_p90_s"],
        ttft_p99_slo_s=levels["ttft_p99_s"],
        ttft_mean_slo_s=levels["ttft_mean_s"],
        max_utilisation_frac=max_util,
        objective=objective,
        budget_usd_per_hour=budget,
        target_req_per_s=target,
        sources=(f.sources() if shipped or f.has("sources") else (f"none given ({own} sources)",)) + tuple(trace_sources),
        path=str(path),
        overrides=tuple(overrides),
        raw=raw,
        fleet=fleet,
        uncertainty=read_uncertainty(f.sub("uncertainty", None)),
        link_fixed_by_override=any(o.key == LINK_BANDWIDTH_KEY for o in overrides),
    )
    f.done()
    if objective == "fixed-fleet":
        if sc.prfaas.instances is None:
            raise PlanError(f"{path}: key 'prfaas.instances': missing (objective kind is fixed-fleet)")
        if sc.local.instances is None:
            raise PlanError(f"{path}: key 'local.instances': missing (objective kind is fixed-fleet)")
        if sc.link.fixed_gbit_per_s is None:
            raise PlanError(f"{path}: key 'link.bandwidth_gbit_per_s': missing (objective kind is fixed-fleet)")
    return sc


def _check_site_slos(f: Fields, fleet: Fleet) -> None:
    """``objective: {kind: slo}`` with ``sites:`` plans every local site's SLO at its arrival
    rate: at least one site must state a TTFT level (a site without one is planned for its rate
    and TPOT alone)."""
    if not any(site.ttft_slo.stated for site in fleet.local_sites):
        raise PlanError(f"{show_path(f.source)}: key 'sites.local[0].slo.ttft_p90_s': objective kind slo needs a TTFT level "
                        "(ttft_p90_s, ttft_p99_s or ttft_mean_s) at some local site")


def _check_demands(obj: Fields, fleet: Fleet, objective: str) -> None:
    """A multi-site question needs each local site's demand: its target (target question) or
    its arrival rate (budget question: the sites' rates weigh the throughput maximised; slo
    question: the SLOs hold at it)."""
    if fleet.one_pair:
        return
    for i, site in enumerate(fleet.local_sites):
        key = "target_req_per_s" if objective == "target" else "workload.arrival_req_per_s"
        value = site.target_req_per_s if objective == "target" else site.workload.arrival_req_per_s
        if value is None:
            raise PlanError(f"{obj.source}: key 'sites.local[{i}].{key}': missing (objective kind is {objective}: "
                            "every local site needs its demand)")


def with_input_scale(sc: Scenario, scale: float) -> Scenario:
    """``sc`` as if its file said ``workload.input_tokens_scale: scale``: the same workload
    :func:`scenario_from_mapping` builds (every length distribution of the unscaled prompts
    wrapped in one Scaled), without reading the mapping again (`risk` makes one per sample)."""
    wl, old = sc.workload, (sc.raw.get("workload") or {}).get("input_tokens_scale", 1.0)
    unscaled = lambda d: None if d is None else (d.base if old != 1.0 else d)  # noqa: E731
    rescaled = lambda d: None if d is None else (Scaled(d, scale) if scale != 1.0 else d)  # noqa: E731
    raw = {**sc.raw, "workload": {**(sc.raw.get("workload") or {}), "input_tokens_scale": scale}}
    workload = replace(wl, input=rescaled(unscaled(wl.input)), uncached_input=rescaled(unscaled(wl.uncached_input)))
    return replace(sc, workload=workload, raw=raw)


def list_scenarios() -> list[str]:
    return catalog_names("scenarios")


def one_pair_only(sc: Scenario, command: str, advice: str | None = None) -> Scenario:
    """``sc`` if it is a one-pair scenario; a one-line refusal for a fleet (sites or candidate
    parts), which ``command`` does not handle, saying what to do instead (``advice``)."""
    if sc.fleet is not None:
        what = "sites" if not sc.fleet.one_pair else "candidate parts"
        advice = advice or "plan it with `prfaas-plan optimize` (prfaas_plan.fleet.plan.plan_fleet)"
        raise PlanError(f"{sc.path}: {command} handles one-pair scenarios (one part per role); this one has {what}: {advice}")
    return sc
