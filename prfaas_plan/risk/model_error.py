"""The engine model's error band as a distribution of time factors (actual / predicted).

PLACEHOLDER until the engine model publishes per-metric error bands (issue 18: 80% bands per
metric kind from the fit residuals). Swap :func:`model_error` for a reader of those bands; nothing
else depends on how the distribution is made.

Today: a lognormal time factor per metric kind whose mu and sigma are the mean and the sample
standard deviation of ln(predicted rate / measured rate) over the calibration's own points
(rates: a time factor a = T_actual / T_predicted is predicted rate / measured rate):

- ``prefill``: the 5 prefill-throughput engine points of ``paper/data/engines-train.json`` and
  the 24 cells of [PRFAAS] Table 3 (Phi_kv = S_kv / T_prefill; S_kv is exact, so the ratio of
  Phi is the ratio of prefill times);
- ``decode``: the 14 decode and co-located engine points (decode_tput, decode_tput_membatch,
  mixed_tput; co-located points are decode-dominated except the 4 at 2048/128).

These are in-sample residuals of a 9-parameter fit, so the band is optimistic for parts and
models outside the calibration and pessimistic where a scenario uses a measured profile (the
case study's H200 prefill follows Table 5 within 2%); state a tighter or wider distribution in
the scenario's ``uncertainty:`` where you know better.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..catalog.hardware import load_hardware
from ..paper import engines
from ..paper.calibration import table3_predictions
from ..paper.reference import TABLE3_HARDWARE
from ..planning.uncertainty import Distribution

#: Engine-point kinds whose residuals make each metric kind's band.
KINDS = {"prefill": ("prefill_tput",), "decode": ("decode_tput", "decode_tput_membatch", "mixed_tput")}


@cache
def log_ratios(kind: str) -> tuple[float, ...]:
    """ln(predicted rate / measured rate) of every calibration point of metric ``kind``."""
    out = [float(np.log(r["ratio"])) for r in engines.rows() if r["kind"] in KINDS[kind]]
    if kind == "prefill":
        out += [float(np.log(pred / paper)) for _, _, pred, paper in table3_predictions(load_hardware(TABLE3_HARDWARE))]
    return tuple(out)


@cache
def model_error(kind: str) -> Distribution:
    """The time factor of metric ``kind`` ("prefill" or "decode") as a distribution (see module)."""
    r = np.array(log_ratios(kind))
    note = f"engine-model residuals, {kind}: mean and sd of ln(predicted/measured) over {len(r)} calibration points (placeholder band)"
    return Distribution("lognormal", (("mu", float(r.mean())), ("sigma", float(r.std(ddof=1)))), note, note)
