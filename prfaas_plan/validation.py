"""The paper's tables beside the model's numbers (`prfaas-plan validate`).

Table 3 uses the roofline with the one shared H200 calibration. Table 5 is shown twice: through
the model file's Table 5 profile (what `kv` and the planner use) and through the roofline alone
(an independent check of the calibration on a model it was not fitted to).
"""

from __future__ import annotations

from . import units
from .calibration import table3_predictions
from .catalog.hardware import load_hardware
from .catalog.model import load_model
from .reference import (
    LENGTHS_TOKENS,
    TABLE3_HARDWARE,
    TABLE5_KV_MIB,
    TABLE5_MODEL,
    TABLE5_PHI_KV_GBPS,
    TABLE5_PREFILL_S,
    TABLE5_SOURCE,
    TABLE3_SOURCE,
)
from .roofline.kv import kv_cache_bytes
from .roofline.prefill import PrefillModel


def _row(table: str, item: str, tokens: int | None, quantity: str, paper: float, model: float, note: str = "") -> dict:
    return {
        "table": table,
        "item": item,
        "input_tokens": tokens,
        "quantity": quantity,
        "paper": paper,
        "model": model,
        "error_pct": (model / paper - 1) * 100,
        "note": note,
    }


def table3_rows() -> list[dict]:
    hw = load_hardware(TABLE3_HARDWARE)
    return [
        _row("3", name, tokens, "phi_kv_gbit_per_s", paper, pred)
        for name, tokens, pred, paper in table3_predictions(hw)
    ]


def table5_rows() -> list[dict]:
    model = load_model(TABLE5_MODEL)
    hw = load_hardware(TABLE3_HARDWARE)
    profile = PrefillModel(model, hw, 8, use_profile=True)
    roofline = PrefillModel(model, hw, 8, use_profile=False)
    rows = []
    for tokens, kv_mib, t_s, phi in zip(LENGTHS_TOKENS, TABLE5_KV_MIB, TABLE5_PREFILL_S, TABLE5_PHI_KV_GBPS):
        kv = kv_cache_bytes(model, tokens)
        rows.append(_row("5", TABLE5_MODEL, tokens, "kv_cache_mib", kv_mib, units.bytes_to_mib(kv), "inferred architecture"))
        for label, pm in (("profile fit", profile), ("roofline", roofline)):
            t = pm.time(tokens).total_s
            rows.append(_row("5", TABLE5_MODEL, tokens, "prefill_time_s", t_s, t, label))
            rows.append(_row("5", TABLE5_MODEL, tokens, "phi_kv_gbit_per_s", phi, units.bytes_per_s_to_gbit_per_s(kv / t), label))
    return rows


def sources() -> dict[str, str]:
    return {"3": TABLE3_SOURCE, "5": TABLE5_SOURCE}


TITLES = {
    "3": f"Table 3: Phi_kv on 8xH200 ({TABLE3_SOURCE}) vs roofline with one shared H200 calibration",
    "5": f"Table 5: internal 1T hybrid ({TABLE5_SOURCE}) vs profile fit and roofline",
}


def all_rows() -> list[dict]:
    return table3_rows() + table5_rows()


def summary(rows: list[dict]) -> str:
    """Median |error| and the worst factor of a set of comparison rows."""
    if not rows:
        return ""
    errs = sorted(abs(r["error_pct"]) for r in rows)
    mid = len(errs) // 2
    median = errs[mid] if len(errs) % 2 else (errs[mid - 1] + errs[mid]) / 2
    worst = max(max(r["model"] / r["paper"], r["paper"] / r["model"]) for r in rows)
    return f"{len(rows)} comparisons: median |error| {median:.1f}%, worst factor {worst:.2f}x"
