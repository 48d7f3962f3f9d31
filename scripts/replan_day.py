"""Re-planning against the best static plan over the ServeGen day and the 14-day shape (issue 18
item 2). Prints the markdown table the README shows.

    python scripts/replan_day.py [--days 1|14|both] [--switch-s 60] [--seed 0 [1 ...]] [--all-static] [--forecast-check]

The case study (`paper-case-study`, planned as `optimize` plans it) serves the shipped ServeGen
rate shape (`servegen_m-large_rate_10min`) scaled to a mean of 65% of the plan's Lambda_max:
the first day (its own mean; `simulate --rate-shape ... --duration-s 86400 --load 0.65`), and
all 14 days (the 14-day mean). Rows, each one simulation with the same arrivals (one seed):

- static: the optimizer's plan held all day (the best static plan, the most throughput);
  ``--all-static`` adds every other split and threshold held all day (the best of them in
  hindsight is a stronger baseline than the plan);
- greedy: the rule before issue 18 - every 600 s the option with the lowest analytic P90 at the
  coming period's true mean rate (an oracle of the shape), no cost for a switch;
- hysteresis: :class:`prfaas_plan.simulation.replanner.Replanner` - rate forecast from the
  arrivals seen, switching cost charged, dead band.

The 14 days are 2.5 M requests, past `simulate`'s 2 M bound on one run, so the script calls the
library directly (one continuous run, ~1-2 CPU-minutes per row on this machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from prfaas_plan.catalog.paths import resolve_trace  # noqa: E402
from prfaas_plan.latency.deployment import deployment  # noqa: E402
from prfaas_plan.latency.replan import split_options  # noqa: E402
from prfaas_plan.latency.slo_plan import solve  # noqa: E402
from prfaas_plan.latency.switching import SwitchModel  # noqa: E402
from prfaas_plan.planning.planner import optimize  # noqa: E402
from prfaas_plan.planning.scenario import load_scenario  # noqa: E402
from prfaas_plan.simulation import arrivals  # noqa: E402
from prfaas_plan.simulation.metrics import DEFAULT_TTFT_SLO_S, results  # noqa: E402
from prfaas_plan.simulation.replanner import Replanner, greedy_decision  # noqa: E402
from prfaas_plan.simulation.run import run  # noqa: E402
from prfaas_plan.traces.rates import read_rate_shape  # noqa: E402

SCENARIO = "paper-case-study"
SHAPE = "servegen_m-large_rate_10min"
LOAD = 0.65
STEP_S = 600.0  # the shape's step: the greedy rule's period and the hysteresis rule's horizon


def setup(days: int, seed: int):
    sc = load_scenario(SCENARIO)
    plan = optimize(sc, compare_modes=False, solver=solve)
    dep = deployment(sc, plan, "prfaas", plan["mode"])
    shape = read_rate_shape(resolve_trace(SHAPE))
    t0 = shape.t_s - shape.t_s[0]
    duration_s = 86_400.0 * days
    rate = LOAD * plan["throughput_req_per_s"]
    scaled = shape.rate_req_per_s * (rate / arrivals.mean_rate(t0, shape.rate_req_per_s, duration_s))
    rng = np.random.default_rng(seed)
    times = arrivals.thinned_times(t0, scaled, duration_s, rng)
    reqs = arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, f"{SHAPE} x {days} d")
    rate_fn = lambda t: float(arrivals.rate_at(np.array([t]), t0, scaled)[0])  # noqa: E731
    return sc, plan, dep, reqs, duration_s, rate_fn


def simulate(dep, reqs, duration_s, switch_s, decide=None):
    t0 = time.process_time()
    sim = run(dep, reqs, duration_s=duration_s, decide=decide, decide_every_s=None if decide is None else decide.every_s,
              switch_s=switch_s)
    out = results(sim, None, DEFAULT_TTFT_SLO_S)
    out["cpu_s"] = time.process_time() - t0
    splits = [(c.n_pd_prefill, c.n_pd_decode) for _, c in sim.changes_applied if c.n_pd_prefill is not None]
    prev, flips = (dep.local.instances if dep.local else 0, dep.decode_instances), 0
    for s in splits:
        flips += s != prev
        prev = s
    out["flips"] = flips
    out["t_changes"] = sum(1 for _, c in sim.changes_applied if c.threshold_tokens is not None)
    return out


def with_period(fn, every_s):
    fn.every_s = every_s
    return fn


def forecast_check(reqs, duration_s, horizon_s=STEP_S, bin_s=STEP_S / 10) -> str:
    """RMS error (req/s) of two forecasts of the mean rate over the next horizon, made every bin
    from the arrivals before it: persistence (the last horizon's mean rate, what the re-planner
    uses) and a least-squares line through the last horizon's per-bin rates, read at the middle of
    the next horizon."""
    a = reqs.arrival_s
    count = lambda lo, hi: np.searchsorted(a, hi) - np.searchsorted(a, lo)  # noqa: E731
    x = -horizon_s + bin_s * (np.arange(int(horizon_s / bin_s)) + 0.5)
    err_p, err_l = [], []
    for now in np.arange(horizon_s, duration_s - horizon_s + 1e-9, bin_s):
        real = count(now, now + horizon_s) / horizon_s
        y = np.array([count(now + xi - bin_s / 2, now + xi + bin_s / 2) for xi in x]) / bin_s
        slope, icpt = np.polyfit(x, y, 1)
        err_p.append(real - y.mean())
        err_l.append(real - max(icpt + slope * horizon_s / 2, 0.0))
    rms = lambda e: float(np.sqrt(np.mean(np.square(e))))  # noqa: E731
    return (f"forecast of the next {horizon_s:g} s, RMS error: persistence {rms(err_p):.3f} req/s, "
            f"line through {bin_s:g}-s rates {rms(err_l):.3f} req/s (mean rate {len(a) / duration_s:.3f})")


def row(name, r):
    t = r["ttft"]
    return (f"| {name} | {t['mean_s']:.2f} / {t['p50_s']:.2f} / {t['p90_s']:.2f} / {t['p99_s']:.1f} | "
            f"{100 * r['slo_attainment_frac']:.1f}% | {r['flips']} | {r['t_changes']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", choices=("1", "14", "both"), default="both")
    ap.add_argument("--switch-s", type=float, default=60.0)
    ap.add_argument("--seed", type=int, nargs="+", default=[0], help="one table per seed")
    ap.add_argument("--all-static", action="store_true", help="also every other split and t held all day")
    ap.add_argument("--forecast-check", action="store_true", help="also the forecast's error, persistence against a trend line")
    a = ap.parse_args()
    for days, seed in [(d, s) for d in ((1, 14) if a.days == "both" else (int(a.days),)) for s in a.seed]:
        sc, plan, dep, reqs, duration_s, rate_fn = setup(days, seed)
        print(f"\n{SCENARIO}, {SHAPE} {'first day' if days == 1 else f'{days} days'} at a mean of {LOAD:.0%} of Lambda_max "
              f"({plan['throughput_req_per_s']:.3f} req/s), {len(reqs):,} requests, switch {a.switch_s:g} s, seed {seed}\n", flush=True)
        if a.forecast_check:
            print(forecast_check(reqs, duration_s) + "\n")
        print(f"| {days}-day | TTFT mean / P50 / P90 / P99 s | SLO {DEFAULT_TTFT_SLO_S:g} s attainment | role changes | t changes |")
        print("|---|---|---|---|---|")
        t = plan["threshold_tokens"]
        r = simulate(dep, reqs, duration_s, a.switch_s)
        print(row(f"best static plan ({plan['n_pd_prefill']} PD-P / {plan['n_pd_decode']} PD-D, t {t:,.0f})", r), flush=True)
        cpu = {"static": r["cpu_s"]}
        if a.all_static:
            for o in split_options(sc, plan):
                if (o.n_pd_prefill, o.threshold_tokens) == (plan["n_pd_prefill"], t) or o.throughput_req_per_s < LOAD * plan["throughput_req_per_s"]:
                    continue
                ro = simulate(o.deployment, reqs, duration_s, a.switch_s)
                print(row(f"static {o.n_pd_prefill} PD-P / {o.n_pd_decode} PD-D, t {o.threshold_tokens:,.0f}", ro), flush=True)
        greedy = with_period(greedy_decision(split_options(sc, plan), rate_fn), STEP_S)
        r = simulate(dep, reqs, duration_s, a.switch_s, greedy)
        cpu["greedy"] = r["cpu_s"]
        print(row("greedy: lowest analytic P90 per 10 min at the true rate, no switch cost", r), flush=True)
        rp = Replanner(SwitchModel(sc, plan, DEFAULT_TTFT_SLO_S, plan["mode"]), STEP_S, a.switch_s)
        r = simulate(dep, reqs, duration_s, a.switch_s, with_period(rp, rp.step_s))
        cpu["hysteresis"] = r["cpu_s"]
        print(row(f"hysteresis: forecast from arrivals, switch cost charged, dead band (every {rp.step_s:g} s, horizon {STEP_S:g} s)", r))
        print("\nCPU s per run: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()), flush=True)


if __name__ == "__main__":
    main()
