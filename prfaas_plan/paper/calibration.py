"""Fit the engine efficiencies once, jointly to [PRFAAS] Table 3 and the engine measurements.

One parameter set (:data:`FITTED`, eight numbers; ``linear_attention_frac`` is fixed, see
:data:`NOT_FITTED`) serves every part, model and point: Table 3's 24 cells in the latency regime
(one request alone on 8xH200, SGLang; each model in the shape its publisher's SGLang command gives,
``reference.TABLE3_DEPLOYMENTS``) and the 19 throughput points of ``data/engines-train.json``
(SGLang and TensorRT-LLM on H100, H200, B200, GB200) in the throughput regime. Other parts use the
same fractions of their own peaks. Fractions are bounded physically (roofline/fit.py, BOUNDS:
attention <= 0.8 of peak, the GEMMs' MMAs <= 1.0 beside the power-limit term of roofline/terms.py,
HBM 0.7-0.9, ...). The fit
minimises the squared log error (a 2x miss weighs the same everywhere) with scipy's bounded least
squares; every point weighs the same. ``collective_latency_s``, ``decode_step_overhead_s`` and
``memory_usable_frac`` stay at their estimates (too little data moves them). Run
``python scripts/calibrate.py --write`` to refit and record the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from .. import units
from ..catalog.hardware import Hardware, load_hardware
from ..catalog.model import ModelSpec, load_model
from ..errors import PlanError
from ..roofline.fit import BOUNDS as FIT_BOUNDS
from ..roofline.fit import error_frac
from ..roofline.instance import Instance, make_instance
from ..roofline.kv import kv_cache_bytes
from ..roofline.prefill import roofline_prefill_time
from . import engines
from .reference import LENGTHS_TOKENS, TABLE3_DEPLOYMENTS, TABLE3_GPUS, TABLE3_HARDWARE, TABLE3_PHI_KV_GBPS

#: Starting values of the fit; the bounds are the physical ones of roofline/fit.py (BOUNDS).
START = {"gemm_frac": 0.6, "attention_frac": 0.5, "linear_attention_frac": 0.4, "memory_frac": 0.8, "link_frac": 0.6,
         "request_overhead_s": 0.3, "forward_overhead_s": 0.02, "decode_request_overhead_s": 5e-6, "expert_imbalance_frac": 0.2}
#: Left out of the global fit, with the value every part carries: the linear-attention kernels'
#: compute fraction never binds where their timings are published (they are bandwidth-bound,
#: roofline/counts.py LINEAR_SCAN_VECTORS), so no point identifies it; free, the fit drove it to its
#: lower bound (0.05) to slow the hybrids' long prompts. Those timings bound it from below (fla's
#: chunk_kda on H20 does 0.14 of the bf16 peak in this model's FLOP count while bandwidth-bound);
#: 0.5 is an estimate [E].
NOT_FITTED = {"linear_attention_frac": 0.5}
BOUNDS = tuple((k, lo, hi, START[k]) for k, lo, hi in FIT_BOUNDS if k not in NOT_FITTED)
FITTED = tuple(b[0] for b in BOUNDS)
ENGINE_PARTS = ("h100", "h200", "b200", "gb200")


@dataclass(frozen=True)
class CalibrationResult:
    params: dict[str, float]
    cells: list[tuple[str, int, float, float]]  # Table 3: (model, tokens, predicted Gbps, measured Gbps)
    engine_rows: list[dict]

    @staticmethod
    def _stats(ratios) -> tuple[float, float]:
        err = error_frac(np.asarray(ratios), 1.0)
        return float(np.median(err)), float(1 + err.max())

    @property
    def table3(self) -> tuple[float, float]:
        """(median error, worst factor) over Table 3; error = exp|ln(pred / meas)| - 1."""
        return self._stats([p / m for _, _, p, m in self.cells])

    @property
    def engines(self) -> tuple[float, float]:
        return self._stats([r["ratio"] for r in self.engine_rows])


def with_efficiency(hw: Hardware, **params: float) -> Hardware:
    return replace(hw, efficiency=replace(hw.efficiency, **params))


def table3_instance(model: ModelSpec, hw: Hardware) -> Instance:
    """The 8xH200 instance a Table 3 model ran on: its publisher's SGLang command
    (:data:`~.reference.TABLE3_DEPLOYMENTS`), else the engine default shape."""
    return make_instance(model, hw, TABLE3_GPUS, **TABLE3_DEPLOYMENTS.get(model.name, {}))


def table3_predictions(hw: Hardware, models: dict[str, ModelSpec] | None = None) -> list[tuple[str, int, float, float]]:
    """(model, tokens, predicted Phi_kv Gbps, Table 3 Gbps) for the 24 cells, latency regime."""
    models = models or {name: load_model(name) for name in TABLE3_PHI_KV_GBPS}
    cells = []
    for name, measured in TABLE3_PHI_KV_GBPS.items():
        model = models[name]
        inst = table3_instance(model, hw)
        t = np.asarray(roofline_prefill_time(model, hw, TABLE3_GPUS, np.asarray(LENGTHS_TOKENS, float), instance=inst).total_s)
        for tokens, t_s, phi_meas in zip(LENGTHS_TOKENS, t, measured):
            phi = units.bytes_per_s_to_gbit_per_s(kv_cache_bytes(model, tokens) / t_s)
            cells.append((name, tokens, float(phi), phi_meas))
    return cells


def evaluate(params: dict[str, float], parts: dict[str, Hardware] | None = None, benchmarked: bool = False) -> CalibrationResult:
    parts = parts or {n: load_hardware(n) for n in ENGINE_PARTS}
    params = {**NOT_FITTED, **params}
    tuned = {n: with_efficiency(hw, **params) for n, hw in parts.items()}
    return CalibrationResult(dict(params), table3_predictions(tuned[TABLE3_HARDWARE]), engines.rows(tuned, benchmarked))


def point_ids(result: CalibrationResult) -> list[str]:
    """One id per fitted point, in the order of the fit's residuals: Table 3 cells as
    ``table3:<model>@<tokens>``, engine points by their id."""
    return [f"table3:{m}@{t}" for m, t, _, _ in result.cells] + [r["id"] for r in result.engine_rows]


def fit(benchmarked: bool = False, exclude: frozenset[str] = frozenset()) -> CalibrationResult:
    """The joint fit (module docstring). ``benchmarked`` predicts the TensorRT-LLM offline points as
    their benchmark ran (engines.as_benchmarked) instead of by the co-located formula; it is a
    diagnostic, not the shipped calibration. ``exclude`` leaves points out of the fit (ids of
    :func:`point_ids`; for leave-one-out checks); the result still predicts every point.
    Raises PlanError if the optimiser does not converge."""
    parts = {n: load_hardware(n) for n in ENGINE_PARTS}
    models = {name: load_model(name) for name in TABLE3_PHI_KV_GBPS}
    keep = None

    def residuals(x: np.ndarray) -> np.ndarray:
        nonlocal keep
        params = {**NOT_FITTED, **dict(zip(FITTED, x))}
        tuned = {n: with_efficiency(hw, **params) for n, hw in parts.items()}
        cells = table3_predictions(tuned[TABLE3_HARDWARE], models)
        rows = engines.rows(tuned, benchmarked)
        if keep is None:
            ids = point_ids(CalibrationResult({}, cells, rows))
            keep = np.array([i not in exclude for i in ids])
        t3 = [p / m for _, _, p, m in cells]
        eng = [r["ratio"] for r in rows]
        return np.log(np.concatenate([t3, eng]))[keep]

    lo, hi, start = (np.array([b[i] for b in BOUNDS]) for i in (1, 2, 3))
    sol = least_squares(residuals, start, bounds=(lo, hi), x_scale="jac", diff_step=1e-3)
    if not sol.success:
        raise PlanError(f"calibration did not converge: {sol.message}")
    params = {k: float(f"{v:.4g}") for k, v in zip(FITTED, sol.x)}
    return evaluate(params, parts, benchmarked)
