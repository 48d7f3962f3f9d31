"""What produced a saved file: tool version, date, mode, command and the resolved inputs. Every
JSON, CSV, xlsx and HTML output of a scenario command carries it."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from .. import __version__
from ..planning.inputs import inputs_mapping
from ..planning.scenario import Scenario


def generated_utc() -> str:
    """Now, in UTC to the second; or the time in ``SOURCE_DATE_EPOCH`` (seconds since 1970, the
    reproducible-builds convention), so that the same input can give byte-identical files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
    return when.isoformat(timespec="seconds")


def provenance(sc: Scenario, mode: str, command: str, **options) -> dict:
    """``options``: the command-line choices that shaped the answer (budget, target, ...)."""
    return {
        "tool": "prfaas-plan",
        "version": __version__,
        "generated_utc": generated_utc(),
        "command": command,
        "options": {k: v for k, v in options.items() if v is not None},
        "scenario": sc.name,
        "scenario_path": sc.path,
        "mode": mode,
        "overrides": [o.label for o in sc.overrides],
        "inputs": inputs_mapping(sc),
    }


def provenance_columns(p: dict) -> dict:
    """The provenance as flat CSV columns (repeated on every row, so a row stands alone)."""
    cols = {"tool_version": p["version"], "generated_utc": p["generated_utc"], "command": p["command"], "mode": p["mode"],
            "scenario": p["scenario"], "overrides": "; ".join(p["overrides"])}
    cols.update({f"input.{k}": v for k, v in p["inputs"].items()})
    return cols
