"""The curves a design review asks for, as data (plots live in reports/plots.py):

- the prompt-length histogram with the routing threshold;
- [PRFAAS] Fig. 5: Lambda_max vs threshold t for every prefill/decode split of a fleet (a), and
  the best Lambda_max vs the split (b);
- the planned fleet's throughput and cost vs link bandwidth (a stress curve);
- cost per 1k requests vs budget (a re-plan at each budget).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import units
from .overrides import Override
from .planner import throughput_model
from .scenario import Scenario
from .sweep import sweep
from .workload import LengthDistribution


def length_histogram(d: LengthDistribution, n_bins: int = 40) -> dict:
    """Probability mass of prompt lengths in log-spaced bins (edges in tokens)."""
    edges_c, mass, means = d.cells()
    lo, hi = d.support()
    edges = np.geomspace(max(lo, 1.0), hi * (1 + 1e-9), n_bins + 1)
    idx = np.clip(np.searchsorted(edges, means, side="right") - 1, 0, n_bins - 1)
    hist = np.bincount(idx, weights=mass, minlength=n_bins)
    return {"edges_tokens": edges.tolist(), "mass_frac": (hist / hist.sum()).tolist(), "mean_tokens": d.mean()}


def fig5(sc: Scenario, plan: dict, mode: str | None = None, max_curves: int = 12) -> dict:
    """[PRFAAS] Fig. 5 for the plan's fleet (N_prfaas, N_p + N_d, link): (a) Lambda_max at every
    candidate threshold for each split N_p (N_d = rest), (b) the best Lambda_max per split."""
    tm = throughput_model(sc, mode or plan.get("mode") or sc.mode)
    n_r, n_local = plan["n_prfaas"], plan["n_pd_prefill"] + plan["n_pd_decode"]
    link = units.gbit_per_s_to_bytes_per_s(plan["link_gbit_per_s"])
    t = np.asarray(tm.needs.threshold_tokens, float)
    inner = (t > 0) & np.isfinite(t)
    splits = list(range(1, n_local)) or [n_local]
    curves, best = [], []
    for n_p in splits:
        lam = np.asarray(tm.evaluate(tm.needs, n_r, n_p, n_local - n_p, link)["throughput_req_per_s"], float)
        j = int(np.argmax(np.where(inner, lam, -np.inf))) if inner.any() else 0
        best.append({"n_pd_prefill": n_p, "n_pd_decode": n_local - n_p, "throughput_req_per_s": float(lam[j]), "threshold_tokens": float(t[j])})
        curves.append({"n_pd_prefill": n_p, "n_pd_decode": n_local - n_p, "throughput_req_per_s": lam[inner].tolist()})
    if len(curves) > max_curves:  # keep the plotted curves readable: the best splits
        keep = sorted(range(len(curves)), key=lambda i: -best[i]["throughput_req_per_s"])[:max_curves]
        curves = [curves[i] for i in sorted(keep)]
    return {"n_prfaas": n_r, "n_local": n_local, "threshold_tokens": t[inner].tolist(), "curves": curves, "best": best}


def _fleet_overrides(plan: dict) -> list[tuple[str, object]]:
    return [("objective", {"kind": "fixed-fleet"}), ("prfaas.instances", plan["n_prfaas"]),
            ("local.instances", max(plan["n_pd_prefill"] + plan["n_pd_decode"], 1))]


def link_curve(sc: Scenario, plan: dict, mode: str | None = None, n: int = 16) -> list[dict]:
    """The planned fleet at link bandwidths from 1/8 to 4x the plan's (at least 1..400 Gbit/s):
    throughput and $/hour (fleet + link at the scenario's price per Gbit/s)."""
    top = max(plan["link_gbit_per_s"] * 4, 400.0)
    bottom = max(min(plan["link_gbit_per_s"] / 8, 10.0), 1.0)
    values = np.geomspace(bottom, top, n).tolist()
    fleet = sc_with(sc, [Override(k, v) for k, v in _fleet_overrides(plan)])
    return sweep(fleet, [("link.bandwidth_gbit_per_s", values)], mode)


def budget_curve(sc: Scenario, plan: dict, mode: str | None = None, n: int = 13) -> list[dict]:
    """Re-plans at budgets from 1/4 to 4x the plan's cost: throughput and $ per 1k requests."""
    cost = plan["cost_usd_per_hour"] if plan["cost_usd_per_hour"] > 0 else 100.0
    values = [float(v) for v in np.geomspace(cost / 4, cost * 4, n)]
    return sweep(sc_with(sc, [Override("objective", {"kind": "budget"})]), [("objective.budget_usd_per_hour", values)], mode)


def sc_with(sc: Scenario, overrides: list[Override]) -> Scenario:
    """``sc`` with more overrides, applied when a sweep re-reads it."""
    return replace(sc, overrides=sc.overrides + tuple(overrides))
