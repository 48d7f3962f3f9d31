"""What a simulation records: a re-plan (:class:`Change`), every request's timestamps
(:class:`Records`) and the live books at a moment (:class:`Snapshot`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Request stages for the live counters.
STAGES = ("moving-prefix", "prefill-queue", "prefilling", "kv-transfer", "decode-queue", "decoding")


def scalar(x) -> float:
    """The one value of a vectorised model's answer for one length."""
    return float(np.asarray(x, float).reshape(-1)[0])


@dataclass(frozen=True)
class Change:
    """A re-plan at ``time_s``: new threshold (tokens; inf = nothing offloaded) and/or new local
    split; None keeps the current value."""

    time_s: float
    threshold_tokens: float | None = None
    n_pd_prefill: int | None = None
    n_pd_decode: int | None = None


@dataclass
class Records:
    """Per request (index = arrival order; nan = did not happen): route (1 PrfaaS, 0 local, -1
    not routed), uncached tokens prefilled, cached tokens reused, KV bytes shipped, prefix bytes
    copied, and the timestamps (s): join (prefill queue), start, free (instance released), kv
    (prefill done), ready (for decode), admit (decode slot), done (last token)."""

    route: np.ndarray
    uncached: np.ndarray
    cached: np.ndarray
    kv_bytes: np.ndarray
    moved_bytes: np.ndarray
    join: np.ndarray
    start: np.ndarray
    free: np.ndarray
    kv: np.ndarray
    ready: np.ndarray
    admit: np.ndarray
    done: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Records:
        nan = lambda: np.full(n, np.nan)  # noqa: E731
        return cls(np.full(n, -1, np.int8), nan(), np.zeros(n), np.zeros(n), np.zeros(n), nan(), nan(), nan(), nan(), nan(), nan(), nan())


@dataclass
class Snapshot:
    time_s: float
    arrived: int
    completed: int
    stages: dict
    prompt_tokens_arrived: float
    prompt_tokens_prefilled: float
    prompt_tokens_cached: float
    output_tokens_generated: float
    capacities: dict = field(default_factory=dict)
