"""What a plan is uncertain about: the scenario's ``uncertainty:`` section and ``--uncertain``.

Each uncertain quantity is a dimensionless factor on something the scenario states (1 = as
stated), given as a plain number (fixed) or a distribution:

    uncertainty:
      arrival_rate_factor: {kind: lognormal, mu: 0.1, sigma: 0.15}   # traffic grows ~10%
      input_tokens_factor: {kind: triangular, min: 0.9, mode: 1.0, max: 1.4}
      link_bandwidth_factor: {kind: uniform, min: 0.6, max: 1.0}
      prfaas_price_factor: {kind: normal, mean: 1.0, sd: 0.1}

or on the command line ``--uncertain arrival_rate_factor=lognormal(mu=0.1,sigma=0.15)``.
Distributions (scipy.stats names their ppf): ``normal`` (mean, sd), ``lognormal`` (mu, sigma of
ln x, as the workload's length distribution), ``uniform`` (min, max), ``triangular`` (min, mode,
max). A factor must stay > 0: a normal whose mean is within 6 sd of 0 is refused (use lognormal).

This module only reads and checks (it sits beside the scenario reader); sampling and the
Monte Carlo are :mod:`prfaas_plan.risk`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..catalog.fields import Fields
from ..errors import PlanError

#: The uncertain quantities, in the fixed order of the sampling design's columns (adding one at
#: the end never changes the draws of the others). name -> what the factor multiplies.
QUANTITIES: dict[str, str] = {
    "arrival_rate_factor": "the demand: workload.arrival_req_per_s (or the target req/s)",
    "input_tokens_factor": "every prompt length (on top of workload.input_tokens_scale)",
    "prefill_time_factor": "every prefill time, both clusters (as stated; by default the engine model's band, on its own times only)",
    "decode_time_factor": "the decode step time at the planned batch (as stated; by default the engine model's band, on its own times only)",
    "link_bandwidth_factor": "the bandwidth the planned link delivers (it is still paid in full)",
    "prfaas_price_factor": "the PrfaaS $/GPU-hour",
    "local_price_factor": "the local $/GPU-hour",
    "link_price_factor": "the link $/Gbit/s-hour",
}

#: Parameters of each distribution kind, in the order the CLI form lists them.
KINDS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "sd"),
    "lognormal": ("mu", "sigma"),
    "uniform": ("min", "max"),
    "triangular": ("min", "mode", "max"),
}

#: A normal factor must keep its mean this many standard deviations above 0.
NORMAL_MIN_SDS = 6.0


@dataclass(frozen=True)
class Distribution:
    """One quantity's distribution: ``kind`` ("fixed" or a :data:`KINDS` key) and its parameters
    (name, value) in :data:`KINDS` order; ``source`` says where it was stated."""

    kind: str
    params: tuple[tuple[str, float], ...]
    source: str  # where it was stated, for errors: the file and key, or the option
    origin: str = ""  # the same, short, for tables: "scenario", "--uncertain" or a note

    @property
    def label(self) -> str:
        if self.kind == "fixed":
            return f"{self.params[0][1]:g}"
        return f"{self.kind}({', '.join(f'{k}={v:g}' for k, v in self.params)})"

    def param(self, name: str) -> float:
        return dict(self.params)[name]


def fixed(value: float, source: str, origin: str = "") -> Distribution:
    return Distribution("fixed", (("value", float(value)),), source, origin)


def _checked(kind: str, params: dict[str, float], source: str, error, origin: str) -> Distribution:
    """The distribution, after the checks every source shares; ``error(problem)`` builds the PlanError."""
    if kind == "fixed":
        if not params["value"] > 0:
            raise error(f"a factor must be > 0, got {params['value']:g}")
        return fixed(params["value"], source, origin)
    p = params
    if kind == "normal":
        if not p["sd"] > 0:
            raise error(f"sd must be > 0, got {p['sd']:g}")
        if p["mean"] - NORMAL_MIN_SDS * p["sd"] <= 0:
            raise error(f"normal(mean={p['mean']:g}, sd={p['sd']:g}) reaches factors <= 0 (mean within {NORMAL_MIN_SDS:g} sd of 0); use lognormal")
    elif kind == "lognormal":
        if not p["sigma"] > 0:
            raise error(f"sigma must be > 0, got {p['sigma']:g}")
    elif kind == "uniform":
        if not 0 < p["min"] < p["max"]:
            raise error(f"needs 0 < min < max, got min={p['min']:g}, max={p['max']:g}")
    elif not (0 < p["min"] <= p["mode"] <= p["max"] and p["min"] < p["max"]):
        raise error(f"needs 0 < min <= mode <= max and min < max, got min={p['min']:g}, mode={p['mode']:g}, max={p['max']:g}")
    return Distribution(kind, tuple((k, float(p[k])) for k in KINDS[kind]), source, origin)


def from_fields(f: Fields, key: str) -> Distribution:
    """``uncertainty.KEY`` of a scenario: a number (fixed) or a mapping with ``kind`` and its parameters."""
    where = f"{f.source}: key '{f.key_path(key)}'"
    error = lambda problem: PlanError(f"{where}: {problem}")  # noqa: E731
    raw = f.raw(key)
    if not isinstance(raw, dict):
        return _checked("fixed", {"value": f.num(key)}, where, error, "scenario")
    d = f.sub(key)
    kind = d.str("kind", choices=tuple(KINDS))
    params = {name: d.num(name, min_value=-1e6) for name in KINDS[kind]}
    d.done()
    return _checked(kind, params, where, error, "scenario")


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CALL = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$")


def parse_uncertain(text: str) -> tuple[str, Distribution]:
    """``--uncertain NAME=KIND(p=v, ...)`` or ``NAME=NUMBER``: (quantity, distribution)."""
    where = f"--uncertain {text}"
    error = lambda problem: PlanError(f"{where}: {problem}")  # noqa: E731
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep:
        raise error("expected NAME=DISTRIBUTION, e.g. arrival_rate_factor=lognormal(mu=0.1,sigma=0.2)")
    if name not in QUANTITIES:
        raise error(f"unknown quantity {name!r}; known: {', '.join(QUANTITIES)}")
    spec = spec.strip()
    if re.fullmatch(_NUMBER, spec):
        return name, _checked("fixed", {"value": float(spec)}, where, error, "--uncertain")
    m = _CALL.match(spec)
    if not m or m.group(1) not in KINDS:
        raise error(f"expected a number or KIND(param=value, ...) with KIND one of {', '.join(KINDS)}")
    kind, params = m.group(1), {}
    for part in filter(None, (p.strip() for p in m.group(2).split(","))):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or key not in KINDS[kind]:
            raise error(f"{kind} takes {', '.join(f'{k}=...' for k in KINDS[kind])}; got {part!r}")
        if key in params:
            raise error(f"{key} given twice")
        if not re.fullmatch(_NUMBER, value) or not math.isfinite(float(value)):
            raise error(f"{key} must be a finite number, got {value!r}")
        params[key] = float(value)
    missing = [k for k in KINDS[kind] if k not in params]
    if missing:
        raise error(f"{kind} needs {', '.join(missing)}")
    return name, _checked(kind, params, where, error, "--uncertain")


def read_uncertainty(f: Fields | None) -> dict[str, Distribution]:
    """The scenario's ``uncertainty:`` section (None: absent), every key checked."""
    if f is None:
        return {}
    out = {}
    for key in list(f.data):
        if key not in QUANTITIES:
            raise f.error(str(key), f"unknown uncertain quantity; known: {', '.join(QUANTITIES)}")
        out[key] = from_fields(f, key)
    f.done()
    return out
