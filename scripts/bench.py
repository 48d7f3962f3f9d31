"""Wall-time benchmark of the CLI, interpreter start included (quote its output in notes).

    python scripts/bench.py [--repeat 7]

Targets (issues #2, #3, #6): each `kv` call well under a second; `estimate` at most 2x and
`optimize paper-case-study` at most ~3x the bare import of numpy+scipy+yaml+rich+typer; the ~10,000-GPU budget search
(`--budget-usd-per-hour 30000`) at most ~6x. Medians of repeated runs; machines are shared and
noisy, so this is a script to read, not a timed unit test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CLI = [sys.executable, "-m", "prfaas_plan"]
BARE = {
    "bare import (numpy, scipy, yaml, rich, typer)": [sys.executable, "-c", "import numpy, scipy, yaml, rich, typer"],
    "bare import incl. scipy.optimize + scipy.special": [sys.executable, "-c", "import numpy, scipy.optimize, scipy.special, yaml, rich, typer"],
}
RUNS = {
    "kv kimi-linear-48b on h200": CLI + ["kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json"],
    "kv minimax-m2.5 on h200": CLI + ["kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "json"],
    "kv prfaas-1t-hybrid on h20 (8 lengths)": CLI + ["kv", "-m", "prfaas-1t-hybrid", "-H", "h20", "--lengths", "1K,2K,4K,8K,16K,32K,64K,128K", "-f", "json"],
    "estimate deepseek-v3 on 32 x h100 (DP-attention + EP32)": CLI + ["estimate", "-m", "deepseek-v3", "-H", "h100", "--gpus", "32", "--dp-attention", "--tp", "1", "--ep", "32", "-f", "json"],
    "estimate qwen3-235b on 8 x h200 (table)": CLI + ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--isl", "8K"],
    "optimize paper-case-study": CLI + ["optimize", "paper-case-study", "-f", "json"],
    "optimize paper-case-study --budget-usd-per-hour 30000": CLI + ["optimize", "paper-case-study", "--budget-usd-per-hour", "30000", "-f", "json"],
}


def wall_s(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    base = {name: wall_s(cmd, args.repeat) for name, cmd in BARE.items()}
    ref = base[next(iter(BARE))]
    print(f"median wall time of {args.repeat} runs, interpreter start included")
    for name, t in base.items():
        print(f"  {name:58s} {t:6.3f} s")
    for name, cmd in RUNS.items():
        t = wall_s(cmd, args.repeat)
        print(f"  {name:58s} {t:6.3f} s  = {t / ref:4.2f}x bare import")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
