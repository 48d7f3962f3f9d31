"""The parts a scenario's roles run on: one :class:`Cluster` per (role, candidate part).

A role's ``hardware`` is one part (``hardware: h200``, the one-pair scenario as before) or a list
of candidates the planner chooses among (``hardware: [h200, b200, rubin-cpx]``); the local role
may name its prefill and decode parts apart (``prefill_hardware``, ``decode_hardware``;
``hardware`` sets both). Per-part keys take one value for every candidate or a mapping keyed by
part name: ``usd_per_gpu_hour: {h200: 3.2, b200: 5.0}`` (a part left out takes the catalog's
price; a plain number prices a single part only), ``gpus_per_instance: 8`` or ``{h200: 8,
rubin-cpx: 16}``, ``instance: {tp: 8}`` or ``{rubin-cpx: {pp: 8}}``, ``efficiency_profile``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .. import units
from ..catalog.fields import Fields
from ..catalog.hardware import Hardware, apply_profile, load_hardware
from ..catalog.model import ModelSpec, load_model
from ..catalog.paths import resolve_from
from ..errors import PlanError
from ..roofline.instance import DTYPES, Instance, make_instance
from ..roofline.parallel import PARALLEL_KEYS, shape_options
from .problem import Range


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

    @property
    def instance_usd_per_hour(self) -> float:
        return self.gpus_per_instance * self.usd_per_gpu_hour


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


@functools.lru_cache(maxsize=64)
def _cached(kind: str, path: Path, mtime_ns: int):
    """Catalog files read once per content version (sweeps read the same model 1,000 times)."""
    return load_model(path) if kind == "models" else load_hardware(path)


def catalog_entry(kind: str, name_or_path: str, base: Path):
    """A model or hardware file by catalog name or path (relative to ``base``), read once."""
    path = resolve_from(kind, name_or_path, base).resolve()
    return _cached(kind, path, path.stat().st_mtime_ns)


def _hardware(f: Fields, key: str, name: str, profile: str | None, base: Path) -> Hardware:
    """The part ``name`` (with its efficiency ``profile``) that key ``key`` of ``f`` names; an
    unknown name is that key's error."""
    try:
        hw = catalog_entry("hardware", name, base)
    except PlanError as exc:
        raise f.error(key, str(exc)) from None
    if profile is not None:  # fitted by `prfaas-plan calibrate`; relative to the scenario file
        hw = apply_profile(hw, Path(profile) if Path(profile).is_absolute() else base / profile)
    return hw


def _instance(f: Fields, key: str, shape_fields: Fields | None, model: ModelSpec, hw: Hardware, gpus: int) -> Instance:
    model = _deployed(shape_fields, model)  # reads engine / state_dtype before _shape checks the rest
    engine = shape_fields.str("engine", None) if shape_fields is not None else None
    shape = _shape(shape_fields)
    if engine is not None and "chunk_tokens" not in shape:  # the engine's chunked-prefill default
        from ..catalog.engines import engine_chunk_tokens

        shape["chunk_tokens"] = engine_chunk_tokens(engine, hw)
    try:
        return make_instance(model, hw, gpus, **shape)
    except PlanError as exc:
        # the option names of make_instance as the scenario spells them (--mtp-accept -> mtp_accept)
        raise f.error(key, re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), str(exc))) from None


def cluster(f: Fields, role: str, base: Path, model: ModelSpec) -> Cluster:
    """One role on one part (``hardware`` a single name): the one-pair scenario's cluster."""
    hw = _hardware(f, "hardware", f.str("hardware"), f.str("efficiency_profile", None), base)
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
    instance = _instance(f, "instance", f.sub("instance", None), model, hw, gpus)
    price = f.num("usd_per_gpu_hour", None)
    price_source = f.str("price_source", None)
    if price is not None and price_source is None:
        raise f.error("price_source", "say where usd_per_gpu_hour comes from")
    out = Cluster(hw, gpus, instances, instances_range, f.bool("use_profile", True),
                  price if price is not None else hw.rent_usd_per_gpu_hour,
                  price_source or f"catalog: {hw.price_source} ({hw.price_date})", instance)
    f.done()
    return out


def _names(f: Fields, key: str) -> tuple[str, ...]:
    """A part name or a non-empty list of distinct part names."""
    raw = f.raw(key)
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise f.error(key, "must be a part name or a non-empty list of part names")
    if len(set(names)) != len(names):
        raise f.error(key, f"lists a part twice: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    return tuple(names)


def _per_part(f: Fields, key: str, parts: tuple[str, ...], read, default):
    """``key`` as {part: value}: one value for every part, or a mapping keyed by part name
    (parts left out get ``default``; a name that is not a candidate is an unknown key).
    ``read(fields, key)`` reads one value; a value that is itself a mapping (``instance``) is
    told apart from a per-part mapping by its keys."""
    raw = f.raw(key, None)
    if raw is None:
        return {p: default for p in parts}
    if isinstance(raw, dict) and raw and not set(raw) <= set(_SHAPE_KEYS) | set(PARALLEL_KEYS) | {"engine", "state_dtype"}:  # a per-part mapping (an unknown part is an unknown key)
        sub = f.sub(key)
        out = {p: read(sub, p) if sub.has(p) else default for p in parts}
        sub.done()
        return out
    value = read(f, key)
    return {p: value for p in parts}


def candidate_parts(f: Fields, base: Path, model: ModelSpec, roles: dict[str, str]) -> dict[str, tuple[Cluster, ...]]:
    """The candidate parts of one site, per role: ``roles`` maps a role name to the key listing
    its parts (``{"prfaas": "hardware"}``, or local ``{"prefill": "prefill_hardware", "decode":
    "decode_hardware"}`` where ``hardware`` may set both). Prices, instance sizes, shapes and
    profiles per part as the module docstring says. Returns {role: (Cluster, ...)}."""
    lists, named_at = {}, {}
    for role, key in roles.items():
        if f.has(key) and key != "hardware" and f.has("hardware"):
            raise f.error(key, "give hardware (both roles) or prefill_hardware and decode_hardware, not both")
        source = key if f.has(key) else "hardware"
        if not f.has(source):
            raise f.error(key, "missing" + ("" if key == "hardware" else " (or give hardware for both roles)"))
        lists[role] = _names(f, source)
        listed = isinstance(f.raw(source), list)
        for i, p in enumerate(lists[role]):
            named_at.setdefault(p, f"{source}[{i}]" if listed else source)
    if "hardware" not in roles.values():
        f.raw("hardware", None)
    every = tuple(dict.fromkeys(p for names in lists.values() for p in names))
    prices = _per_part(f, "usd_per_gpu_hour", every, lambda s, k: s.num(k), None)
    if len(every) > 1 and isinstance(f.raw("usd_per_gpu_hour", None), (int, float)):
        raise f.error("usd_per_gpu_hour", f"one number cannot price {len(every)} candidate parts; give a mapping part -> $/GPU-hour")
    price_source = f.str("price_source", None)
    if any(v is not None for v in prices.values()) and price_source is None:
        raise f.error("price_source", "say where usd_per_gpu_hour comes from")
    gpus = _per_part(f, "gpus_per_instance", every, lambda s, k: s.int(k), None)
    missing = [p for p, g in gpus.items() if g is None]
    if missing:
        raise f.error("gpus_per_instance", f"missing for {', '.join(missing)}")
    profiles = _per_part(f, "efficiency_profile", every, lambda s, k: s.str(k), None)
    shapes = _per_part(f, "instance", every, lambda s, k: s.sub(k), None)
    use_profile = f.bool("use_profile", True)
    made = {}
    for p in every:
        hw = _hardware(f, named_at[p], p, profiles[p], base)
        price = prices[p]
        made[p] = Cluster(hw, gpus[p], None, Range(0, None), use_profile,
                          price if price is not None else hw.rent_usd_per_gpu_hour,
                          price_source if price is not None else f"catalog: {hw.price_source} ({hw.price_date})",
                          _instance(f, "instance", shapes[p], model, hw, gpus[p]))
    return {role: tuple(made[p] for p in names) for role, names in lists.items()}
