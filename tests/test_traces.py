"""Trace readers (prfaas_plan/traces/readers.py, rates.py), the shipped traces and finding them:
tiny hand-written files whose arrivals and lengths can be checked by hand, the real files'
published sizes, and every bad input as one line through the CLI."""

from __future__ import annotations

import copy
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import prfaas_plan
from prfaas_plan.catalog import files
from prfaas_plan.catalog.paths import catalog_dir, resolve_trace, trace_names
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.traces.cache import uncached_lengths
from prfaas_plan.traces.rates import read_rate_shape
from prfaas_plan.traces.readers import SHIPPED_SOURCES, detect_format, read_trace, spread_arrivals_s

MOONCAKE = "mooncake_fast25_conversation_trace.jsonl.gz"
AZURE = "azure2023_conv.csv"
SERVEGEN = "servegen_m-large_rate_10min.csv"
BASE = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env={"COLUMNS": "200"})


def mc(ts, inp, out=10, first_hash=0, **extra) -> str:
    """One Mooncake line: hash_ids = first_hash, first_hash + 1, ... one per 512-token block."""
    row = {"timestamp": ts, "input_length": inp, "output_length": out, "hash_ids": list(range(first_hash, first_hash - (-inp // 512)))}
    row.update(extra)
    return json.dumps(row)


def write(tmp_path: Path, name: str, text: str, gz: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# -- Mooncake ---------------------------------------------------------------------------------------
def test_mooncake_spreads_each_timestamp_bucket(tmp_path):
    """Two requests at 0 ms, ten at 3000 ms (a 3 s bucket): the i-th of n lands at
    ts + (i + 0.5) * 3 / n, i.e. 0.75, 2.25 and then 3.15, 3.45, ..., 5.85 s."""
    lines = [mc(0, 600), mc(0, 700, first_hash=100)] + [mc(3000, 512 * (i + 1), first_hash=1000 * (i + 1)) for i in range(10)]
    t = read_trace(write(tmp_path, "m.jsonl", "\n".join(lines) + "\n"))
    assert t.name == "m" and len(t) == 12
    assert t.arrival_s == pytest.approx([0.75, 2.25] + [3.15 + 0.3 * i for i in range(10)])
    assert t.input_tokens.tolist()[:3] == [600, 700, 512]
    assert t.hash_ids[0] == (0, 1) and t.hash_ids[2] == (1000,)
    literal = read_trace(tmp_path / "m.jsonl", spread=False)
    assert literal.arrival_s.tolist() == [0.0, 0.0] + [3.0] * 10
    wide = read_trace(tmp_path / "m.jsonl", bucket_s=6.0)  # the gap to the next timestamp (3 s) caps the first bucket
    assert wide.arrival_s[:2] == pytest.approx([0.75, 2.25]) and wide.arrival_s[2] == pytest.approx(3.3)


def test_spreading_keeps_arrivals_in_order_when_timestamps_are_closer_than_a_bucket():
    """Timestamps 1 s apart with a 3 s bucket: each group is spread over the 1 s gap instead."""
    out = spread_arrivals_s(np.array([0.0, 0.0, 1.0, 1.0, 1.0]), 3.0)
    assert out == pytest.approx([0.25, 0.75, 1.5, 2.5, 3.5])
    assert np.all(np.diff(out) >= 0)


def test_mooncake_gzip_and_plain_read_alike(tmp_path):
    text = "\n".join([mc(0, 600), mc(10, 1100, first_hash=5)])
    plain = read_trace(write(tmp_path, "a.jsonl", text), spread=False)
    packed = read_trace(write(tmp_path, "a.jsonl.gz", text, gz=True), spread=False)
    assert plain.input_tokens.tolist() == packed.input_tokens.tolist() == [600, 1100]
    assert packed.arrival_s.tolist() == [0.0, 0.01]
    assert packed.name == "a" and packed.output_tokens.tolist() == [10, 10]


def test_format_is_detected_from_content_or_given(tmp_path):
    assert detect_format("\n{\"timestamp\": 0}", "x") == "mooncake"
    assert detect_format("TIMESTAMP,ContextTokens,GeneratedTokens\n", "x") == "azure"
    assert detect_format("input_tokens,count\n5,1\n", "x") == "csv"
    path = write(tmp_path, "lengths.txt", "input_tokens,output_tokens,count\n100,7,2\n300,9,1\n")
    t = read_trace(path)
    assert t.arrival_s is None and t.hash_ids is None
    assert t.input_tokens.tolist() == [100, 100, 300] and t.output_tokens.tolist() == [7, 7, 9]
    with pytest.raises(PlanError, match="unknown trace format 'jsonl'"):
        read_trace(path, "jsonl")
    with pytest.raises(PlanError, match="missing key 'timestamp'"):  # told it is Mooncake, it is read as one
        read_trace(write(tmp_path, "m.csv", '{"input_length": 5}\n'), "mooncake")


# -- Azure ------------------------------------------------------------------------------------------
def test_azure_arrivals_are_seconds_after_the_first_row(tmp_path):
    text = ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
            "2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:16:46.6805900,1,1\n")
    t = read_trace(write(tmp_path, "az.csv", text))
    assert t.arrival_s == pytest.approx([0.0, 4.314579, 60.0])
    assert t.input_tokens.tolist() == [374, 396, 1] and t.output_tokens.tolist() == [44, 109, 1]
    assert t.hash_ids is None and t.duration_s == pytest.approx(60.0)


# -- the shipped files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mooncake():
    return read_trace(resolve_trace(MOONCAKE))


def test_shipped_mooncake(mooncake):
    """12,031 requests over ~1 h (3.4 req/s), mean input 12,035 tokens (traces/README.md)."""
    assert len(mooncake) == 12_031
    assert mooncake.input_tokens.mean() == pytest.approx(12_035.06, abs=0.01)
    assert mooncake.duration_s == pytest.approx(3540, abs=5) and mooncake.mean_rate_req_per_s == pytest.approx(3.40, abs=0.01)
    assert sum(len(h) for h in mooncake.hash_ids) == 288_500
    assert mooncake.source == SHIPPED_SOURCES[MOONCAKE]


def test_shipped_mooncake_unlimited_cache(mooncake):
    """An unlimited prefix cache hits 37.4% of input tokens; 9.7% of requests keep more than
    19,400 uncached tokens (9.4% above 19.4K = 19,866 tokens with K = 1024). The replay takes
    ~0.06 s here; the bar is 1 s (shared CI machines)."""
    start = time.perf_counter()
    u = uncached_lengths(mooncake)
    assert time.perf_counter() - start < 1.0
    assert 1 - u.sum() / mooncake.input_tokens.sum() == pytest.approx(0.3736, abs=1e-4)
    assert np.mean(u > 19_400) == pytest.approx(0.0975, abs=1e-4)
    assert np.mean(u > 19.4 * 1024) == pytest.approx(0.0943, abs=1e-4)
    assert u.mean() == pytest.approx(7538.5, abs=0.1)
    assert np.all(u <= mooncake.input_tokens)


def test_shipped_azure_and_servegen():
    az = read_trace(resolve_trace("azure2023_conv"))
    assert len(az) == 19_366 and az.input_tokens.mean() == pytest.approx(1154.7, abs=0.1)
    assert az.mean_rate_req_per_s == pytest.approx(5.53, abs=0.01)
    shape = read_rate_shape(resolve_trace(SERVEGEN))
    assert len(shape.t_s) == 2_016 and np.all(np.diff(shape.t_s) == 600)
    assert shape.mean_rate_req_per_s == pytest.approx(195.8, abs=0.1)
    assert shape.rate_req_per_s.min() == pytest.approx(48.35, abs=0.01) and shape.rate_req_per_s.max() == pytest.approx(582.99, abs=0.01)


def test_shipped_traces_carry_attribution_and_licences():
    folder = catalog_dir("traces")
    readme = (folder / "README.md").read_text()
    for name, line in SHIPPED_SOURCES.items():
        assert name in trace_names()
        assert " ".join(line.split()) in " ".join(readme.split())
    assert sorted(p.name for p in (folder / "LICENSES").iterdir()) == [
        "Apache-2.0_Mooncake.txt", "Apache-2.0_ServeGen.txt", "CC-BY-4.0_AzurePublicDataset.txt"]


# -- finding traces ---------------------------------------------------------------------------------
def test_resolver_finds_shipped_traces_by_name_and_prefers_local_files(tmp_path):
    assert resolve_trace(MOONCAKE) == catalog_dir("traces") / MOONCAKE
    assert resolve_trace("mooncake_fast25_conversation_trace") == catalog_dir("traces") / MOONCAKE
    local = write(tmp_path, AZURE, "input_tokens\n5\n")
    assert resolve_trace(AZURE, tmp_path) == local  # a file beside the scenario wins
    assert resolve_trace(AZURE, tmp_path / "elsewhere") == catalog_dir("traces") / AZURE
    with pytest.raises(PlanError, match="no shipped trace is named 'nope'; shipped: azure2023_conv.csv"):
        resolve_trace("nope", tmp_path)
    with pytest.raises(PlanError, match="file not found"):
        resolve_trace("sub/nope.csv", tmp_path)
    with pytest.raises(PlanError, match="is a folder"):
        resolve_trace(".", tmp_path)


def test_installed_layout_finds_shipped_traces(tmp_path):
    """A wheel-style install (the package with its catalog copied into prfaas_plan/_catalog, as
    pyproject's force-include does) plans mooncake-case-study without the checkout."""
    src = Path(prfaas_plan.__file__).resolve().parent
    site = tmp_path / "site"
    shutil.copytree(src, site / "prfaas_plan", ignore=shutil.ignore_patterns("__pycache__", "_catalog"))
    repo = Path(__file__).resolve().parent.parent  # the checkout (the package may be installed elsewhere)
    pyproject = (repo / "pyproject.toml").read_text()
    for kind in ("hardware", "models", "scenarios", "traces"):
        assert f'"{kind}" = "prfaas_plan/_catalog/{kind}"' in pyproject
        shutil.copytree(repo / kind, site / "prfaas_plan" / "_catalog" / kind)
    code = ("import sys, prfaas_plan; from prfaas_plan.cli import app; print(prfaas_plan.__file__, file=sys.stderr); "
            "sys.argv = ['prfaas-plan', 'optimize', 'mooncake-case-study', '-f', 'json']; app()")
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["provenance"]["inputs"]["workload.prefix_cache_model"].startswith("unlimited prefix cache")
    assert res.stderr.strip().splitlines()[0] == str(site / "prfaas_plan" / "__init__.py")


# -- bad input: one line naming the file, line and key ----------------------------------------------
BAD = [
    ("malformed.jsonl", mc(0, 600) + "\n{\"timestamp\": 1,\n", ["line 2", "malformed JSON"]),
    ("notobject.jsonl", "[1, 2]\n", ["line 1", "expected a JSON object"]),
    ("missing.jsonl", mc(0, 600) + "\n" + json.dumps({"timestamp": 5, "input_length": 600, "hash_ids": [0, 1]}), ["line 2", "missing key 'output_length'"]),
    ("float.jsonl", mc(0, 600).replace('"input_length": 600', '"input_length": 600.5'), ["line 1", "'input_length'", "whole number"]),
    ("negative.jsonl", mc(0, 600, out=-3), ["line 1", "'output_length'", "must be >= 1"]),
    ("zero.jsonl", json.dumps({"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []}), ["line 1", "'input_length'", "must be >= 1"]),
    ("string.jsonl", mc(0, 600).replace('"input_length": 600', '"input_length": "600"'), ["line 1", "'input_length'", "whole number, got \"600\""]),
    ("empty.jsonl", "\n\n", ["empty trace"]),
    ("unsorted.jsonl", "\n".join([mc(3000, 600), mc(6000, 600), mc(3000, 600)]), ["line 3", "'timestamp'", "earlier than 6000 on line 2"]),
    ("hashes.jsonl", mc(0, 600).replace("[0, 1]", '[0, "a"]'), ["line 1", "'hash_ids'", "list of integers"]),
    ("hashcount.jsonl", mc(0, 600).replace("[0, 1]", "[0]"), ["line 1", "'hash_ids'", "1 block hashes for input_length 600"]),
    ("badts.jsonl", mc(0, 600).replace('"timestamp": 0', '"timestamp": -1'), ["line 1", "'timestamp'", ">= 0"]),
    ("azure_cols.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.68,5\n", ["line 1", "'GeneratedTokens'"]),
    ("azure_time.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,5\n", ["line 2", "'TIMESTAMP'", "not a date"]),
    ("azure_order.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:47,5,5\n2023-11-16 18:15:46,5,5\n", ["line 3", "'TIMESTAMP'", "time order"]),
    ("azure_len.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:47,0,5\n", ["line 2", "'ContextTokens'", ">= 1"]),
    ("azure_empty.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n", ["empty trace"]),
    # issue 14: an output of 0 tokens was read and planned (every request emits its first token)
    ("out0.jsonl", mc(0, 600, out=0), ["line 1", "'output_length'", ">= 1", "first token"]),
    ("azure_out0.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:47,5,0\n", ["line 2", "'GeneratedTokens'", ">= 1"]),
    ("len_out0.csv", "input_tokens,output_tokens\n5,0\n", ["line 2", "'output_tokens'", ">= 1"]),
    ("azure_fields.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:47,5,5,9\n", ["line 2", "more fields"]),
]


@pytest.mark.parametrize("name,text,words", BAD, ids=[b[0] for b in BAD])
def test_bad_trace_is_one_line(tmp_path, name, text, words):
    path = write(tmp_path, name, text)
    with pytest.raises(PlanError) as err:
        read_trace(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def trace_scenario(tmp_path: Path, trace: Path, **extra) -> Path:
    data = copy.deepcopy(BASE)
    data["name"] = "traced"
    data["workload"]["input_tokens"] = {"kind": "trace", "file": str(trace), **extra}
    del data["workload"]["output_tokens"]  # the traces carry output lengths
    path = tmp_path / "traced.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_clean_cli_error(result, *words) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stderr, repr(result.exception))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize("name,text,words", BAD[::3] + [BAD[8]], ids=[b[0] for b in BAD[::3] + [BAD[8]]])
def test_bad_trace_through_optimize(runner, tmp_path, name, text, words):
    """The CLI: exit code 2, one line naming the scenario key, the trace file and what is wrong."""
    trace = write(tmp_path, name, text)
    path = trace_scenario(tmp_path, trace)
    assert_clean_cli_error(runner.invoke(app, ["optimize", str(path)]), path, "workload.input_tokens.file", trace, *words)


@pytest.mark.parametrize("case", ["garbage", "truncated", "trailing", "bomb"])
def test_bad_gzip_is_one_line(runner, tmp_path, monkeypatch, case):
    packed = gzip.compress(((mc(0, 600) + "\n") * 200).encode())
    data = {"garbage": b"\x1f\x8bnot really gzip", "truncated": packed[: len(packed) // 2], "trailing": packed + b"junk",
            "bomb": packed}[case]
    trace = tmp_path / "t.jsonl.gz"
    trace.write_bytes(data)
    if case == "bomb":  # decompresses to ~20 KB; cap the decompressed text at 10 KB
        monkeypatch.setattr("prfaas_plan.traces.readers.MAX_TRACE_BYTES", 10_000)
    word = {"garbage": "not a valid gzip file", "truncated": "truncated gzip", "trailing": "bad header at byte",
            "bomb": "decompresses to more than 10,000 bytes"}[case]
    assert_clean_cli_error(runner.invoke(app, ["optimize", str(trace_scenario(tmp_path, trace))]), trace, word)


def test_gz_name_without_gzip_content_is_refused(tmp_path):
    with pytest.raises(PlanError, match="not a valid gzip file"):
        read_trace(write(tmp_path, "plain.jsonl.gz", mc(0, 600)))


def test_gunzip_reads_every_member():
    data = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert files.gunzip_bytes(data, "x", "trace", 100) == b"abcd"


# -- rate shapes ------------------------------------------------------------------------------------
def test_rate_shape_reads_two_columns(tmp_path):
    shape = read_rate_shape(write(tmp_path, "r.csv", "t_s,rate_req_per_s,n\n0,1.5,3\n600,0,4\n1200,2.5,1\n"))
    t_s, rate = shape  # unpacks as the two arrays
    assert t_s.tolist() == [0.0, 600.0, 1200.0] and rate.tolist() == [1.5, 0.0, 2.5]


@pytest.mark.parametrize("text,words", [
    ("t_s,rate_req_per_s\n0,1\n600,-1\n", ["line 3", "'rate_req_per_s'", ">= 0"]),
    ("t_s,rate_req_per_s\n0,nan\n", ["line 2", "finite"]),
    ("t_s,rate_req_per_s\n0,inf\n", ["line 2", "finite"]),
    ("t_s,rate_req_per_s\n0,1\n600,1\n300,1\n", ["line 4", "'t_s'", "earlier than"]),
    ("t_s,rate_req_per_s\n0,1\n0,1\n", ["line 3", "'t_s'", "repeats"]),
    ("t_s,rate_req_per_s\n", ["empty rate shape"]),
    ("t_s,rate\n0,1\n", ["line 1", "'rate_req_per_s'"]),
    ("t_s,rate_req_per_s\n0,fast\n", ["line 2", "not a number"]),
    ("t_s,rate_req_per_s\n0,\n", ["line 2", "missing value"]),
])
def test_bad_rate_shape_is_one_line(tmp_path, text, words):
    path = write(tmp_path, "r.csv", text)
    with pytest.raises(PlanError) as err:
        read_rate_shape(path)
    msg = str(err.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)
