"""Analytic TTFT (latency/ttft.py) beside the discrete-event simulation (simulation/), Poisson
arrivals, for the case study's PrfaaS plan and its baselines; then where they part (bursty
arrivals, the Mooncake trace replayed with its 3-s buckets). Prints Markdown tables for the README.

    python scripts/analytic_vs_sim.py [--hours 4] [--seed 0]

The analytic model is evaluated at the rate the simulation measured (its Poisson sample), so the
comparison is of the latency model, not of the sampling noise in the rate.
"""

from __future__ import annotations

import argparse

import numpy as np

from prfaas_plan.errors import PlanError
from prfaas_plan.latency.deployment import deployment
from prfaas_plan.latency.ttft import ttft
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.simulation import arrivals
from prfaas_plan.simulation.run import simulate

LOADS = (0.2, 0.4, 0.6, 0.8, 0.9)


def err(a: float, b: float) -> str:
    return f"{(b / a - 1) * 100:+.1f}%"


def poisson_rows(sc, plans: dict, hours: float, seed: int) -> list[str]:
    rows = []
    for kind, plan in plans.items():
        dep = deployment(sc, plan, kind)
        lam = plan["throughput_req_per_s"]
        for load in LOADS:
            rng = np.random.default_rng(seed)
            times = arrivals.poisson_times(load * lam, hours * 3600, rng)
            sim = simulate(dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "Poisson"), duration_s=hours * 3600)
            a = ttft(dep, sim["arrival_req_per_s"])
            s = sim["ttft"]
            rows.append(f"| {kind} | {load:.0%} | {a.ttft_mean_s:.2f} / {a.ttft_p90_s:.2f} | {s['mean_s']:.2f} / {s['p90_s']:.2f} | "
                        f"{err(a.ttft_mean_s, s['mean_s'])} / {err(a.ttft_p90_s, s['p90_s'])} |")
        rng = np.random.default_rng(seed)
        times = arrivals.poisson_times(1.5 * lam, 3600, rng)
        sim = simulate(dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "Poisson"), duration_s=3600)
        rows.append(f"| {kind} | 150% (saturation) | Lambda_max {lam:.3f} req/s | completes {sim['throughput_req_per_s']:.3f} req/s | "
                    f"{err(lam, sim['throughput_req_per_s'])} |")
    return rows


def analytic_pair(dep, rate: float, arrival_cv2: float = 1.0) -> str:
    try:
        a = ttft(dep, rate, arrival_cv2=arrival_cv2)
        return f"{a.ttft_mean_s:.2f} / {a.ttft_p90_s:.2f}"
    except PlanError:
        return "unstable"


def bursty_rows(sc, plan: dict, hours: float, seed: int) -> list[str]:
    dep = deployment(sc, plan)
    lam = plan["throughput_req_per_s"]
    rows = []
    for load in (0.5, 0.8):
        for cv2 in (1.0, 4.0, 16.0):
            rng = np.random.default_rng(seed)
            times = arrivals.gamma_times(load * lam, cv2, hours * 3600, rng)
            sim = simulate(dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "gamma"), duration_s=hours * 3600)
            s = sim["ttft"]
            rows.append(f"| paper-case-study, gamma gaps cv^2 {cv2:g} | {load:.0%} | {analytic_pair(dep, sim['arrival_req_per_s'])} | "
                        f"{analytic_pair(dep, sim['arrival_req_per_s'], cv2)} | {s['mean_s']:.2f} / {s['p90_s']:.2f} |")
    return rows


def trace_rows(seed: int) -> list[str]:
    """The Mooncake conversation trace on its scenario: its 3-s buckets spread (the default) or
    replayed literally, at the trace's own rate and scaled to 80% of Lambda_max."""
    from prfaas_plan.catalog.paths import resolve_trace
    from prfaas_plan.traces.readers import read_trace

    sc = load_scenario("mooncake-case-study")
    r = optimize(sc, compare_modes=False)
    dep = deployment(sc, r)
    rows = []
    for spread in (True, False):
        tr = read_trace(resolve_trace("mooncake_fast25_conversation_trace"), spread=spread)
        for rate in (None, 0.8 * r["throughput_req_per_s"]):
            reqs = arrivals.from_trace(tr, rate, sc.workload.output_tokens_mean, None)
            sim = simulate(dep, reqs, cache_blocks=None)
            s = sim["ttft"]
            gaps = np.diff(reqs.arrival_s)
            cv2 = float(np.var(gaps) / np.mean(gaps) ** 2)
            label = f"mooncake-case-study, trace {'spread' if spread else 'literal 3-s buckets'}"
            rows.append(f"| {label} | {sim['arrival_req_per_s'] / r['throughput_req_per_s']:.0%} | "
                        f"{analytic_pair(dep, sim['arrival_req_per_s'])} | {analytic_pair(dep, sim['arrival_req_per_s'], cv2)} (cv^2 {cv2:.2f}) | "
                        f"{s['mean_s']:.2f} / {s['p90_s']:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=4.0, help="simulated hours per Poisson point (default 4)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sc = load_scenario("paper-case-study")
    r = optimize(sc, compare_modes=False)
    plans = {"prfaas": r, "homogeneous": r["baselines"]["homogeneous"], "naive": r["baselines"]["naive"]}
    print("| deployment | load | analytic TTFT mean / P90 s | simulated mean / P90 s | sim vs analytic |")
    print("|---|---|---|---|---|")
    print("\n".join(poisson_rows(sc, plans, args.hours, args.seed)))
    print()
    print("| arrivals | load | analytic, Poisson: mean / P90 s | analytic, GI/G/c at the arrivals' cv^2 | simulated mean / P90 s |")
    print("|---|---|---|---|---|")
    print("\n".join(bursty_rows(sc, r, args.hours, args.seed) + trace_rows(args.seed)))


if __name__ == "__main__":
    main()
