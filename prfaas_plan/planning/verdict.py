"""A plan's verdict in plain words: can it carry the scenario's load, and does it beat the
baselines it could have been instead at the same cost? (Shown first; the exit code stays 0.)"""

from __future__ import annotations

_RTOL = 1e-9

_EQUAL_COST = (("homogeneous_equal_cost", "homogeneous PD at the same cost"), ("naive", "naive heterogeneous on the same fleet"))


def verdict(result: dict) -> dict:
    """``{"ok": bool, "text": one line, "problems": [...]}`` for an ``optimize`` result: a problem
    when Lambda_max is below the scenario's arrival rate (named, and beside the target when the
    question was a target), or when an equal-cost baseline (cost <= the plan's)
    serves more req/s than the plan."""
    lam = result["throughput_req_per_s"]
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
            good.append(f"carries the scenario's {arr:g} req/s ({which}) with {load['headroom_frac']:.0%} headroom")
    for key, label in _EQUAL_COST:
        b = (result.get("baselines") or {}).get(key)
        if not b or b["cost_usd_per_hour"] > result["cost_usd_per_hour"] * (1 + _RTOL):
            continue
        if b["throughput_req_per_s"] > lam * (1 + _RTOL):
            problems.append(f"loses to {label}: {lam:.3g} vs {b['throughput_req_per_s']:.3g} req/s ({lam / b['throughput_req_per_s']:.2f}x)")
        elif key == "homogeneous_equal_cost" and b["throughput_req_per_s"] > 0:
            good.append(f"{lam / b['throughput_req_per_s']:.2f}x {label}")
    text = ("WARNING: " + "; ".join(problems)) if problems else ("OK: " + "; ".join(good) if good else "OK")
    return {"ok": not problems, "text": text, "problems": problems}
