"""Regenerate the README's tool-output blocks from the tool (numbers are never typed):

    python scripts/readme_blocks.py [--check] [--write] [--slow] [--timing] [--only TEXT] [--list]

A block is marked by an HTML comment on the line before it, which states the command and any
trimming (a shell pipeline, so the rule is visible in the README and can be pasted):

    <!-- regen: prfaas-plan optimize paper-case-study | sed '/^In paper mode/q' -->
    <!-- regen slow table=1: python scripts/check_fleet_slo.py --hours 4 -->

The block is the fenced code block (```) or the Markdown table (lines starting with `|`) right
after the marker, at the marker's indentation. Words before the colon are flags: `slow` (runs
only with --slow: simulations, minute-long scripts), `timing` (measured times, which differ on
every run: only with --timing), `table=N` (keep only the N-th Markdown table the command prints:
a script that prints two tables runs once for both blocks, its output is reused) and NAME=VALUE
environment settings in capitals (COLUMNS defaults to 100, the width rich tables are laid out
for). Commands run with bash from the repository root, with the repository on PYTHONPATH;
`prfaas-plan` and `python` are this interpreter, so the checkout's prfaas_plan runs, not an
installed one. Output lines lose trailing spaces; a table block must receive only table lines.

--only TEXT runs just the blocks whose command contains TEXT (their flags notwithstanding).
--check (the default) reruns every selected block and prints a unified diff of each that differs
(exit 1 if any does); --write puts the new output in place (the file is replaced atomically,
once, after every command has run) and prints the same diffs. A command that exits non-zero or
prints nothing is an error (exit 2) and nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^(?P<indent>\s*)<!--\s*regen(?P<flags>[^:]*):\s*(?P<command>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")
SKIP_FLAGS = ("slow", "timing")
DEFAULT_COLUMNS = "100"
# Bash runs each command after these definitions: the checkout's interpreter, whatever PATH says.
PRELUDE = 'prfaas-plan() { "$REGEN_PYTHON" -m prfaas_plan "$@"; }\npython() { "$REGEN_PYTHON" "$@"; }\n'


class MarkerError(Exception):
    """A marker that names no block, an unknown flag, a failed command: one line, exit 2."""


@dataclass
class Block:
    """One marked block: its command and flags, and where its content lies in the file's lines."""

    marker_line: int  # 0-based index of the marker comment
    start: int  # first content line (0-based)
    end: int  # one past the last content line
    indent: str
    kind: str  # "fence" or "table"
    command: str
    flags: tuple[str, ...]
    env: dict[str, str]
    table: int | None  # keep only this Markdown table (1-based) of the output

    def label(self, path: Path) -> str:
        return f"{path.name}:{self.marker_line + 1}"


def parse_blocks(lines: list[str], path: Path) -> list[Block]:
    """Every marker in `lines` and the block it names (fenced code or Markdown table after it)."""
    blocks = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        where = f"{path.name}:{i + 1}"
        flags, env, table = [], {}, None
        for word in m["flags"].split():
            name, eq, value = word.partition("=")
            if eq and name.isupper():
                env[name] = value
            elif name == "table" and value.isdigit() and int(value) > 0:
                table = int(value)
            elif word in SKIP_FLAGS:
                flags.append(word)
            else:
                raise MarkerError(f"{where}: unknown regen flag {word!r} (known: {', '.join(SKIP_FLAGS)}, table=N, NAME=VALUE)")
        if not m["command"]:
            raise MarkerError(f"{where}: regen marker without a command")
        indent = m["indent"]
        nxt = i + 1
        if nxt < len(lines) and (f := FENCE.match(lines[nxt])) and f["indent"] == indent:
            end = nxt + 1
            while end < len(lines) and not (lines[end].strip() == f["fence"] and lines[end].startswith(indent + f["fence"])):
                end += 1
            if end >= len(lines):
                raise MarkerError(f"{where}: the fenced block after the marker is never closed")
            blocks.append(Block(i, nxt + 1, end, indent, "fence", m["command"], tuple(flags), env, table))
        elif nxt < len(lines) and lines[nxt].startswith(indent + "|"):
            end = nxt
            while end < len(lines) and lines[end].startswith(indent + "|"):
                end += 1
            blocks.append(Block(i, nxt, end, indent, "table", m["command"], tuple(flags), env, table))
        else:
            raise MarkerError(f"{where}: a regen marker must be followed by a fenced block or a table at its indentation")
    return blocks


def nth_table(out: list[str], n: int) -> list[str]:
    """The n-th (1-based) run of consecutive Markdown table lines in `out`; empty if there are fewer."""
    tables: list[list[str]] = []
    for prev, line in zip([""] + out, out):
        if line.startswith("|"):
            if not prev.startswith("|"):
                tables.append([])
            tables[-1].append(line)
    return tables[n - 1] if n <= len(tables) else []


def run_command(block: Block, path: Path, timeout_s: float) -> list[str]:
    """The command's stdout lines, trailing spaces and blank lines removed; a failure is a MarkerError."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["REGEN_PYTHON"] = sys.executable
    env["COLUMNS"] = DEFAULT_COLUMNS
    env.pop("FORCE_COLOR", None)
    env.update(block.env)
    try:
        done = subprocess.run(
            ["bash", "-c", PRELUDE + block.command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise MarkerError(f"{block.label(path)}: `{block.command}` ran past {timeout_s:g} s") from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise MarkerError(f"{block.label(path)}: `{block.command}` exited {done.returncode}: {tail}")
    out = [line.rstrip() for line in done.stdout.splitlines()]
    while out and not out[-1]:
        out.pop()
    return out


def block_content(block: Block, out: list[str], path: Path) -> list[str]:
    """The block's new content from its command's output: its table if it names one, indented."""
    if block.table:
        out = nth_table(out, block.table)
    if not out:
        raise MarkerError(f"{block.label(path)}: `{block.command}` printed nothing" + (f" for table {block.table}" if block.table else ""))
    if block.kind == "table" and (bad := [line for line in out if not line.startswith("|")]):
        raise MarkerError(f"{block.label(path)}: `{block.command}` prints non-table lines for a table block, e.g. {bad[0]!r}")
    return [block.indent + line if line else "" for line in out]


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (mode kept)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".regen-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def selected(block: Block, args: argparse.Namespace) -> bool:
    """A block named by --only always runs; otherwise each of its flags must be given."""
    if args.only:
        return any(text in block.command for text in args.only)
    return all(getattr(args, flag) for flag in block.flags)


def regenerate(args: argparse.Namespace) -> int:
    """Rerun the selected blocks of args.file; print diffs; write when asked. Returns the exit code."""
    path = Path(args.file)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    blocks = parse_blocks(lines, path)
    if args.list:
        for b in blocks:
            flags = " ".join(b.flags + tuple(f"{k}={v}" for k, v in b.env.items()) + ((f"table={b.table}",) if b.table else ()))
            print(f"{b.label(path)}\t{b.kind}\t{flags or '-'}\t{b.command}")
        return 0
    todo = [b for b in blocks if selected(b, args)]
    changed: list[tuple[Block, list[str]]] = []
    outputs: dict[tuple, list[str]] = {}  # one run per distinct command and environment
    for n, b in enumerate(todo, 1):
        t0 = time.perf_counter()
        key = (b.command, tuple(sorted(b.env.items())))
        if key not in outputs:
            outputs[key] = run_command(b, path, args.timeout_s)
        new = block_content(b, outputs[key], path)
        old = lines[b.start : b.end]
        same = new == old
        print(f"[{n}/{len(todo)}] {b.label(path)} {'same' if same else 'DIFFERS'} ({time.perf_counter() - t0:.1f} s): {b.command}", file=sys.stderr)
        if not same:
            changed.append((b, new))
            label = f"{b.label(path)} `{b.command}`"
            sys.stdout.writelines(
                difflib.unified_diff([s + "\n" for s in old], [s + "\n" for s in new], f"{label} (README)", f"{label} (now)", n=1)
            )
    skipped = len(blocks) - len(todo)
    summary = f"{len(blocks)} marked blocks: {len(todo)} run, {len(changed)} differ, {skipped} skipped"
    if skipped and not args.only:
        summary += f" (flags {', '.join(sorted({f for b in blocks for f in b.flags}))}: --slow, --timing)"
    print(summary, file=sys.stderr)
    if args.write and changed:
        for b, new in sorted(changed, key=lambda c: c[0].start, reverse=True):
            lines[b.start : b.end] = new
        write_atomically(path, "\n".join(lines))
        print(f"wrote {path} ({len(changed)} blocks)", file=sys.stderr)
        return 0
    return 1 if changed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="rerun and diff, exit 1 if a block differs (default)")
    mode.add_argument("--write", action="store_true", help="rerun and rewrite the blocks that differ")
    mode.add_argument("--list", action="store_true", help="list the marked blocks, run nothing")
    ap.add_argument("--slow", action="store_true", help="also the blocks flagged slow (simulations, long scripts)")
    ap.add_argument("--timing", action="store_true", help="also the blocks flagged timing (measured times)")
    ap.add_argument("--only", action="append", metavar="TEXT", help="only blocks whose command contains TEXT, flags or not (repeatable)")
    ap.add_argument("--file", default=str(ROOT / "README.md"), help="the Markdown file (default: the README)")
    ap.add_argument("--timeout-s", type=float, default=1800.0, help="per command (default 1800)")
    args = ap.parse_args(argv)
    try:
        return regenerate(args)
    except (MarkerError, OSError) as exc:
        print(f"readme_blocks: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
