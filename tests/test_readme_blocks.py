"""scripts/readme_blocks.py: markers name the block after them, --check diffs, --write rewrites.

Why: README numbers must be regenerated from the tool, never typed; these tests hold the
regenerator to what its markers promise on a small file with `printf` commands (no planner runs).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("readme_blocks", ROOT / "scripts" / "readme_blocks.py")
rb = importlib.util.module_from_spec(_spec)
sys.modules["readme_blocks"] = rb  # dataclasses look their module up while the file runs
_spec.loader.exec_module(rb)

DOC = """# t

<!-- regen: printf 'a\\nb  \\n\\n' -->
```
a
old
```

  <!-- regen: printf '| x | y |\\n|---|---|\\n| 1 | 2 |\\n' -->
  | x | y |
  |---|---|
  | 1 | 9 |

text after
<!-- regen slow: printf 'slow\\n' -->
```text
stale
```
"""


def _run(path: Path, *args: str) -> int:
    return rb.main(["--file", str(path), *args])


def test_check_reports_the_differing_blocks_and_leaves_the_file(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    assert _run(doc) == 1
    out = capsys.readouterr().out
    assert "-old" in out and "+b" in out  # trailing spaces and the blank last line are dropped
    assert "-  | 1 | 9 |" in out and "+  | 1 | 2 |" in out  # the table keeps the marker's indentation
    assert "stale" not in out  # slow block skipped without --slow
    assert doc.read_text() == DOC


def test_write_rewrites_in_place_then_check_passes(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    os.chmod(doc, 0o640)
    assert _run(doc, "--write") == 0
    text = doc.read_text()
    assert "```\na\nb\n```" in text
    assert "  | 1 | 2 |\n\ntext after" in text
    assert "stale" in text  # not run
    assert oct(doc.stat().st_mode & 0o777) == oct(0o640)
    assert _run(doc) == 0
    assert _run(doc, "--slow") == 1
    assert _run(doc, "--write", "--slow") == 0 and "```text\nslow\n```" in doc.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name != "doc.md"]  # no temporary file left


def test_table_flag_takes_the_nth_table_and_runs_the_command_once(tmp_path):
    doc = tmp_path / "doc.md"
    cmd = "echo run >> count.txt; printf '| a |\\n| 1 |\\n\\nnote\\n| b |\\n| 2 |\\n'"
    cmd = cmd.replace("count.txt", str(tmp_path / "count.txt"))
    doc.write_text(f"<!-- regen table=2: {cmd} -->\n| b |\n\n<!-- regen table=1: {cmd} -->\n| a |\n")
    assert _run(doc, "--write") == 0
    assert doc.read_text() == f"<!-- regen table=2: {cmd} -->\n| b |\n| 2 |\n\n<!-- regen table=1: {cmd} -->\n| a |\n| 1 |\n"
    assert (tmp_path / "count.txt").read_text() == "run\n"


def test_columns_and_repo_on_the_path(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- regen COLUMNS=77: echo $COLUMNS; python -c 'import prfaas_plan, sys; print(prfaas_plan.__file__)' -->\n```\n```\n")
    assert _run(doc, "--write") == 0
    lines = doc.read_text().splitlines()
    assert lines[2] == "77"
    assert Path(lines[3]).resolve().is_relative_to(ROOT)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<!-- regen: false -->\n```\nkeep\n```\n", "exited 1"),
        ("<!-- regen: true -->\n```\nkeep\n```\n", "printed nothing"),
        ("<!-- regen: echo not a table -->\n| keep |\n", "non-table lines"),
        ("<!-- regen: echo x -->\nprose\n", "must be followed by"),
        ("<!-- regen fast: echo x -->\n```\n```\n", "unknown regen flag"),
        ("<!-- regen: echo x -->\n```\nnever closed\n", "never closed"),
    ],
)
def test_a_bad_marker_or_failed_command_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, text, problem):
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    assert _run(doc, "--write") == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err
    assert doc.read_text() == text


def test_every_readme_marker_parses_and_runs_the_checkout():
    """The README's own markers name a block each and run the planner or a script of this repo."""
    path = ROOT / "README.md"
    blocks = rb.parse_blocks(path.read_text().split("\n"), path)
    assert len(blocks) >= 10
    for b in blocks:
        assert "prfaas-plan " in b.command or "python scripts/" in b.command, b.command
