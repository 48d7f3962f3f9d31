"""`prfaas-plan calibrate`: fit the engine efficiencies to a user's own measurements.

A measurement file (YAML with a ``measurements`` list, or CSV with one row each) gives setups
as `estimate` options plus one measured number:

    metric: ttft_s | prefill_tokens_per_s_per_gpu | decode_step_s | tpot_s | decode_tokens_per_s_per_gpu
            | output_tokens_per_s_per_gpu (a serving run at decode batch C: the co-located cycle)
    value:  the measurement (s, or tokens/s per GPU)
    model, hardware, gpus; optional tp, dp, enable_dp_attention, ep, pp (the engines' spelling,
    roofline/parallel.py; dp_attention: deprecated, DP = TP), weights, moe_weights,
    attention_dtype, kv_dtype, isl, osl, context, batch, mtp_draft, mtp_accept, chunk_tokens

:func:`fit_measurements` fits the global efficiency parameters (:data:`BOUNDS`) that the
measurements are sensitive to, by bounded least squares on log(predicted / measured), starting
from the part's catalog values, and reports the errors before and after. The result is a
profile (same keys as a hardware file's ``efficiency``) that `estimate --profile` and scenario
clusters (``efficiency_profile``) use in place of the catalog's.

Only the parameters the measurements identify are fitted (:func:`identifiable`): those some
measurement responds to, at most one per measurement, and none that moves the predictions like
one already chosen. The others keep their catalog values, and the result says why
(``left_fixed``); a parameter asked for with ``--fit`` that cannot be identified is refused, and
nothing is written. Benchmark-tool result files (vLLM, SGLang, TensorRT-LLM) are read by
:mod:`.bench_files`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..catalog.fields import Fields, load_yaml_mapping
from ..catalog.files import MAX_TRACE_BYTES, read_text
from ..catalog.hardware import Efficiency, Hardware, load_hardware
from ..catalog.model import load_model
from ..errors import PlanError
from .estimate import estimate
from .parallel import shape_options

#: Fitted efficiency keys: (key, lower bound, upper bound). Physical bounds: attention kernels
#: ~0.8 of the datasheet tensor peak; GEMMs' MMAs up to the whole peak (gemm_frac is their share
#: beside the power-limit time of terms.gemm_compute_s, which the published matmul maxima put at
#: 0.975 of peak; H20 reaches 0.96 all-in) and ~0.9 of HBM (a device copy reaches 4.3 of 4.8 TB/s on H200),
#: decode kernels no worse than 0.7 of HBM; EPLB-balanced deployments report the busiest EP rank
#: at 1.1-1.5x the mean load; a decode step's CPU work per request is microseconds.
BOUNDS = (
    ("gemm_frac", 0.2, 1.0),
    ("attention_frac", 0.1, 0.8),
    ("linear_attention_frac", 0.05, 0.8),
    ("memory_frac", 0.7, 0.9),
    ("link_frac", 0.2, 0.9),
    ("request_overhead_s", 0.0, 2.0),
    ("forward_overhead_s", 0.0, 0.5),
    ("decode_request_overhead_s", 0.0, 1e-4),
    ("expert_imbalance_frac", 0.0, 0.5),
)

METRICS = {
    "ttft_s": "ttft_single_request_s",
    "prefill_tokens_per_s_per_gpu": "prefill_input_tokens_per_s_per_gpu",
    "decode_step_s": "decode_step_s",
    "tpot_s": "tpot_s",
    "decode_tokens_per_s_per_gpu": "decode_output_tokens_per_s_per_gpu",
    "output_tokens_per_s_per_gpu": "colocated_output_tokens_per_s_per_gpu",  # a serving run at batch C
}
_INT_KEYS = ("gpus", "isl", "osl", "context", "batch", "mtp_draft", "chunk_tokens")
_STR_KEYS = ("model", "hardware", "weights", "moe_weights", "attention_dtype", "kv_dtype")
#: Setup keys besides the parallelism (roofline/parallel.py PARALLEL_KEYS) -> `estimate` keywords.
_SHAPE = {"weights": "weights", "moe_weights": "moe_weights", "attention_dtype": "attention_dtype", "kv_dtype": "kv_dtype",
          "mtp_draft": "mtp_draft_tokens", "mtp_accept": "mtp_accepted_tokens", "isl": "isl", "osl": "osl", "context": "context_tokens",
          "batch": "batch", "chunk_tokens": "chunk_tokens"}


@dataclass(frozen=True)
class Measurement:
    where: str  # "file: measurements[3]" or "file: row 4"
    model: str
    hardware: str
    gpus: int
    options: dict  # `estimate` keyword options
    metric: str
    value: float


#: A parameter joins the fit only while the fitted set stays separable: the condition number of the
#: measurements' sensitivities to the chosen parameters (columns of d ln(prediction) / d(parameter
#: as a share of its range), at the catalog values) at most this. Above it the parameters move the
#: predictions (nearly) alike and the fit would trade one against another (as 4 measurements did
#: with 7 parameters, sending attention_frac to 0.229). The sensitivities are taken at the start,
#: where a term may not bind yet, so the gate is loose: it refuses near-degenerate sets only.
MAX_CONDITION = 1000.0
#: A parameter the measurements respond to: 5% of its range moves some prediction by more than this (log).
MIN_RESPONSE = 1e-3


@dataclass(frozen=True)
class FitResult:
    hardware: str
    base: Efficiency
    efficiency: Efficiency
    fitted_keys: tuple[str, ...]
    rows: list[dict]  # per measurement: where, metric, measured, before, after
    left_fixed: dict = field(default_factory=dict)  # parameter -> why it kept its catalog value
    at_bound: tuple[str, ...] = ()  # fitted parameters that ended on a bound (the data push past it)

    def errors(self) -> dict:
        def stats(key: str) -> tuple[float, float]:
            err = error_frac(np.array([r[key] for r in self.rows]), np.array([r["measured"] for r in self.rows]))
            return float(np.median(err) * 100), float(1 + err.max())

        (bm, bw), (am, aw) = stats("before"), stats("after")
        return {"before_median_error_pct": bm, "before_worst_factor": bw, "after_median_error_pct": am, "after_worst_factor": aw}


def error_frac(predicted, measured):
    """exp|ln(predicted / measured)| - 1, elementwise: a miss by a factor f either way counts f - 1."""
    return np.exp(np.abs(np.log(np.divide(predicted, measured)))) - 1


def setup_options(f: Fields) -> tuple[str, str, int, dict]:
    """(model, hardware, gpus, `estimate` keyword options) of a setup: a measurement's or a
    benchmark file's deployment; errors name the file and key."""
    options = shape_options(f)
    for key, target in _SHAPE.items():
        if key == "mtp_accept":
            v = f.num(key, None)
        elif key in _INT_KEYS:
            v = f.int(key, None)
        else:
            v = f.str(key, None)
        if v is not None:
            options[target] = v
    return f.str("model"), f.str("hardware"), f.int("gpus"), options


def _measurement(f: Fields, where: str) -> Measurement:
    metric = f.str("metric", choices=tuple(METRICS))
    value = f.num("value")
    if not value > 0:
        raise f.error("value", f"must be > 0, got {value}")
    m = Measurement(where, *setup_options(f), metric, float(value))
    f.done()
    return m


def load_measurements(path: str | Path) -> list[Measurement]:
    """Read a measurement file (module docstring); every problem is one PlanError naming the key."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        text = read_text(path, "CSV file", MAX_TRACE_BYTES)  # regular files only, capped (a FIFO hung, /dev/zero ran out of memory)
        rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise PlanError(f"{path}: no measurement rows (need a header and one row per measurement)")
        out = []
        for i, row in enumerate(rows, start=2):
            if None in row:
                raise PlanError(f"{path}: row {i}: more fields than the header has columns")
            clean = {k.strip(): _csv_value(v.strip()) for k, v in row.items() if k and v is not None and v.strip() != ""}
            out.append(_measurement(Fields(clean, f"{path}: row {i}"), f"{path}: row {i}"))
        return out
    f = Fields(load_yaml_mapping(path), path)
    items = f.list("measurements")
    if not items:
        raise f.error("measurements", "must list at least one measurement")
    out = [_measurement(f.item("measurements", i), f"{path}: measurements[{i}]") for i in range(len(items))]
    f.done()
    return out


def _csv_value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _with(hw: Hardware, eff: Efficiency) -> Hardware:
    return replace(hw, efficiency=eff)


def predict(m: Measurement, hw: Hardware, model_cache: dict) -> float:
    model = model_cache.get(m.model) or model_cache.setdefault(m.model, load_model(m.model))
    try:
        value = estimate(model, hw, m.gpus, measured=True, **m.options)[METRICS[m.metric]]
    except PlanError as exc:
        raise PlanError(f"{m.where}: {exc}") from None
    if value is None or not np.isfinite(value) or value <= 0:
        raise PlanError(f"{m.where}: the model gives no {m.metric} for this setup (weights leave no room for a batch?)")
    return float(value)


def fit_measurements(measurements: list[Measurement], keys: tuple[str, ...] | None = None) -> FitResult:
    """Fit (module docstring). Raises PlanError when nothing is sensitive or the fit fails."""
    from scipy.optimize import least_squares

    parts = {name: load_hardware(name) for name in dict.fromkeys(m.hardware for m in measurements)}
    base_hw = parts[measurements[0].hardware]
    base = base_hw.efficiency
    cache: dict = {}
    bounds = {k: (lo, hi) for k, lo, hi in BOUNDS}
    candidates = keys or tuple(bounds)
    for k in candidates:
        if k not in bounds:
            raise PlanError(f"--fit: unknown parameter {k!r}; known: {', '.join(bounds)}")

    def preds(params: dict) -> np.ndarray:
        eff = replace(base, **params)
        return np.array([predict(m, _with(parts[m.hardware], eff), cache) for m in measurements])

    measured = np.array([m.value for m in measurements])
    start = {k: min(max(getattr(base, k), bounds[k][0]), bounds[k][1]) for k in candidates}
    before = preds({})
    base_pred = preds(start)
    columns = {}
    for k in candidates:  # sensitivity of ln(prediction) to each parameter, per share of its range
        lo_k, hi_k = bounds[k]
        step = 0.05 * (hi_k - lo_k)
        probe = start[k] + step if start[k] + step <= hi_k else start[k] - step
        columns[k] = np.log(preds({**start, k: probe}) / base_pred) / ((probe - start[k]) / (hi_k - lo_k))
    sensitive, left_fixed = identifiable(columns, len(measurements))
    if keys:
        refused = {k: left_fixed[k] for k in keys if k in left_fixed}
        if refused:
            raise PlanError("calibrate: --fit asks for parameters these measurements cannot identify: "
                            + "; ".join(f"{k} ({why})" for k, why in refused.items()) + "; nothing written")
    if not sensitive:
        raise PlanError("calibrate: the measurements do not depend on any fitted parameter; add TTFT, prefill or decode measurements")
    lo = np.array([bounds[k][0] for k in sensitive])
    hi = np.array([bounds[k][1] for k in sensitive])
    scale = np.maximum(hi - lo, 1e-12)
    x0 = (np.array([start[k] for k in sensitive]) - lo) / scale

    def residuals(x: np.ndarray) -> np.ndarray:
        params = {**start, **{k: float(v) for k, v in zip(sensitive, lo + x * scale)}}
        r = np.log(preds(params) / measured)
        if not np.all(np.isfinite(r)):
            raise PlanError("calibrate: the model gives a non-finite prediction during the fit")
        return r

    sol = least_squares(residuals, np.clip(x0, 0, 1), bounds=(0.0, 1.0), diff_step=1e-4, max_nfev=200 * (len(sensitive) + 1))
    if not sol.success or not np.all(np.isfinite(sol.x)):
        raise PlanError(f"calibrate: the fit did not converge ({sol.message})")
    fitted = {**start, **{k: float(f"{v:.4g}") for k, v in zip(sensitive, lo + sol.x * scale)}}
    eff = replace(base, basis="calibrated", **fitted)
    after = np.array([predict(m, _with(parts[m.hardware], eff), cache) for m in measurements])
    rows = [{"where": m.where, "metric": m.metric, "measured": m.value, "before": float(b), "after": float(a)}
            for m, b, a in zip(measurements, before, after)]
    at_bound = tuple(k for k in sensitive if min(abs(fitted[k] - bounds[k][0]), abs(fitted[k] - bounds[k][1])) <= 1e-3 * (bounds[k][1] - bounds[k][0]))
    return FitResult(base_hw.name, base, eff, tuple(sensitive), rows, left_fixed, at_bound)


def identifiable(columns: dict[str, np.ndarray], n_measurements: int) -> tuple[list[str], dict[str, str]]:
    """The parameters the measurements identify, and why each other one is left fixed. Greedy, most
    responsive first: a parameter joins while the chosen set has fewer parameters than
    measurements and the condition number of its sensitivity columns stays <= MAX_CONDITION."""
    chosen: list[str] = []
    fixed: dict[str, str] = {}
    for k in sorted(columns, key=lambda c: -float(np.max(np.abs(columns[c])))):
        col = columns[k]
        if float(np.max(np.abs(col))) * 0.05 <= MIN_RESPONSE:
            fixed[k] = "no measurement responds to it"
            continue
        if len(chosen) >= n_measurements:
            fixed[k] = f"as many parameters as measurements already ({n_measurements})"
            continue
        sv = np.linalg.svd(np.column_stack([columns[c] for c in chosen] + [col]), compute_uv=False)
        if sv[-1] <= 0 or sv[0] / sv[-1] > MAX_CONDITION:
            fixed[k] = f"moves the predictions like {', '.join(chosen)}: the measurements cannot tell them apart"
            continue
        chosen.append(k)
    return chosen, fixed


def profile_document(result: FitResult, source: str, date: str) -> dict:
    """The profile file's content (loaded back by catalog.hardware.load_profile_efficiency)."""
    eff = {k: v for k, v in vars(result.efficiency).items() if k != "note"}
    return {
        "kind": "efficiency-profile",
        "hardware": result.hardware,
        "date": date,
        "fitted_on": f"{source} ({len(result.rows)} measurements)",
        "fitted_keys": list(result.fitted_keys),
        "left_fixed": dict(result.left_fixed),
        "at_bound": list(result.at_bound),
        "errors": {k: round(v, 4) for k, v in result.errors().items()},
        "efficiency": eff,
    }
