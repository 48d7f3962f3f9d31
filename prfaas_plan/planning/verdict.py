"""A plan's verdict in plain words: does it meet every demand the question states - the arrival
rate, each latency SLO at that rate, the utilisation caps, the budget, the target - and does it
beat the baselines it could have been instead at the same cost? The first line says WARNING
with every miss, or OK; ``--strict`` turns a WARNING into exit code 3."""

from __future__ import annotations

_RTOL = 1e-9

#: Latency levels are compared with the precision the percentiles are computed to
#: (latency/ttft.py QUANTILE_RTOL): 4.000001 s meets a 4 s SLO.
_LATENCY_RTOL = 1e-6

_EQUAL_COST = (("homogeneous_equal_cost", "homogeneous PD at the same cost"), ("naive", "naive heterogeneous on the same fleet"))

#: (key in ``slo``, key in a latency reading, label)
_LEVELS = (("ttft_p90_s", "ttft_p90_s", "P90 TTFT"), ("ttft_p99_s", "ttft_p99_s", "P99 TTFT"), ("ttft_mean_s", "ttft_mean_s", "mean TTFT"))

#: (pool key in ``slo.max_utilisation_frac``, path in a latency reading (None: decode), label)
_POOLS = (("prfaas", "prfaas", "PrfaaS prefill"), ("local_prefill", "local", "local prefill"), ("local_decode", None, "local decode"))


def _pool_utilisation(at: dict, path: str | None) -> float:
    """A pool's utilisation in a latency reading at a rate: its instances' busy share (the
    queueing model's, not the path's, whose PrfaaS capacity also counts the link)."""
    if path is None:
        return at["decode_utilisation_frac"]
    return (at.get("paths") or {}).get(path, {}).get("utilisation_frac", 0.0)


def _latency_problems(result: dict, slo: dict, arr: float) -> list[str]:
    """Each stated latency level missed at the arrival rate (analytic TTFT, TPOT)."""
    lat = result.get("latency") or {}
    at = lat.get("at_arrival_rate")
    stated = [(k, r, label) for k, r, label in _LEVELS if slo.get(k) is not None]
    out = []
    if stated and at is None and lat.get("at_arrival_rate_error"):
        names = ", ".join(label for _, _, label in stated)
        out.append(f"{names} unbounded at {arr:g} req/s ({lat['at_arrival_rate_error']}) against the SLO")
    for key, read, label in stated if at else ():
        v = at[read]
        if v > slo[key] * (1 + _LATENCY_RTOL):
            out.append(f"{label} {v:.3g} s at {arr:g} req/s exceeds the {slo[key]:g} s SLO")
    tpot = (at or lat.get("zero_load") or {}).get("tpot_s")
    if tpot is not None and slo.get("tpot_s") is not None and tpot > slo["tpot_s"] * (1 + _LATENCY_RTOL):
        out.append(f"TPOT {tpot * 1e3:.3g} ms exceeds the {slo['tpot_s'] * 1e3:g} ms SLO")
    return out


def verdict(result: dict) -> dict:
    """``{"ok": bool, "text": one line, "problems": [...]}`` for an ``optimize`` result. A problem
    for each demand missed: Lambda_max below the arrival rate (named, and beside the target when
    the question was a target); each stated TTFT level (``slo``:
    ``ttft_p90_s``, ``ttft_p99_s``, ``ttft_mean_s``) above its SLO at the arrival rate (read from
    ``latency``, once it is added) and TPOT above its SLO; a pool above its
    ``max_utilisation_frac`` at the arrival rate (also read from ``latency``); the cost over the
    budget; the target not reached (with a TTFT SLO: the goodput below it); an equal-cost baseline (cost <= the plan's)
    serving more req/s than the plan (goodput against goodput where a TTFT SLO is stated)."""
    lam = result["throughput_req_per_s"]
    slo = result.get("slo") or {}
    problems, good = [], []
    load = result.get("load")
    if load:
        arr = load["arrival_req_per_s"]
        # name the rate checked: with a target question the plan was sized for another rate
        which = "workload.arrival_req_per_s" + (f"; the plan is sized for the target {result['target_req_per_s']:g} req/s"
                                                if result.get("objective") == "target" and result.get("target_req_per_s") else "")
        if lam < arr * (1 - _RTOL):
            problems.append(f"cannot carry the scenario's {arr:g} req/s ({which}): Lambda_max is {lam:.3g} req/s ({lam / arr:.0%} of it)")
        else:
            good.append(f"carries the scenario's {arr:g} req/s ({which}) with {max(load['headroom_frac'], 0.0):.0%} headroom")
        latency = _latency_problems(result, slo, arr)
        problems += latency
        if not latency and result.get("latency") and any(slo.get(k) is not None for k, _, _ in _LEVELS):
            good.append(f"meets the TTFT SLO at {arr:g} req/s")
        at = (result.get("latency") or {}).get("at_arrival_rate")
        for pool, path, label in _POOLS if at else ():
            cap = (slo.get("max_utilisation_frac") or {}).get(pool)
            u = _pool_utilisation(at, path)
            if cap is not None and u > cap * (1 + _RTOL):
                problems.append(f"{label} {u:.0%} utilised at {arr:g} req/s, over the {cap:.0%} cap")
    budget = result.get("budget_usd_per_hour")
    if budget is not None and result["cost_usd_per_hour"] > budget * (1 + _RTOL):
        problems.append(f"costs {result['cost_usd_per_hour']:,.2f} $/hour, over the {budget:,.2f} $/hour budget")
    target = result.get("target_req_per_s")
    if target is not None:
        goodput = (result.get("latency") or {}).get("goodput_req_per_s")
        if goodput is not None and goodput < target * (1 - _RTOL):
            problems.append(f"goodput {goodput:.3g} req/s (TTFT within the SLO) is below the {target:g} req/s target")
        elif lam < target * (1 - _RTOL):
            problems.append(f"reaches {lam:.3g} req/s, below the {target:g} req/s target")
    problems += _baseline_comparison(result, slo, good)
    text = ("WARNING: " + "; ".join(problems)) if problems else ("OK: " + "; ".join(good) if good else "OK")
    return {"ok": not problems, "text": text, "problems": problems}


def _baseline_comparison(result: dict, slo: dict, good: list[str]) -> list[str]:
    """The plan against the equal-cost baselines: by goodput where the plan has one (a TTFT SLO
    is stated), else by Lambda_max; a question with utilisation caps but no TTFT level is not
    compared (its yardstick, the rate within the caps, is not what the baselines were sized for)."""
    yard = "goodput_req_per_s" if (result.get("latency") or {}).get("goodput_req_per_s") is not None else None
    if yard is None and slo.get("max_utilisation_frac"):
        return []
    read = (lambda p: p["latency"]["goodput_req_per_s"]) if yard else (lambda p: p["throughput_req_per_s"])  # noqa: E731
    unit = "req/s of goodput" if yard else "req/s"
    mine, out = read(result), []
    for key, label in _EQUAL_COST:
        b = (result.get("baselines") or {}).get(key)
        if not b or b["cost_usd_per_hour"] > result["cost_usd_per_hour"] * (1 + _RTOL) or (yard and not b.get("latency")):
            continue
        theirs = read(b)
        if theirs > mine * (1 + _RTOL):
            out.append(f"loses to {label}: {mine:.3g} vs {theirs:.3g} {unit} ({mine / theirs:.2f}x)")
        elif key == "homogeneous_equal_cost" and theirs > 0:
            good.append(f"{mine / theirs:.2f}x {label}" + (" in goodput" if yard else ""))
    return out
