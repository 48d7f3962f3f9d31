"""Benchmark of `prfaas-plan simulate` (issue 7 target: one hour of paper-case-study at 80% load in
<= 2 s). Quote its output in notes.

    python scripts/bench_simulate.py [--repeat 3] [--day] [--day-hours H] [--day-budget USD_PER_HOUR]

Times, in-process after imports: the plan (``optimize``), generating the arrivals, the event
loop and the results, for one simulated hour of the case study at 80% of Lambda_max; the same
for 4 and 16 hours (how it scales: requests simulated per second of wall time); each policy; and
a ~10,000-GPU plan (paper-case-study at a 30,000 $/hour budget) for 10 simulated minutes, from
which a simulated day is extrapolated (``--day`` runs the whole day instead, of the plan at
``--day-budget``: 34,500 $/hour buys 10,040 GPUs; issue 18 target <= 2 CPU-minutes, <= 1.5 GB peak). Also the whole CLI
(interpreter start and output included) for the one-hour case. Medians of repeated runs; the
machine is shared, so read it, do not assert on it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from prfaas_plan.latency.deployment import deployment  # noqa: E402
from prfaas_plan.planning.planner import optimize  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.simulation import arrivals  # noqa: E402
from prfaas_plan.simulation.metrics import results  # noqa: E402
from prfaas_plan.simulation.run import run, simulate_scenario  # noqa: E402


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def parts(sc, load: float, hours: float, repeat: int, budget: float | None = None) -> dict:
    """Median seconds of each stage, and the requests simulated."""
    t_plan, plan = timed(lambda: optimize(sc, budget_usd_per_hour=budget, compare_modes=False), repeat)
    dep = deployment(sc, plan)
    rate = load * plan["throughput_req_per_s"]

    def make():
        rng = np.random.default_rng(0)
        return arrivals.synthetic(arrivals.poisson_times(rate, hours * 3600, rng), dep.lengths, dep.output_tokens_mean, rng)

    t_arr, reqs = timed(make, repeat)
    t_loop, sim = timed(lambda: run(dep, reqs, duration_s=hours * 3600), repeat)
    t_res, res = timed(lambda: results(sim), repeat)
    return {"plan": t_plan, "arrivals": t_arr, "loop": t_loop, "results": t_res, "n": len(reqs), "plan_dict": plan, "res": res}


def line(label: str, p: dict) -> str:
    sim = p["arrivals"] + p["loop"] + p["results"]
    return (f"{label:58s} {p['n']:>9,} req  plan {p['plan']:.3f} s  arrivals {p['arrivals']:.3f} s  loop {p['loop']:.3f} s  "
            f"results {p['results']:.3f} s  total {p['plan'] + sim:.3f} s  ({p['n'] / p['loop']:,.0f} req/s of loop)")


def day(hours: float, budget_usd_per_hour: float) -> int:
    """The paper-case-study plan at ``budget_usd_per_hour`` (34,500 $/hour: 10,040 GPUs) over ``hours`` at 80% load:
    CPU seconds per stage and peak RSS."""
    import resource

    from prfaas_plan.simulation.run import simulate

    c0 = time.process_time()
    sc = load_scenario("paper-case-study")
    plan = optimize(sc, budget_usd_per_hour=budget_usd_per_hour, compare_modes=False)
    dep = deployment(sc, plan)
    c1 = time.process_time()
    rng = np.random.default_rng(0)
    reqs = arrivals.synthetic(arrivals.poisson_times(0.8 * plan["throughput_req_per_s"], hours * 3600, rng), dep.lengths,
                              dep.output_tokens_mean, rng)
    c2 = time.process_time()
    rss_arrivals = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r = simulate(dep, reqs, duration_s=hours * 3600)
    c3 = time.process_time()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpus = plan["gpus_prfaas"] + plan["gpus_local"]
    print(f"~10,000-GPU plan ({gpus:,} GPUs: {plan['n_prfaas']} PrfaaS / {plan['n_pd_prefill']} PD-P / {plan['n_pd_decode']} PD-D instances), "
          f"{hours:g} h at 80% of Lambda_max {plan['throughput_req_per_s']:,.1f} req/s: {len(reqs):,} requests, engine: {r['engine']}, "
          f"TTFT quantiles {r['ttft_quantiles']}")
    print(f"  CPU s: plan {c1 - c0:.1f}, arrivals {c2 - c1:.1f}, simulate + results {c3 - c2:.1f}, total {c3 - c0:.1f} "
          f"({(c3 - c2) / len(reqs) * 1e6:.2f} us per request)")
    print(f"  peak RSS {rss:,.0f} MiB (after the arrivals: {rss_arrivals:,.0f} MiB)")
    print(f"  TTFT mean {r['ttft']['mean_s']:.3f} s, P90 {r['ttft']['p90_s']:.3f} s, P99 {r['ttft']['p99_s']:.3f} s; egress "
          f"{r['egress_utilisation_frac']:.1%} of the link; offload {r['offload_frac']:.1%}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--day", action="store_true", help="only a simulated day of the ~10,000-GPU plan, in a fresh interpreter (minutes)")
    ap.add_argument("--day-hours", type=float, default=24.0, help="with --day: simulated hours")
    ap.add_argument("--day-budget", type=float, default=34_500.0,
                    help="with --day: the plan's budget, $/hour (34,500: a 10,040-GPU plan)")
    ap.add_argument("--day-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.day_child:
        return day(args.day_hours, args.day_budget)
    if args.day:
        return subprocess.run([sys.executable, __file__, "--day-child", "--day-hours", str(args.day_hours), "--day-budget", str(args.day_budget)], cwd=ROOT).returncode
    sc = load_scenario("paper-case-study")

    print("paper-case-study, Poisson at 80% of Lambda_max, static policy (median of", args.repeat, "runs)")
    base = parts(sc, 0.8, 1.0, args.repeat)
    print(line("1 h", base))
    for hours in (4.0, 16.0):
        print(line(f"{hours:g} h", parts(sc, 0.8, hours, max(1, args.repeat // 2))))

    t, _ = timed(lambda: simulate_scenario(sc, load=0.8), args.repeat)
    print(f"{'simulate_scenario(paper-case-study, load=0.8), 1 h, all in':58s} {t:.3f} s")
    for policy, extra in (("bandwidth-aware", dict(link_drop_at_s=1800, link_drop_frac=0.1)), ("static", dict(burst_cv2=4.0))):
        t, _ = timed(lambda: simulate_scenario(sc, load=0.8, policy=policy, **extra), args.repeat)
        print(f"{'  ' + policy + ', ' + ', '.join(f'{k}={v}' for k, v in extra.items()):58s} {t:.3f} s")
    mc = load_scenario("mooncake-case-study")
    for policy in ("static", "cache-aware"):
        t, r = timed(lambda: simulate_scenario(mc, trace="mooncake_fast25_conversation_trace", load=0.8, policy=policy), args.repeat)
        label = f"  mooncake trace at 80%, {policy} ({r['requests_arrived']:,} req)"
        print(f"{label:58s} {t:.3f} s")

    cmd = [sys.executable, "-m", "prfaas_plan", "simulate", "paper-case-study", "--load", "0.8", "-f", "json"]
    t, _ = timed(lambda: subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True), args.repeat)
    print(f"{'whole CLI: prfaas-plan simulate paper-case-study --load 0.8':58s} {t:.3f} s")

    big = parts(sc, 0.8, 1.0 / 6, 1, budget=30_000.0)
    p = big["plan_dict"]
    gpus = p["gpus_prfaas"] + p["gpus_local"]
    print(f"\n~10,000-GPU plan (paper-case-study, budget 30,000 $/hour): {gpus:,} GPUs = {p['n_prfaas']} PrfaaS / "
          f"{p['n_pd_prefill']} PD-P / {p['n_pd_decode']} PD-D instances, Lambda_max {p['throughput_req_per_s']:,.1f} req/s")
    print(line("10 min at 80%", big))
    per_day = 0.8 * p["throughput_req_per_s"] * 86_400
    rate = big["n"] / (big["arrivals"] + big["loop"] + big["results"])
    print(f"a simulated day at 80% = {per_day:,.0f} requests; the event loop at {rate:,.0f} req/s of wall time: ~{per_day / rate / 60:,.1f} min "
          "(--day measures the fast path's day)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
