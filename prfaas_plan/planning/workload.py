"""Traffic: prompt-length distributions, output length, prefix-cache hits.

Every distribution offers the quantities [PRFAAS] section 2 routes on, for a threshold t on the
*uncached* length L:  p = P(L > t),  l_long = E[L | L > t],  l_short = E[L | L <= t], and the
expectation of any function of L (over all requests or one side of t).

The base class, its cells and how atoms and thresholds are kept exact live in
:mod:`prfaas_plan.planning.lengths`; the distributions themselves, trace files and the
:class:`Workload` here.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from ..catalog.files import MAX_TRACE_BYTES, read_text, show_path
from ..errors import PlanError
from .lengths import (  # noqa: F401  (re-exported: callers read these from workload)
    DEFAULT_CELLS,
    LengthDistribution,
    cell_means,
    ndtr,
    normalised,
    scaled_tokens,
    weighted,
)


@dataclass(frozen=True)
class TruncatedLogNormal(LengthDistribution):
    """ln L ~ Normal(mu, sigma), truncated to [min_tokens, max_tokens] ([PRFAAS] section 4)."""

    mu: float
    sigma: float
    min_tokens: float
    max_tokens: float

    def __post_init__(self):
        if not (self.sigma > 0 and math.isfinite(self.mu)):
            raise PlanError(f"log-normal needs a finite mu and sigma > 0, got mu={self.mu}, sigma={self.sigma}")
        if not (0 < self.min_tokens < self.max_tokens):
            raise PlanError(f"log-normal truncation needs 0 < min_tokens < max_tokens, got {self.min_tokens}, {self.max_tokens}")
        if self._z <= 1e-12:
            raise PlanError(f"log-normal(mu={self.mu}, sigma={self.sigma}) has no mass in [{self.min_tokens}, {self.max_tokens}]")
        mean = self.mean()
        if not (self.min_tokens <= mean <= self.max_tokens):
            raise PlanError(f"log-normal(mu={self.mu}, sigma={self.sigma}) is too wide to evaluate in floating point (its mean comes out as {mean:g}); use a smaller sigma")

    def _std(self, x):
        return (np.log(np.clip(x, 1e-300, None)) - self.mu) / self.sigma

    @cached_property
    def _z(self) -> float:
        """Mass of the untruncated log-normal inside [min_tokens, max_tokens]."""
        return float(ndtr(self._std(self.max_tokens)) - ndtr(self._std(self.min_tokens)))

    @cached_property
    def _cdf_min(self) -> float:
        return float(ndtr(self._std(self.min_tokens)))

    def support(self):
        return (float(self.min_tokens), float(self.max_tokens))

    def cdf(self, x):
        x = np.clip(np.asarray(x, float), self.min_tokens, self.max_tokens)
        return (ndtr(self._std(x)) - self._cdf_min) / self._z

    def partial_mean(self, a, b):
        a = np.clip(np.asarray(a, float), self.min_tokens, self.max_tokens)
        b = np.clip(np.asarray(b, float), self.min_tokens, self.max_tokens)
        s = self.sigma
        # exp(mu + s^2 / 2) * (Phi(z_b - s) - Phi(z_a - s)), multiplied in logs: the scale overflows
        # for wide distributions while the Phi difference is tiny
        with np.errstate(divide="ignore"):
            log_dphi = np.log(np.clip(ndtr(self._std(b) - s) - ndtr(self._std(a) - s), 0.0, None))
        return np.exp(self.mu + s**2 / 2 + log_dphi) / self._z


@dataclass(frozen=True)
class Empirical(LengthDistribution):
    """A trace or histogram: lengths with weights (counts). Atoms only: thresholds fall between values."""

    values: tuple[float, ...]
    weights: tuple[float, ...]
    output_tokens_mean: float | None = None  # from a trace's output column, if it has one
    has_density = False

    @classmethod
    def from_arrays(cls, values, weights, where: str = "trace") -> Empirical:
        v = np.asarray(values, float)
        if v.size == 0:
            raise PlanError(f"{where}: no lengths")
        if not np.all(np.isfinite(v)) or np.any(v < 1):
            raise PlanError(f"{where}: lengths must be finite and >= 1 token")
        return cls._merged(v, normalised(weights, where))

    @classmethod
    def _merged(cls, v: np.ndarray, w: np.ndarray, output_tokens_mean: float | None = None) -> Empirical:
        """Lengths ``v`` (finite, > 0) with weights ``w`` (normalised), sorted, equal lengths merged."""
        order = np.argsort(v)
        v, w = v[order], w[order]
        uniq, idx = np.unique(v, return_inverse=True)
        merged = np.bincount(idx, weights=w)
        return cls(tuple(uniq.tolist()), tuple((merged / merged.sum()).tolist()), output_tokens_mean)

    def scaled(self, factor: float) -> Empirical:
        """The same trace with every length v stored as ``scaled_tokens(v, factor)`` (lengths
        that round to one product merge)."""
        return Empirical._merged(scaled_tokens(self.values, factor), np.asarray(self.weights, float), self.output_tokens_mean)

    def support(self):
        return (self.values[0], self.values[-1])

    def atoms(self) -> np.ndarray:
        return np.asarray(self.values)

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, cumulative mass, cumulative mass x value), built once (a trace has ~10^4 values)."""
        v, w = np.asarray(self.values, float), np.asarray(self.weights, float)
        return v, np.concatenate([[0.0], np.cumsum(w)]), np.concatenate([[0.0], np.cumsum(w * v)])

    def cdf(self, x):
        v, c, _ = self._arrays
        return c[np.searchsorted(v, np.asarray(x, float), side="right")]

    def partial_mean(self, a, b):
        v, _, c = self._arrays
        return c[np.searchsorted(v, np.asarray(b, float), side="right")] - c[np.searchsorted(v, np.asarray(a, float), side="right")]


@dataclass(frozen=True)
class Mixture(LengthDistribution):
    """Weighted mixture of distributions (weights normalised), densities and traces alike."""

    components: tuple[LengthDistribution, ...]
    weights: tuple[float, ...]

    @classmethod
    def of(cls, components, weights, where: str = "mixture") -> Mixture:
        return cls(tuple(components), tuple(normalised(weights, where)))

    @property
    def has_density(self) -> bool:  # type: ignore[override]
        return any(c.has_density for c, w in zip(self.components, self.weights) if w > 0)

    def support(self):
        return (min(c.support()[0] for c in self.components), max(c.support()[1] for c in self.components))

    def atoms(self) -> np.ndarray:
        return np.unique(np.concatenate([np.empty(0), *(c.atoms() for c, w in zip(self.components, self.weights) if w > 0)]))

    def cdf(self, x):
        return sum(w * c.cdf(x) for c, w in zip(self.components, self.weights))

    def partial_mean(self, a, b):
        return sum(w * c.partial_mean(a, b) for c, w in zip(self.components, self.weights))


@dataclass(frozen=True)
class Scaled(LengthDistribution):
    """L' = factor * L: the uncached part of a prompt when a share (1 - factor) hits the prefix
    cache, or every prompt ``input_tokens_scale`` times longer.

    The scaled atoms are stored, not recomputed: a trace inside ``base`` (itself, or a mixture's
    component) is held as the trace of its products ``scaled_tokens(v, factor)`` (:attr:`exact`),
    and every CDF, partial mean, atom and support end compares against those stored values. Only
    a density is read through ``base.cdf(x / factor)`` (its CDF is continuous: the ulp that
    ``(x / f) * f`` may lose moves no mass). Issue 14: reading a trace that way dropped the mass
    of every atom whose ``(v x f) / f`` rounds below v (130,387 x 0.218 / 0.218 = 130,386.99999999999)."""

    base: LengthDistribution
    factor: float

    def __post_init__(self):
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise PlanError(f"a length scale must be a finite number > 0, got {self.factor}")

    @cached_property
    def exact(self) -> LengthDistribution | None:
        """The scaled distribution with its atoms stored (None for a base without atoms)."""
        base = self.base
        if isinstance(base, Scaled) and base.exact is not None:  # scale the stored products again
            base = base.exact
        if isinstance(base, Empirical):
            return base.scaled(self.factor)
        if isinstance(base, Mixture) and len(base.atoms()):
            return Mixture(tuple(Scaled(c, self.factor) for c in base.components), base.weights)
        if len(base.atoms()):  # a subclass this module does not know: no silent division
            raise PlanError(f"cannot scale a {type(base).__name__} length distribution with atoms")
        return None

    @property
    def has_density(self) -> bool:  # type: ignore[override]
        return self.base.has_density

    def support(self):
        if self.exact is not None:
            return self.exact.support()
        lo, hi = self.base.support()
        return (lo * self.factor, hi * self.factor)

    def atoms(self) -> np.ndarray:
        return self.exact.atoms() if self.exact is not None else np.empty(0)

    def cdf(self, x):
        if self.exact is not None:
            return self.exact.cdf(x)
        return self.base.cdf(np.asarray(x, float) / self.factor)

    def partial_mean(self, a, b):
        if self.exact is not None:
            return self.exact.partial_mean(a, b)
        return self.factor * self.base.partial_mean(np.asarray(a, float) / self.factor, np.asarray(b, float) / self.factor)

    def quantile(self, prob: float) -> float:
        """factor x the base's quantile (the same point the bisection finds, to its 1e-12), the
        base's computed once: `risk` scales one distribution by a thousand factors."""
        try:
            key = (self.base, prob)
            q = _BASE_QUANTILES.get(key)
        except TypeError:  # an unhashable base: no cache
            return self.factor * self.base.quantile(prob)
        if q is None:
            if len(_BASE_QUANTILES) >= 256:
                _BASE_QUANTILES.clear()
            q = _BASE_QUANTILES[key] = self.base.quantile(prob)
        return self.factor * q


_BASE_QUANTILES: dict = {}  # (distribution, probability) -> quantile, for Scaled


#: Accepted trace columns: ours, and the Azure LLM inference traces' (TIMESTAMP, ContextTokens,
#: GeneratedTokens). Other columns (timestamps, ids) are ignored.
TRACE_INPUT_COLUMNS = ("input_tokens", "ContextTokens")
TRACE_OUTPUT_COLUMNS = ("output_tokens", "GeneratedTokens")


def _trace_column(fieldnames, names: tuple[str, ...]) -> str | None:
    found = [c for c in names if c in fieldnames]
    return found[0] if found else None


def load_trace_csv(path: str | Path, where: str) -> Empirical:
    """A CSV with one row per request: prompt length in ``input_tokens`` (or Azure's
    ``ContextTokens``), optionally the output length in ``output_tokens`` (``GeneratedTokens``),
    whose weighted mean becomes ``output_tokens_mean``, and optionally ``count`` (a histogram:
    that many requests of that row). Read through :func:`files.read_text` (regular file, at most
    ``MAX_TRACE_BYTES``, UTF-8 with or without a byte-order mark)."""
    label = f"{where}: {show_path(path)}"
    try:
        text = read_text(path, "CSV file", MAX_TRACE_BYTES)
    except PlanError as exc:
        raise PlanError(f"{where}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    values, outputs, weights = [], [], []
    try:
        fields = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = fields
        col_in = _trace_column(fields, TRACE_INPUT_COLUMNS)
        col_out = _trace_column(fields, TRACE_OUTPUT_COLUMNS)
        if col_in is None:
            raise PlanError(f"{label}: needs a column 'input_tokens' or 'ContextTokens' (optionally 'output_tokens' or "
                            f"'GeneratedTokens', and 'count'); found {', '.join(fields) or 'no header'}")
        for i, row in enumerate(reader, start=2):
            try:
                values.append(float(row[col_in]))
                weights.append(float(row.get("count") or 1))
                if col_out is not None:
                    outputs.append(float(row[col_out]))
            except (TypeError, ValueError):
                raise PlanError(f"{label}: line {i}: not a number") from None
    except csv.Error as exc:  # e.g. a field longer than csv.field_size_limit()
        raise PlanError(f"{label}: line {reader.line_num}: malformed CSV ({exc})") from None
    d = Empirical.from_arrays(values, weights, label)
    if col_out is None:
        return d
    out, w = np.asarray(outputs), np.asarray(weights)
    if not np.all(np.isfinite(out)) or np.any(out < 1):
        raise PlanError(f"{label}: column '{col_out}': output lengths must be finite and >= 1 token")
    return replace(d, output_tokens_mean=float(np.sum(out * w) / np.sum(w)))


@dataclass(frozen=True)
class Workload:
    """A traffic mix. ``input`` is the total prompt length; routing and prefill see the uncached
    part: ``uncached_input`` where a trace's prefix-cache replay gives it (``prefix_cache_model``
    says how), else (1 - prefix_cache_hit_frac) * L. The cached prefix is assumed free to prefill
    (its attention reads are ignored) and not shipped; decode holds the whole prompt's cache."""

    input: LengthDistribution
    output_tokens_mean: float
    prefix_cache_hit_frac: float = 0.0
    arrival_req_per_s: float | None = None
    uncached_input: LengthDistribution | None = None
    prefix_cache_model: str | None = None

    def __post_init__(self):
        if not (0 <= self.prefix_cache_hit_frac < 1):
            raise PlanError(f"prefix_cache_hit_frac must be in [0, 1), got {self.prefix_cache_hit_frac}")
        if self.uncached_input is not None and self.prefix_cache_hit_frac > 0:
            raise PlanError("give a trace's prefix-cache model or prefix_cache_hit_frac, not both")
        if not self.output_tokens_mean > 0:
            raise PlanError(f"output tokens must be > 0, got {self.output_tokens_mean}")

    @property
    def uncached(self) -> LengthDistribution:
        if self.uncached_input is not None:
            return self.uncached_input
        if self.prefix_cache_hit_frac == 0:
            return self.input
        return Scaled(self.input, 1.0 - self.prefix_cache_hit_frac)

    def decode_context_tokens(self) -> float:
        """Mean tokens a request holds while decoding: whole prompt + half the output."""
        return self.input.mean() + self.output_tokens_mean / 2
