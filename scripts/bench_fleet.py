"""Benchmark of the fleet MILP (issue 16 target: a 3-site, 3-part, 10,000-GPU scenario in <= 5 s).
Quote its output in notes.

    python scripts/bench_fleet.py [--repeat 3] [--slo-p90-s 3]

The scenario (written to a temporary folder): three PrfaaS sites, each offering H200, B200 and
Rubin CPX at its own prices, and three local sites (H20 prefill and decode, H200 as a second
local prefill candidate) with different length mixes and arrival rates, every PrfaaS site linked
to every local site in purchasable port sizes: a target question whose plan holds ~10,000 GPUs.
Times: planning in-process (scenario read, need curves, MILP search, the plan document; per-site
latency apart; wall and this process's CPU time, which the other users of a shared machine do not
inflate), and the whole `prfaas-plan optimize` (interpreter start, import, latency, output).
Medians of repeated runs; the machine is shared, so read it, do not assert on it.
Last measured (3 repeats, shared 2-core machine at load ~2.5): in-process median 0.53 s (CPU
0.53 s), with latency 0.56 s, the whole CLI 1.83 s, optimal in 1 round; as an SLO question at
P90 <= 4 s, median 3.58 s (CPU 2.61 s), status slo-checked, gap 1.5e-3 (18 s before the cuts of
one check went in one round; README "Speed").
``--slo-p90-s S`` also times the same fleet as an SLO question, ``--repeat`` times (objective slo,
every local site's P90 TTFT <= S s at its rate; :mod:`prfaas_plan.fleet.slo_search`), the whole
plan in-process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.errors import PlanError  # noqa: E402
from prfaas_plan.fleet.plan import fleet_document, plan_fleet, solve_fleet  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402

LOGNORMAL = {"kind": "lognormal", "sigma": 1.0, "min_tokens": 128, "max_tokens": 131072}
PRFAAS = [("virginia", 1.0, 8), ("quebec", 0.85, 35), ("oregon", 0.92, 60)]  # price factor, RTT ms to the first local site
LOCAL = [("new-york", 9.9, 1024, 450), ("chicago", 9.3, 512, 330), ("dallas", 10.3, 768, 240)]  # mu, output tokens, req/s


def scenario() -> dict:
    parts = {"h200": 4.5, "b200": 6.0, "rubin-cpx": 4.0}
    prfaas = [{"name": n, "hardware": list(parts), "gpus_per_instance": 8, "price_source": "bench",
               "usd_per_gpu_hour": {p: round(v * f, 3) for p, v in parts.items()}} for n, f, _ in PRFAAS]
    local = [{"name": n, "prefill_hardware": ["h20", "h200"], "decode_hardware": "h20", "gpus_per_instance": 8,
              "workload": {"input_tokens": {**LOGNORMAL, "mu": mu}, "output_tokens": out, "arrival_req_per_s": rate},
              "slo": {"decode_tokens_per_s": 40}} for n, mu, out, rate in LOCAL]
    links = [{"from": p, "to": n, "rtt_ms": rtt + 10 * i, "purchasable_gbit_per_s": [100, 400, 800, 1600, 3200],
              "usd_per_gbit_per_s_hour": 0.225} for p, _, rtt in PRFAAS for i, (n, *_) in enumerate(LOCAL)]
    return {"name": "bench-fleet", "description": "3 PrfaaS x 3 parts, 3 local sites, ~10,000 GPUs", "model": "prfaas-1t-hybrid",
            "sites": {"prfaas": prfaas, "local": local}, "links": links, "objective": {"kind": "target"}, "sources": ["bench"]}


def slo_run(path: Path, p90_s: float, repeat: int) -> str:
    """The bench fleet as an SLO question (objective slo, P90 <= p90_s at every local site),
    planned ``repeat`` times in-process: median wall and CPU, and the plan."""
    doc = yaml.safe_load(path.read_text())
    doc["objective"] = {"kind": "slo"}
    for site in doc["sites"]["local"]:
        site["slo"]["ttft_p90_s"] = p90_s
    slo_path = path.with_name("bench-fleet-slo.yaml")
    slo_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            r = plan_fleet(load_scenario(slo_path))
        except PlanError as exc:
            return f"{time.perf_counter() - t0:.2f} s (CPU {time.process_time() - c0:.2f} s), {str(exc)[:160]}"
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return (f"median {statistics.median(wall):.2f} s, best {min(wall):.2f} s (CPU median {statistics.median(cpu):.2f} s; {repeat} runs), "
            f"{r['cost_usd_per_hour']:,.2f} $/hour, status {r['solver']['status']}, gap {r['solver']['gap_frac']:.1e}, "
            f"{r['solver']['rounds']} rounds; {r['verdict']['text'].split(';')[0]}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slo-p90-s", type=float, default=None, help="also time the fleet as an SLO question at this P90 TTFT (s)")
    ap.add_argument("--budget-s", type=float, default=4.0, help="the search budget of the second run (the target is 5 s in all)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-fleet.yaml"
        path.write_text(yaml.safe_dump(scenario(), sort_keys=False))
        plan_s, cpu_s, doc = [], [], None
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            sc = load_scenario(path)
            sol, needs, objective, budget, _ = solve_fleet(sc)
            doc = fleet_document(sc, sol, needs, objective, budget)
            plan_s.append(time.perf_counter() - t0)
            cpu_s.append(time.process_time() - c0)
        t0 = time.perf_counter()
        sc = load_scenario(path)
        sol5, needs5, objective, budget, _ = solve_fleet(sc, time_limit_s=args.budget_s)
        doc5 = fleet_document(sc, sol5, needs5, objective, budget)
        budget_run = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan_fleet(load_scenario(path))
        with_latency = time.perf_counter() - t0
        cli_s = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "prfaas_plan", "optimize", str(path), "-f", "json"], check=True, capture_output=True, cwd=ROOT)
            cli_s.append(time.perf_counter() - t0)
        slo = slo_run(path, args.slo_p90_s, args.repeat) if args.slo_p90_s is not None else None
    gpus = sum(e["instances"] * e["gpus_per_instance"] for e in doc["fleet"])
    print(f"scenario: {len(PRFAAS)} PrfaaS sites x 3 parts, {len(LOCAL)} local sites x 2 prefill parts, {len(PRFAAS) * len(LOCAL)} links")
    print(f"plan: {gpus:,} GPUs, {doc['cost_usd_per_hour']:,.2f} $/hour, {len(doc['fleet'])} pools, {len(doc['links'])} links; "
          f"solver {doc['solver']['status']}, gap {doc['solver']['gap_frac']:.1e}, {doc['solver']['rounds']} rounds")
    for e in doc["fleet"]:
        print(f"  {e['site']:9s} {e['role']:13s} {e['hardware']:9s} {e['instances']:5d} x {e['gpus_per_instance']}")
    for s in doc["sites"]:
        t = "none" if s["threshold_tokens"] is None else f"{s['threshold_tokens']:,.0f}"
        print(f"  {s['site']:9s} -> {s['prfaas_site'] or '-':9s} t {t:>8s}  offloaded {s['offload_frac']:.1%}  {s['rate_req_per_s']:g} req/s")
    print(f"planning in-process (read, needs, MILP search, document): median {statistics.median(plan_s):.2f} s, best {min(plan_s):.2f} s "
          f"(target <= 5 s); CPU median {statistics.median(cpu_s):.2f} s")
    print(f"with a {args.budget_s:g} s search budget: {budget_run:.2f} s, {doc5['cost_usd_per_hour']:,.2f} $/hour, "
          f"status {doc5['solver']['status']}, gap {doc5['solver']['gap_frac']:.1e}")
    print(f"with per-site latency: {with_latency:.2f} s")
    print(f"whole CLI `optimize -f json`: median {statistics.median(cli_s):.2f} s, best {min(cli_s):.2f} s")
    if slo is not None:
        print(f"as an SLO question (objective slo, P90 <= {args.slo_p90_s:g} s at every site), in-process: {slo}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
