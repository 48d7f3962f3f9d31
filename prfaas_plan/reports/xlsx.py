"""Spreadsheets a reviewer can read (openpyxl, imported only here): number formats per unit,
columns fitted to their contents, frozen bold headers, landscape pages fitted to the width, live
formulas where they let a reviewer follow the arithmetic, native charts for sweeps.

:func:`review_workbook` writes the design-review workbook of a plan (Summary, Inputs, Plan &
baselines, Capacities, What-ifs, Sweeps); :func:`table_workbook` any list of row tables.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

#: Number formats by the unit a key's name carries (units in names, house style).
FORMATS = (("usd_per_million", "0.000"), ("_frac", "0.0%"), ("_tokens", "#,##0"), ("_req_per_s", "0.000"), ("_usd_per_hour", "#,##0.00"),
           ("usd_per_1k_requests", "0.0000"), ("_usd_per_gpu_hour", "0.00"), ("_gbit_per_s", "#,##0.0"), ("_s", "0.000"),
           ("_bytes", "#,##0"), ("_mib", "#,##0.0"), ("n_", "0"), ("_vs_", "0.00\"x\""), ("gain", "0.00\"x\""))
MAX_WIDTH = 60
BOLD_WIDTH = 1.2  # a bold header character is about this many default-width characters wide
TEXT_WIDTH = 42  # longer text wraps within this width


def number_format(key: str) -> str | None:
    k = key.lower()
    for pattern, fmt in FORMATS:
        if (k.startswith(pattern) if pattern.endswith("_") and not pattern.startswith("_") else pattern in k):
            return fmt
    return None


def _shown_len(v, fmt: str | None) -> int:
    if v is None:
        return 1
    if isinstance(v, str) and v.startswith("="):
        return 10
    if isinstance(v, float):
        return len(f"{v:,.3f}") if fmt is None or "0.0" in fmt else len(f"{v:,.0f}") + 1
    return max(len(line) for line in str(v).splitlines() or [""])


class Sheet:
    """One worksheet written as blocks of tables, then fitted and set up for printing."""

    def __init__(self, wb, title: str):
        from openpyxl.styles import Alignment, Font, PatternFill

        self.ws = wb.create_sheet(title=title[:31])
        self.row = 1
        self.widths: dict[int, int] = {}
        self.bold, self.wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
        self.head_fill = PatternFill("solid", fgColor="DDE6F0")
        self.flag_fill = PatternFill("solid", fgColor="FFF3C4")
        self.frozen = False
        self.wrapped: list[tuple[int, int, str]] = []  # (row, column, text) of wrapped cells

    def title(self, text: str) -> None:
        from openpyxl.styles import Font

        self.ws.cell(self.row, 1, text).font = Font(bold=True, size=13)
        self.row += 1

    def line(self, *values) -> int:
        """A label (bold) and values; long text runs on to the right rather than widening columns."""
        for i, v in enumerate(values, start=1):
            c = self.ws.cell(self.row, i, v)
            if i == 1:
                c.font = self.bold
                self._fit(i, v, None)
        self.row += 1
        return self.row - 1

    def table(self, header: Sequence[str], rows: Sequence[Sequence], keys: Sequence[str] | None = None,
              flags: Sequence[bool] | None = None, freeze: bool = False) -> tuple[int, int]:
        """Write a header and rows; ``keys`` (unit-named) pick number formats. Returns the first
        and last data row."""
        ws = self.ws
        for i, h in enumerate(header, start=1):
            c = ws.cell(self.row, i, h)
            c.font, c.fill, c.alignment = self.bold, self.head_fill, self.wrap
            self._fit(i, h, None, header=True)
            self.wrapped.append((self.row, i, h))
        if freeze and not self.frozen:
            ws.freeze_panes = ws.cell(self.row + 1, 1)
            self.frozen = True
        first = self.row + 1
        for r_i, row in enumerate(rows):
            self.row += 1
            for i, v in enumerate(row, start=1):
                fmt = number_format(keys[i - 1]) if keys else None
                c = ws.cell(self.row, i, v)
                if fmt and (isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, str) and v.startswith("=")):
                    c.number_format = fmt
                if isinstance(v, str) and len(v) > TEXT_WIDTH - 2:
                    c.alignment = self.wrap
                    self.wrapped.append((self.row, i, v))
                if flags and flags[r_i]:
                    c.fill = self.flag_fill
                self._fit(i, v, fmt)
        self.row += 2
        return first, self.row - 2

    def _fit(self, col: int, v, fmt, header: bool = False) -> None:
        n = _shown_len(v, fmt) + 2
        if header:  # long headers wrap at spaces instead of widening number columns, never inside a word
            n = max(min(n, 18), math.ceil(max((len(w) for w in str(v).split()), default=1) * BOLD_WIDTH) + 2)
        elif isinstance(v, str):
            n = min(n, TEXT_WIDTH)
        self.widths[col] = max(self.widths.get(col, 8), min(n, MAX_WIDTH))

    def finish(self) -> None:
        from openpyxl.utils import get_column_letter

        ws = self.ws
        for col, w in self.widths.items():
            ws.column_dimensions[get_column_letter(col)].width = w
        heights: dict[int, int] = {}
        for row, col, text in self.wrapped:  # spreadsheet apps do not grow rows written by openpyxl
            lines = sum(-(-max(len(part), 1) // max(self.widths.get(col, 10) - 2, 1)) for part in text.splitlines() or [""])
            heights[row] = max(heights.get(row, 1), lines)
        for row, lines in heights.items():
            ws.row_dimensions[row].height = 15 * lines
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 1
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.gridLines = False
        ws.page_margins.left = ws.page_margins.right = 0.4
        ws.oddFooter.center.text = "&A - page &P of &N"


def review_summary(wb, title: str, rv: dict) -> Sheet:
    """A review's Summary sheet begun: ``title``, the question, the answer and the verdict (filled
    when the plan misses a demand), then a blank row."""
    s = Sheet(wb, "Summary")
    s.title(title)
    s.line("question", rv["question"])
    s.line("answer", rv["answer"])
    row = s.line("verdict", rv["plan"]["verdict"]["text"])
    if not rv["plan"]["verdict"]["ok"]:
        s.ws.cell(row, 2).fill = s.flag_fill
    s.row += 1
    return s


def new_workbook():
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    return wb


def save(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _columns(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    return cols


def rows_sheet(wb, title: str, rows: list[dict], heading: str | None = None) -> Sheet:
    """A sheet holding one table of flat rows (column = key), formats from the key names."""
    s = Sheet(wb, title)
    if heading:
        s.title(heading)
    cols = _columns(rows)
    s.table(cols, [[r.get(c) for c in cols] for r in rows], keys=cols, freeze=True)
    return s


def table_workbook(sheets: dict[str, list[dict]], about: list[tuple[str, object]] | None = None) -> bytes:
    """Any tables (one sheet each), styled; ``about``: provenance lines on a first sheet."""
    from .export import flat

    wb = new_workbook()
    if about:
        s = Sheet(wb, "About")
        for k, v in about:
            s.line(k, v)
        s.finish()
    for name, rows in sheets.items():
        rows_sheet(wb, name, [flat(r) for r in rows]).finish()
    return save(wb)


def _chart_title(text: str, size_pt: int = 11):
    """A chart title in a readable size (the default is 18 pt, which spills past a small chart)."""
    from openpyxl.chart.text import RichText, Text
    from openpyxl.chart.title import Title
    from openpyxl.drawing.text import CharacterProperties, Paragraph, ParagraphProperties, RegularTextRun

    props = CharacterProperties(sz=size_pt * 100, b=True)
    para = Paragraph(pPr=ParagraphProperties(defRPr=props), r=[RegularTextRun(rPr=props, t=text)])
    return Title(tx=Text(rich=RichText(p=[para])), overlay=False)


def line_chart(ws, title: str, x_title: str, y_title: str, x_ref, series: list[tuple[str, object]], anchor: str, log_x: bool = False,
               x_range: tuple[float, float] | None = None):
    """A native scatter-with-lines chart of ``series`` (name, reference) against ``x_ref``: one
    colour-blind-safe colour per series (:data:`labels.PALETTE`), y from 0, the x axis over
    ``x_range`` (the data's) rather than the spreadsheet's rounded-up axis, the legend below."""
    from openpyxl.chart import ScatterChart, Series

    from .labels import PALETTE

    ch = ScatterChart()
    ch.title = _chart_title(title)
    ch.style = 2  # plain; the colours are set per series below
    ch.x_axis.title, ch.y_axis.title = x_title, y_title
    ch.x_axis.delete = ch.y_axis.delete = False
    ch.y_axis.scaling.min = 0
    ch.x_axis.number_format = ch.y_axis.number_format = "#,##0.##"
    if log_x:
        ch.x_axis.scaling.logBase = 10
    if x_range is not None:
        ch.x_axis.scaling.min, ch.x_axis.scaling.max = x_range
    for i, (name, ref) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)].lstrip("#")
        s = Series(ref, x_ref, title=name)
        s.graphicalProperties.line.solidFill = colour
        s.graphicalProperties.line.width = 22000  # EMU, ~1.75 pt
        s.marker.symbol = "circle"
        s.marker.size = 5
        s.marker.graphicalProperties.solidFill = colour
        s.marker.graphicalProperties.line.solidFill = colour
        s.smooth = False
        ch.series.append(s)
    ch.legend.position = "b"
    ch.height, ch.width = 8, 15
    ws.add_chart(ch, anchor)
    return ch


def define_section(wb, name: str, sheet: str, first_row: int, last_row: int, last_col: str = "Q") -> str:
    """A workbook-level name for the rows of a section (reachable from the Name Box / Navigator);
    returns the name (runs of other characters become one '_')."""
    from openpyxl.workbook.defined_name import DefinedName

    key = "_".join("".join(ch if ch.isalnum() else " " for ch in name).split())
    quoted = sheet.replace("'", "''")
    wb.defined_names[key] = DefinedName(key, attr_text=f"'{quoted}'!$A${first_row}:${last_col}${last_row}")
    return key
