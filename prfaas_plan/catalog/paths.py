"""Where the shipped catalog lives, and resolving a name-or-path argument to a file.

The catalog folders (``hardware/``, ``models/``, ``scenarios/``, ``traces/``) sit at the top of
the source tree; the wheel carries copies under ``prfaas_plan/_catalog/`` (see
``pyproject.toml``), so an installed package (``pip install .``) finds them without the checkout.
Catalog YAML files go by their stem (``h200``); shipped traces by their file name
(``azure2023_conv.csv``) or the part before its first dot (``azure2023_conv``).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from ..errors import PlanError
from .files import check_regular_file, is_regular_file, show_path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
KINDS = ("hardware", "models", "scenarios", "traces")


def catalog_dir(kind: str) -> Path:
    """The folder holding the shipped ``kind`` catalog (installed copy first, then the checkout)."""
    if kind not in KINDS:
        raise ValueError(kind)
    for candidate in (_PACKAGE_DIR / "_catalog" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise PlanError(f"shipped {kind} catalog not found (looked in {_PACKAGE_DIR / '_catalog' / kind})")


def catalog_names(kind: str) -> list[str]:
    return sorted(p.stem for p in catalog_dir(kind).glob("*.yaml"))


def in_catalog(kind: str, path: Path) -> bool:
    """Whether ``path`` is a file of the shipped ``kind`` catalog."""
    try:
        return path.resolve().parent == catalog_dir(kind).resolve()
    except PlanError:
        return False


def resolve_from(kind: str, name_or_path: str, base: Path) -> Path:
    """Like :func:`resolve`, but a relative path is taken from ``base`` (the folder of the file
    that names it), not from the current directory."""
    path = Path(name_or_path)
    if is_path(name_or_path) and not path.is_absolute():
        return resolve(kind, base / path)
    return resolve(kind, name_or_path)


def is_path(name_or_path: str | Path) -> bool:
    """A path (``./x.yaml``, ``dir/x``) rather than a catalog name (``h200``)."""
    path = Path(str(name_or_path))
    return path.suffix in (".yaml", ".yml") or path.parent != Path(".")


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """A catalog name (``h200``) or a path to a YAML file (``./my-gpu.yaml``) -> the file."""
    text = str(name_or_path)
    path = Path(text)
    if is_path(text):
        check_regular_file(path, "YAML file")
        return path
    candidate = catalog_dir(kind) / f"{text}.yaml"
    if is_regular_file(candidate):
        return candidate
    names = catalog_names(kind)
    folded = [n for n in names if n.casefold() == text.casefold()]  # names are case-insensitive (H200 is h200)
    if len(folded) == 1:
        return catalog_dir(kind) / f"{folded[0]}.yaml"
    label = {"hardware": "hardware", "models": "model", "scenarios": "scenario"}[kind]
    close = difflib.get_close_matches(text.casefold(), names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise PlanError(f"unknown {label} name {short_text(text)}; {hint}known: {', '.join(names)} (or give a path to a .yaml file)")


def short_text(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut to about ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "\u2026")


def _exists(path: Path) -> bool:
    """Whether anything (file, folder, pipe) is at ``path``; False for unreachable paths."""
    try:
        os.stat(path)
        return True
    except (OSError, ValueError):
        return False


def trace_names() -> list[str]:
    """File names of the shipped traces (``traces/``: data files, not its README or licences)."""
    try:
        folder = catalog_dir("traces")
    except PlanError:
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix != ".md" and not p.name.startswith("."))


def resolve_trace(name_or_path: str | Path, base: Path | None = None) -> Path:
    """A trace file: a path (relative ones from ``base``, the folder of the file that names it,
    else the current directory), or the name of a shipped trace (its file name, or the part before
    the first dot). A name without a folder part that exists beside ``base`` is that file; only
    otherwise is the shipped catalog consulted."""
    text = str(name_or_path)
    path = Path(text)
    local = path if path.is_absolute() or base is None else base / path
    if path.parent != Path(".") or path.is_absolute() or _exists(local):
        check_regular_file(local, "trace file")
        return local
    names = trace_names()
    for name in names:
        if text == name or text == name.split(".", 1)[0]:
            return catalog_dir("traces") / name
    raise PlanError(f"{show_path(local)}: file not found, and no shipped trace is named {short_text(text)}; shipped: {', '.join(names) or 'none'}")
