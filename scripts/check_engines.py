"""Recompute every point of engines-train.json through `prfaas-plan estimate` and print the errors.

    python scripts/check_engines.py            # one `estimate -f json` subprocess per point

Each point's deployment (prfaas_plan/paper/engines.py, SETUPS) becomes `estimate` options; the
measured metric is compared with the matching JSON key (co-located points: the offline-maximum
formula at the memory-limited batch). Error = exp|ln(predicted / measured)| - 1. Targets (issue
#6): median <= 25%, worst within 2x.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.paper.engines import METRIC_KEY, SETUPS, cli_args, points  # noqa: E402


def main() -> int:
    errors = []
    print(f"{'point':38s} {'measured':>10s} {'estimate':>10s} {'ratio':>6s}  metric")
    for p in points():
        args = [sys.executable, "-m", "prfaas_plan", "estimate", *cli_args(SETUPS[p["id"]])]
        res = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            print(f"{p['id']}: estimate failed: {res.stderr.strip()}")
            return 1
        pred = json.loads(res.stdout)[METRIC_KEY[p["kind"]]]
        meas = p["measured_metric"]
        errors.append(float(np.exp(abs(np.log(pred / meas))) - 1))
        print(f"{p['id']:38s} {meas:10.1f} {pred:10.1f} {pred / meas:6.2f}  {p['metric']}")
    err = np.array(errors)
    print(f"{len(err)} points: median error {np.median(err) * 100:.1f}%, worst {1 + err.max():.2f}x "
          f"(targets: median <= 25%, worst <= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
