"""Benchmark of the one-pair SLO plan (issue #16 target: <= 3x the time of today's
`optimize paper-case-study`). Quote its output in notes.

    python scripts/bench_slo.py [--repeat 10]

Wall time of the whole CLI (interpreter start, both modes, baselines, latency and output
included), interleaved runs as scripts/bench.py times them: the reference `optimize
paper-case-study -f json` (a fixed fleet, throughput only) beside `optimize slo-case-study` (issue
reproducer (a): the cheapest plan whose goodput at P90 <= 4 s reaches 30 req/s) and `optimize
qwen35-h20-slo` (reproducer (b): objective slo, 40 req/s, P90 <= 5 s). Then the SLO search
alone, in-process CPU time (`cheapest_meeting_slo`, one mode). The machine is shared: read it,
do not assert on it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import CLI, environment, interleaved_times  # noqa: E402

REFERENCE = "optimize paper-case-study (json)"
RUNS = {
    REFERENCE: CLI + ["optimize", "paper-case-study", "-f", "json"],
    "optimize slo-case-study (json): target 30 req/s, P90 <= 4 s": CLI + ["optimize", "slo-case-study", "-f", "json"],
    "optimize qwen35-h20-slo (json): slo, 40 req/s, P90 <= 5 s": CLI + ["optimize", "qwen35-h20-slo", "-f", "json"],
}
TARGET = 3.0


def search_cpu_s(name: str, repeat: int) -> float:
    """Best in-process CPU time of the SLO search alone (one mode, after imports and the model)."""
    from prfaas_plan.latency.slo_plan import cheapest_meeting_slo, slo_target
    from prfaas_plan.planning.planner import problem_for, throughput_model
    from prfaas_plan.planning.scenario import load_scenario

    sc = load_scenario(name)
    tm = throughput_model(sc)
    rate = sc.target_req_per_s if sc.objective == "target" else sc.workload.arrival_req_per_s
    best = float("inf")
    for _ in range(repeat):
        problem = problem_for(sc, tm, "target", None)
        t0 = time.process_time()
        cheapest_meeting_slo(sc, tm, problem, slo_target(sc, rate))
        best = min(best, time.process_time() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="prfaas-bench-pycache-") as cache_dir:
        env, cache = environment(cache_dir)
        best, median = interleaved_times(RUNS, args.repeat, env)
    print(f"wall time of {args.repeat} interleaved runs each, interpreter start included; {cache}")
    print(f"  {'':64s} {'best':>7s} {'median':>7s}   x {REFERENCE}: best, median (target)")
    for name in RUNS:
        if name == REFERENCE:
            print(f"  {name:64s} {best[name]:6.3f}s {median[name]:6.3f}s")
            continue
        r, rm = best[name] / best[REFERENCE], median[name] / median[REFERENCE]
        print(f"  {name:64s} {best[name]:6.3f}s {median[name]:6.3f}s   {r:5.2f}x  {rm:5.2f}x "
              f"(<= {TARGET:g}x{'' if max(r, rm) <= TARGET else ', MISSED'})")
    print("SLO search alone (cheapest_meeting_slo, one mode, in-process CPU, best of the repeats):")
    for name in ("slo-case-study", "qwen35-h20-slo"):
        print(f"  {name:64s} {search_cpu_s(name, args.repeat):6.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
