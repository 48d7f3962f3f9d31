"""Recompute every point of engines-train.json through `prfaas-plan estimate` and print the errors.

    python scripts/check_engines.py                  # one `estimate -f json` subprocess per point
    python scripts/check_engines.py --as-benchmarked # also each TensorRT-LLM offline point as it ran

Each point's deployment (prfaas_plan/paper/engines.py, SETUPS) becomes `estimate` options; the
measured metric is compared with the matching JSON key (co-located points: the offline-maximum
formula at the memory-limited batch). Error = exp|ln(predicted / measured)| - 1. Targets (issue
#6): median <= 25%, worst within 2x.

``--as-benchmarked`` adds, for the TensorRT-LLM offline points, the run as the benchmark made it
(prfaas_plan/paper/engines.py, as_benchmarked): its 3,000 requests in waves, each request reserving
cache for ISL + OSL (GUARANTEED_NO_EVICT). An explanation beside the check, not the check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import groupby
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.paper.engines import METRIC_KEY, as_benchmarked, cli_args, points, setup  # noqa: E402
from prfaas_plan.roofline.fit import error_frac  # noqa: E402


def main() -> int:
    errors, bench_errors = [], []
    show_bench = "--as-benchmarked" in sys.argv[1:]
    print(f"{'point':38s} {'measured':>10s} {'estimate':>10s} {'ratio':>6s}  metric")
    for p in points():
        args = [sys.executable, "-m", "prfaas_plan", "estimate", *cli_args(setup(p))]
        res = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            print(f"{p['id']}: estimate failed: {res.stderr.strip()}")
            return 1
        pred = json.loads(res.stdout)[METRIC_KEY[p["kind"]]]
        meas = p["measured_metric"]
        errors.append(float(error_frac(pred, meas)))
        print(f"{p['id']:38s} {meas:10.1f} {pred:10.1f} {pred / meas:6.2f}  {p['metric']}")
        bench = as_benchmarked(p) if show_bench else None
        if bench is not None:
            bench_errors.append(float(error_frac(bench[0], meas)))
            runs = [(b, len(list(g))) for b, g in groupby(bench[1])]
            waves = ", ".join(f"{n} x {b}" if n > 1 else str(b) for b, n in runs)
            print(f"{'  as benchmarked':38s} {'':10s} {bench[0]:10.1f} {bench[0] / meas:6.2f}  waves of {waves} requests")
    err = np.array(errors)
    print(f"{len(err)} points: median error {np.median(err) * 100:.1f}%, worst {1 + err.max():.2f}x "
          f"(targets: median <= 25%, worst <= 2x)")
    if bench_errors:
        b = np.array(bench_errors)
        print(f"{len(b)} TensorRT-LLM offline points as benchmarked: median error {np.median(b) * 100:.1f}%, "
              f"worst {1 + b.max():.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
