"""What the CLI does about start-up cost besides importing lazily; no typer import here (the
objects typer made are handed in by cli/__init__.py).

- :class:`PlainValues`: typer >= 0.2x converts every option value through a pydantic TypeAdapter
  it builds per parameter on every run; importing pydantic alone is ~50 ms, more than a short
  command's own work. Plain values (a str, digits for an int or float, an Enum value, a list of
  str) are converted here with the same result; anything else goes to typer's own converter.
- :func:`one_blas_thread`: numpy's OpenBLAS thread pool, never used by a command.
"""

from __future__ import annotations

import os
import re
import sys
import typing
from enum import Enum

_MISS = object()
_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class PlainValues:
    """Converts a command-line value the way typer would, for the plain cases (a str; an int or
    float written as digits or given as a default, inside min..max; an Enum by its exact value
    or member; a list of str); anything else (a Path, a bad value and its error message, a
    parser, clamping, case folding) goes to typer's own converter, built on first need
    (tests/test_cli_values.py compares the two on every parameter)."""

    __slots__ = ("annotation", "info", "multi")

    def __init__(self, param):
        self.annotation, self.info = param.type_descriptor.annotation, param.type_descriptor.parameter_info
        self.multi = bool(param.multiple or param.nargs == -1)

    def coerce(self, value, param, ctx):
        if value is None:  # as typer: no value, no conversion
            return () if self.multi else None
        if self.multi:
            inner = typing.get_args(self.annotation)
            plain = (list(value) if isinstance(value, (list, tuple)) and inner == (str,) and all(type(v) is str for v in value) else _MISS)
        else:
            plain = self._plain(value, ctx)
        if plain is not _MISS:
            return plain
        param._runtime_param = None  # typer's converter replaces this one for good
        return param.get_runtime_param().coerce(value, param=param, ctx=ctx)

    def _plain(self, value, ctx):
        a, info = self.annotation, self.info
        if info.parser is not None:
            return _MISS
        if a is str:
            return value if type(value) is str else _MISS
        if a is int or a is float:
            if type(value) is a:
                number = value
            elif type(value) is str and (_INT if a is int else _DECIMAL).fullmatch(value):
                number = a(value)
            else:
                return _MISS
            inside = (info.min is None or number >= info.min) and (info.max is None or number <= info.max)
            return number if inside and not info.clamp else _MISS
        if isinstance(a, type) and issubclass(a, Enum):
            if type(value) is a:
                return value
            if type(value) is str and info.case_sensitive and getattr(ctx, "token_normalize_func", None) is None:
                return next((m for m in a if str(m.value) == value), _MISS)
        return _MISS


def plain_values(command, ctx, depth: int = 0) -> None:
    """Give the parameters of ``command`` (its help option too, which click makes on first need
    and keeps) and, to ``depth`` levels, of its subcommands a :class:`PlainValues` converter;
    only where typer keeps a lazily built converter (other typer versions are left alone)."""
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "_runtime_param", _MISS) is None and hasattr(param, "type_descriptor") and hasattr(param, "get_runtime_param"):
            param._runtime_param = PlainValues(param)
    if depth > 0:
        for sub in getattr(command, "commands", {}).values():
            plain_values(sub, ctx, depth - 1)


def one_blas_thread() -> None:
    """numpy's OpenBLAS starts a spinning thread per core when numpy is imported; a command's
    linear algebra is a few tiny fits, never threaded, and on a busy machine those threads cost
    it 30-60 ms. Unless the user chose a thread count, a command (before numpy loads) asks for one."""
    if "numpy" not in sys.modules and not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
