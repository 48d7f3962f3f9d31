"""Wall-time benchmark of the CLI, interpreter start included (quote its output in notes).

    python scripts/bench.py [--repeat 10]

Targets (issues #2, #3, #6, #17): each `kv` call well under a second; `estimate` at most 2x a
bare `python -c "import numpy"` (issue #17's yardstick; `estimate` itself imports no numpy) and
at most 2x the bare import below; `optimize paper-case-study` at most 3x the bare import; the
~10,000-GPU budget search (`--budget-usd-per-hour 30000`) at most ~6x. The `estimate` runs cover
what it prints today: error bands (every run: ``K_low`` / ``K_high``), chunked prefill
(``--chunk-tokens``; 0 = none), ``--engine`` defaults, pipeline and DP-attention shapes, JSON and
the rich table.

The bare import is what every command pays before doing anything: start Python and import the
CLI (`python -c "import prfaas_plan.cli"`, which is what `prfaas-plan` loads before parsing its
arguments); `prfaas-plan --version` (the same plus typer building the command tree) is shown
beside it. The ratios divide by the bare import, the smaller of the two. (The reference used to
be `import numpy, scipy, yaml, rich, typer`: a fixed list of libraries, of which the
CLI imports neither numpy, scipy nor rich at start-up and `import scipy` alone loads almost
nothing; it is still printed, for comparison with older notes.)

Every command runs from this checkout with Python's bytecode cache, as an installed package has
(pip compiles it): where PYTHONDONTWRITEBYTECODE is set, the runs get a private cache folder
instead, filled by one warm-up run each. Best and median of ``--repeat`` runs, commands
interleaved so that a busy spell of a shared machine hits them alike; machines are noisy, so this
is a script to read, not a timed unit test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLI = [PY, "-m", "prfaas_plan"]
BARE = "bare import (python -c 'import prfaas_plan.cli')"
REFERENCES = {
    BARE: [PY, "-c", "import prfaas_plan.cli"],
    "prfaas-plan --version": CLI + ["--version"],
    "old reference: import numpy, scipy, yaml, rich, typer": [PY, "-c", "import numpy, scipy, yaml, rich, typer"],
}
NUMPY = "bare numpy (python -c 'import numpy')"
REFERENCES[NUMPY] = [PY, "-c", "import numpy"]
EST = CLI + ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8"]
RUNS = {
    "kv kimi-linear-48b on h200": (CLI + ["kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json"], None),
    "kv minimax-m2.5 on h200": (CLI + ["kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "json"], None),
    "kv prfaas-1t-hybrid on h20 (8 lengths)": (CLI + ["kv", "-m", "prfaas-1t-hybrid", "-H", "h20", "--lengths", "1K,2K,4K,8K,16K,32K,64K,128K", "-f", "json"], None),
    "estimate kimi-k2 on 8 x h200": (CLI + ["estimate", "-m", "kimi-k2", "-H", "h200", "--gpus", "8", "-f", "json"], 2.0),
    "estimate deepseek-v3 on 32 x h100 (DP-attention + EP32)": (CLI + ["estimate", "-m", "deepseek-v3", "-H", "h100", "--gpus", "32", "--tp", "32", "--dp", "32", "--enable-dp-attention", "--ep", "32", "-f", "json"], 2.0),
    "estimate qwen3-235b on 8 x h200 (table)": (CLI + ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--isl", "8K"], 2.0),
    "estimate qwen3-235b 128K, pp 2, --chunk-tokens 8192, --engine sglang (table)": (EST + ["--tp", "4", "--pp", "2", "--isl", "128K", "--chunk-tokens", "8192", "--engine", "sglang"], 2.0),
    "estimate qwen3-235b 128K, pp 4, --chunk-tokens 0, --engine trtllm (json)": (EST + ["--tp", "2", "--pp", "4", "--isl", "128K", "--chunk-tokens", "0", "--engine", "trtllm", "-f", "json"], 2.0),
    "estimate kimi-linear-48b --engine vllm, MTP (json)": (CLI + ["estimate", "-m", "kimi-linear-48b", "-H", "h200", "--gpus", "4", "--engine", "vllm", "--mtp-draft", "2", "--mtp-accept", "1.8", "--isl", "32K", "-f", "json"], 2.0),
    "optimize paper-case-study (json)": (CLI + ["optimize", "paper-case-study", "-f", "json"], 3.0),
    "optimize paper-case-study (table)": (CLI + ["optimize", "paper-case-study"], 3.0),
    "optimize paper-case-study --budget-usd-per-hour 30000": (CLI + ["optimize", "paper-case-study", "--budget-usd-per-hour", "30000", "-f", "json"], 6.0),
}


def environment(cache_dir: str) -> tuple[dict, str]:
    env = dict(os.environ)
    if env.get("PYTHONDONTWRITEBYTECODE"):
        env.pop("PYTHONDONTWRITEBYTECODE")
        env["PYTHONPYCACHEPREFIX"] = cache_dir
        return env, "bytecode cache in a temporary folder (PYTHONDONTWRITEBYTECODE was set)"
    return env, "bytecode cache as Python keeps it"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="prfaas-bench-pycache-") as cache_dir:
        return run(args.repeat, *environment(cache_dir))


def interleaved_times(commands: dict[str, list[str]], repeat: int, env: dict) -> tuple[dict[str, float], dict[str, float]]:
    """(best, median) wall seconds per command: one warm-up run each (bytecode cache, file system
    cache), then ``repeat`` rounds running every command once in turn, so a busy spell of the
    machine falls on all of them alike."""
    for cmd in commands.values():
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
            times[name].append(time.perf_counter() - t0)
    return {n: min(t) for n, t in times.items()}, {n: statistics.median(t) for n, t in times.items()}


def run(repeat: int, env: dict, cache: str) -> int:
    commands = {name: cmd for name, cmd in REFERENCES.items()} | {name: cmd for name, (cmd, _) in RUNS.items()}
    best, median = interleaved_times(commands, repeat, env)
    print(f"wall time of {repeat} interleaved runs each, interpreter start included; {cache}")
    print(f"  {'':78s} {'best':>7s} {'median':>7s}   x bare import: best, median (target)")
    for name in REFERENCES:
        ratio = f"{best[name] / best[BARE]:5.2f}x  {median[name] / median[BARE]:5.2f}x" if name != BARE else ""
        print(f"  {name:78s} {best[name]:6.3f}s {median[name]:6.3f}s   {ratio}")
    for name, (_, target) in RUNS.items():
        ratio, ratio_median = best[name] / best[BARE], median[name] / median[BARE]
        goal = f"(<= {target:g}x{'' if max(ratio, ratio_median) <= target else ', MISSED'})" if target else ""
        print(f"  {name:78s} {best[name]:6.3f}s {median[name]:6.3f}s   {ratio:5.2f}x  {ratio_median:5.2f}x {goal}")
    print(f"  estimate x bare numpy (issue #17: <= 2x {best[NUMPY]:.3f}s best, {median[NUMPY]:.3f}s median):")
    for name in (n for n in RUNS if n.startswith("estimate")):
        ratio, ratio_median = best[name] / best[NUMPY], median[name] / median[NUMPY]
        print(f"  {name:78s} {'':16s}   {ratio:5.2f}x  {ratio_median:5.2f}x (<= 2x{'' if max(ratio, ratio_median) <= 2 else ', MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
