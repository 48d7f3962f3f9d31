"""The paper's tables beside the model's numbers (`prfaas-plan validate`).

Table 3 uses the roofline with the one shared H200 calibration. Table 5 is shown twice: through
the model file's Table 5 profile (what `kv` and the planner use) and through the roofline alone
(an independent check of the calibration on a model it was not fitted to).
"""

from __future__ import annotations

import numpy as np

from .. import units
from ..catalog.hardware import load_hardware
from ..catalog.model import load_model
from ..roofline.kv import kv_cache_bytes
from ..roofline.prefill import PrefillModel
from .calibration import table3_instance, table3_predictions
from .reference import (
    LENGTHS_TOKENS,
    TABLE3_DEPLOYMENTS,
    TABLE3_HARDWARE,
    TABLE3_SOURCE,
    TABLE5_KV_MIB,
    TABLE5_MODEL,
    TABLE5_PHI_KV_GBPS,
    TABLE5_PREFILL_S,
    TABLE5_SOURCE,
    TABLE6,
    TABLE6_SOURCE,
    TABLE6_TTFT_S,
)


def _row(table: int, item: str, tokens: int | None, quantity: str, paper: float, model: float, note: str = "",
         method: str | None = None) -> dict:
    """One comparison; ``method`` (default: the note) groups rows in :func:`summary`."""
    return {
        "table": table,
        "item": item,
        "input_tokens": tokens,
        "quantity": quantity,
        "paper": paper,
        "model": model,
        "error_pct": (model / paper - 1) * 100,
        "note": note,
        "method": note if method is None else method,
    }


def table3_rows() -> list[dict]:
    """Table 3's cells; the note gives the SGLang flags of a model whose publisher's command is
    not the engine default shape (reference.TABLE3_DEPLOYMENTS)."""
    hw = load_hardware(TABLE3_HARDWARE)
    notes = {name: f"SGLang {table3_instance(load_model(name), hw).deployment()['sglang_flags']}" for name in TABLE3_DEPLOYMENTS}
    return [
        _row(3, name, tokens, "phi_kv_gbit_per_s", paper, pred, notes.get(name, ""), method="")
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
        rows.append(_row(5, TABLE5_MODEL, tokens, "kv_cache_mib", kv_mib, units.bytes_to_mib(kv), "inferred architecture"))
        for label, pm in (("profile fit", profile), ("roofline", roofline)):
            t = pm.time(tokens).total_s
            rows.append(_row(5, TABLE5_MODEL, tokens, "prefill_time_s", t_s, t, label))
            rows.append(_row(5, TABLE5_MODEL, tokens, "phi_kv_gbit_per_s", phi, units.bytes_per_s_to_gbit_per_s(kv / t), label))
    return rows


def sources() -> dict[str, str]:
    return {"3": TABLE3_SOURCE, "5": TABLE5_SOURCE}


def table6_rows() -> list[dict]:
    """`optimize paper-case-study --mode paper` beside [PRFAAS] Table 6, and the same question
    with every latency from the roofline (scenario paper-case-study-roofline) for contrast."""
    from ..planning.planner import optimize
    from ..planning.scenario import load_scenario

    rows = []
    for scenario, note in (("paper-case-study", "paper mode, profiles"), ("paper-case-study-roofline", "paper mode, roofline only")):
        r = optimize(load_scenario(scenario), mode="paper", compare_modes=False)
        plans = {"prfaas": r, **r["baselines"]}
        for plan, expected in TABLE6.items():
            for key, paper in expected.items():
                rows.append(_row(6, f"{plan}{'' if scenario == 'paper-case-study' else ' (roofline)'}", None, key, paper, float(plans[plan][key]), note))
        if scenario == "paper-case-study":
            rows += _ttft_rows(load_scenario(scenario), plans)
    return rows


def _ttft_rows(sc, plans: dict) -> list[dict]:
    """Table 6's TTFTs beside the analytic TTFT of each plan at zero load (the H20 prefill curve
    is the profile derived from Table 6, one point of it from the homogeneous P90 itself)."""
    from ..latency.deployment import deployment
    from ..latency.ttft import ttft

    rows = []
    for plan, expected in TABLE6_TTFT_S.items():
        lat = ttft(deployment(sc, plans[plan], plan, "paper"), 0.0)
        for key, paper in expected.items():
            rows.append(_row(6, plan, None, key, paper, getattr(lat, key), "TTFT at zero load, paper mode, profiles"))
    return rows


TITLES = {
    3: f"Table 3: Phi_kv on 8xH200 ({TABLE3_SOURCE}) vs roofline with one shared H200 calibration",
    5: f"Table 5: internal 1T hybrid ({TABLE5_SOURCE}) vs profile fit and roofline",
    6: f"Table 6: case study ({TABLE6_SOURCE}) vs `optimize --mode paper`",
    "E": "Engine measurements (engines-train.json: SGLang, TensorRT-LLM) vs `estimate`, throughput regime",
}


def engine_rows() -> list[dict]:
    """The measured engine points (engines-train.json) beside `estimate` (throughput regime)."""
    from . import engines

    return [_row("E", r["id"], None, r["metric"], r["measured"], r["predicted"], r["kind"]) for r in engines.rows()]


def all_rows() -> list[dict]:
    return table3_rows() + table5_rows() + table6_rows() + engine_rows()


def summary(rows: list[dict]) -> str:
    """Median |error| and the worst factor of comparison rows, per method (profile vs roofline)."""
    parts = []
    for method in dict.fromkeys(r["method"] for r in rows):
        sub = [r for r in rows if r["method"] == method]
        median = float(np.median([abs(r["error_pct"]) for r in sub]))
        worst = max(max(r["model"] / r["paper"], r["paper"] / r["model"]) for r in sub)
        parts.append(f"{method or 'all'}: {len(sub)} comparisons, median |error| {median:.1f}%, worst factor {worst:.2f}x")
    return "; ".join(parts)
