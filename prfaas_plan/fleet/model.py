"""The fleet MILP's variables and rows, laid out as linopy does (``linopy/matrices.py``): each
variable block owns a contiguous index range, constraint rows are stacked into one sparse matrix
with a name per row, and a solution is read back block by block.

Variable blocks (all >= 0; counts and choices integer):

    n_prefill[s, k]      local prefill instances of part k at local site s          integer
    n_decode[s, d]       decode instances of part d at local site s                 integer
    n_prfaas[r, j]       PrfaaS instances of part j at PrfaaS site r                integer
    choose[s, o]         site s routes by option o (a PrfaaS site and a threshold   binary
                         segment, or "all local")
    rate[s, o]           req/s of site s under option o (0 unless chosen)
    local_flow[s, o, k]  of those, req/s whose local prefill runs on part k
    remote_flow[s, o, j] of those, req/s whose PrfaaS prefill runs on part j
    link_size[l, m]      link l rented at purchasable size m                       binary
    link_gbit[l]         link l bought continuously, Gbit/s
    link_on[l]           link l (a fixed size in place) rented                     binary
    alpha                budget question: the multiple of every site's arrival rate served
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Option:
    """One routing choice of a local site: offload to ``prfaas`` (None: nothing offloaded) with
    a threshold in [t_lo, t_hi] (equal: a point). Coefficients per request, each at the end of
    the segment where it is smallest (local prefill at t_lo; PrfaaS prefill and link at t_hi):
    a lower bound of the need anywhere in the segment, exact at a point."""

    prfaas: str | None
    t_lo: float
    t_hi: float
    local_s: np.ndarray  # per local prefill part
    remote_s: np.ndarray  # per part of the PrfaaS site (empty when prfaas is None)
    link_gbit: float  # Gbit per request over the link
    offload_frac: float  # at t_hi

    @property
    def is_point(self) -> bool:
        return self.t_lo == self.t_hi


class Layout:
    """Variable blocks, each a contiguous range of columns, with bounds and integrality."""

    def __init__(self):
        self.n = 0
        self.blocks: dict[str, dict] = {}
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []

    def add(self, block: str, keys, lb: float = 0.0, ub=math.inf, integer: bool = False) -> dict:
        """Columns for ``keys`` (``ub`` a number or a callable key -> bound); returns key -> column."""
        cols = {}
        for key in keys:
            cols[key] = self.n
            self.n += 1
            self.lb.append(lb)
            self.ub.append(ub(key) if callable(ub) else ub)
            self.integer.append(1 if integer else 0)
        self.blocks[block] = cols
        return cols

    def __getitem__(self, block: str) -> dict:
        return self.blocks[block]

    def values(self, x: np.ndarray, block: str) -> dict:
        """The solution of one block, key -> value (integer blocks rounded, never truncated:
        HiGHS returns counts a few 1e-12 off an integer)."""
        out = {}
        for key, col in self.blocks[block].items():
            out[key] = int(round(float(x[col]))) if self.integer[col] else float(x[col])
        return out


class Rows:
    """Constraint rows lo <= A x <= hi, each with a name (``prefill[beijing, h20]``)."""

    def __init__(self):
        self.names: list[str] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self._r: list[int] = []
        self._c: list[int] = []
        self._v: list[float] = []

    def add(self, name: str, coefs: dict[int, float], lo: float = -math.inf, hi: float = math.inf) -> None:
        i = len(self.names)
        self.names.append(name)
        self.lo.append(lo)
        self.hi.append(hi)
        for col, v in coefs.items():
            if v != 0:
                self._r.append(i)
                self._c.append(col)
                self._v.append(float(v))

    def matrix(self, n_cols: int):
        from scipy.sparse import csr_array

        return csr_array((self._v, (self._r, self._c)), shape=(len(self.names), n_cols))


def add_terms(*terms: dict[int, float]) -> dict[int, float]:
    """The sum of linear expressions given as {column: coefficient}."""
    out: dict[int, float] = {}
    for t in terms:
        for col, v in t.items():
            out[col] = out.get(col, 0.0) + v
    return out


def scaled(expr: dict[int, float], factor: float) -> dict[int, float]:
    return {col: v * factor for col, v in expr.items()}
