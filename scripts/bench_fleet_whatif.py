"""Benchmark of a fleet scenario's what-ifs: per standard what-if, the re-plan (the fleet MILP
again, :func:`prfaas_plan.fleet.plan.plan_fleet`) and the stress reading
(:func:`prfaas_plan.fleet.stress.stress_fleet`: the planned counts and links pinned, alpha
bisected) timed apart, wall and this process's CPU (which the other users of a shared machine do
not inflate). Quote its output in notes; the machine is shared, so read it, do not assert on it.

    python scripts/bench_fleet_whatif.py [SCENARIO]     # default multi-site-case-study

Last measured (shared 2-core machine at load ~2.4, multi-site-case-study, 11 what-ifs): re-plans
8.6 s wall / 5.9 s CPU in all (3.5 s CPU of it "every link at 10%"), stress readings 4.0 s wall /
2.95 s CPU in all (0.03-0.62 s CPU each; the link sags and longer prompts, which bisect alpha
below 1, are the dearest). `prfaas-plan whatif multi-site-case-study -f json`: 13.3-14.5 s before
the stress reading, 15.6 s with it (2 runs each, load ~4.5).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.errors import PlanError  # noqa: E402
from prfaas_plan.fleet.plan import plan_fleet  # noqa: E402
from prfaas_plan.fleet.stress import stress_fleet  # noqa: E402
from prfaas_plan.fleet.whatif import fleet_whatifs  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    try:
        out = fn()
    except PlanError as exc:
        out = exc
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default="multi-site-case-study")
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    base, w0, c0 = _timed(lambda: plan_fleet(sc))
    print(f"plan: {w0:.2f} s wall, {c0:.2f} s CPU")
    totals = [0.0, 0.0, 0.0, 0.0]
    print(f"{'what if':42s} {'re-plan s':>10s} {'(CPU)':>7s} {'stress s':>9s} {'(CPU)':>7s}  alpha")
    for w in fleet_whatifs(sc, base):
        sv = load_scenario(sc.path, w.overrides) if w.overrides else sc
        _, rw, rc = _timed(lambda: plan_fleet(sv) if w.overrides else base)
        st, sw, scpu = _timed(lambda: stress_fleet(sc, sv, base))
        alpha = f"{st['alpha']:.4f}" if isinstance(st, dict) else f"error: {st}"
        print(f"{w.label:42s} {rw:10.2f} {rc:7.2f} {sw:9.2f} {scpu:7.2f}  {alpha}")
        for i, v in enumerate((rw, rc, sw, scpu)):
            totals[i] += v
    print(f"{'total':42s} {totals[0]:10.2f} {totals[1]:7.2f} {totals[2]:9.2f} {totals[3]:7.2f}")


if __name__ == "__main__":
    main()
