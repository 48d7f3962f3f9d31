"""Leave-one-out check of the error bands (prfaas_plan/roofline/bands.py).

    python scripts/band_check.py

For each of the calibration's points (24 Table 3 cells, 19 engine points): refit the global
calibration without it, predict it, make its kind's 80% band from the other points of the kind,
and count how often the held-out measurement falls inside. About 80% should.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.paper.bands import COVERAGE, KINDS, leave_one_out  # noqa: E402


def main() -> int:
    rows = leave_one_out(COVERAGE, progress=lambda r: print(
        f"  {r['id']:40s} {r['kind']:8s} measured/predicted {math.exp(r['r']):6.3f}  band "
        f"[{math.exp(r['low_log']):.3f}, {math.exp(r['high_log']):.3f}]  {'inside' if r['inside'] else 'OUTSIDE'}", flush=True))
    for kind in KINDS:
        k = [r for r in rows if r["kind"] == kind]
        print(f"{kind:8s}: {sum(r['inside'] for r in k)} of {len(k)} inside ({100 * sum(r['inside'] for r in k) / len(k):.0f}%)")
    inside = sum(r["inside"] for r in rows)
    print(f"all     : {inside} of {len(rows)} inside ({100 * inside / len(rows):.0f}%), target {COVERAGE:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
