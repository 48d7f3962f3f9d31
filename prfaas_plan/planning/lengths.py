"""The base of every prompt-length distribution: cells, thresholds and the exact atoms.

Internally a distribution is a list of cells (probability mass, conditional mean length): for a
density, log-spaced slices of the support; for a trace, one cell per recorded length; a mixture of
both has the union of their boundaries. Mass and mean of every cell are exact (CDF and partial
mean), so p, l_long and l_short are exact at cell boundaries; expectations of other functions use
each cell's mean as its representative (error O(cell width^2), with 2,048 cells below 1e-5
relative for the latency curves used here). A threshold inside a cell splits it exactly
(:meth:`prfaas_plan.planning.throughput.ThroughputModel.needs_at`).

Atoms are compared exactly, as stored: a scaled trace (the uncached part of each prompt under a
flat prefix-cache hit share, or a what-if's longer prompts) stores its atoms v x f, computed once
by :func:`scaled_tokens`, and never divides back (``(v x f) / f`` rounds one ulp below v for many
lengths: the longest prompts' mass then dropped out of every cell, issue 14). Thresholds the
planner returns lie between atoms, never on one (:meth:`LengthDistribution.clear_threshold`), so
that the rule "uncached length L > t goes to PrfaaS" routes every atom the same way however a
consumer rounds its own copy of v x f.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import PlanError

DEFAULT_CELLS = 2048

_erfc = np.vectorize(math.erfc, otypes=[float])


def ndtr(x) -> np.ndarray:
    """Standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2, accurate in both tails (math.erfc;
    scipy.special would add ~0.3 s of import to every command)."""
    return 0.5 * _erfc(-np.asarray(x, float) / math.sqrt(2.0))


#: A threshold closer than this (relative) to an atom of a distribution that also has a density is
#: moved this far off it, on the side it lies (:meth:`LengthDistribution.clear_threshold`): far
#: above the rounding of any consumer's own product v x f (a few ulp, 1e-16 relative; 2e-10 of
#: the uncached length at a hit share of 1 - 1e-6), and moving at most ~1e-9 of the mass.
ATOM_CLEARANCE_FRAC = 1e-9


def scaled_tokens(lengths, factor: float) -> np.ndarray:
    """factor x each length, tokens: the one product by which a scaled length is made (the
    uncached part (1 - prefix_cache_hit_frac) x L, ``input_tokens_scale`` x L). Distributions
    store its results as their atoms and the simulator's trace replay uses it too, so both hold
    bit-identical uncached lengths."""
    return np.asarray(lengths, float) * factor


#: Probability left out of each tail when placing the cell grid of a distribution with a density:
#: cells are log-spaced between these quantiles (plus one cell per tail out to the support's ends),
#: so that a truncation far beyond the mass (``max_tokens: 1e300``) does not coarsen the grid.
GRID_TAIL_PROB = 1e-12


class LengthDistribution:
    """Base class. Subclasses implement :meth:`cdf`, :meth:`partial_mean` and :meth:`support`;
    distributions with point masses (traces) list them in :meth:`atoms` and set ``has_density``
    False when they have no continuous part."""

    has_density: bool = True

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        raise NotImplementedError

    def partial_mean(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        """E[L * 1{a < L <= b}]."""
        raise NotImplementedError

    def support(self) -> tuple[float, float]:
        raise NotImplementedError

    def atoms(self) -> np.ndarray:
        """Lengths that carry a point mass (sorted); empty for a density."""
        return np.empty(0)

    # -- derived ----------------------------------------------------------------------------
    def mean(self) -> float:
        lo, hi = self.support()
        return float(self.partial_mean(lo - 1, hi))

    def tail_prob(self, t: float) -> float:
        """p = P(L > t)."""
        return float(1.0 - self.cdf(t))

    def mean_above(self, t: float) -> float:
        """l_long = E[L | L > t] (nan when no mass lies above t)."""
        lo, hi = self.support()
        p = self.tail_prob(t)
        return float(self.partial_mean(t, hi) / p) if p > 0 else math.nan

    def mean_below(self, t: float) -> float:
        """l_short = E[L | L <= t] (nan when no mass lies at or below t)."""
        lo, _ = self.support()
        q = 1.0 - self.tail_prob(t)
        return float(self.partial_mean(lo - 1, t) / q) if q > 0 else math.nan

    def quantile(self, prob: float) -> float:
        """Smallest x in the support with cdf(x) >= prob (bisection in log length)."""
        lo, hi = self.support()
        a, b = math.log(lo), math.log(hi)
        for _ in range(200):
            mid = (a + b) / 2
            if float(self.cdf(math.exp(mid))) >= prob:
                b = mid
            else:
                a = mid
            if b - a < 1e-12:
                break
        return math.exp(b)

    def cell_edges(self, n: int = DEFAULT_CELLS) -> np.ndarray:
        """Cell boundaries e_0 < e_1 < ... < e_m = max length; cell k is (e_{k-1}, e_k].

        e_0 lies just below the shortest length. A density gets ``n`` log-spaced cells between its
        GRID_TAIL_PROB quantiles (and one cell per tail out to the support's ends); every atom is a
        boundary, so that a threshold between two atoms is interior to a cell holding no atom."""
        lo, hi = self.support()
        parts = [np.array([hi]), self.atoms()]
        if self.has_density:
            width = math.log(hi / lo) / n  # one cell of the plain grid, in log length
            a = self.quantile(GRID_TAIL_PROB)
            b = self.quantile(1.0 - GRID_TAIL_PROB)
            a = a if math.log(a / lo) > width else lo  # clip a tail only where it spans a cell
            b = b if math.log(hi / b) > width else hi
            grid = np.geomspace(a, b, n + 1) if b > a else np.array([a])
            parts.append(grid[1:] if a == lo else grid)  # the support's start is e_0's job
        # return_index: the sorting path; plain np.unique imports numpy.ma (~10 ms) on numpy >= 2.3
        inner = np.unique(np.clip(np.concatenate(parts), lo, hi), return_index=True)[0]
        return np.concatenate([[lo * (1 - 1e-9)], inner])

    def cells(self, n: int = DEFAULT_CELLS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(upper boundaries, masses, conditional means), sorted by length, masses summing to 1.

        Mass and mean of each cell are exact (CDF and partial mean), for densities, traces and
        mixtures of both alike; a mean is kept inside its cell (a cell in an underflowing tail has
        mass 0 and the mean of its ends)."""
        edges = self.cell_edges(n)
        mass = np.clip(np.diff(self.cdf(edges)), 0.0, None)
        pm = np.diff(self.partial_mean(edges[0], edges))
        means = cell_means(mass, pm, edges[:-1], edges[1:])
        total = mass.sum()
        if not (np.all(np.isfinite(mass)) and np.all(np.isfinite(means)) and total > 0):
            raise PlanError(f"{type(self).__name__} length distribution: no finite mass or mean in its cells (its parameters are out of range)")
        return edges[1:], mass / total, means

    def expect(self, f, n: int = DEFAULT_CELLS) -> float:
        """E[f(L)] for a vectorised f."""
        _, mass, means = self.cells(n)
        return float(np.sum(weighted(mass, f(means))))

    def clear_threshold(self, t: float) -> float:
        """A threshold that routes every atom as ``t`` does (L > t remote) and lies clear of all
        of them. With atoms only: the mid-point of the gap between the atoms around ``t`` (every
        t in the gap routes the same mass), ``t`` itself below the shortest atom, and above the
        longest (all local) the longest x (1 + ATOM_CLEARANCE_FRAC). With a density too: ``t``
        if no atom is within ATOM_CLEARANCE_FRAC of it, else that far off the atom on ``t``'s
        side (never past the mid-point to the next atom); the caller re-evaluates the needs at
        the returned threshold (a sliver of density mass, <= ~1e-9, changes side)."""
        atoms = self.atoms()
        if not len(atoms) or not math.isfinite(t) or t < 0:
            return t
        k = int(np.searchsorted(atoms, t, side="right"))  # atoms[k-1] <= t < atoms[k]
        below = float(atoms[k - 1]) if k > 0 else None
        above = float(atoms[k]) if k < len(atoms) else None
        if not self.has_density:
            if below is None:
                return t
            return (below + above) / 2 if above is not None else max(t, below * (1 + ATOM_CLEARANCE_FRAC))
        if below is not None and t - below <= below * ATOM_CLEARANCE_FRAC:
            t = below * (1 + ATOM_CLEARANCE_FRAC)
            return min(t, (below + above) / 2) if above is not None else t
        if above is not None and above - t <= above * ATOM_CLEARANCE_FRAC:
            t = above * (1 - ATOM_CLEARANCE_FRAC)
            return max(t, (below + above) / 2) if below is not None else t
        return t


def cell_means(mass, partial_mean, lo, hi) -> np.ndarray:
    """Conditional mean of each cell (lo, hi]: partial_mean / mass, clipped into the cell (where
    the mass underflows, the division is noise); the mid-point where there is no mass."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(mass > 0, partial_mean / np.where(mass > 0, mass, 1.0), (lo + hi) / 2)
    return np.clip(x, lo, hi)  # nan stays nan: the caller rejects it


def weighted(mass, values) -> np.ndarray:
    """mass * values with 0 where the mass is 0 (an empty cell adds nothing, even if the value
    there is infinite)."""
    return np.where(mass > 0, mass * np.where(mass > 0, values, 0.0), 0.0)


def normalised(weights, where: str) -> np.ndarray:
    """Weights scaled to sum to 1 without overflow (divide by the largest first)."""
    w = np.asarray(weights, float)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise PlanError(f"{where}: weights must be finite, >= 0 and not all zero")
    w = w / w.max()
    return w / w.sum()
