"""The engine model's error band as a distribution of time factors (actual / predicted).

The engine model publishes an 80% band per metric kind (:mod:`prfaas_plan.roofline.bands`:
the Student-t predictive interval of ln(measured / predicted) over the calibration's points of
that kind, written by ``scripts/calibrate.py --write``). `risk` needs a distribution, not an
interval: :func:`model_error` takes the lognormal time factor with the same centre whose 10th and
90th percentiles are the band's ends,

    mu = (ln low_t + ln high_t) / 2,   sigma = (ln high_t - ln low_t) / (2 z),   z = Phi^-1(0.5 + coverage / 2),

where [low_t, high_t] = [1 / high, 1 / low] turns the band of a rate (tokens/s, measured /
predicted) into one of a time (actual / predicted): :func:`~prfaas_plan.latency.bands.time_band`,
which `optimize` also uses for a plan's Lambda_max and TTFT at the band's ends. Kinds: ``prefill`` (saturated prefill
throughput, 5 engine points: the regime the planner's capacities use) for
``prefill_time_factor``, ``decode`` (14 decode and co-located points) for
``decode_time_factor``. The lognormal's tails are thinner than the Student-t's beyond the band.

The band scales only the times the engine model predicts, each by its own kind's band: a time
from a measured profile keeps factor 1, in `risk` as in `optimize`'s band (one rule,
:func:`~prfaas_plan.latency.bands.model_time_kinds`). A sample draws one prefill factor (the
``prefill`` band, :data:`DEFAULT_KIND`); a time of another kind (a request's own prefill, the
``ttft`` band) takes that band's factor at the same quantile (:func:`same_quantile`): the
errors move together, as `optimize`'s corner takes every band at the same end. In-sample
residuals of a 9-parameter fit: optimistic for parts and models outside the calibration; state
a tighter or wider distribution in the scenario's ``uncertainty:`` where you know better (a
stated factor scales every time it names, as given, profiles included).
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

from ..planning.uncertainty import Distribution
from ..latency.bands import time_band
from ..roofline.bands import band


@cache
def model_error(kind: str) -> Distribution:
    """The time factor of metric ``kind`` ("prefill" or "decode") as a distribution (see module)."""
    b = band(kind)
    low_t, high_t = time_band(kind)  # a rate's band as a time's
    z = NormalDist().inv_cdf(0.5 + b.coverage / 2)
    mu, sigma = (math.log(low_t) + math.log(high_t)) / 2, (math.log(high_t) - math.log(low_t)) / (2 * z)
    note = (f"engine model's {b.coverage:.0%} band, {kind} ({b.points} calibration points): time x {low_t:.3g} to {high_t:.3g}, "
            "as a lognormal with those P10/P90")
    return Distribution("lognormal", (("mu", mu), ("sigma", sigma)), note, note)


#: The band each time factor's default is drawn from.
DEFAULT_KIND = {"prefill_time_factor": "prefill", "decode_time_factor": "decode"}


def same_quantile(factor: float, drawn_kind: str, kind: str) -> float:
    """The time factor of ``kind``'s band at the quantile that ``factor`` has in ``drawn_kind``'s:
    exp(mu_k + sigma_k z) with z = (ln factor - mu_d) / sigma_d (both lognormals of
    :func:`model_error`)."""
    if kind == drawn_kind:
        return factor
    d, k = model_error(drawn_kind), model_error(kind)
    z = (math.log(factor) - d.param("mu")) / d.param("sigma")
    return math.exp(k.param("mu") + k.param("sigma") * z)
