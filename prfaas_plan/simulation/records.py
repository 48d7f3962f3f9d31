"""What a simulation records: a re-plan (:class:`Change`), every request's timestamps
(:class:`Records`) and the live books at a moment (:class:`Snapshot`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import PlanError

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

    def check(self, local_instances: int, has_local_prefill_model: bool) -> None:
        """Refuses (PlanError) a re-plan that is not one: a split given by half, one that does not
        keep N_p + N_d = ``local_instances``, local prefill without a model for it, a negative
        threshold or a time that is not a finite number >= 0."""
        if (self.n_pd_prefill is None) != (self.n_pd_decode is None):
            raise PlanError("a re-plan gives both n_pd_prefill and n_pd_decode, or neither")
        if self.n_pd_prefill is not None and (self.n_pd_prefill < 0 or self.n_pd_decode < 0
                                              or self.n_pd_prefill + self.n_pd_decode != local_instances):
            raise PlanError(f"a re-plan keeps N_p + N_d = {local_instances} local instances, got {self.n_pd_prefill} + {self.n_pd_decode}")
        if self.n_pd_prefill and not has_local_prefill_model:
            raise PlanError("a re-plan adds local prefill instances to a deployment without a local prefill model")
        if self.threshold_tokens is not None and not self.threshold_tokens >= 0:
            raise PlanError(f"a re-plan's threshold must be >= 0 tokens, got {self.threshold_tokens}")
        if not (math.isfinite(self.time_s) and self.time_s >= 0):
            raise PlanError(f"a re-plan's time must be a finite number >= 0 s, got {self.time_s}")


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
