"""Terminal tables and the progress bar (rich): tables whose numbers are never cut, that split
across the terminal's width instead of being cropped, and the console they print on. The views
that use them (a plan, what-ifs, sweeps, estimates, simulations) are in :mod:`.render`; these two
modules are the only ones besides the CLI that import rich. Every title, caption, header and cell
goes through :func:`_literal` here (a ``Text``, shown as written on any console), and the console
of :func:`console` reads no markup, so lines print as written too: rich markup would drop
``[chicago]`` from ``sites.local[chicago]`` and ``[PRFAAS]`` from a price source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.table import Table

Column = tuple[str, str, Callable[[Any], str]]  # (row key, header, formatter)


def _literal(s: str | None) -> Text | None:
    """Text shown as written on any console, never read as rich markup (``links[0]``,
    ``sites.local[chicago]``)."""
    return None if s is None else Text(s)


def fmt(spec: str) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None:
            return "-"
        return format(v, spec) if isinstance(v, (int, float)) else str(v)

    return f


def text(v: Any) -> str:
    return "-" if v is None else str(v)


def _min_width(cells: list[list[str]], i: int, is_text: bool) -> int:
    if is_text:  # wraps at spaces, but never below its longest word (up to 14 characters)
        return min(max((len(w) for r in cells for w in r[i].split()), default=1), 14)
    return max((len(r[i]) for r in cells), default=1)


def _fitting(columns: Sequence[Column], rows: Sequence[dict]) -> tuple[list[Column], list[list[str]], list[int]]:
    """The columns worth showing (one whose every cell is "-" says nothing and is left out, the
    first never), their cells, and each one's least width: its widest number, or for text its
    longest word up to 14 characters, and never less than its header's longest word (so that a
    header is not broken inside a word: "Prfa aS")."""
    cells = [[f(row.get(key)) for key, _, f in columns] for row in rows]
    keep = [i for i in range(len(columns)) if i == 0 or not cells or any(r[i] != "-" for r in cells)]
    columns, cells = [columns[i] for i in keep], [[r[i] for i in keep] for r in cells]
    widths = [max(_min_width(cells, i, f is text), min(max((len(w) for w in h.split()), default=1), 14)) for i, (_, h, f) in enumerate(columns)]
    return columns, cells, widths


def _table_width(widths: Sequence[int]) -> int:
    """Characters a rich table with these column widths takes: one space of padding each side
    and a rule between and around the columns."""
    return sum(w + 3 for w in widths) + 1


def rows_table(rows: Sequence[dict], columns: Sequence[Column], title: str | None = None, caption: str | None = None,
               width: int | None = None, keep: int | None = None) -> Table:
    """A table whose number columns never shrink below their widest value: on a narrow terminal
    text columns wrap at spaces instead, so no number is cut to "3.…" and no header inside a
    word. Given the console ``width``, columns after the first ``keep`` are left out while the
    table cannot fit (:func:`rows_tables` moves them to a second table instead)."""
    columns, cells, widths = _fitting(columns, rows)
    n = len(columns)
    if width is not None and keep is not None:
        while n > keep and _table_width(widths[:n]) > width:
            n -= 1
        if n < len(columns):
            note = f"{len(columns) - n} columns left out at this width ({', '.join(h for _, h, _ in columns[n:])}); widen the terminal or use -f json."
            caption = f"{caption}\n{note}" if caption else note
    return _table(columns[:n], [r[:n] for r in cells], widths[:n], title, caption, width)


def _table(columns: Sequence[Column], cells: list[list[str]], widths: Sequence[int], title: str | None, caption: str | None,
           width: int | None = None) -> Table:
    """The rich table; when it cannot have every cell and header on one line within ``width``,
    number columns take their least width (their headers wrap) and text columns share the rest
    (left to rich alone, a squeezed table can still overflow and be cropped)."""
    natural = [max([len(columns[i][1]), *(len(r[i]) for r in cells)]) for i in range(len(columns))]
    squeeze = width is not None and _table_width(natural) > width
    table = Table(title=_literal(title), caption=_literal(caption), caption_justify="left", title_justify="left")
    for (_, header, f), w in zip(columns, widths):
        fixed = w if squeeze and f is not text else None
        table.add_column(_literal(header), justify="left" if f is text else "right", min_width=w, width=fixed, overflow="fold")
    for r in cells:
        table.add_row(*map(_literal, r))
    return table


def rows_tables(rows: Sequence[dict], columns: Sequence[Column], title: str, width: int, caption: str | None = None) -> list[Table]:
    """:func:`rows_table` for a terminal ``width`` columns wide: the columns that do not fit go to
    further tables, each repeating the first (the row's name), so that nothing is cropped."""
    columns, cells, widths = _fitting(columns, rows)
    groups: list[list[int]] = [[0]]
    for i in range(1, len(columns)):
        if len(groups[-1]) > 1 and _table_width([widths[j] for j in (*groups[-1], i)]) > width:
            groups.append([0])
        groups[-1].append(i)
    return [_table([columns[i] for i in g], [[r[i] for i in g] for r in cells], [widths[i] for i in g],
                   title if k == 0 else f"{title} (continued)", caption if k == len(groups) - 1 else None, width)
            for k, g in enumerate(groups)]


def kv_value_table(pairs: Sequence[tuple[str, str]], title: str | None = None) -> Table:
    table = Table(title=_literal(title), show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in pairs:
        table.add_row(_literal(k), _literal(v))
    return table


def console(width: int | None = None) -> Console:
    """A console for tables. Off a terminal (pipes, CI, tests) rich would assume 80 columns and
    squeeze wide tables; use COLUMNS if set, else 160."""
    import os
    import sys

    if width is None and not sys.stdout.isatty():
        width = int(os.environ.get("COLUMNS", "160"))
    return Console(width=width, soft_wrap=False, markup=False)


# --- plans ----------------------------------------------------------------------------------------


@contextmanager
def progress(label: str):
    """A progress bar on stderr (a terminal only: nothing in pipes and logs); yields
    ``tick(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not err.is_terminal:
        yield lambda done, total: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick
