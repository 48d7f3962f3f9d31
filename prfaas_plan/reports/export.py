"""Machine-readable output: JSON, CSV and Excel workbooks, written atomically.

A failed run never leaves a half-written file: everything is rendered in memory first, written
to a temporary file beside the target and renamed over it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import PlanError


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Any) -> str:
    return json.dumps(_clean(data), indent=2) + "\n"


def flat(row: dict) -> dict:
    """Nested mappings become dotted columns (baselines.homogeneous.throughput_req_per_s)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in flat(v).items()})
        elif isinstance(v, (list, tuple)):
            out[k] = json.dumps(_clean(v))
        else:
            out[k] = _clean(v)
    return out


def to_csv(rows: list[dict]) -> str:
    flat_rows = [flat(r) for r in rows]
    columns: list[str] = []
    for r in flat_rows:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat_rows)
    return buf.getvalue()


def to_xlsx_bytes(sheets: dict[str, list[dict]], about: list[tuple[str, object]] | None = None) -> bytes:
    """A workbook with one styled sheet per entry (see :mod:`xlsx`); ``about``: provenance lines."""
    from .xlsx import table_workbook  # imported here: only spreadsheet export needs openpyxl

    return table_workbook(sheets, about)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    path = Path(path)
    if not path.parent.exists():
        raise PlanError(f"{path}: folder {path.parent} does not exist")
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PlanError(f"{path}: cannot write ({exc.strerror})") from None
