"""What produced a saved file: tool version, date, mode, command and the resolved inputs. Every
JSON, CSV, xlsx and HTML output of a scenario command carries it."""

from __future__ import annotations

from datetime import datetime, timezone

from .. import __version__
from ..planning.inputs import inputs_mapping
from ..planning.scenario import Scenario


def provenance(sc: Scenario, mode: str, command: str, **options) -> dict:
    """``options``: the command-line choices that shaped the answer (budget, target, ...)."""
    return {
        "tool": "prfaas-plan",
        "version": __version__,
        "generated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
