"""The CLI converts plain option values itself (cli/values.py PlainValues) instead of typer's per-parameter
pydantic adapters (~60 ms per run): for every parameter of every command, and values plain and
odd, the result (value and type) or the error is exactly typer's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from prfaas_plan.cli import app
from prfaas_plan.cli._common import Format, Mode
from prfaas_plan.cli.engine import Dtype, EstimateFormat
from prfaas_plan.cli.values import PlainValues, plain_values

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ["8", "0", "1", "-3", "08", "+8", " 8", "8 ", "1_000", "1e3", "1.5", "-0.25", "30000", "3.", ".5", "nan", "inf", "", "abc",
           "kimi-k2", "json", "JSON", "table", "paper", "fp8", "FP8", "a,b", "9" * 30, "100000000", "x.yaml", "-"]
OBJECTS = [None, 0, 1, 8, -1, 10**12, 1.5, 0.0, True, False, (), ("a", "b"), ["k=v"], ("1",), Format.json, EstimateFormat.table,
           Mode.paper, Dtype.fp8]


def _params():
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        help_option = cmd.get_help_option(typer.Context(cmd))
        for p in [*cmd.params, *([help_option] if help_option is not None else [])]:
            if hasattr(p, "type_descriptor"):
                out.append(pytest.param(cmd, p, id=f"{path or 'root'}:{p.name}"))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(root, "")
    return out


def _outcome(convert):
    try:
        v = convert()
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return ("error", type(exc).__name__, str(exc))
    return ("value", type(v), repr(v))  # repr: nan == nan


@pytest.mark.parametrize("cmd,param", _params())
def test_plain_values_agree_with_typer(cmd, param):
    ctx = typer.Context(cmd)
    for value in [param.default, *SAMPLES, *OBJECTS]:
        param._runtime_param = None
        want = _outcome(lambda: param.get_runtime_param().coerce(value, param=param, ctx=ctx))
        param._runtime_param = PlainValues(param)
        got = _outcome(lambda: param.get_runtime_param().coerce(value, param=param, ctx=ctx))
        assert got == want, (param.name, value)


def test_every_parameter_gets_plain_values():
    """The hook reaches every command and its help option (the root's when it parses, a command
    and a group's commands when they are resolved)."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    plain_values(root, ctx, depth=2)
    missed = []

    def walk(cmd):
        for p in [*cmd.params, cmd.get_help_option(ctx)]:
            if p is not None and hasattr(p, "type_descriptor") and not isinstance(p._runtime_param, PlainValues):
                missed.append((cmd.name, p.name))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(root)
    assert missed == []


@pytest.mark.parametrize("args", [["estimate", "-m", "kimi-k2", "-H", "h200", "--gpus", "8", "-f", "json"], ["hardware", "list", "-f", "json"],
                                  ["kv", "-m", "kimi-linear-48b", "-H", "h200", "--lengths", "1K,8K", "-f", "csv"], ["--version"]])
def test_plain_runs_never_import_pydantic(args):
    """typer would import pydantic (~50 ms) to convert these values; the CLI does it itself.
    `estimate` does not import numpy either (roofline/elementwise.py)."""
    code = ("import sys\nfrom prfaas_plan.cli import app\n"
            f"sys.argv = ['prfaas-plan', *{args!r}]\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('LOADED:' + ','.join(m for m in ('pydantic', 'numpy') if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = res.stdout.strip().splitlines()[-1]
    assert "pydantic" not in loaded
    if args[0] == "estimate":
        assert loaded == "LOADED:"
