"""Changing a scenario from the command line: ``--set KEY=VALUE`` / ``--set KEY*=FACTOR`` (dotted
scenario keys, e.g. ``link.bandwidth_gbit_per_s=50``, ``workload.arrival_req_per_s*=1.5``) and
sweep axes ``KEY=START:STOP:N`` or ``KEY=v1,v2,...``.

Overrides act on the scenario file's YAML mapping before it is read, so every changed value is
checked exactly like a value in the file (unknown keys, units, ranges).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from ..bounds import check
from ..catalog.strict_yaml import load_value
from ..errors import PlanError


@dataclass(frozen=True)
class Override:
    """``key`` (dotted) set to ``value``, or multiplied by ``value`` when ``scale`` is true
    (``optional``: a scaled key that is absent is left absent instead of being an error)."""

    key: str
    value: Any
    scale: bool = False
    optional: bool = False

    @property
    def label(self) -> str:
        return f"{self.key}{'*=' if self.scale else '='}{_show(self.value)}"


def _show(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _yaml_value(text: str, where: str) -> Any:
    try:
        return load_value(text) if text.strip() else None
    except yaml.YAMLError:
        raise PlanError(f"{where}: cannot read value {text!r} (write it as in the scenario YAML)") from None


def _key(text: str, where: str) -> str:
    key = text.strip()
    if not key or any(not part for part in key.split(".")):
        raise PlanError(f"{where}: expected KEY=VALUE with a dotted scenario key, e.g. link.bandwidth_gbit_per_s=50")
    return key


def parse_set(text: str) -> Override:
    """``KEY=VALUE`` (VALUE read as YAML: 50, true, [10, 25], {kind: budget}) or ``KEY*=FACTOR``."""
    where = f"--set {text}"
    if "=" not in text:
        raise PlanError(f"{where}: expected KEY=VALUE or KEY*=FACTOR")
    key, _, raw = text.partition("=")
    if key.endswith("*"):
        factor = _yaml_value(raw, where)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            raise PlanError(f"{where}: FACTOR must be a number > 0")
        return Override(_key(key[:-1], where), float(factor), scale=True)
    return Override(_key(key, where), _yaml_value(raw, where))


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """A sweep axis: ``KEY=START:STOP:N`` (N evenly spaced values, ends included) or
    ``KEY=v1,v2,...``."""
    where = f"--vary {text}"
    if "=" not in text:
        raise PlanError(f"{where}: expected KEY=START:STOP:N or KEY=v1,v2,...")
    key, _, raw = text.partition("=")
    key = _key(key, where)
    if raw.count(":") == 2:
        start, stop, n = (_yaml_value(p, where) for p in raw.split(":"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop)):
            raise PlanError(f"{where}: START and STOP must be numbers")
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise PlanError(f"{where}: N must be a whole number >= 2")
        check("sweep_axis_points", n, f"{where}: N")
        return key, [float(v) for v in np.linspace(start, stop, n)]
    if ":" in raw:
        raise PlanError(f"{where}: expected KEY=START:STOP:N or KEY=v1,v2,...")
    parts = raw.split(",")
    if any(not p.strip() for p in parts):
        i = next(i for i, p in enumerate(parts) if not p.strip())
        raise PlanError(f"--vary {key}: value {i + 1} of {len(parts)} is empty; give KEY=v1,v2,... without empty values")
    check("sweep_axis_points", len(parts), f"--vary {key}: the number of values")
    return key, [_yaml_value(p, where) for p in parts]


#: Cluster roles whose price belongs to their part (``ROLE.hardware`` -> ``ROLE.usd_per_gpu_hour``).
PRICED_ROLES = ("prfaas", "local")


def prices_follow_hardware(data: dict, overrides: tuple[Override, ...] | list[Override]) -> tuple[Override, ...]:
    """A scenario's ``ROLE.usd_per_gpu_hour`` is the price of the part it names: an override that
    changes ``ROLE.hardware`` to another part without also setting the price drops the file's
    price (and its source), so the new part is priced at its catalog price. Returns those extra
    overrides (clearing a key is setting it to null, which reads as absent)."""
    keys = {o.key for o in overrides}
    out = []
    for role in PRICED_ROLES:
        if f"{role}.usd_per_gpu_hour" in keys:
            continue
        cluster = data.get(role) if isinstance(data.get(role), dict) else {}
        moved = [o for o in overrides if o.key == f"{role}.hardware" and not o.scale and o.value != cluster.get("hardware")]
        if moved and cluster.get("usd_per_gpu_hour") is not None:
            out += [Override(f"{role}.usd_per_gpu_hour", None), Override(f"{role}.price_source", None)]
    return tuple(out)


#: A path step into a list: ``links[0]`` (by position), ``sites.local[new-york]`` (the element
#: whose ``name`` is that), ``links[*]`` (every element).
_LIST_STEP = re.compile(r"^([^\[\]]+)\[([^\[\]]+)\]$")


def _positions(items: list, selector: str, where: str) -> list[int]:
    """The positions ``selector`` names in ``items``: ``*``, a whole number, or an element's name."""
    if selector == "*":
        return list(range(len(items)))
    if selector.strip().lstrip("-").isdigit():
        i = int(selector)
        if not 0 <= i < len(items):
            raise PlanError(f"{where}: index {i} is out of range (the list has {len(items)} entries)")
        return [i]
    found = [i for i, x in enumerate(items) if isinstance(x, dict) and x.get("name") == selector]
    if not found:
        names = [str(x.get("name")) for x in items if isinstance(x, dict) and "name" in x]
        raise PlanError(f"{where}: no entry named {selector!r} (names: {', '.join(names) or 'none'})")
    return found


def _set_leaf(node, leaf, o: Override, where: str) -> None:
    """Set or scale ``node[leaf]`` (``node`` a fresh copy: a dict, or a list and a position)."""
    if not o.scale:
        node[leaf] = copy.deepcopy(o.value)
        return
    old = node.get(leaf) if isinstance(node, dict) else node[leaf]
    if isinstance(old, (int, float)) and not isinstance(old, bool):
        node[leaf] = old * o.value
    elif isinstance(old, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in old):
        node[leaf] = [v * o.value for v in old]  # a new list: the original stays as it was
    elif old is None:
        if not o.optional:
            raise PlanError(f"{where}: key '{o.key}' is not set, nothing to scale")
    else:
        raise PlanError(f"{where}: key '{o.key}' holds {old!r}, not a number to scale")


def _apply_path(node: dict, parts: list[str], done: list[str], o: Override, where: str) -> None:
    """Apply ``o`` below ``node`` (a fresh copy) along ``parts``, copying what it changes."""
    head, rest = parts[0], parts[1:]
    step = _LIST_STEP.match(head)
    name = step.group(1) if step else head
    if step is None:
        if not rest:
            _set_leaf(node, name, o, where)
            return
        nxt = node.get(name)
        if nxt is None:
            nxt = {}
        if not isinstance(nxt, dict):
            raise PlanError(f"{where}: key '{'.'.join(done + [name])}' is not a mapping")
        node[name] = nxt = dict(nxt)
        _apply_path(nxt, rest, done + [name], o, where)
        return
    items = node.get(name)
    if not isinstance(items, list):
        raise PlanError(f"{where}: key '{'.'.join(done + [name])}' is not a list (index a list as KEY[0], KEY[NAME] or KEY[*])")
    items = node[name] = list(items)
    for i in _positions(items, step.group(2), f"{where}: key '{'.'.join(done + [head])}'"):
        if not rest:
            _set_leaf(items, i, o, where)
            continue
        if not isinstance(items[i], dict):
            raise PlanError(f"{where}: key '{'.'.join(done + [name])}[{i}]' is not a mapping")
        items[i] = dict(items[i])
        _apply_path(items[i], rest, done + [f"{name}[{i}]"], o, where)


def apply_overrides(data: dict, overrides: tuple[Override, ...] | list[Override], source: str) -> dict:
    """A copy of the scenario mapping ``data`` with ``overrides`` applied (missing intermediate
    mappings are created; a scaled key must hold a number or a list of numbers). A step into a
    list names its entries (:data:`_LIST_STEP`: ``links[0]``, ``sites.local[new-york]``,
    ``links[*]``). A part changed without its price is priced from the catalog
    (:func:`prices_follow_hardware`)."""
    out = dict(data)
    for o in (*overrides, *prices_follow_hardware(data, overrides)):
        _apply_path(out, o.key.split("."), [], o, f"{source}: --set {o.label}")
    return out


def with_price_sources(overrides: tuple[Override, ...]) -> tuple[Override, ...]:
    """A price set on the command line names its source as such (scenario prices need one)."""
    out = list(overrides)
    keys = {o.key for o in overrides}
    for o in overrides:
        if o.key.endswith(".usd_per_gpu_hour"):
            src = o.key.replace("usd_per_gpu_hour", "price_source")
            if src not in keys:
                out.append(Override(src, f"what-if: {o.label}"))
    return tuple(out)


def parse_sets(texts: list[str] | None) -> tuple[Override, ...]:
    """``--set`` options as overrides, with a source named for any price they set."""
    return with_price_sources(tuple(parse_set(t) for t in texts or []))
