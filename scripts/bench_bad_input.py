"""Time every hostile input of issue 14 (classes 2-5) at the command line: exit code, seconds,
the error line, files written. Each must be one line naming the option or file, exit 2, within
2 s, nothing written (tests/test_hostile_runs.py checks all but the time, with a timeout). The
FAST cases are valid inputs that used to run for minutes: exit 0, one file written.

    python scripts/bench_bad_input.py            # one table row per case
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIM = ["simulate", "paper-case-study", "--duration-s", "30", "-o", "out/x.json"]

#: (name, arguments, words the error line must contain). Paths are relative to the case folder.
CASES = [
    ("batch-beyond-memory", ["estimate", "-m", "prfaas-1t-hybrid", "-H", "h200", "--gpus", "8", "--batch", "10000000", "-o", "out/x.json"],
     ["--batch", "1,348]"]),
    ("link-cut", [*SIM, "--link-drop-at-s", "5", "--link-drop-frac", "0"], ["--link-drop-frac", "[0.001, 1,000]", "got 0"]),
    ("link-drop-after-run", [*SIM, "--link-drop-at-s", "1e308", "--link-drop-frac", "0.5"], ["--link-drop-at-s", "30]", "got 1e+308"]),
    ("replan-period-tiny", [*SIM, "--replan", "--replan-period-s", "1e-9"], ["--replan-period-s", "[1, ", "got 1e-09"]),
    ("sweep-points", ["sweep", "paper-case-study", "--vary", "link.bandwidth_gbit_per_s=1:100:1000000", "-o", "out/x.json"],
     ["--vary link.bandwidth_gbit_per_s=1:100:1000000: N", "1,000]"]),
    ("report-fifo", ["report", "paper-case-study", "-o", "fifo.html"], ["fifo.html", "FIFO that no process reads"]),
    ("calibrate-fifo", ["calibrate", "fifo.csv", "-o", "out/p.yaml"], ["fifo.csv", "not a regular file"]),
    ("budget-beyond-bound", ["optimize", "budget-case-study", "--budget-usd-per-hour", "1e16", "-o", "out/x.json"],
     ["--budget-usd-per-hour", "1e+15]", "got 1e+16"]),
    ("tp-zero", ["estimate", "-m", "prfaas-1t-hybrid", "-H", "h200", "--gpus", "8", "--tp", "0"], ["--tp"]),
    ("pp-zero", ["estimate", "-m", "prfaas-1t-hybrid", "-H", "h200", "--gpus", "8", "--pp", "0"], ["--pp"]),
    ("calibrate-dev-zero", ["calibrate", "zero.csv", "-o", "out/p.yaml"], ["zero.csv", "not a regular file"]),
    ("ttft-slo-negative", [*SIM, "--ttft-slo-s", "-1"], ["--ttft-slo-s", "got -1"]),
    ("trace-output-0", [*SIM, "--trace", "out0.jsonl"], ["out0.jsonl", "line 1", "'output_length'", ">= 1"]),
    ("rate-shape-negative-time", [*SIM, "--rate-shape", "neg.csv"], ["neg.csv", "line 2", "'t_s'", ">= 0"]),
    ("sweep-empty-value", ["sweep", "paper-case-study", "--vary", "link.bandwidth_gbit_per_s=1,,2", "-o", "out/x.json"],
     ["--vary link.bandwidth_gbit_per_s", "value 2 of 3 is empty"]),
    ("weights-do-not-fit", ["estimate", "-m", "prfaas-1t-hybrid", "-H", "h200", "--gpus", "1", "-o", "out/x.json"],
     ["--gpus 1", "does not fit", "whole memory"]),
    ("hf-json-true", ["models", "import", "boolcfg.json", "-o", "out/m.yaml"], ["boolcfg.json", "'num_hidden_layers'", "got true"]),
]


#: Inputs of the issue that are valid and must simply return soon (they ran for minutes).
FAST = [("budget-1e15", ["optimize", "budget-case-study", "--budget-usd-per-hour", "1e15", "-f", "json", "-o", "out/x.json"])]


def prepare(folder: Path) -> None:
    """The inputs the cases read, in ``folder``: two FIFOs, a symlink to /dev/zero, a Mooncake
    trace with an output of 0 tokens, a rate shape with a negative time, a config.json with
    ``num_hidden_layers: true``; and an empty ``out/`` for what the cases write."""
    (folder / "out").mkdir(exist_ok=True)
    for name in ("fifo.html", "fifo.csv"):
        if not (folder / name).exists():
            os.mkfifo(folder / name)
    if not (folder / "zero.csv").is_symlink():
        (folder / "zero.csv").symlink_to("/dev/zero")
    (folder / "out0.jsonl").write_text('{"timestamp": 0, "input_length": 100, "output_length": 0, "hash_ids": [0]}\n')
    (folder / "neg.csv").write_text("t_s,rate_req_per_s\n-10,1\n0,2\n10,1\n")
    cfg = json.loads((ROOT / "tests" / "data" / "qwen3_235b_a22b.json").read_text())
    cfg["num_hidden_layers"] = True
    (folder / "boolcfg.json").write_text(json.dumps(cfg))


def run_case(folder: Path, args: list[str], timeout_s: float) -> dict:
    """Run ``prfaas-plan ARGS`` in ``folder``: exit code (124 on timeout), seconds, stderr, and
    the files it left in ``out/`` or beside the inputs (hidden temporaries included)."""
    before = set(os.listdir(folder))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "prfaas_plan", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as exc:
        rc, err = 124, (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    seconds = time.monotonic() - t0
    written = sorted(os.listdir(folder / "out")) + sorted(set(os.listdir(folder)) - before)
    return {"rc": rc, "seconds": seconds, "stderr": err, "written": written}


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        print(f"{'case':26} {'exit':>4} {'s':>5}  written  error line")
        for name, args, *_ in CASES + FAST:
            r = run_case(folder, args, 60.0)
            line = (r["stderr"].strip().splitlines() or [""])[-1]
            print(f"{name:26} {r['rc']:>4} {r['seconds']:5.2f}  {len(r['written']):>7}  {line[:150]}")
            for f in r["written"]:
                p = folder / "out" / f
                if p.exists():
                    p.unlink()


if __name__ == "__main__":
    main()
