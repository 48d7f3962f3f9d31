"""Benchmark of `prfaas-plan risk` (issue 18 target: `risk budget-case-study` with 1,000 samples
in <= 10 s on one core). Quote its output in notes.

    python scripts/bench_risk.py [--samples 1000] [--repeat 3]

Pinned to one core (``os.sched_setaffinity``; the CLI run inherits it), serial executor. Times the
Monte Carlo in-process (after imports) and the whole CLI (interpreter start, imports, the point
plan, the samples, JSON out), each as wall time and as CPU time (user + system, this process or
the child): on a shared machine the wall time includes waiting for the core, the CPU time does
not. Medians of repeated runs; read them, do not assert on them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.risk.analysis import risk  # noqa: E402


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scenario", default="budget-case-study")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.scenario}, {args.samples:,} samples, one core, serial; load average {load:.2f} on {os.cpu_count()} cores; median of {args.repeat}")
    sc = load_scenario(args.scenario)
    risk(sc, samples=4)  # the engine-model band and scipy.stats, loaded once as the CLI loads them
    wall, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        r = risk(sc, samples=args.samples)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    p = r["demands"][0]
    print(f"  in-process  wall {statistics.median(wall):6.2f} s  cpu {statistics.median(cpu):6.2f} s  "
          f"({1e3 * statistics.median(cpu) / args.samples:.1f} ms CPU per sample; P(rate) {p['probability']:.1%})")
    cmd = [sys.executable, "-m", "prfaas_plan", "risk", args.scenario, "--samples", str(args.samples), "-f", "json"]
    wall, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), _children_cpu_s()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        wall.append(time.perf_counter() - t0)
        cpu.append(_children_cpu_s() - c0)
    print(f"  whole CLI   wall {statistics.median(wall):6.2f} s  cpu {statistics.median(cpu):6.2f} s  (target <= 10 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
