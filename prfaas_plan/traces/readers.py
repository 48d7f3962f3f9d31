"""Reading request traces: Mooncake JSONL (plain or gzip), Azure LLM inference CSV, and the
project's length CSV, into one :class:`Trace`.

Every file is read through :mod:`prfaas_plan.catalog.files` (a regular file, at most
``MAX_TRACE_BYTES`` on disk and decompressed, UTF-8). Bad input is one :class:`PlanError` line
naming the file, the line number, the key or column and what is wrong - never a traceback.

Formats (``format=`` or detected from the content; see :func:`detect_format`):

- ``mooncake``: one JSON object per line with ``timestamp`` (ms from the start), ``input_length``,
  ``output_length`` and ``hash_ids`` (prefix-chained 512-token block hashes; see
  :mod:`prfaas_plan.traces.cache`). Timestamps must not decrease.
- ``azure``: CSV with ``TIMESTAMP`` (wall clock, ``2023-11-16 18:15:46.6805900``; a time zone,
  if given, is honoured, otherwise all rows are taken in one zone), ``ContextTokens`` and
  ``GeneratedTokens``. Arrivals are seconds after the first row; rows must not go back in time.
- ``csv``: the project's length CSV (``input_tokens`` or ``ContextTokens``, optional
  ``output_tokens`` or ``GeneratedTokens``, optional whole-number ``count``): lengths only, no
  arrivals (``arrival_s`` is None). The planner reads it with
  :func:`prfaas_plan.planning.workload.load_trace_csv`, which also takes fractional counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ..catalog.files import MAX_TRACE_BYTES, read_text_maybe_gzip, show_path
from ..errors import PlanError
from .cache import BLOCK_TOKENS

FORMATS = ("mooncake", "azure", "csv")

#: Mooncake's timestamps come in buckets of this many seconds (about 10 requests share each
#: value in the FAST'25 conversation trace; measured on the shipped file: 1,180 distinct values
#: 2.997-3.003 s apart for 12,031 requests).
MOONCAKE_BUCKET_S = 3.0

#: The most requests one trace may hold (a histogram CSV's counts included): bounds memory.
MAX_TRACE_REQUESTS = 10_000_000

#: Attribution of the traces shipped in ``traces/`` (verbatim from its README), by file name.
SHIPPED_SOURCES = {
    "mooncake_fast25_conversation_trace.jsonl.gz": (
        'Mooncake traces: Qin et al., "Mooncake: Trading More Storage for Less Computation - A KVCache-centric '
        'Architecture for Serving LLM Chatbot", FAST 2025; Apache-2.0, kvcache-ai/Mooncake.'),
    "azure2023_conv.csv": (
        'Azure LLM inference trace 2023: Patel et al., "Splitwise: Efficient generative LLM inference using phase '
        'splitting", ISCA 2024; data CC-BY 4.0, Microsoft AzurePublicDataset.'),
    "servegen_m-large_rate_10min.csv": (
        'ServeGen (derived aggregates): Xiang et al., "ServeGen: Workload Characterization and Generation of Large '
        'Language Model Serving in Production", arXiv 2505.09999; Apache-2.0, alibaba/ServeGen.'),
}


@dataclass(frozen=True, eq=False)
class Trace:
    """One request per entry, in arrival order.

    ``arrival_s``: seconds after the first request's timestamp (float, non-decreasing), or None
    for a length-only trace; ``input_tokens`` (>= 1) and ``output_tokens`` (>= 1): int64 arrays;
    ``hash_ids``: per request, its prefix-chained block hashes (Mooncake), or None; ``source``:
    one line saying where the trace comes from. Arrays are read-only.
    """

    name: str
    arrival_s: np.ndarray | None
    input_tokens: np.ndarray
    output_tokens: np.ndarray | None
    hash_ids: tuple[tuple[int, ...], ...] | None
    source: str

    def __post_init__(self):
        n = len(self.input_tokens)
        if n == 0:
            raise PlanError(f"trace {self.name}: no requests")
        for label, arr in (("arrival_s", self.arrival_s), ("output_tokens", self.output_tokens), ("hash_ids", self.hash_ids)):
            if arr is not None and len(arr) != n:
                raise PlanError(f"trace {self.name}: {label} has {len(arr)} entries for {n} requests")
        if self.arrival_s is not None and np.any(np.diff(self.arrival_s) < 0):
            raise PlanError(f"trace {self.name}: arrivals must not decrease")
        for arr in (self.arrival_s, self.input_tokens, self.output_tokens):
            if isinstance(arr, np.ndarray):
                arr.setflags(write=False)

    def __len__(self) -> int:
        return len(self.input_tokens)

    @property
    def duration_s(self) -> float | None:
        """Seconds from the first to the last arrival (None without arrivals)."""
        return None if self.arrival_s is None else float(self.arrival_s[-1] - self.arrival_s[0])

    @property
    def mean_rate_req_per_s(self) -> float | None:
        """Requests per second over the trace: (n - 1) / duration (None without arrivals or span)."""
        d = self.duration_s
        return (len(self) - 1) / d if d else None


def spread_arrivals_s(timestamps_s: np.ndarray, bucket_s: float = MOONCAKE_BUCKET_S) -> np.ndarray:
    """Arrival times with each group of requests that share a timestamp spread evenly over its
    bucket: the i-th of n at ``ts + (i + 0.5) * width / n``, width = ``bucket_s``, or the gap to the
    next distinct timestamp where that is shorter (so arrivals stay in order). Deterministic: the
    same input always gives the same times. ``timestamps_s`` must be sorted."""
    ts = np.asarray(timestamps_s, float)
    if ts.size == 0:
        return ts
    uniq, start, counts = np.unique(ts, return_index=True, return_counts=True)
    width = np.minimum(np.diff(uniq, append=uniq[-1] + bucket_s), bucket_s)
    pos = np.arange(ts.size) - np.repeat(start, counts)
    return np.repeat(uniq, counts) + (pos + 0.5) * np.repeat(width / counts, counts)


def detect_format(text: str, path: str | Path) -> str:
    """``mooncake`` when the first non-blank character is ``{`` or ``[`` (JSON lines); for CSV, ``azure``
    when the header has ``TIMESTAMP``, else ``csv``."""
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return "mooncake"
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    if "TIMESTAMP" in [c.strip() for c in header]:
        return "azure"
    if not head:
        raise PlanError(f"{show_path(path)}: empty trace (no requests)")
    return "csv"


def sniff_format(path: str | Path) -> str:
    """The format of the trace file at ``path`` (:func:`detect_format` on its content)."""
    return detect_format(read_text_maybe_gzip(path, "trace file", MAX_TRACE_BYTES), path)


def read_trace(path: str | Path, format: str | None = None, *, spread: bool = True,
               bucket_s: float = MOONCAKE_BUCKET_S, name: str | None = None) -> Trace:
    """The trace in ``path`` (plain or gzip), in ``format`` (one of :data:`FORMATS`; None: detect
    from the content). ``spread`` (Mooncake only): spread each timestamp bucket of ``bucket_s``
    seconds evenly (:func:`spread_arrivals_s`; deterministic, no random numbers); False replays
    the timestamps literally."""
    if format is not None and format not in FORMATS:
        raise PlanError(f"{show_path(path)}: unknown trace format {format!r}; known: {', '.join(FORMATS)}")
    if not (isinstance(bucket_s, (int, float)) and math.isfinite(bucket_s) and bucket_s > 0):
        raise PlanError(f"{show_path(path)}: bucket_s must be a finite number > 0, got {bucket_s!r}")
    text = read_text_maybe_gzip(path, "trace file", MAX_TRACE_BYTES)
    fmt = format or detect_format(text, path)
    name = name or Path(path).name.split(".", 1)[0]
    source = SHIPPED_SOURCES.get(Path(path).name, f"{fmt} trace file {show_path(path)}")
    if fmt == "mooncake":
        return _mooncake(text, path, name, source, spread, bucket_s)
    if fmt == "azure":
        return _azure(text, path, name, source)
    return _lengths_csv(text, path, name, source)


# -- field checks ---------------------------------------------------------------------------------
def _where(path, line: int, key: str) -> str:
    return f"{show_path(path)}: line {line}: {key!r}"


#: Why a whole-number column has its minimum, where it is not plain.
_MIN_WHY = {k: "every request emits at least its first token" for k in ("output_length", "GeneratedTokens", "output_tokens")}
#: Output tokens of a request: at least 1 (the first token is what TTFT measures).
MIN_OUTPUT_TOKENS = 1


def _whole(value, path, line: int, key: str, min_value: int, from_text: bool = True) -> int:
    """``value`` as an int >= ``min_value`` (an integer; 512.0 is accepted). A string is read as
    a number only ``from_text`` (a CSV field); in JSON ``"600"`` is refused."""
    v = value
    if isinstance(v, str) and from_text:
        text = v.strip()
        try:
            v = int(text)
        except ValueError:
            try:
                v = float(text)
            except ValueError:
                raise PlanError(f"{_where(path, line, key)}: not a number: {text[:40]!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlanError(f"{_where(path, line, key)}: must be a whole number, got {json.dumps(v)[:40]}")
    if isinstance(v, float):
        if not (math.isfinite(v) and v.is_integer()):
            raise PlanError(f"{_where(path, line, key)}: must be a whole number, got {v!r}")
        v = int(v)
    if v < min_value:
        why = f" ({_MIN_WHY[key]})" if key in _MIN_WHY else ""
        raise PlanError(f"{_where(path, line, key)}: must be >= {min_value}, got {v}{why}")
    if v > 10**12:
        raise PlanError(f"{_where(path, line, key)}: implausibly large ({v:.3g})")
    return v


def _checked_count(n: int, path) -> None:
    if n == 0:
        raise PlanError(f"{show_path(path)}: empty trace (no requests)")
    if n > MAX_TRACE_REQUESTS:
        raise PlanError(f"{show_path(path)}: more than {MAX_TRACE_REQUESTS:,} requests, the limit for one trace")


# -- Mooncake JSONL -------------------------------------------------------------------------------
_MOONCAKE_KEYS = ("timestamp", "input_length", "output_length", "hash_ids")


def _mooncake(text: str, path, name: str, source: str, spread: bool, bucket_s: float) -> Trace:
    ts_ms, inputs, outputs, hashes = [], [], [], []
    last_ts, last_line = -math.inf, 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = getattr(exc, "msg", "nested too deeply")
            raise PlanError(f"{show_path(path)}: line {line_no}: malformed JSON ({msg}), expected one JSON object per line") from None
        if not isinstance(row, dict):
            raise PlanError(f"{show_path(path)}: line {line_no}: expected a JSON object with keys {', '.join(_MOONCAKE_KEYS)}, got {type(row).__name__}")
        missing = [k for k in _MOONCAKE_KEYS if k not in row]
        if missing:
            raise PlanError(f"{show_path(path)}: line {line_no}: missing key {missing[0]!r} (a Mooncake trace line has {', '.join(_MOONCAKE_KEYS)})")
        ts = row["timestamp"]
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or ts < 0:
            raise PlanError(f"{_where(path, line_no, 'timestamp')}: must be a finite number >= 0 (ms from the start), got {json.dumps(ts)[:40]}")
        if ts < last_ts:
            raise PlanError(f"{_where(path, line_no, 'timestamp')}: {ts} is earlier than {last_ts} on line {last_line}; timestamps must not decrease")
        last_ts, last_line = ts, line_no
        inp = _whole(row["input_length"], path, line_no, "input_length", 1, from_text=False)
        outputs.append(_whole(row["output_length"], path, line_no, "output_length", MIN_OUTPUT_TOKENS, from_text=False))
        ids = row["hash_ids"]
        if not isinstance(ids, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in ids):
            raise PlanError(f"{_where(path, line_no, 'hash_ids')}: must be a list of integers (block hashes)")
        need = -(-inp // BLOCK_TOKENS)
        if len(ids) != need:
            raise PlanError(f"{_where(path, line_no, 'hash_ids')}: {len(ids)} block hashes for input_length {inp} "
                            f"(expected {need}, one per {BLOCK_TOKENS}-token block)")
        ts_ms.append(ts)
        inputs.append(inp)
        hashes.append(tuple(ids))
    _checked_count(len(inputs), path)
    rel_s = (np.asarray(ts_ms, float) - ts_ms[0]) / 1e3
    arrival_s = spread_arrivals_s(rel_s, bucket_s) if spread else rel_s
    return Trace(name, arrival_s, np.asarray(inputs, np.int64), np.asarray(outputs, np.int64), tuple(hashes), source)


# -- CSV (Azure and the project's lengths) ---------------------------------------------------------
def _csv_rows(text: str, path):
    """(header, iterator of (line number, row dict)) of a CSV text; malformed CSV is a PlanError."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [c.strip() for c in reader.fieldnames or []]
    except csv.Error as exc:
        raise PlanError(f"{show_path(path)}: line 1: malformed CSV ({exc})") from None
    reader.fieldnames = header

    def rows():
        try:
            for row in reader:
                if None in row:
                    raise PlanError(f"{show_path(path)}: line {reader.line_num}: more fields than the header's {len(header)}")
                yield reader.line_num, row
        except csv.Error as exc:
            raise PlanError(f"{show_path(path)}: line {reader.line_num}: malformed CSV ({exc})") from None

    return header, rows()


def _need(row: dict, key: str, path, line: int) -> str:
    value = row.get(key)
    if value is None or not value.strip():
        raise PlanError(f"{_where(path, line, key)}: missing value")
    return value


def _column(header: list[str], names: tuple[str, ...], path, required: bool = True) -> str | None:
    found = [c for c in names if c in header]
    if not found and required:
        raise PlanError(f"{show_path(path)}: line 1: needs a column {' or '.join(repr(n) for n in names)}; found {', '.join(header) or 'no header'}")
    return found[0] if found else None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _wall_clock_us(text: str, path, line: int) -> int:
    """Microseconds since 1970 of a wall-clock time (ISO 8601, fraction digits past 6 dropped);
    a time without a zone is taken as UTC (only differences matter)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PlanError(f"{_where(path, line, 'TIMESTAMP')}: not a date and time like 2023-11-16 18:15:46.6805900: {text.strip()[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _azure(text: str, path, name: str, source: str) -> Trace:
    header, rows = _csv_rows(text, path)
    for col in ("TIMESTAMP", "ContextTokens", "GeneratedTokens"):
        _column(header, (col,), path)
    times_us, inputs, outputs = [], [], []
    last_us, last_line = None, 0
    for line, row in rows:
        t_us = _wall_clock_us(_need(row, "TIMESTAMP", path, line), path, line)
        if last_us is not None and t_us < last_us:
            raise PlanError(f"{_where(path, line, 'TIMESTAMP')}: earlier than line {last_line}; rows must be in time order")
        last_us, last_line = t_us, line
        inputs.append(_whole(_need(row, "ContextTokens", path, line), path, line, "ContextTokens", 1))
        outputs.append(_whole(_need(row, "GeneratedTokens", path, line), path, line, "GeneratedTokens", MIN_OUTPUT_TOKENS))
        times_us.append(t_us)
        if len(inputs) > MAX_TRACE_REQUESTS:
            _checked_count(len(inputs), path)
    _checked_count(len(inputs), path)
    arrival_s = (np.asarray(times_us, np.int64) - times_us[0]) / 1e6
    return Trace(name, arrival_s, np.asarray(inputs, np.int64), np.asarray(outputs, np.int64), None, source)


def _lengths_csv(text: str, path, name: str, source: str) -> Trace:
    header, rows = _csv_rows(text, path)
    col_in = _column(header, ("input_tokens", "ContextTokens"), path)
    col_out = _column(header, ("output_tokens", "GeneratedTokens"), path, required=False)
    has_count = "count" in header
    inputs, outputs, counts = [], [], []
    total = 0
    for line, row in rows:
        inputs.append(_whole(_need(row, col_in, path, line), path, line, col_in, 1))
        if col_out is not None:
            outputs.append(_whole(_need(row, col_out, path, line), path, line, col_out, MIN_OUTPUT_TOKENS))
        n = _whole(row.get("count") or "1", path, line, "count", 0) if has_count else 1
        counts.append(n)
        total += n
        if total > MAX_TRACE_REQUESTS:
            _checked_count(total, path)
    _checked_count(total, path)
    reps = np.asarray(counts, np.int64)
    out = np.repeat(np.asarray(outputs, np.int64), reps) if col_out is not None else None
    return Trace(name, None, np.repeat(np.asarray(inputs, np.int64), reps), out, None, source)
