"""The PrfaaS throughput model, [PRFAAS] Eq. 3-6, as resource needs per unit of throughput.

For a threshold t (requests with uncached length L > t go to the PrfaaS cluster):

    Theta_prfaas = min(N_prfaas / T_r, B_out / S_r)          (Eq. 3)
    Theta_pd_p   = N_p / T_p                                 (Eq. 4)
    Theta_pd_d   = N_d * BS_max / (T_decode * L_out)         (Eq. 5)
    Lambda_max   = min(Theta_prfaas / p, Theta_pd_p / (1 - p), Theta_pd_d)   (Eq. 6)

with p = P(L > t) and, per mode,
- ``paper``: T_r = T_prfaas(l_long), S_r = S_kv(l_long), T_p = T_pd(l_short), one representative
  length per path exactly as the paper;
- ``distribution``: T_r = E[T_prfaas(L) | L > t], S_r = E[S_kv(L) | L > t], T_p = E[T_pd(L) | L <= t]:
  an instance serving a mix finishes 1 / E[T] requests per second, not 1 / T(E[L]).

Equivalently, sustaining Lambda req/s needs N_prfaas >= Lambda * p * T_r instances, B_out >=
Lambda * p * S_r bytes/s, N_p >= Lambda * (1 - p) * T_p and N_d >= Lambda / theta_d. The optimizer
works with these needs (:class:`Needs`), evaluated for every candidate threshold at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..catalog.model import ModelSpec
from ..errors import PlanError
from ..roofline.decode import DecodeCapacity
from ..roofline.kv import kv_cache_bytes
from ..roofline.prefill import PrefillModel
from .workload import LengthDistribution

MODES = ("paper", "distribution")


@dataclass(frozen=True)
class Needs:
    """Per unit of throughput (1 req/s), at each threshold (arrays, or scalars at one t).

    threshold_tokens[j]: requests with L > threshold go remote (j = 0: all remote; last: all local)
    offload_frac = p; long_tokens = E[L | L > t]; short_tokens = E[L | L <= t]
    remote_s = p * T_r (PrfaaS instance-seconds per request); link_bytes = p * S_r (bytes per
    request over the link); local_s = (1 - p) * T_p (local prefill instance-seconds per request).
    t_remote_s, s_remote_bytes, t_local_s: T_r, S_r, T_p themselves (nan on an empty side).
    """

    threshold_tokens: np.ndarray
    offload_frac: np.ndarray
    long_tokens: np.ndarray
    short_tokens: np.ndarray
    t_remote_s: np.ndarray
    s_remote_bytes: np.ndarray
    t_local_s: np.ndarray

    def select(self, j: int, threshold_tokens: float) -> Needs:
        """The needs of threshold option ``j`` alone, labelled with ``threshold_tokens``."""
        pick = lambda a: np.asarray(a)[j : j + 1]  # noqa: E731
        return Needs(np.array([float(threshold_tokens)]), pick(self.offload_frac), pick(self.long_tokens), pick(self.short_tokens),
                     pick(self.t_remote_s), pick(self.s_remote_bytes), pick(self.t_local_s))

    @cached_property
    def remote_s(self):
        return np.where(self.offload_frac > 0, self.offload_frac * np.nan_to_num(self.t_remote_s), 0.0)

    @cached_property
    def link_bytes(self):
        return np.where(self.offload_frac > 0, self.offload_frac * np.nan_to_num(self.s_remote_bytes), 0.0)

    @cached_property
    def local_s(self):
        return np.where(self.offload_frac < 1, (1 - self.offload_frac) * np.nan_to_num(self.t_local_s), 0.0)


class ThroughputModel:
    """Evaluates Eq. 3-6 for one model, workload and pair of clusters, in ``paper`` or
    ``distribution`` mode. ``remote`` may be None (a local-only deployment)."""

    def __init__(
        self,
        model: ModelSpec,
        lengths: LengthDistribution,
        remote: PrefillModel | None,
        local: PrefillModel,
        decode: DecodeCapacity,
        output_tokens: float,
        mode: str = "distribution",
        n_cells: int = 2048,
    ):
        if mode not in MODES:
            raise PlanError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.model, self.lengths, self.remote, self.local = model, lengths, remote, local
        self.decode, self.output_tokens, self.mode = decode, output_tokens, mode
        self.decode_req_per_s_per_instance = decode.req_per_s(output_tokens)
        edges, mass, means = lengths.cells(n_cells)
        self._edges, self._mass, self._means = edges, mass, means
        self.needs = self._needs_from_cells(mass, means, np.concatenate([[0.0], edges]))

    # -- core -------------------------------------------------------------------------------
    def _prefill_s(self, pm: PrefillModel | None, lengths: np.ndarray) -> np.ndarray:
        if pm is None:
            return np.full_like(lengths, np.nan, dtype=float)
        t = pm.time_s(np.nan_to_num(lengths, nan=1.0))
        if np.any(t <= 0):
            raise PlanError(f"prefill model {pm.source} gives a non-positive time inside the length range")
        return np.where(np.isnan(lengths), np.nan, t)

    def _needs_from_cells(self, mass: np.ndarray, means: np.ndarray, thresholds: np.ndarray) -> Needs:
        """Needs for thresholds "first j cells local", j = 0..n (``thresholds`` has n + 1 entries)."""
        zero = np.zeros(1)
        cm = np.concatenate([zero, np.cumsum(mass)])  # mass of cells < j
        total = cm[-1]
        q = np.clip(cm / total, 0.0, 1.0)
        p = np.clip(1.0 - q, 0.0, 1.0)
        p[-1], q[0] = 0.0, 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = np.concatenate([zero, np.cumsum(mass * means)])
            long_l = np.where(p > 0, (cx[-1] - cx) / (p * total), np.nan)
            short_l = np.where(q > 0, cx / (q * total), np.nan)
            if self.mode == "paper":
                t_r = self._prefill_s(self.remote, long_l)
                s_r = np.where(p > 0, kv_cache_bytes(self.model, np.nan_to_num(long_l)), np.nan)
                t_p = self._prefill_s(self.local, short_l)
            else:
                tr_cells = self._prefill_s(self.remote, means) if self.remote else np.zeros_like(means)
                tp_cells = self._prefill_s(self.local, means)
                s_cells = kv_cache_bytes(self.model, means)
                ctr = np.concatenate([zero, np.cumsum(mass * tr_cells)])
                cs = np.concatenate([zero, np.cumsum(mass * s_cells)])
                ctp = np.concatenate([zero, np.cumsum(mass * tp_cells)])
                t_r = np.where(p > 0, (ctr[-1] - ctr) / (p * total), np.nan) if self.remote else np.full_like(p, np.nan)
                s_r = np.where(p > 0, (cs[-1] - cs) / (p * total), np.nan)
                t_p = np.where(q > 0, ctp / (q * total), np.nan)
        return Needs(thresholds, p, long_l, short_l, t_r, s_r, t_p)

    def needs_at(self, threshold_tokens: float) -> Needs:
        """Needs at one continuous threshold t (arrays of length 1). For a continuous length
        distribution the cell holding t is split exactly (mass and mean of each part from the
        CDF and partial mean); for a trace, t falls between recorded lengths."""
        t = float(threshold_tokens)
        lo, hi = self.lengths.support()
        if not self.lengths.continuous:
            return self.needs.select(int(np.searchsorted(self._means, t, side="right")), t)
        if t < lo:
            return self.needs.select(0, t)
        if t >= hi:
            return self.needs.select(len(self._mass), t)
        edges, mass, means = self._edges, self._mass, self._means
        k = int(np.searchsorted(edges, t, side="left"))  # edges[k - 1] < t <= edges[k]
        lo_edge = edges[k - 1] if k > 0 else lo * (1 - 1e-9)
        m_lo = float(self.lengths.cdf(t) - self.lengths.cdf(lo_edge))
        m_hi = max(float(mass[k]) - m_lo, 0.0)
        x_lo = float(self.lengths.partial_mean(lo_edge, t)) / m_lo if m_lo > 0 else t
        x_hi = (means[k] * mass[k] - x_lo * m_lo) / m_hi if m_hi > 0 else t
        split_mass = np.concatenate([mass[:k], [m_lo, m_hi], mass[k + 1 :]])
        split_means = np.concatenate([means[:k], [x_lo, x_hi], means[k + 1 :]])
        return self._needs_from_cells(split_mass, split_means, np.zeros(len(split_mass) + 1)).select(k + 1, t)

    # -- Eq. 3-6 at a deployment ---------------------------------------------------------------
    def evaluate(self, needs: Needs, n_prfaas: int, n_pd_prefill: int, n_pd_decode: int, link_bytes_per_s: float) -> dict:
        """Every Theta, Lambda_max and what binds, for integer counts at given needs (arrays ok)."""
        p = needs.offload_frac
        with np.errstate(divide="ignore", invalid="ignore"):
            theta_compute = np.where(p > 0, n_prfaas / needs.t_remote_s, np.inf)
            theta_link = np.where(p > 0, link_bytes_per_s / needs.s_remote_bytes, np.inf)
            theta_prfaas = np.minimum(theta_compute, theta_link)
            theta_pd_p = np.where(p < 1, n_pd_prefill / needs.t_local_s, np.inf)
            theta_pd_d = n_pd_decode * self.decode_req_per_s_per_instance
            cap_prfaas = np.where(p > 0, theta_prfaas / p, np.inf)
            cap_pd_p = np.where(p < 1, theta_pd_p / (1 - p), np.inf)
        lam = np.minimum(np.minimum(cap_prfaas, cap_pd_p), theta_pd_d)
        return {
            "theta_prfaas_req_per_s": theta_prfaas,
            "theta_prfaas_compute_req_per_s": theta_compute,
            "theta_prfaas_link_req_per_s": theta_link,
            "theta_pd_prefill_req_per_s": theta_pd_p,
            "theta_pd_decode_req_per_s": theta_pd_d,
            "cap_prfaas_req_per_s": cap_prfaas,
            "cap_pd_prefill_req_per_s": cap_pd_p,
            "throughput_req_per_s": lam,
        }
