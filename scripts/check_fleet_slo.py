"""The fleet SLO planner checked three ways on scenarios/multi-site-slo.yaml (quote the output in
notes and the README):

    python scripts/check_fleet_slo.py [--hours 1] [--seed 0]

Rows: the fleet planned for throughput alone (the same sites and links, each site's arrival rate,
no SLO rows), with each site's analytic TTFT at its rate and its verdict; the SLO plan
(`optimize multi-site-slo`) with each site's analytic levels and the P90 of the discrete-event
simulation of that site's deployment at its rate (Poisson, seeded, ``--hours`` long; it must be
within 10% of the analytic P90 and meet the SLO within 10%); and what a user does by hand, the
cheapest throughput fleet oversized by a uniform headroom factor that meets every SLO
(:func:`~prfaas_plan.fleet.slo_search.headroom_plan`; the SLO plan never costs more).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prfaas_plan.fleet.latency import add_site_latency, site_deployment  # noqa: E402
from prfaas_plan.fleet.needs import site_needs  # noqa: E402
from prfaas_plan.fleet.plan import fleet_document, fleet_verdict, plan_fleet  # noqa: E402
from prfaas_plan.fleet.search import optimise  # noqa: E402
from prfaas_plan.errors import PlanError  # noqa: E402
from prfaas_plan.fleet.slo_search import headroom_plan  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.simulation import arrivals  # noqa: E402
from prfaas_plan.simulation.run import simulate  # noqa: E402

SCENARIO = "multi-site-slo"


def levels(st: dict) -> str:
    at = st["latency"]["at_rate"]
    if at is None:
        return "unstable"
    return f"P90 {at['ttft_p90_s']:.2f} / P99 {at['ttft_p99_s']:.2f} / mean {at['ttft_mean_s']:.2f} s"


def fleet_line(doc: dict) -> str:
    pools = ", ".join(f"{e['site']} {e['role']} {e['hardware']} x{e['instances']}" for e in doc["fleet"])
    return f"{pools}; {doc['cost_usd_per_hour']:,.1f} $/h"


def document(sc, needs, objective):
    return lambda sol: fleet_document(sc, sol, needs, objective, None)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sc = load_scenario(SCENARIO)
    fleet, model = sc.fleet, sc.model
    needs = {s.name: site_needs(fleet, model, s) for s in fleet.local_sites}
    rates = {s.name: s.workload.arrival_req_per_s for s in fleet.local_sites}
    parts = {p.name: p.parts for p in fleet.prfaas_sites}
    slo = {s.name: s.ttft_slo.describe() for s in fleet.local_sites}
    print(f"{SCENARIO}: " + "; ".join(f"{s} {rates[s]:g} req/s, TTFT {slo[s]}" for s in rates))
    print("| plan | fleet, cost | site | analytic TTFT at its rate | P90 simulated | verdict |")
    print("|---|---|---|---|---|---|")

    thr = fleet_document(sc, optimise(fleet, model, "target", rates, None, needs), needs, "target", None)
    add_site_latency(model, needs, thr, fleet)
    thr.update({"alpha": None, "fleet_one_pair": False})
    verdict = fleet_verdict(thr)["text"]
    for st in thr["sites"]:
        print(f"| throughput only | {fleet_line(thr)} | {st['site']} | {levels(st)} | - | {verdict[:90]} |")

    t0 = time.perf_counter()
    r = plan_fleet(sc)
    plan_s = time.perf_counter() - t0
    ok = True
    for st in r["sites"]:
        dep = site_deployment(model, needs[st["site"]], r, st, parts, needs)
        rng = np.random.default_rng(args.seed)
        times = arrivals.poisson_times(st["rate_req_per_s"], args.hours * 3600, rng)
        sim = simulate(dep, arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, "Poisson"), duration_s=args.hours * 3600)
        p90, analytic = sim["ttft"]["p90_s"], st["latency"]["at_rate"]["ttft_p90_s"]
        within = abs(p90 - analytic) <= 0.10 * analytic and (st["ttft_p90_slo_s"] is None or p90 <= 1.10 * st["ttft_p90_slo_s"])
        ok &= within
        print(f"| SLO plan ({r['solver']['status']}, gap {r['solver']['gap_frac']:.2g}) | {fleet_line(r)} | {st['site']} | {levels(st)} | "
              f"{p90:.2f} s ({(p90 / analytic - 1) * 100:+.1f}%) | {r['verdict']['text'][:90]} |")

    try:
        by_hand, h = headroom_plan(fleet, model, rates, needs, document(sc, needs, "target"))
    except PlanError as exc:  # oversizing the throughput fleet cannot fix what its parts or routes make slow even idle
        print(f"| by hand: throughput x factor | none: {exc} | all | - | - | - |")
        hand_usd_per_hour = math.inf
    else:
        hand = fleet_document(sc, by_hand, needs, "target", None)
        hand_usd_per_hour = hand["cost_usd_per_hour"]
        print(f"| by hand: throughput x {h:.2f} | {fleet_line(hand)} | all | meets every SLO | - | - |")
    print(f"\nSLO plan {r['cost_usd_per_hour']:,.1f} $/h (planned in {plan_s:.2f} s) vs by hand {hand_usd_per_hour:,.1f} $/h; "
          f"simulated P90 within 10%: {'yes' if ok else 'NO'}")
    return 0 if ok and r["cost_usd_per_hour"] <= hand_usd_per_hour + 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
