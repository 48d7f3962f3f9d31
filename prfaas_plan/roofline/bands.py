"""Error bands of the engine model: how far a prediction of each metric kind may be off.

The calibration's residuals (``scripts/calibrate.py --write`` records them in
:mod:`.band_data`) are r = ln(measured / predicted) per fitted point, grouped by metric kind:

- ``ttft``: single-request TTFT, [PRFAAS] Table 3 (24 cells, r of the prefill time);
- ``prefill``: saturated prefill throughput (engine points ``prefill_tput``, r of tokens/s);
- ``decode``: decode and co-located output throughput (``decode_tput``, ``decode_tput_membatch``,
  ``mixed_tput``; r of tokens/s).

Within a kind the residuals are taken as a normal sample (mean m, standard deviation s, n
points); a new prediction's 80% band is the Student-t predictive interval

    measured / predicted in [exp(m - q s sqrt(1 + 1/n)), exp(m + q s sqrt(1 + 1/n))],  q = t_0.9(n - 1)

so the band carries the kind's bias m (a band need not contain the prediction) and widens for
small n. A time metric of a kind whose residual is of a rate (decode step, TPOT) takes the
reciprocal factors, swapped. :func:`metric_band` gives (low, high) for one value;
:func:`add_bands` adds ``K_low`` / ``K_high`` beside every banded metric ``K`` of an `estimate`
result. The factors are precomputed when the calibration is written, so nothing here imports
scipy. ``python scripts/band_check.py`` checks the coverage by leave-one-out (refitting the
calibration without each point).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PlanError
from .band_data import BANDS, COVERAGE

#: `estimate` metric -> (kind, +1 if its residual is the kind's own, -1 if the reciprocal)
METRIC_KINDS = {
    "ttft_single_request_s": ("ttft", +1),
    "prefill_input_tokens_per_s_per_gpu": ("prefill", +1),
    "decode_step_s": ("decode", -1),
    "tpot_s": ("decode", -1),
    "decode_output_tokens_per_s_per_gpu": ("decode", +1),
    "colocated_output_tokens_per_s_per_gpu": ("decode", +1),
}


@dataclass(frozen=True)
class Band:
    """One metric kind's band: measured / predicted lies in [low_factor, high_factor] with
    probability ``coverage`` (module docstring)."""

    kind: str
    points: int
    mean_log: float
    sd_log: float
    low_factor: float
    high_factor: float
    coverage: float = COVERAGE


def band(kind: str) -> Band:
    """The recorded band of ``kind`` (``ttft``, ``prefill`` or ``decode``)."""
    try:
        b = BANDS[kind]
    except KeyError:
        raise PlanError(f"unknown metric kind {kind!r}; known: {', '.join(BANDS)}") from None
    return Band(kind, **b)


def metric_band(metric: str, value: float | None) -> tuple[float | None, float | None]:
    """(low, high) of an `estimate` metric's value under its kind's band; (None, None) for None."""
    if metric not in METRIC_KINDS:
        raise PlanError(f"no error band for {metric!r}; banded metrics: {', '.join(METRIC_KINDS)}")
    if value is None:
        return None, None
    kind, sign = METRIC_KINDS[metric]
    b = band(kind)
    lo, hi = (b.low_factor, b.high_factor) if sign > 0 else (1.0 / b.high_factor, 1.0 / b.low_factor)
    return value * lo, value * hi


def add_bands(result: dict) -> dict:
    """``result`` (an `estimate` dict) with ``K_low`` and ``K_high`` after each banded metric ``K``
    and ``error_bands`` saying how they are made."""
    out = {}
    for key, value in result.items():
        out[key] = value
        if key in METRIC_KINDS:
            out[f"{key}_low"], out[f"{key}_high"] = metric_band(key, value)
    out["error_bands"] = {
        "coverage": COVERAGE,
        "method": "Student-t predictive interval of ln(measured / predicted) over the calibration's points of the metric's kind",
        "kinds": {k: {"points": v["points"], "low_factor": v["low_factor"], "high_factor": v["high_factor"]} for k, v in BANDS.items()},
    }
    return out
