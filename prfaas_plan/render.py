"""Terminal tables (rich). The only module besides the CLI that knows how output looks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

Column = tuple[str, str, Callable[[Any], str]]  # (row key, header, formatter)


def fmt(spec: str) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None:
            return "-"
        return format(v, spec) if isinstance(v, (int, float)) else str(v)

    return f


def text(v: Any) -> str:
    return "-" if v is None else str(v)


def rows_table(rows: Sequence[dict], columns: Sequence[Column], title: str | None = None, caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption, caption_justify="left", title_justify="left")
    for _, header, f in columns:
        table.add_column(header, justify="left" if f is text else "right")
    for row in rows:
        table.add_row(*(f(row.get(key)) for key, _, f in columns))
    return table


def kv_value_table(pairs: Sequence[tuple[str, str]], title: str | None = None) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in pairs:
        table.add_row(k, v)
    return table


def console(width: int | None = None) -> Console:
    """A console for tables. Off a terminal (pipes, CI, tests) rich would assume 80 columns and
    squeeze wide tables; use COLUMNS if set, else 160."""
    import os
    import sys

    if width is None and not sys.stdout.isatty():
        width = int(os.environ.get("COLUMNS", "160"))
    return Console(width=width, soft_wrap=False)
