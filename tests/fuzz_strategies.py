"""Hypothesis strategies shared by the property suites: valid scenario files (built as dicts,
written to a folder with their trace CSVs), and the checks every plan must pass."""

from __future__ import annotations

import copy
import csv
import io
import math
from pathlib import Path

import yaml
from hypothesis import strategies as st

from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.errors import MAX_MESSAGE_CHARS, PlanError

BASE = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())

#: Models and the fewest GPUs per instance whose memory holds their weights on every part below
#: (so that most drawn scenarios are plannable; "does not fit" is tested elsewhere).
MIN_GPUS = {"ring-mini-linear-2.0": 1, "kimi-linear-48b": 2, "qwen3-next-80b": 4, "mimo-v2-flash": 8, "prfaas-1t-hybrid": 8}
PRFAAS_PARTS = ["h200", "b200", "h100", "rubin-cpx", "h20"]
LOCAL_PARTS = ["h20", "h200", "h100"]
GPUS = [8, 4, 2, 1]

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def lognormals(draw) -> dict:
    lo = draw(st.floats(1, 4096, **finite))
    hi = lo * draw(st.floats(1.5, 2000, **finite))
    mu = draw(st.floats(math.log(lo), math.log(hi), **finite))  # the median inside: never an empty truncation
    return {"kind": "lognormal", "mu": mu, "sigma": draw(st.floats(0.05, 3.0, **finite)), "min_tokens": lo, "max_tokens": hi}


@st.composite
def traces(draw) -> tuple[dict, list[tuple[int, int]]]:
    """A trace distribution and its CSV rows (written beside the scenario by ``write``)."""
    rows = draw(st.lists(st.tuples(st.integers(1, 200_000), st.integers(0, 1000)), min_size=1, max_size=40))
    if not any(c for _, c in rows):
        rows[0] = (rows[0][0], 1)
    return {"kind": "trace", "csv": "TRACE"}, rows


def hit_fracs():
    """prefix_cache_hit_frac: none, the issue-14 values whose scaled lengths round badly under
    (v x f) / f, or any share up to 0.999 (f down to 1e-3)."""
    return st.one_of(st.just(0.0), st.sampled_from([0.3, 0.782, 0.3587, 0.9]), st.floats(0.0, 0.999, **finite))


@st.composite
def cached_trace_scenarios(draw, objective: str | None = None) -> tuple[dict, list]:
    """A scenario whose whole input is a trace, with a prefix-cache hit share (issue 14, class 1):
    integer lengths, several equal counts, and a hit share that is never 0."""
    s, _ = draw(scenarios(objective))
    _, rows = draw(traces())
    s["workload"]["input_tokens"] = {"kind": "trace", "csv": "TRACE"}
    s["workload"]["prefix_cache_hit_frac"] = draw(st.one_of(st.sampled_from([0.782, 0.3587, 0.5]), st.floats(1e-3, 0.999, **finite)))
    return s, rows


@st.composite
def length_distributions(draw, depth: int = 0):
    """(distribution dict, trace rows or None). Mixtures nest at most once."""
    kinds = ["lognormal", "trace"] + (["mixture"] if depth == 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "lognormal":
        return draw(lognormals()), None
    if kind == "trace":
        return draw(traces())
    comps, rows = [], None
    for _ in range(draw(st.integers(1, 3))):
        d, r = draw(length_distributions(depth + 1))
        if r is not None:
            if rows is not None:  # one trace file per scenario keeps the writer simple
                d = draw(lognormals())
            else:
                rows = r
        comps.append({"weight": draw(st.floats(0.01, 100, **finite)), "distribution": d})
    return {"kind": "mixture", "components": comps}, rows


@st.composite
def scenarios(draw, objective: str | None = None) -> tuple[dict, list | None]:
    """A valid scenario mapping (and its trace rows). Valid means every key well-formed; the
    question may still be infeasible (a PlanError is then the right answer)."""
    s = copy.deepcopy(BASE)
    s["name"] = "fuzz"
    s["model"] = draw(st.sampled_from(sorted(MIN_GPUS)))
    gpus = [g for g in GPUS if g >= MIN_GPUS[s["model"]]]
    s["mode"] = draw(st.sampled_from(["distribution", "paper"]))
    for side, parts in (("prfaas", PRFAAS_PARTS), ("local", LOCAL_PARTS)):
        s[side] = {"hardware": draw(st.sampled_from(parts)), "gpus_per_instance": draw(st.sampled_from(gpus)),
                   "use_profile": draw(st.booleans())}
        if draw(st.booleans()):
            s[side]["usd_per_gpu_hour"] = draw(st.floats(0.1, 20, **finite))
            s[side]["price_source"] = "fuzz"
    obj = objective or draw(st.sampled_from(["fixed-fleet", "budget", "target"]))
    link = {"usd_per_gbit_per_s_hour": draw(st.floats(0, 2, **finite)), "rtt_ms": draw(st.floats(0, 100, **finite))}
    if obj == "fixed-fleet":
        s["prfaas"]["instances"] = draw(st.integers(0, 12))
        s["local"]["instances"] = draw(st.integers(1, 12))
        link["bandwidth_gbit_per_s"] = draw(st.floats(0.5, 2000, **finite))
        s["objective"] = {"kind": "fixed-fleet"}
    else:
        if draw(st.booleans()):
            link["purchasable_gbit_per_s"] = sorted(set(draw(st.lists(st.floats(1, 3200, **finite), min_size=1, max_size=6))))
        for side in ("prfaas", "local"):
            if draw(st.booleans()):
                lo = draw(st.integers(0, 4))
                s[side]["instances_range"] = {"min": lo, "max": lo + draw(st.integers(1, 64))}
        if obj == "budget":
            s["objective"] = {"kind": "budget", "budget_usd_per_hour": draw(st.floats(10, 50_000, **finite))}
        else:
            s["objective"] = {"kind": "target", "target_req_per_s": draw(st.floats(0.01, 200, **finite))}
    s["link"] = link
    dist, rows = draw(length_distributions())
    s["workload"] = {"input_tokens": dist, "prefix_cache_hit_frac": draw(hit_fracs())}
    s["workload"]["output_tokens"] = draw(st.one_of(st.integers(1, 8192), lognormals()))
    if draw(st.booleans()):
        s["workload"]["arrival_req_per_s"] = draw(st.floats(0.01, 500, **finite))
    s["slo"] = draw(st.one_of(st.builds(lambda v: {"decode_tokens_per_s": v}, st.floats(5, 100, **finite)),
                              st.builds(lambda v: {"tpot_ms": v}, st.floats(10, 200, **finite))))
    return s, rows


def write(folder: Path, data: dict, rows: list | None, name: str = "fuzz") -> Path:
    """Write the scenario (and its trace) into ``folder``; returns the scenario path."""
    data = copy.deepcopy(data)
    data["name"] = name
    text = yaml.safe_dump(data, sort_keys=False)
    if rows is not None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["input_tokens", "count"])
        w.writerows(rows)
        (folder / f"{name}-trace.csv").write_text(buf.getvalue())
        text = text.replace("csv: TRACE", f"csv: {name}-trace.csv")
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def check_error(exc: PlanError) -> None:
    """A PlanError is one non-empty line of bounded length."""
    msg = str(exc)
    assert msg.strip() and "\n" not in msg and len(msg) <= MAX_MESSAGE_CHARS, msg


def check_plan(r: dict, sc) -> None:
    """What every plan must satisfy: it serves traffic; Lambda is the minimum of the capacities;
    the cost is the sum of its parts; the fleet, budget or target of the question holds."""
    lam, p = r["throughput_req_per_s"], r["offload_frac"]
    assert math.isfinite(lam) and lam > 0, f"zero-throughput plan: {r}"
    assert 0 <= p <= 1
    for key in ("n_prfaas", "n_pd_prefill", "n_pd_decode"):
        assert isinstance(r[key], int) and r[key] >= 0
    caps = [r["theta_pd_decode_req_per_s"]]
    if p > 0:
        caps.append(r["theta_prfaas_req_per_s"] / p)
    if p < 1:
        caps.append(r["theta_pd_prefill_req_per_s"] / (1 - p))
    assert lam == _approx(min(caps)), ("Lambda is not the minimum of the capacities", lam, caps)
    cost = (r["n_prfaas"] * sc.prfaas.gpus_per_instance * sc.prfaas.usd_per_gpu_hour
            + (r["n_pd_prefill"] + r["n_pd_decode"]) * sc.local.gpus_per_instance * sc.local.usd_per_gpu_hour
            + r["link_gbit_per_s"] * sc.link.usd_per_gbit_per_s_hour)
    assert r["cost_usd_per_hour"] == _approx(cost), ("cost is not the sum of its parts", r["cost_usd_per_hour"], cost)
    if r["objective"] == "fixed-fleet":
        assert r["n_prfaas"] == sc.prfaas.instances
        assert r["n_pd_prefill"] + r["n_pd_decode"] == sc.local.instances
    elif r["objective"] == "budget":
        assert r["cost_usd_per_hour"] <= r["budget_usd_per_hour"] * (1 + 1e-9), "over budget"
    else:
        assert lam >= r["target_req_per_s"] * (1 - 1e-9), "target not reached"


def _approx(x: float):
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-12)
