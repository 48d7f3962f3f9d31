"""Property-based bad-input fuzzing (issue 9): mutated scenario, model, hardware and trace files,
arbitrary bytes, mutated Hugging Face configs and arbitrary CLI arguments. Whatever the input,
the library raises nothing but PlanError (one bounded line), the CLI exits 0 or 2 with one
'error:' line, and no output or temporary file is left after a failure. Inputs that still load
must plan soundly (fuzz_strategies.check_plan)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import yaml
from conftest import fuzz_examples
from fuzz_strategies import check_error, check_plan, scenarios, write
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.hf_import import import_hf_config
from prfaas_plan.catalog.model import load_model, model_from_mapping
from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.errors import MAX_MESSAGE_CHARS, PlanError
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.workload import load_trace_csv
from prfaas_plan.reports.kv_report import kv_rows

RUNNER = CliRunner(env={"COLUMNS": "200"})
DATA = Path(__file__).resolve().parent / "data"

#: Values a careless or hostile file might hold where a number, string or mapping belongs.
NASTY = st.one_of(
    st.sampled_from([None, "", "x", "1e3", True, False, 0, -1, 0.0, -0.0, 1e-320, 1e308, -1e308, 10**400, 2**63,
                     float("nan"), float("inf"), float("-inf"), [], {}, [1, 2], {"a": 1}, "\u202e\x00", "K" * 5000]),
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=20),
)


def _paths(node, prefix=()):
    """Every (path to a value) in a nested dict/list."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw, base: dict) -> dict:
    """``base`` with 1-3 random edits: a value replaced by a nasty one, a key deleted, a key added."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(NASTY)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "mode", "Name", 1, "instances"]))] = draw(NASTY)
    return data


def _dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _raw(kind: str, name: str) -> dict:
    return yaml.safe_load((catalog_dir(kind) / f"{name}.yaml").read_text())


@settings(max_examples=fuzz_examples(100))
@given(st.data())
def test_mutated_scenarios(data):
    """A valid scenario with random edits: PlanError, or a sound plan."""
    base, rows = data.draw(scenarios())
    bad = data.draw(mutated(base))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = write(Path(tmp), bad, rows) if isinstance(bad.get("workload"), dict) else None
            if path is None:
                path = Path(tmp) / "fuzz.yaml"
                path.write_text(_dump(bad))
            sc = load_scenario(path)
            r = optimize(sc, compare_modes=False)
        except PlanError as exc:
            check_error(exc)
            return
        check_plan(r, sc)


@settings(max_examples=fuzz_examples(200))
@given(st.data())
def test_mutated_model_and_hardware_files(data):
    """Catalog files with random edits load or raise PlanError; a loaded pair runs the roofline."""
    name = data.draw(st.sampled_from(["kimi-linear-48b", "mimo-v2-flash", "prfaas-1t-hybrid", "qwen3.5-397b"]))
    part = data.draw(st.sampled_from(["h200", "h20", "rubin-cpx"]))
    which = data.draw(st.sampled_from(["model", "hardware"]))
    with tempfile.TemporaryDirectory() as tmp:
        model_path, hw_path = Path(tmp) / f"{name}.yaml", Path(tmp) / f"{part}.yaml"
        model, hw = _raw("models", name), _raw("hardware", part)
        if which == "model":
            model = data.draw(mutated(model))
        else:
            hw = data.draw(mutated(hw))
        model_path.write_text(_dump(model))
        hw_path.write_text(_dump(hw))
        try:
            rows = kv_rows(load_model(model_path), load_hardware(hw_path), 8, [1024, 131072], use_profile=True)
        except PlanError as exc:
            check_error(exc)
            return
        for r in rows:  # S_kv always; T_prefill unless a note says why not (weights do not fit, dtype)
            assert r["kv_cache_bytes"] > 0
            assert (r["prefill_time_s"] is None) == (r["prefill_note"] is not None)
            assert r["prefill_time_s"] is None or r["prefill_time_s"] > 0


@settings(max_examples=fuzz_examples(600))
@given(st.sampled_from(["scenario", "model", "hardware", "trace", "config"]),
       st.one_of(st.binary(max_size=300), st.text(max_size=300), st.sampled_from([
           "\ufeffname: x\n", "a: &a [*a]\n", "{", "- - - -", "name: [", "? [a]\n: 1\n", "!!python/object:os.system x\n",
           "date: 2026-13-45\n", "x: !!binary '###'\n", "x: !!set {a, b}\n", "input_tokens\n1e999\n", "input_tokens,count\n5,-1\n",
           "input_tokens\n\"unterminated\n", '{"num_hidden_layers": 1e999}', '[' * 3000, '{"text_config": 5}',
           '{"_assumed": [1]}', '{"num_hidden_layers": 99999999999}'])))
def test_arbitrary_file_content(kind, content):
    """Any bytes in any input file: PlanError or a value, nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / {"scenario": "s.yaml", "model": "m.yaml", "hardware": "h.yaml", "trace": "t.csv", "config": "c.json"}[kind]
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass") if "\ud800" not in content else path.write_bytes(content.encode("utf-8", "replace"))
        load = {"scenario": load_scenario, "model": load_model, "hardware": load_hardware,
                "trace": lambda p: load_trace_csv(p, "here"), "config": import_hf_config}[kind]
        try:
            load(path)
        except PlanError as exc:
            check_error(exc)


CONFIGS = ["qwen3_235b_a22b.json", "kimi_linear_48b_a3b.json", "mimo_v2_flash.json", "qwen3_5_397b_a17b.json",
           "deepseek_v3_inference_config_671B.json", "ring_mini_linear_2_0.json", "minimax_m2.json"]


@settings(max_examples=fuzz_examples(500))
@given(st.data())
def test_mutated_hf_configs(data):
    """A config.json with random edits maps to a model that loads, or a PlanError."""
    base = json.loads((DATA / data.draw(st.sampled_from(CONFIGS))).read_text())
    cfg = data.draw(mutated(base))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(cfg))  # NaN / Infinity are written as such: the importer must refuse them
        try:
            mapping, notes = import_hf_config(path, name=data.draw(st.one_of(st.none(), st.text(max_size=8))))
            model_from_mapping(yaml.safe_load(yaml.safe_dump(mapping)), str(path))
        except PlanError as exc:
            check_error(exc)


_TOKENS = st.one_of(
    st.sampled_from(["kimi-linear-48b", "h200", "h20", "paper-case-study", "budget-case-study", "0", "-1", "8", "1e999", "nan",
                     "1" * 400, "", "--", "-f", "json", "csv", "xlsx", "table", "--lengths", "1K,abc", "128K", "-o", "OUT",
                     "--mode", "paper", "--gpus", "--cluster-gpus", "--budget-usd-per-hour", "--target-req-per-s", "--roofline",
                     "-m", "-H", "--name", "a/b", "--help", "x" * 300]),
    st.text(max_size=12),
)
_COMMANDS = [["kv", "-m", "kimi-linear-48b", "-H", "h200"], ["kv"], ["optimize", "paper-case-study"], ["optimize"],
             ["hardware", "show"], ["models", "show"], ["models", "import", str(DATA / "minimax_m2.json")], ["validate"]]


@settings(max_examples=fuzz_examples(400))
@given(st.sampled_from(_COMMANDS), st.lists(_TOKENS, max_size=6))
def test_arbitrary_cli_arguments(command, extra):
    """Any argument list: exit 0, or exit 2 with one 'error:' line and nothing on stdout; no
    exception escapes; a failed run leaves no file in the output folder."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(Path(tmp) / "out.json") if a == "OUT" else a for a in command + extra]
        res = RUNNER.invoke(app, args)
        assert isinstance(res.exception, (SystemExit, type(None))), (args, repr(res.exception))
        assert res.exit_code in (0, 2), (args, res.exit_code, res.stderr)
        if res.exit_code == 2:
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error:"), (args, res.stderr)
            assert len(lines[0]) <= MAX_MESSAGE_CHARS + len("error: ")
            assert res.stdout == ""
            assert list(Path(tmp).iterdir()) == [], (args, list(Path(tmp).iterdir()))
        else:
            assert [p.name for p in Path(tmp).iterdir()] in ([], ["out.json"])
