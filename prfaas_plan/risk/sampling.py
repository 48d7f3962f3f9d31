"""The sample design: uniforms in (0, 1), one column per uncertain quantity, mapped through each
quantity's inverse CDF (EMAworkbench's samplers: a design first, then each input's ppf).

Reproducible and executor-independent: sample i draws from ``np.random.default_rng([i, seed])``
(numpy's parallel-seeding idiom), so any worker computes the same sample i. Columns follow
:data:`~prfaas_plan.planning.uncertainty.QUANTITIES` in full, used or not, so stating one more
quantity never changes the draws of the others.

- ``random``: u_ij = the j-th uniform of sample i's generator;
- ``lhs`` (Latin hypercube): u_ij = (pi_j(i) + v_ij) / N, pi_j a permutation of 0..N-1 drawn from
  ``default_rng([seed])`` per column and v_ij sample i's uniform; every column has exactly one
  value in each of its N strata (lower variance of means and quantiles than ``random``).
"""

from __future__ import annotations

import numpy as np

from ..errors import PlanError
from ..planning.uncertainty import QUANTITIES, Distribution

DESIGNS = ("lhs", "random")

#: The most samples one run may draw: their design alone is 64 bytes a sample, their outcomes
#: ~1 kB, and at ~5 ms each a million is over an hour of CPU.
MAX_SAMPLES = 1_000_000

#: Uniforms are kept this far inside (0, 1) so an unbounded ppf stays finite.
_EDGE = 2.0**-53


def uniforms(n: int, seed: int, design: str = "lhs") -> np.ndarray:
    """The (n, len(QUANTITIES)) design of uniforms in (0, 1) (module docstring)."""
    if design not in DESIGNS:
        raise PlanError(f"--design must be one of {', '.join(DESIGNS)}, got {design!r}")
    if not 1 <= n <= MAX_SAMPLES:
        raise PlanError(f"--samples must be from 1 to {MAX_SAMPLES:,}, got {n:,}")
    d = len(QUANTITIES)
    u = np.array([np.random.default_rng([i, seed]).random(d) for i in range(n)]).reshape(n, d)
    if design == "lhs":
        root = np.random.default_rng([seed])
        strata = np.stack([root.permutation(n) for _ in range(d)], axis=1)
        u = (strata + u) / n
    return np.clip(u, _EDGE, 1 - _EDGE)


def ppf(dist: Distribution, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of ``dist`` at uniforms ``u`` (scipy.stats, imported here only)."""
    if dist.kind == "fixed":
        return np.full(np.shape(u), dist.param("value"))
    from scipy import stats

    p = dict(dist.params)
    if dist.kind == "normal":
        x = stats.norm.ppf(u, loc=p["mean"], scale=p["sd"])
    elif dist.kind == "lognormal":
        x = stats.lognorm.ppf(u, s=p["sigma"], scale=np.exp(p["mu"]))
    elif dist.kind == "uniform":
        x = stats.uniform.ppf(u, loc=p["min"], scale=p["max"] - p["min"])
    else:
        width = p["max"] - p["min"]
        x = stats.triang.ppf(u, c=(p["mode"] - p["min"]) / width, loc=p["min"], scale=width)
    if not np.all(np.isfinite(x) & (x > 0)):
        raise PlanError(f"{dist.source}: {dist.label} drew a factor <= 0 or not finite")
    return x


def factors(dists: dict[str, Distribution], n: int, seed: int, design: str = "lhs") -> np.ndarray:
    """(n, len(QUANTITIES)) factor values: each quantity's column mapped through its distribution
    (quantities not in ``dists`` are 1)."""
    u = uniforms(n, seed, design)
    out = np.ones_like(u)
    for j, name in enumerate(QUANTITIES):
        if name in dists:
            out[:, j] = ppf(dists[name], u[:, j])
    return out
