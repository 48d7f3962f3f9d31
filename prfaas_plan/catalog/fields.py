"""Strict reading of YAML mappings: every key checked, every error one line naming file and key.

A :class:`Fields` wraps one mapping of a YAML document. Each accessor records the key as used;
:meth:`Fields.done` then rejects any key that was not read, so a typo (``capacity_GB``) is an
error instead of a silently ignored value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ..errors import PlanError
from .paths import in_catalog, resolve

_MISSING = object()


def load_yaml_mapping(path: Path) -> dict:
    """Read a YAML file that must hold one mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: cannot read file ({exc.__class__.__name__}: {exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlanError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        raise PlanError(f"{path}: file is empty")
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


class Fields:
    """Typed, checked access to one YAML mapping (see module docstring)."""

    def __init__(self, data: Any, source: str | Path, prefix: str = ""):
        self.source = str(source)
        self.prefix = prefix
        if not isinstance(data, dict):
            raise PlanError(f"{self.source}: key '{prefix or '<top>'}': expected a mapping, got {_kind(data)}")
        self.data = data
        self._used: set[str] = set()

    # -- errors -----------------------------------------------------------------------------
    def key_path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, problem: str) -> PlanError:
        return PlanError(f"{self.source}: key '{self.key_path(key)}': {problem}")

    # -- access -----------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                raise self.error(key, "missing")
            return default
        return self.data[key]

    def num(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        min_value: float | None = None,
        positive: bool = True,
        integer: bool = False,
    ) -> Any:
        """A finite number; by default > 0. ``min_value`` replaces the > 0 rule with >= min."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number, got {_kind(value)} {value!r}")
        if not math.isfinite(value):
            raise self.error(key, f"must be finite, got {value!r}")
        if integer and float(value) != int(value):
            raise self.error(key, f"must be a whole number, got {value!r}")
        if min_value is not None:
            if value < min_value:
                raise self.error(key, f"must be >= {min_value:g}, got {value!r}")
        elif positive and value <= 0:
            raise self.error(key, f"must be > 0, got {value!r}")
        return int(value) if integer else float(value)

    def int(self, key: str, default: Any = _MISSING, *, min_value: int | None = 1) -> Any:
        return self.num(key, default, min_value=min_value, integer=True)

    def frac(self, key: str, default: Any = _MISSING) -> Any:
        """A fraction in (0, 1]."""
        value = self.num(key, default)
        if value is not default and value > 1:
            raise self.error(key, f"must be a fraction in (0, 1], got {value!r}")
        return value

    def str(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {_kind(value)} {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def list(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, got {_kind(value)}")
        return value

    def sub(self, key: str, default: Any = _MISSING) -> Any:
        """The nested mapping under ``key`` as a :class:`Fields`."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        return Fields(value, self.source, self.key_path(key))

    def item(self, key: str, index: int) -> Fields:
        """Element ``index`` of the list under ``key``, which must be a mapping."""
        return Fields(self.data[key][index], self.source, f"{self.key_path(key)}[{index}]")

    def str_list(self, key: str) -> tuple[str, ...]:
        values = self.list(key, [])
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.error(f"{key}[{i}]", f"must be a string, got {_kind(v)}")
        return tuple(values)

    def sources(self) -> tuple[str, ...]:
        """The non-empty ``sources`` list every catalog file must carry."""
        sources = self.str_list("sources")
        if not sources:
            raise self.error("sources", "every catalog file must list its sources")
        return sources

    def estimates(self) -> tuple[tuple[str, str], ...]:
        """The ``estimates`` list: (dotted key, note) for every estimated or assumed value."""
        out = []
        for i, _ in enumerate(self.list("estimates", [])):
            e = self.item("estimates", i)
            out.append((e.str("key"), e.str("note")))
            e.done()
        return tuple(out)

    def done(self) -> None:
        """Reject keys that no accessor read."""
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            raise self.error(str(unknown[0]), "unknown key" + (f" (also: {', '.join(map(str, unknown[1:]))})" if len(unknown) > 1 else ""))


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


def open_catalog_file(kind: str, name_or_path: str | Path) -> tuple[Path, Fields, str]:
    """Resolve a catalog name or path and read its mapping. Inside the shipped catalog ``name``
    must equal the file name (so that a catalog name always finds the file it names); a file
    anywhere else is found by its path, so its ``name`` is free and defaults to the file name
    (a copied file works before anyone edits it)."""
    path = resolve(kind, name_or_path)
    f = Fields(load_yaml_mapping(path), path)
    if in_catalog(kind, path):
        name = f.str("name")
        if name != path.stem:
            raise f.error("name", f"must equal the file name {path.stem!r} inside the catalog, got {name!r}")
    else:
        name = f.str("name", path.stem)
    return path, f, name
