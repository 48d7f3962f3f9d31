"""Issue #16's reproducers checked three ways (quote the output in notes and the README):

    python scripts/check_slo.py [--hours 4] [--seed 0]

For each SLO scenario (slo-case-study: target 30 req/s with P90 <= 4 s; qwen35-h20-slo: objective
slo, 40 req/s, P90 <= 5 s): the plan on throughput alone (what `optimize` returned before) with
its own P90 at the rate and its verdict; the SLO plan with its analytic P90 and the P90 of the
discrete-event simulation of that plan at the rate (Poisson, seeded, ``--hours`` long; it must
meet the SLO within 10%); and what a user does by hand, the cheapest throughput plan oversized by
a uniform headroom factor that meets the SLO (the SLO plan never costs more).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prfaas_plan.latency.deployment import deployment  # noqa: E402
from prfaas_plan.latency.plans import add_latency, optimize  # noqa: E402
from prfaas_plan.latency.slo_plan import headroom_baseline, slo_target  # noqa: E402
from prfaas_plan.planning import planner  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.simulation import arrivals  # noqa: E402
from prfaas_plan.simulation.run import simulate  # noqa: E402

SCENARIOS = ("slo-case-study", "qwen35-h20-slo")


def counts(r: dict) -> str:
    return f"{r['n_prfaas']}/{r['n_pd_prefill']}/{r['n_pd_decode']}, {r['link_gbit_per_s']:,.0f} Gbit/s, {r['cost_usd_per_hour']:,.1f} $/h"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| scenario | plan | PrfaaS/PD-P/PD-D, link, cost | load at the rate | P90 TTFT analytic | P90 simulated | verdict |")
    print("|---|---|---|---|---|---|---|")
    for name in SCENARIOS:
        sc = load_scenario(name)
        rate = sc.workload.arrival_req_per_s
        slo = sc.ttft_p90_slo_s
        old = add_latency(sc, planner.optimize(sc, target_req_per_s=rate, compare_modes=False))
        t0 = time.perf_counter()
        new = optimize(sc, compare_modes=False)
        plan_s = time.perf_counter() - t0
        dep = deployment(sc, new)
        rng = np.random.default_rng(args.seed)
        times = arrivals.poisson_times(rate, args.hours * 3600, rng)
        sim = simulate(dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "Poisson"), duration_s=args.hours * 3600)
        tm = planner.throughput_model(sc)
        by_hand, factor = headroom_baseline(sc, tm, slo_target(sc, rate))
        hand = planner.plan_dict(by_hand, sc)
        hand_lat = add_latency(sc, {**hand, "mode": sc.mode, "baselines": {}, "objective": "target", "target_req_per_s": rate})
        sim_p90 = sim["ttft"]["p90_s"]
        rows = [
            ("throughput only (before)", old, old["latency"]["at_arrival_rate"]["ttft_p90_s"], "-", old["verdict"]["text"]),
            ("SLO plan", new, new["latency"]["at_arrival_rate"]["ttft_p90_s"],
             f"{sim_p90:.2f} s ({sim_p90 / slo - 1:+.1%} vs SLO; {len(times):,} requests)", new["verdict"]["text"]),
            (f"throughput x {factor:.2f} (by hand)", hand_lat, hand_lat["latency"]["at_arrival_rate"]["ttft_p90_s"], "-", "-"),
        ]
        for label, r, p90, simulated, text in rows:
            util = rate / r["throughput_req_per_s"]
            print(f"| {name} (P90 <= {slo:g} s at {rate:g} req/s) | {label} | {counts(r)} | {util:.1%} | {p90:.2f} s | {simulated} | {text[:90]} |")
        print(f"| | SLO plan cost vs by hand | {new['cost_usd_per_hour'] / hand['cost_usd_per_hour']:.3f}x | planned in {plan_s:.2f} s | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
