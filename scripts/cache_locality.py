"""Cache locality in the planner (issue 18, item 3): the offload share a plan expects against the
one the simulation sees, on the Mooncake conversation trace. Quote its output in notes; the
README's "Cache locality" table is this script's.

    python scripts/cache_locality.py [--repeat 3]

For each of mooncake-case-study (planned with one shared prefix cache) and
mooncake-per-cluster-cache (the same scenario planned with one cache per cluster under static
routing, prfaas_plan/planning/locality.py): the planned t, Lambda_max and offload share
(``optimize``'s ``offload_frac``), the share its ``cache_locality`` report says static routing will
see with a cache per cluster, and the simulated share (``simulate --trace``, static policy,
caches sized from HBM) at the trace's own times and at 80% of the plan's Lambda_max, with TTFT
and SLO attainment at 80%. Then the speed: numbering the trace's blocks, the bit-mask replay of
the planner's candidate thresholds (kept as changes, as the planner keeps them), one dict replay (one threshold), and ``optimize`` of
each scenario in-process (the first call reads the trace and replays it; later calls reuse the
memoised replay). Medians of repeated runs; the machine is shared, so read the times, do not
assert on them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.catalog.paths import resolve_trace  # noqa: E402
from prfaas_plan.planning import trace_input  # noqa: E402
from prfaas_plan.planning.locality import grid_thresholds  # noqa: E402
from prfaas_plan.planning.planner import optimize  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.simulation.run import simulate_scenario  # noqa: E402
from prfaas_plan.traces.locality import BlockIndex, replay_changes, replay_reference  # noqa: E402
from prfaas_plan.traces.readers import read_trace  # noqa: E402

TRACE = "mooncake_fast25_conversation_trace"
SCENARIOS = ("mooncake-case-study", "mooncake-per-cluster-cache")


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def shares() -> list[dict]:
    rows = []
    for name in SCENARIOS:
        sc = load_scenario(name)
        plan = optimize(sc, compare_modes=False)
        own = simulate_scenario(sc, trace=TRACE)
        hot = simulate_scenario(sc, trace=TRACE, load=0.8)
        rows.append({"scenario": name, "t": plan["threshold_tokens"], "lam": plan["throughput_req_per_s"],
                     "counts": f"{plan['n_prfaas']}/{plan['n_pd_prefill']}/{plan['n_pd_decode']}", "planned": plan["offload_frac"],
                     "per_cluster": plan["cache_locality"]["per_cluster_offload_frac"],
                     "shared": plan["cache_locality"]["shared_cache_offload_frac"],
                     "sim_own": own["offload_frac"], "sim_80": hot["offload_frac"], "ttft_80": hot["ttft"],
                     "slo_80": hot["slo_attainment_frac"], "rate_80": hot["arrival_req_per_s"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rows = shares()
    print("| scenario (planned with) | t tokens | N_prfaas/N_p/N_d | Lambda_max req/s | planned offload | per-cluster replay at t "
          "| simulated, own times | simulated, 80% load | planned - simulated (80%) | TTFT mean / P90 / P99 s at 80% | SLO 5 s at 80% |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ttft = r["ttft_80"]
        print(f"| {r['scenario']} | {r['t']:,.1f} | {r['counts']} | {r['lam']:.3f} | {r['planned']:.1%} | {r['per_cluster']:.1%} "
              f"| {r['sim_own']:.1%} | {r['sim_80']:.1%} | {(r['planned'] - r['sim_80']) * 100:+.1f} pts "
              f"| {ttft['mean_s']:.2f} / {ttft['p90_s']:.2f} / {ttft['p99_s']:.1f} | {r['slo_80']:.1%} |")
    shared = ", ".join(f"{r['shared']:.1%}" for r in rows)
    rates = ", ".join(f"{r['rate_80']:.2f}" for r in rows)
    print(f"\n(one shared cache at each plan's t, after the warm-up: {shared}; 80% load = {rates} req/s)")

    tr = read_trace(resolve_trace(TRACE))
    grid = grid_thresholds(load_scenario(SCENARIOS[1]).workload.uncached_input)  # the planner's candidates
    index = BlockIndex.build(tr.hash_ids, tr.input_tokens)
    t_index = median_time(lambda: BlockIndex.build(tr.hash_ids, tr.input_tokens), args.repeat)
    t_mask = median_time(lambda: replay_changes(index, tr.hash_ids, grid), args.repeat)
    t_dict = median_time(lambda: replay_reference(tr.hash_ids, tr.input_tokens, 5528.5), args.repeat)
    print(f"\nspeed ({len(tr):,} requests, {int(index.count.sum()):,} blocks, {index.n_nodes:,} distinct; median of {args.repeat}):")
    print(f"  number the blocks            {t_index * 1e3:7.1f} ms")
    print(f"  bit-mask replay, {len(grid)} t    {t_mask * 1e3:7.1f} ms  ({t_mask / len(grid) * 1e3:.2f} ms per threshold)")
    print(f"  dict replay, one t           {t_dict * 1e3:7.1f} ms  (x {len(grid)} = {t_dict * len(grid):.1f} s)")
    for name in SCENARIOS:
        trace_input._read.cache_clear()  # the trace read, replayed and planned from scratch
        t0 = time.perf_counter()
        sc = load_scenario(name)
        optimize(sc)
        first = time.perf_counter() - t0
        again = median_time(lambda: optimize(sc), args.repeat)
        print(f"  optimize {name:28s} first {first:5.2f} s (reading the trace), again {again:5.2f} s (both modes, baselines)")


if __name__ == "__main__":
    main()
