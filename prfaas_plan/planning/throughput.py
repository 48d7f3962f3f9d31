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

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from ..catalog.model import ModelSpec
from ..errors import PlanError
from ..roofline.decode import DecodeCapacity
from ..roofline.kv import kv_cache_bytes
from ..roofline.prefill import PrefillModel
from .workload import LengthDistribution, cell_means, weighted

MODES = ("paper", "distribution")

_MEMO: dict = {}  # (what, distribution, n) -> read-only arrays: a plan's two modes and its latency share them


def _memo(what: str, lengths: LengthDistribution, n: int, make) -> tuple:
    try:
        key = (what, lengths, n)
        hit = _MEMO.get(key)
    except TypeError:  # an unhashable distribution: no cache
        return tuple(make())
    if hit is None:
        hit = tuple(make())
        for a in hit:
            a.setflags(write=False)
        if len(_MEMO) >= 32:
            _MEMO.clear()
        _MEMO[key] = hit
    return hit


def _cells(lengths: LengthDistribution, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``lengths.cells(n)``, computed once per distribution (distributions are frozen values)."""
    return _memo("cells", lengths, n, lambda: lengths.cells(n))


def cell_edges(lengths: LengthDistribution, n: int) -> np.ndarray:
    """``lengths.cell_edges(n)`` (read-only), computed once per distribution."""
    return _memo("edges", lengths, n, lambda: (lengths.cell_edges(n),))[0]


@dataclass(frozen=True)
class Needs:
    """Per unit of throughput (1 req/s), at each threshold (arrays).

    threshold_tokens: requests with uncached length L > threshold go remote (0: all remote;
    the longest length or more: all local); offload_frac = p; long_tokens = E[L | L > t];
    short_tokens = E[L | L <= t] (nan on an empty side).
    remote_s = p * T_r: PrfaaS instance-seconds per request; link_bytes = p * S_r: bytes per
    request over the link; local_s = (1 - p) * T_p: local prefill instance-seconds per request.
    """

    threshold_tokens: np.ndarray
    offload_frac: np.ndarray
    long_tokens: np.ndarray
    short_tokens: np.ndarray
    remote_s: np.ndarray
    link_bytes: np.ndarray
    local_s: np.ndarray

    def select(self, j) -> Needs:
        """The needs of threshold option(s) ``j`` (an index, or an index array) alone."""
        idx = np.atleast_1d(j)
        return Needs(*(np.asarray(getattr(self, name))[idx] for name in _NEEDS_FIELDS))

    @staticmethod
    def concat(parts: list[Needs]) -> Needs:
        return Needs(*(np.concatenate([np.asarray(getattr(p, name)) for p in parts]) for name in _NEEDS_FIELDS))

    def _per_request(self, total, frac):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(frac > 0, total / np.where(frac > 0, frac, 1.0), np.nan)

    @property
    def t_remote_s(self):
        """T_r: mean PrfaaS prefill instance-seconds of an offloaded request (nan if none)."""
        return self._per_request(self.remote_s, self.offload_frac)

    @property
    def s_remote_bytes(self):
        """S_r: mean KV bytes shipped per offloaded request (nan if none)."""
        return self._per_request(self.link_bytes, self.offload_frac)

    @property
    def t_local_s(self):
        """T_p: mean local prefill instance-seconds of a request kept local (nan if none)."""
        return self._per_request(self.local_s, 1.0 - self.offload_frac)


_NEEDS_FIELDS = tuple(f.name for f in fields(Needs))


class ThroughputModel:
    """Evaluates Eq. 3-6 for one model, workload and pair of clusters, in ``paper`` or
    ``distribution`` mode. ``remote`` may be None (a local-only deployment).

    ``needs`` holds the needs at the grid thresholds [0, e_1, ..., e_m] (the cell boundaries of
    the length distribution); :meth:`needs_at` gives them at any threshold, splitting the cell that
    holds it exactly (mass and mean of each part from the CDF and partial mean)."""

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
        upper, self._mass, self._means = _cells(lengths, n_cells)
        self._edges = np.concatenate([[lengths.support()[0] * (1 - 1e-9)], upper])  # e_0 .. e_m
        lo_edge, hi_edge = self._edges[0], self._edges[-1]
        self._cdf_total = float(lengths.cdf(hi_edge) - lengths.cdf(lo_edge))
        self._cdf_edges = lengths.cdf(self._edges)  # the CDF is element-wise: read at a cell's start, not recomputed
        self._cell = {"tr": self._prefill_s(remote, self._means), "tp": self._prefill_s(local, self._means),
                      "s": kv_cache_bytes(model, self._means)}
        per_cell = {"m": np.ones_like(self._mass), "x": self._means, **self._cell}
        self._cum = {k: np.concatenate([[0.0], np.cumsum(weighted(self._mass, v))]) for k, v in per_cell.items()}
        self.needs = self.needs_at(np.concatenate([[0.0], upper]))

    @cached_property
    def interval_ends(self) -> tuple[Needs, Needs]:
        """Needs at the two ends (lo, hi) of every interval between neighbouring grid thresholds."""
        n = len(self.needs.offload_frac)
        return self.needs.select(np.arange(n - 1)), self.needs.select(np.arange(1, n))

    # -- core -------------------------------------------------------------------------------
    def _prefill_s(self, pm: PrefillModel | None, lengths: np.ndarray) -> np.ndarray:
        lengths = np.asarray(lengths, float)
        if pm is None:
            return np.full_like(lengths, np.nan)
        finite = np.isfinite(lengths)
        if finite.all():  # the usual case, without the masking below (same values)
            t = pm.time_s(lengths)
            if not (t > 0).all():
                raise PlanError(f"prefill model {pm.source} gives a non-positive time inside the length range")
            return t
        t = pm.time_s(np.where(finite, lengths, 1.0))
        if np.any(finite & ~(t > 0)):
            raise PlanError(f"prefill model {pm.source} gives a non-positive time inside the length range")
        return np.where(finite, t, np.nan)

    def needs_at(self, thresholds) -> Needs:
        """Needs at thresholds t (any real numbers): the cell (e_{k-1}, e_k] holding t is split
        into the mass at or below t (local) and above it (remote), each with its exact mass and
        mean; cells below stay local and cells above go remote. In ``distribution`` mode
        T_r = E[T_prfaas(L) | L > t] with each (part-)cell at its mean; in ``paper`` mode
        T_r = T_prfaas(E[L | L > t]) (and likewise T_p, S_r)."""
        t = np.atleast_1d(np.asarray(thresholds, float))
        e, mass, means, m = self._edges, self._mass, self._means, len(self._mass)
        k = np.searchsorted(e, t, side="left")  # e[k-1] < t <= e[k]
        cell = np.minimum(np.maximum(k, 1), m) - 1  # np.clip, without its Python-level overhead
        m_cell, x_cell = mass[cell], means[cell]
        # default: the whole cell local (t at or above its top) or remote (t below e_0)
        below = k == 0
        m_lo = np.where(below, 0.0, m_cell)
        x_lo = np.where(below, e[0], x_cell)
        vals = {key: v[cell] for key, v in self._cell.items()}
        tp_lo, tr_hi, s_hi = vals["tp"], vals["tr"], vals["s"]
        inner = ~below & (k <= m) & (t < e[np.minimum(k, m)])
        if np.any(inner):
            ti, lo_e, hi_e, mc, xc = t[inner], e[cell[inner]], e[cell[inner] + 1], m_cell[inner], x_cell[inner]
            ml = np.minimum(np.maximum((self.lengths.cdf(ti) - self._cdf_edges[cell[inner]]) / self._cdf_total, 0.0), mc)
            xl = cell_means(ml, (self.lengths.partial_mean(lo_e, ti)) / self._cdf_total, lo_e, ti)
            xh = cell_means(mc - ml, mc * xc - ml * xl, ti, hi_e)
            m_lo, x_lo = m_lo.copy(), x_lo.copy()
            m_lo[inner], x_lo[inner] = ml, xl
            x_hi = x_cell.copy()
            x_hi[inner] = xh
            tp_lo, tr_hi, s_hi = tp_lo.copy(), tr_hi.copy(), s_hi.copy()
            tp_lo[inner] = self._prefill_s(self.local, xl)
            tr_hi[inner] = self._prefill_s(self.remote, xh)
            s_hi[inner] = kv_cache_bytes(self.model, xh)
        else:
            x_hi = x_cell
        m_hi = np.maximum(m_cell - m_lo, 0.0)
        c = self._cum
        head = lambda key: c[key][cell]  # noqa: E731  (cells before the split one)
        tail = lambda key: c[key][-1] - c[key][cell + 1]  # noqa: E731  (cells after it)
        p, q = np.maximum(tail("m") + m_hi, 0.0), np.maximum(head("m") + m_lo, 0.0)
        p, q = p / (p + q), q / (p + q)  # complementary: p is exactly 1 where nothing stays local
        with np.errstate(divide="ignore", invalid="ignore"):
            long_l = np.where(p > 0, (tail("x") + weighted(m_hi, x_hi)) / p, np.nan)
            short_l = np.where(q > 0, (head("x") + weighted(m_lo, x_lo)) / q, np.nan)
        if self.mode == "paper":
            remote_s = weighted(p, self._prefill_s(self.remote, long_l)) if self.remote else np.zeros_like(p)
            link = weighted(p, kv_cache_bytes(self.model, np.nan_to_num(long_l)))
            local_s = weighted(q, self._prefill_s(self.local, short_l))
        else:
            remote_s = tail("tr") + weighted(m_hi, tr_hi) if self.remote else np.zeros_like(p)
            link = tail("s") + weighted(m_hi, s_hi)
            local_s = head("tp") + weighted(m_lo, tp_lo)
        return Needs(t, p, long_l, short_l, np.where(p > 0, remote_s, 0.0), np.where(p > 0, link, 0.0), np.where(q > 0, local_s, 0.0))

    # -- Eq. 3-6 at a deployment ---------------------------------------------------------------
    def capacities(self, needs: Needs, n_prfaas, n_pd_prefill, n_pd_decode, link_bytes_per_s) -> tuple:
        """(cap_compute, cap_link, cap_prfaas, cap_pd_prefill, Theta_pd_d) as :meth:`evaluate` names them."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cap_compute = np.where(needs.remote_s > 0, n_prfaas / needs.remote_s, np.inf)
            cap_link = np.where(needs.link_bytes > 0, link_bytes_per_s / needs.link_bytes, np.inf)
            cap_prfaas = np.minimum(cap_compute, cap_link)
            cap_pd_p = np.where(needs.local_s > 0, n_pd_prefill / needs.local_s, np.inf)
            theta_pd_d = n_pd_decode * self.decode_req_per_s_per_instance
        return cap_compute, cap_link, cap_prfaas, cap_pd_p, theta_pd_d

    def throughput_req_per_s(self, needs: Needs, n_prfaas, n_pd_prefill, n_pd_decode, link_bytes_per_s) -> np.ndarray:
        """Lambda_max alone (``evaluate(...)["throughput_req_per_s"]``, without the rest)."""
        _, _, cap_prfaas, cap_pd_p, theta_pd_d = self.capacities(needs, n_prfaas, n_pd_prefill, n_pd_decode, link_bytes_per_s)
        return np.minimum(np.minimum(cap_prfaas, cap_pd_p), theta_pd_d)

    def evaluate(self, needs: Needs, n_prfaas: int, n_pd_prefill: int, n_pd_decode: int, link_bytes_per_s: float) -> dict:
        """Every Theta, Lambda_max and what binds, for integer counts at given needs (arrays ok):
        Eq. 3-6 written with the needs, cap_prfaas = Theta_prfaas / p = min(N_prfaas / (p T_r),
        B_out / (p S_r)) and cap_pd_prefill = Theta_pd_p / (1 - p) = N_p / ((1 - p) T_p)."""
        p = needs.offload_frac
        cap_compute, cap_link, cap_prfaas, cap_pd_p, theta_pd_d = self.capacities(needs, n_prfaas, n_pd_prefill, n_pd_decode, link_bytes_per_s)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            theta = {"theta_prfaas_req_per_s": cap_prfaas, "theta_prfaas_compute_req_per_s": cap_compute,
                     "theta_prfaas_link_req_per_s": cap_link}
            theta = {k: np.where(p > 0, cap * p, np.inf) for k, cap in theta.items()}
            theta_pd_p = np.where(p < 1, cap_pd_p * (1 - p), np.inf)
        lam = np.minimum(np.minimum(cap_prfaas, cap_pd_p), theta_pd_d)  # as throughput_req_per_s
        return {
            **theta,
            "theta_pd_prefill_req_per_s": theta_pd_p,
            "theta_pd_decode_req_per_s": theta_pd_d,
            "cap_prfaas_req_per_s": cap_prfaas,
            "cap_pd_prefill_req_per_s": cap_pd_p,
            "throughput_req_per_s": lam,
        }
