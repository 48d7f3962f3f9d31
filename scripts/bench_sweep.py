"""Benchmark of sweeps (issue 8 target: 1,000 points in <= 3 s). Quote its output in notes.

    python scripts/bench_sweep.py [--repeat 3]

Times, in-process (planning only, after imports) and as the whole CLI (interpreter start and
output included): 1-D sweeps of 40 link bandwidths and 40 budgets, and a 2-D sweep of 1,000
points whose second key (the arrival rate) leaves the optimisation problem unchanged, so 40
distinct problems are solved. Each point is re-planned exactly as `optimize` would
(tests/test_whatif_sweep.py checks equality). Medians of repeated runs; the machine is shared,
so read it, do not assert on it. `--grids` adds 1,000-point grids of 1,000 distinct problems.
`--parallel` (issue 18 target: 1,000 distinct points on 2 workers in <= 0.6x their time on one)
times that grid on one worker (the serial executor) and on a process pool of `--workers` (pool
start included), in `--repeat` interleaved pairs (the median ratio is the figure), with the load
average before each and the CPU both used: the
machine is shared, so run it when others are quiet and quote the conditions. On Linux with
``sched_autogroup_enabled`` (as on the development machine) the scheduler shares the cores
between sessions, not processes: while other sessions keep the cores busy, a second worker in
this session gets no more CPU than one, and the wall ratio stays near 1 whatever the pool does;
the CPU ratio (the pool's overhead) is then the number to read.
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

from prfaas_plan.planning.overrides import parse_axis  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.planning.sweep import sweep  # noqa: E402

CASES = {
    "paper-case-study, link 10:400:40 (40 points)": ("paper-case-study", ["link.bandwidth_gbit_per_s=10:400:40"]),
    "budget-case-study, budget 500:6000:40 (40 points)": ("budget-case-study", ["objective.budget_usd_per_hour=500:6000:40"]),
    "paper-case-study, link 10:400:40 x arrival 1:10:25 (1,000 points, 40 problems)": ("paper-case-study", ["link.bandwidth_gbit_per_s=10:400:40", "workload.arrival_req_per_s=1:10:25"]),
}
GRIDS = {
    "paper-case-study, link 10:400:40 x prfaas price 2:7:25 (1,000 problems)": ("paper-case-study", ["link.bandwidth_gbit_per_s=10:400:40", "prfaas.usd_per_gpu_hour=2:7:25"]),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--grids", action="store_true", help="also the 1,000-problem grids (minutes)")
    ap.add_argument("--parallel", action="store_true", help="only the 1,000-problem grid on one worker and on --workers (minutes)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.parallel:
        return parallel(args.workers, args.repeat)
    print(f"median of {args.repeat} runs")
    for label, (name, vary) in {**CASES, **(GRIDS if args.grids else {})}.items():
        sc = load_scenario(name)
        axes = [parse_axis(v) for v in vary]
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = sweep(sc, axes)
            times.append(time.perf_counter() - t0)
        errors = sum(r["error"] is not None for r in rows)
        cmd = [sys.executable, "-m", "prfaas_plan", "sweep", name] + [a for v in vary for a in ("--vary", v)] + ["-f", "csv"]
        wall = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            wall.append(time.perf_counter() - t0)
        print(f"  {label:80s} planning {statistics.median(times):6.3f} s, CLI {statistics.median(wall):6.3f} s ({len(rows)} points, {errors} infeasible)")
    return 0


def parallel(workers: int, repeat: int) -> int:
    import os
    import resource

    from prfaas_plan.execution.executors import Executor, make_executor

    (label, (name, vary)), = GRIDS.items()
    sc, axes = load_scenario(name), [parse_axis(v) for v in vary]
    print(f"{label}: one worker vs a process pool of {workers}, {os.cpu_count()} cores here, {repeat} interleaved pairs")

    def cpu_s() -> float:  # this process and its finished children (the pool's workers, once shut down)
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    ratios, cpu_ratios, first = [], [], None
    for k in range(repeat):
        times, cpus = {}, {}
        for n in (1, workers):
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), cpu_s()
            with (Executor() if n == 1 else make_executor("process", n)) as ex:
                rows = sweep(sc, axes, executor=ex)
            times[n], cpus[n] = time.perf_counter() - t0, cpu_s() - c0
            first = rows if first is None else first
            assert rows == first, "rows differ between executors"
            print(f"  pair {k + 1}: {n} worker{'s' if n > 1 else ' '}  wall {times[n]:7.2f} s  CPU {cpus[n]:6.2f} s  (load average before: {load:.2f})")
        ratios.append(times[workers] / times[1])
        cpu_ratios.append(cpus[workers] / cpus[1])
        print(f"  pair {k + 1}: wall ratio {ratios[-1]:.2f}")
    print(f"  wall ratio median {statistics.median(ratios):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)}; target <= 0.6); "
          f"rows identical; the pool's CPU is {statistics.median(cpu_ratios):.2f}x one worker's (the parallel overhead)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
