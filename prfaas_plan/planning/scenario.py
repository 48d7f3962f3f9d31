"""Scenario files: the model, the PrfaaS and local clusters, the link, the traffic, the SLO, prices
and the question (fixed fleet, budget or target). Shipped examples live in ``scenarios/``."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..catalog.fields import Fields, open_catalog_file
from ..catalog.hardware import Hardware, apply_profile, load_hardware
from .. import units
from ..catalog.files import show_path
from ..catalog.model import RECURRENT_KINDS, ModelSpec, load_model
from ..catalog.paths import catalog_names, resolve_from
from ..errors import PlanError
from ..roofline.instance import DTYPES, Instance, make_instance
from ..roofline.parallel import shape_options
from .problem import Link, Range, TtftSlo
from .overrides import Override, apply_overrides
from .throughput import MODES
from .trace_input import TraceInput, trace_input
from .uncertainty import Distribution, read_uncertainty
from .workload import LengthDistribution, Mixture, Scaled, TruncatedLogNormal, Workload

OBJECTIVES = ("fixed-fleet", "budget", "target", "slo")

#: The pools ``slo.max_utilisation_frac`` may cap (a number caps all three).
POOLS = ("prfaas", "local_prefill", "local_decode")


@dataclass(frozen=True)
class Cluster:
    hardware: Hardware
    gpus_per_instance: int
    instances: int | None  # the fleet in place (fixed-fleet question)
    instances_range: Range  # what budget/target plans may choose
    use_profile: bool
    usd_per_gpu_hour: float
    price_source: str
    instance: Instance  # the instance shape (parallelism, dtypes) the roofline prices


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


#: Optional ``instance`` keys of a cluster besides the parallelism (roofline/parallel.py: tp, dp,
#: enable_dp_attention, ep, pp, in the engines' spelling) -> make_instance options (defaults: the engine's).
_SHAPE_KEYS = {"weights": "weights", "moe_weights": "moe_weights", "attention_dtype": "attention_dtype", "kv_dtype": "kv_dtype",
               "mtp_draft": "mtp_draft_tokens", "mtp_accept": "mtp_accepted_tokens",
               "chunk_tokens": "chunk_tokens"}


def _deployed(f: Fields | None, model: ModelSpec) -> ModelSpec:
    """The model as the cluster's ``instance: {engine, state_dtype}`` deploy it (the recurrent-
    state dtype, :func:`prfaas_plan.catalog.engines.deploy`); the model file's without them."""
    if f is None:
        return model
    from ..catalog.engines import ENGINES, deploy

    engine = f.str("engine", None, choices=tuple(ENGINES))
    state = f.str("state_dtype", None, choices=tuple(units.DTYPE_BYTES))
    return deploy(model, engine, state)[0] if engine or state else model


def _shape(f: Fields | None) -> dict:
    if f is None:
        return {}
    out = shape_options(f)
    for key, option in _SHAPE_KEYS.items():
        if key == "mtp_accept":
            v = f.num(key, None)
        elif key in ("mtp_draft", "chunk_tokens"):
            v = f.int(key, None, min_value=0)
        else:
            v = f.str(key, None, choices=DTYPES)
        if v is not None:
            out[option] = v
    f.done()
    return out


def _cluster(f: Fields, role: str, base: Path, model: ModelSpec) -> Cluster:
    hw = _catalog("hardware", f.str("hardware"), base)
    profile = f.str("efficiency_profile", None)
    if profile is not None:  # fitted by `prfaas-plan calibrate`; relative to the scenario file
        path = Path(profile) if Path(profile).is_absolute() else base / profile
        hw = apply_profile(hw, path)
    gpus = f.int("gpus_per_instance")
    instances = f.int("instances", None, min_value=0 if role == "prfaas" else 1)
    rng = f.sub("instances_range", None)
    if rng is not None:
        lo = rng.int("min", 0, min_value=0)
        hi = rng.int("max", None, min_value=max(lo, 1))
        rng.done()
        instances_range = Range(lo, hi)
    else:
        instances_range = Range(0, None)
    shape_fields = f.sub("instance", None)
    model = _deployed(shape_fields, model)  # reads engine / state_dtype before _shape checks the rest
    shape = _shape(shape_fields)
    try:
        instance = make_instance(model, hw, gpus, **shape)
    except PlanError as exc:
        raise f.error("instance", str(exc).replace("--", "")) from None
    price = f.num("usd_per_gpu_hour", None)
    price_source = f.str("price_source", None)
    if price is not None and price_source is None:
        raise f.error("price_source", "say where usd_per_gpu_hour comes from")
    cluster = Cluster(
        hardware=hw,
        gpus_per_instance=gpus,
        instances=instances,
        instances_range=instances_range,
        use_profile=f.bool("use_profile", True),
        usd_per_gpu_hour=price if price is not None else hw.rent_usd_per_gpu_hour,
        price_source=price_source or f"catalog: {hw.price_source} ({hw.price_date})",
        instance=instance,
    )
    f.done()
    return cluster


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


#: Default ceiling on the link's mean utilisation in plans (``link.max_utilisation``): the link is
#: sized for the planned egress / 0.8. A processor-sharing pipe at utilisation u stretches each
#: transfer by 1 / (1 - u), 5x at 0.8 (a 100 ms KV transfer becomes 0.5 s), and bursts of 3-s
#: arrival buckets (Mooncake) push short-term load well above the mean; 0.8 is also the common
#: engineering ceiling for WAN links. Set 1.0 to reproduce plans without headroom.
LINK_MAX_UTILISATION = 0.8


def _link(f: Fields) -> Link:
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
    )
    f.str("price_source", "")
    f.done()
    return link


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


@functools.lru_cache(maxsize=64)
def _cached(kind: str, path: Path, mtime_ns: int):
    """Catalog files read once per content version (sweeps read the same model 1,000 times)."""
    return load_model(path) if kind == "models" else load_hardware(path)


def _catalog(kind: str, name_or_path: str, base: Path):
    path = resolve_from(kind, name_or_path, base).resolve()
    return _cached(kind, path, path.stat().st_mtime_ns)


def scenario_from_mapping(data: dict, path: Path, name: str, overrides: tuple[Override, ...] | list[Override] = ()) -> Scenario:
    """A scenario from its YAML mapping ``data`` (read from ``path``), with ``overrides`` applied."""
    f = Fields(apply_overrides(data, overrides, str(path)) if overrides else data, path)
    f.str("name", None)
    raw = f.data
    model = _catalog("models", f.str("model"), path.parent)
    w = f.sub("workload")
    inputs = _input_lengths(w.sub("input_tokens"), path.parent)
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
        output_tokens_mean=_output_tokens(w, "output_tokens", path.parent, lengths),
        prefix_cache_hit_frac=hit_frac,
        arrival_req_per_s=w.num("arrival_req_per_s", None),
        uncached_input=(Scaled(uncached, scale) if scale != 1.0 else uncached) if uncached is not None else None,
        prefix_cache_model=inputs.cache_model,
    )
    w.done()
    slo = f.sub("slo")
    if slo.has("decode_tokens_per_s") == slo.has("tpot_ms"):
        raise slo.error("decode_tokens_per_s", "give exactly one of decode_tokens_per_s and tpot_ms")
    tpot_s = 1.0 / slo.num("decode_tokens_per_s") if slo.has("decode_tokens_per_s") else slo.num("tpot_ms") / 1e3
    ttft_levels = {key: slo.num(key, None) for key in ("ttft_p90_s", "ttft_p99_s", "ttft_mean_s")}
    max_util = _max_utilisation(slo)
    slo.done()
    obj = f.sub("objective")
    objective = obj.str("kind", choices=OBJECTIVES)
    budget = obj.num("budget_usd_per_hour", None)
    target = obj.num("target_req_per_s", None)
    if objective == "budget" and budget is None:
        raise obj.error("budget_usd_per_hour", "missing (objective kind is budget)")
    if objective == "target" and target is None:
        raise obj.error("target_req_per_s", "missing (objective kind is target)")
    obj.done()
    if objective == "slo":
        if workload.arrival_req_per_s is None:
            raise w.error("arrival_req_per_s", "missing (objective kind slo plans for the SLO at this rate)")
        if all(v is None for v in ttft_levels.values()) and not max_util:
            raise slo.error("ttft_p90_s", "objective kind slo needs a TTFT level (ttft_p90_s, ttft_p99_s or ttft_mean_s) or max_utilisation_frac")
    prfaas, local = _cluster(f.sub("prfaas"), "prfaas", path.parent, model), _cluster(f.sub("local"), "local", path.parent, model)
    recurrent = any(isinstance(g, RECURRENT_KINDS) for g in model.layers)
    if recurrent and prfaas.instance.model.dtypes != local.instance.model.dtypes:  # one request's state crosses the link
        d, e = prfaas.instance.model.dtypes, local.instance.model.dtypes
        raise PlanError(f"{show_path(path)}: key 'local.instance.state_dtype': the clusters keep the recurrent state in "
                        f"{d.linear_state}/{d.conv_state} (prfaas) and {e.linear_state}/{e.conv_state} (local); give both the same engine or state_dtype")
    sc = Scenario(
        name=name,
        description=f.str("description"),
        model=prfaas.instance.model,
        mode=f.str("mode", "distribution", choices=MODES),
        prfaas=prfaas,
        local=local,
        link=_link(f.sub("link")),
        workload=workload,
        tpot_s=tpot_s,
        ttft_p90_slo_s=ttft_levels["ttft_p90_s"],
        ttft_p99_slo_s=ttft_levels["ttft_p99_s"],
        ttft_mean_slo_s=ttft_levels["ttft_mean_s"],
        max_utilisation_frac=max_util,
        objective=objective,
        budget_usd_per_hour=budget,
        target_req_per_s=target,
        sources=f.sources() + ((inputs.source,) if inputs.source and inputs.source not in f.data.get("sources", ()) else ()),
        path=str(path),
        overrides=tuple(overrides),
        raw=raw,
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

