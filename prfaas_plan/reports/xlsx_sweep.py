"""Sweeps in workbooks: a table of the points with native charts beside it, for `sweep -o x.xlsx`
and the review workbook's Sweeps section. Headers and axis titles are words with units
(:mod:`labels`), the varied keys keep their prefix; every series has its own colour-blind-safe
colour, y axes start at 0 and x axes run over the data."""

from __future__ import annotations

import math

from .export import flat
from .labels import axis_label, value_label
from .provenance import provenance_columns
from .xlsx import Sheet, line_chart, new_workbook, rows_sheet, save

CHART_ROWS = 18  # rows a chart (8 cm high) covers, with a gap
CHART_COLUMNS = 9  # default-width columns a chart (15 cm wide) covers, with a gap

#: The plan columns of a sweep table, after the varied keys (flattened keys of a sweep row).
PLAN_COLUMNS = [("threshold_tokens", "t (tokens)"), ("n_prfaas", "PrfaaS inst."), ("n_pd_prefill", "PD-P inst."), ("n_pd_decode", "PD-D inst."),
                ("link_gbit_per_s", "link (Gbit/s)"), ("throughput_req_per_s", "Lambda_max (req/s)"), ("cost_usd_per_hour", "cost ($/hour)"),
                ("usd_per_1k_requests", "$ per 1k requests"), ("usd_per_million_tokens.total", "$ per M tokens"),
                ("prfaas_usd_per_gpu_hour", "PrfaaS $/GPU-h"), ("local_usd_per_gpu_hour", "local $/GPU-h"),
                ("bottleneck", "binding"), ("error", "note")]
_HEADERS = dict(PLAN_COLUMNS)


def _header(key: str) -> str:
    """A column header: its words, then its unit on a line of its own (a spreadsheet would
    otherwise wrap "($/GPU-hour)" at its hyphen)."""
    return (_HEADERS.get(key) or axis_label(key)).replace(" (", "\n(")


def _words(key: str) -> str:
    return _header(key).split("\n(")[0].replace("\n", " ")


def _chart_col(n_columns: int) -> str:
    """The column a chart starts in: one empty column right of a table of ``n_columns``."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(n_columns + 2)


def _x_range(values: list, log: bool = False) -> tuple[float, float] | None:
    """The x axis bounds: the data's (a spreadsheet would round them out, e.g. 6,000 to 10,000); on
    a log axis, whose ticks step by 10x from the minimum, the 1-2-5 values just around them."""
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) != len(values) or not nums or min(nums) >= max(nums):
        return None
    lo, hi = min(nums), max(nums)
    if log and lo > 0:
        nice = [m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
        lo, hi = max(v for v in nice if v <= lo * (1 + 1e-9)), min(v for v in nice if v >= hi * (1 - 1e-9))
    return lo, hi


def sweep_block(s: Sheet, title: str, rows: list[dict], x_key: str, y_keys: list[str], anchor_col: str, log_x: bool = False) -> None:
    """A 1-D sweep: a table of ``x_key`` and ``y_keys`` (flattened row keys), and native charts of
    the first two ``y_keys`` against ``x_key`` beside it, one below the other."""
    from openpyxl.chart import Reference

    s.title(title)
    ok = [flat(r) for r in rows if r.get("error") is None]
    keys = [x_key, *y_keys]
    chart_row = s.row
    first, last = s.table([_header(k) for k in keys], [[r.get(k) for k in keys] for r in ok], keys=[k.replace(".", "_") for k in keys], freeze=True)
    if not ok:
        return
    x_ref = Reference(s.ws, min_col=1, min_row=first, max_row=last)
    x_range = _x_range([r.get(x_key) for r in ok], log_x)
    from openpyxl.utils import column_index_from_string, get_column_letter

    for i, y in enumerate(y_keys[:2]):  # side by side: a printed page is wider than tall
        ref = Reference(s.ws, min_col=2 + i, min_row=first, max_row=last)
        name = _words(y)
        col = get_column_letter(column_index_from_string(anchor_col) + i * CHART_COLUMNS)
        line_chart(s.ws, f"{name} vs {_words(x_key)}", axis_label(x_key), _header(y).replace("\n", " "), x_ref, [(name, ref)],
                   f"{col}{chart_row}", log_x, x_range)
    s.row = max(s.row, chart_row + CHART_ROWS)


def grid_block(s: Sheet, title: str, rows: list[dict], keys: list[str], y_key: str, max_series: int = 7) -> None:
    """A 2-D sweep: the table ordered by the second key, and a native chart with one line of
    ``y_key`` against the first key per value of the second (up to ``max_series`` of them, one
    palette colour each)."""
    from openpyxl.chart import Reference

    k1, k2 = keys
    seconds = list(dict.fromkeys(r[k2] for r in rows))
    ordered = [flat(r) for r in sorted(rows, key=lambda r: seconds.index(r[k2]))]
    cols = [k1, k2] + [k for k, _ in PLAN_COLUMNS]
    s.title(title)
    top = s.row
    first, last = s.table([_header(c) for c in cols], [[r.get(c) for c in cols] for r in ordered], keys=[c.replace(".", "_") for c in cols], freeze=True)
    y_col = cols.index(y_key) + 1
    block = len(ordered) // len(seconds)
    step = max(1, -(-len(seconds) // max_series))
    series = []
    for i in range(0, len(seconds), step):
        a = first + i * block
        series.append((value_label(k2, seconds[i]), Reference(s.ws, min_col=y_col, min_row=a, max_row=a + block - 1)))
    x_ref = Reference(s.ws, min_col=1, min_row=first, max_row=first + block - 1)
    line_chart(s.ws, f"{_words(y_key)} vs {_words(k1)}", axis_label(k1), _header(y_key).replace("\n", " "), x_ref, series,
               f"{_chart_col(len(cols))}{top}", x_range=_x_range([r.get(k1) for r in ordered[:block]]))


def about_sheet(wb, prov: dict) -> None:
    """The provenance of a saved table: one key, value line each."""
    rows_sheet(wb, "About", [{"key": k, "value": str(v)} for k, v in provenance_columns(prov).items()]).finish()


def sweep_workbook(name: str, rows: list[dict], keys: list[str], prov: dict) -> bytes:
    """A sweep: its table with native charts (a 2-D sweep: one line per value of the second key)."""
    wb = new_workbook()
    s = Sheet(wb, "Sweep")
    if len(keys) == 1:
        charted = ["throughput_req_per_s", "usd_per_million_tokens.total"]
        y_keys = charted + [k for k, _ in PLAN_COLUMNS if k not in charted]
        sweep_block(s, f"{name}: {keys[0]}", rows, keys[0], y_keys, _chart_col(len(y_keys) + 1))
    else:
        grid_block(s, f"{name}: {keys[0]} x {keys[1]}", rows, keys, "throughput_req_per_s")
    s.finish()
    about_sheet(wb, prov)
    return save(wb)


