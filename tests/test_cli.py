"""The `prfaas-plan` CLI run for real through typer's CliRunner (fixed terminal width): output
formats, agreement with the Python API, clean one-line errors, and help text everywhere."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import openpyxl
import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.catalog.paths import catalog_dir, catalog_names
from prfaas_plan.cli import app
from prfaas_plan.reports.kv_report import kv_rows
from prfaas_plan.roofline import counts
from prfaas_plan.roofline.kv import fixed_state_bytes, kv_bytes_per_token

DATA = Path(__file__).resolve().parent / "data"
KV_COLUMNS = ("input_tokens", "kv_cache_bytes", "prefill_time_s", "kv_throughput_gbit_per_s")


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env={"COLUMNS": "200"})


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def assert_clean_error(result):
    """Exit code != 0, exactly one line on stderr starting with 'error:', nothing on stdout,
    and the command ended by a clean exit rather than an escaped exception."""
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)


# --- catalog commands ---------------------------------------------------------------------------


def test_hardware_list(runner):
    """`hardware list` shows every part, with memory as stated (141 GB for H200)."""
    out = ok(run(runner, "hardware", "list")).stdout
    for name in catalog_names("hardware"):
        assert name in out
    assert "141 GB" in out


def test_hardware_list_json_matches_catalog(runner):
    """`hardware list --format json` carries the datasheet numbers of the catalog."""
    rows = json.loads(ok(run(runner, "hardware", "list", "--format", "json")).stdout)
    by_name = {r["name"]: r for r in rows}
    assert sorted(by_name) == catalog_names("hardware")
    assert by_name["h200"]["bf16_dense_tflops"] == 989
    assert by_name["h200"]["memory"] == "141 GB"
    assert by_name["rubin-cpx"]["hypothetical"] is True


def test_hardware_show(runner):
    """`hardware show h200` prints its memory, calibration basis and sources."""
    out = ok(run(runner, "hardware", "show", "h200")).stdout
    assert "141 GB" in out
    assert "calibrated" in out
    assert "nvidia.com" in out


def test_models_list(runner):
    """`models list` shows every model."""
    out = ok(run(runner, "models", "list")).stdout
    for name in catalog_names("models"):
        assert name in out


def test_models_list_json_matches_api(runner):
    """JSON of `models list` equals the library's counts for every model."""
    rows = json.loads(ok(run(runner, "models", "list", "--format", "json")).stdout)
    assert [r["name"] for r in rows] == catalog_names("models")
    for r in rows:
        m = load_model(r["name"])
        assert r["kv_bytes_per_token"] == kv_bytes_per_token(m)
        assert r["total_params_b"] == counts.total_params(m) / 1e9
        assert r["fixed_state_mib"] == fixed_state_bytes(m) / 2**20


def test_models_show(runner):
    """`models show kimi-linear-48b` prints its KV per token and fixed state."""
    out = ok(run(runner, "models", "show", "kimi-linear-48b")).stdout
    assert "8,064 B" in out
    assert "41.41 MiB" in out
    assert "kda" in out.lower()


# --- kv -----------------------------------------------------------------------------------------


def test_kv_json_rows(runner):
    """`kv --format json` gives one row per default length with the documented columns."""
    rows = json.loads(ok(run(runner, "kv", "--model", "minimax-m2.5", "--hardware", "h200", "--format", "json")).stdout)
    assert [r["input_tokens"] for r in rows] == [1024, 8192, 32768, 131072]
    for r in rows:
        for col in KV_COLUMNS:
            assert isinstance(r[col], (int, float)) and r[col] > 0
        assert r["kv_cache_bytes"] == 253_952 * r["input_tokens"]


@pytest.mark.parametrize(
    ("model", "hardware", "extra", "api"),
    [
        ("minimax-m2.5", "h200", [], {}),
        ("prfaas-1t-hybrid", "h200", [], {}),
        ("prfaas-1t-hybrid", "h200", ["--roofline"], {"use_profile": False}),
        ("kimi-linear-48b", "h20", ["--gpus", "2", "--lengths", "2K,100000"], {"gpus": 2, "lengths_tokens": [2048, 100_000]}),
        ("kimi-linear-48b", "h200", ["--cluster-gpus", "512"], {"cluster_gpus": 512}),
    ],
)
def test_kv_cli_agrees_with_api(runner, model, hardware, extra, api):
    """The CLI is a thin layer: its JSON equals kv_report.kv_rows for the same arguments."""
    out = ok(run(runner, "kv", "--model", model, "--hardware", hardware, "--format", "json", *extra)).stdout
    args = {"gpus": 8, "lengths_tokens": (1024, 8192, 32768, 131072), "use_profile": True, **api}
    expected = kv_rows(load_model(model), load_hardware(hardware), args.pop("gpus"), **args)
    assert json.loads(out) == expected


def test_kv_cluster_egress_is_eq2(runner):
    """--cluster-gpus N adds B_out = (N / P) x Phi_kv ([PRFAAS] Eq. 2)."""
    rows = json.loads(ok(run(runner, "kv", "-m", "ring-2.5-1t", "-H", "h200", "--cluster-gpus", "512", "-f", "json")).stdout)
    for r in rows:
        assert r["cluster_egress_gbit_per_s"] == pytest.approx(512 / 8 * r["kv_throughput_gbit_per_s"], rel=1e-12)


def test_kv_csv(runner):
    """CSV has a header row with the documented columns and one row per length."""
    out = ok(run(runner, "kv", "--model", "minimax-m2.5", "--hardware", "h200", "--format", "csv")).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    header = out.splitlines()[0].split(",")
    assert header[0] == "input_tokens"
    assert set(KV_COLUMNS) <= set(header)
    assert [int(r["input_tokens"]) for r in rows] == [1024, 8192, 32768, 131072]


def test_kv_lengths_option(runner):
    """--lengths 1K,32K gives exactly those two lengths (K = 1024)."""
    rows = json.loads(ok(run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "--lengths", "1K,32K", "-f", "json")).stdout)
    assert [r["input_tokens"] for r in rows] == [1024, 32768]


def test_kv_table(runner):
    """The terminal table names the model, the instance and the lengths as the paper prints them."""
    out = ok(run(runner, "kv", "-m", "mimo-v2-flash", "-H", "h200")).stdout
    assert "mimo-v2-flash on 8 x h200" in out
    for label in ("1K", "8K", "32K", "128K"):
        assert label in out


def test_kv_xlsx(runner, tmp_path):
    """--format xlsx --output writes a workbook openpyxl reads, header + one row per length."""
    path = tmp_path / "kv.xlsx"
    ok(run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "xlsx", "-o", path))
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["About", "rows"]  # About: tool, version, date
    ws = wb["rows"]
    values = list(ws.values)
    header = list(values[0])
    assert set(KV_COLUMNS) <= set(header)
    col = header.index("input_tokens")
    assert [row[col] for row in values[1:]] == [1024, 8192, 32768, 131072]


def test_kv_json_to_file(runner, tmp_path):
    """--output writes the same JSON to a file and nothing to stdout."""
    path = tmp_path / "kv.json"
    res = ok(run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "json", "-o", path))
    assert res.stdout == ""
    assert [r["input_tokens"] for r in json.loads(path.read_text())] == [1024, 8192, 32768, 131072]


def test_kv_model_by_path(runner, tmp_path):
    """A model YAML given as a path gives the same numbers as the catalog name."""
    path = tmp_path / "minimax-m2.5.yaml"
    shutil.copy(catalog_dir("models") / "minimax-m2.5.yaml", path)
    by_path = json.loads(ok(run(runner, "kv", "-m", path, "-H", "h200", "-f", "json")).stdout)
    by_name = json.loads(ok(run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "json")).stdout)
    assert by_path == by_name


# --- validate -----------------------------------------------------------------------------------


def test_validate_json(runner):
    """`validate --format json` lists the 24 Table 3 cells and the Table 5 rows with errors."""
    rows = json.loads(ok(run(runner, "validate", "--format", "json")).stdout)
    assert sum(r["table"] == 3 for r in rows) == 24
    assert any(r["table"] == 5 for r in rows)
    for r in rows:
        assert r["error_pct"] == pytest.approx((r["model"] / r["paper"] - 1) * 100, rel=1e-9)


def test_validate_table(runner):
    """The terminal view of `validate` titles both tables and summarises the errors."""
    out = ok(run(runner, "validate")).stdout
    assert "Table 3" in out and "Table 5" in out
    assert "median |error|" in out


# --- models import ------------------------------------------------------------------------------


def test_models_import_to_file(runner, tmp_path):
    """`models import CONFIG --output x.yaml` writes a YAML that loads."""
    out = tmp_path / "x.yaml"
    res = ok(run(runner, "models", "import", DATA / "qwen3_235b_a22b.json", "--output", out))
    assert "wrote" in res.stderr
    m = load_model(out)
    assert m.name == "x"
    assert kv_bytes_per_token(m) == 192_512


def test_models_import_to_stdout(runner):
    """Without --output the YAML goes to stdout and the notes to stderr."""
    res = ok(run(runner, "models", "import", DATA / "minimax_m2.json"))
    data = yaml.safe_load(res.stdout)
    assert data["name"] == "minimax-m2"
    assert data["num_layers"] == 62
    assert "note: moe_intermediate_size absent" in res.stderr


# --- bad input: one clean line, non-zero exit, nothing written ----------------------------------


@pytest.fixture
def bad_yaml(tmp_path):
    path = tmp_path / "bad-model.yaml"
    path.write_text("name: bad-model\nlayers: [\n", encoding="utf-8")
    return path


BAD_KV_ARGS = {
    "unknown-model": ["-m", "no-such-model", "-H", "h200"],
    "unknown-hardware": ["-m", "minimax-m2.5", "-H", "no-such-gpu"],
    "zero-gpus": ["-m", "minimax-m2.5", "-H", "h200", "--gpus", "0"],
    "negative-gpus": ["-m", "minimax-m2.5", "-H", "h200", "--gpus", "-8"],
    "lengths-abc": ["-m", "minimax-m2.5", "-H", "h200", "--lengths", "abc"],
    "lengths-empty": ["-m", "minimax-m2.5", "-H", "h200", "--lengths", ""],
    "lengths-zero": ["-m", "minimax-m2.5", "-H", "h200", "--lengths", "1K,0"],
    "cluster-smaller-than-instance": ["-m", "minimax-m2.5", "-H", "h200", "--cluster-gpus", "4"],
}


def test_kv_reports_size_when_weights_do_not_fit(runner):
    """Issue 19: S_kv does not depend on the part, so `kv` prints it when the weights do not fit
    (ring-2.5-1t on one H20) or their dtype does not run there, and says why there is no
    T_prefill instead of refusing."""
    rows = json.loads(ok(run(runner, "kv", "-m", "ring-2.5-1t", "-H", "h20", "--gpus", "1", "-f", "json")).stdout)
    assert all(r["kv_cache_bytes"] > 0 and r["prefill_time_s"] is None for r in rows)
    assert rows[0]["weights_fit"] is False and "weights need" in rows[0]["prefill_note"]


@pytest.mark.parametrize("args", BAD_KV_ARGS.values(), ids=BAD_KV_ARGS.keys())
def test_kv_bad_input_is_one_clean_line(runner, args):
    """Bad arguments give exit != 0 and one 'error:' line, no traceback."""
    assert_clean_error(run(runner, "kv", *args))


def test_kv_malformed_model_yaml(runner, bad_yaml):
    """A malformed model file is one clean line naming the file."""
    res = run(runner, "kv", "-m", bad_yaml, "-H", "h200")
    assert_clean_error(res)
    assert str(bad_yaml) in res.stderr


def test_xlsx_without_output(runner):
    """xlsx cannot go to a terminal: --output is required."""
    res = run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "xlsx")
    assert_clean_error(res)
    assert "--output" in res.stderr


def test_unknown_model_lists_known_names(runner):
    """The error for a misspelt model lists the catalog."""
    res = run(runner, "kv", "-m", "minimax-m25", "-H", "h200")
    assert_clean_error(res)
    assert "minimax-m2.5" in res.stderr


@pytest.mark.parametrize(
    ("fmt", "args"),
    [
        ("json", ["-m", "no-such-model", "-H", "h200"]),
        ("csv", ["-m", "minimax-m2.5", "-H", "h200", "--lengths", "abc"]),
        ("xlsx", ["-m", "minimax-m2.5", "-H", "h200", "--gpus", "0"]),
    ],
)
def test_failed_kv_writes_no_file(runner, tmp_path, fmt, args):
    """After a failed command the --output file does not exist."""
    out = tmp_path / f"out.{fmt}"
    assert_clean_error(run(runner, "kv", *args, "-f", fmt, "-o", out))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary files left either


def test_table_with_output_is_an_error(runner, tmp_path):
    """A terminal table cannot be written to a file: --output needs json, csv or xlsx."""
    out = tmp_path / "kv.txt"
    assert_clean_error(run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "-o", out))
    assert not out.exists()


def test_output_into_missing_folder(runner, tmp_path):
    """Writing into a folder that does not exist is a clean error."""
    out = tmp_path / "nope" / "kv.json"
    assert_clean_error(run(runner, "kv", "-m", "minimax-m2.5", "-H", "h200", "-f", "json", "-o", out))
    assert not out.exists()


def test_show_unknown_names(runner):
    """`hardware show` / `models show` of an unknown name are clean errors."""
    assert_clean_error(run(runner, "hardware", "show", "h300"))
    assert_clean_error(run(runner, "models", "show", "gpt-9"))


def test_models_import_bad_json(runner, tmp_path):
    """Importing a file that is not JSON is a clean error, and --output is not created."""
    cfg, out = tmp_path / "config.json", tmp_path / "x.yaml"
    cfg.write_text("{not json", encoding="utf-8")
    assert_clean_error(run(runner, "models", "import", cfg, "--output", out))
    assert not out.exists()


def test_models_import_unloadable_result_writes_no_file(runner, tmp_path):
    """A config that imports but gives a model that does not load (hidden_size 0) fails the
    command, and then the --output file must not exist (nothing is written on failure)."""
    cfg = json.loads((DATA / "qwen3_235b_a22b.json").read_text())
    cfg["hidden_size"] = 0
    src, out = tmp_path / "config.json", tmp_path / "x.yaml"
    src.write_text(json.dumps(cfg), encoding="utf-8")
    res = run(runner, "models", "import", src, "--output", out)
    assert res.exit_code != 0
    assert "error:" in res.stderr and "Traceback" not in res.output
    assert not out.exists()


# --- help -----------------------------------------------------------------------------------------


def _walk(cmd, path=()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, path + (name,))


COMMANDS = list(_walk(typer.main.get_command(app)))


def test_command_tree_is_complete():
    """The walk sees the commands the README and this suite use."""
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"hardware list", "hardware show", "models list", "models show", "models import", "kv", "validate"} <= paths


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "<root>" for p, _ in COMMANDS])
def test_every_command_has_help(path, cmd):
    """Every command, subcommand and option documents itself."""
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help"
    for param in cmd.params:
        if getattr(param, "name", None) == "help":
            continue
        assert (getattr(param, "help", None) or "").strip(), f"{' '.join(path)} {param.name} has no help"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) or "<root>" for p, _ in COMMANDS])
def test_help_runs(runner, path):
    """`--help` works for every command."""
    res = ok(run(runner, *path, "--help"))
    assert "Usage" in res.stdout


def test_kv_json_rows_carry_both_halves_of_skv():
    """Rows state KV bytes per token and the fixed per-request state, and S_kv is their sum."""
    result = CliRunner().invoke(app, ["kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout):
        assert row["kv_bytes_per_token"] == 8064
        assert row["kv_cache_bytes"] == pytest.approx(8064 * row["input_tokens"] + row["fixed_state_bytes"], rel=1e-12)


def test_kv_engine_and_state_dtype_agree_with_library(runner):
    """`kv --engine vllm` is catalog.engines.deploy + kv_report.kv_rows: Qwen3-Next's state in
    bf16 (vLLM's mamba_ssm_cache_dtype=auto); --state-dtype fp32 overrides the preset."""
    from prfaas_plan.catalog.engines import deploy

    args = ["kv", "-m", "qwen3-next-80b", "-H", "h200", "--lengths", "1K,32K", "-f", "json"]
    rows = json.loads(ok(run(runner, *args, "--engine", "vllm")).stdout)
    model = deploy(load_model("qwen3-next-80b"), "vllm")[0]
    assert [r["kv_cache_bytes"] for r in rows] == [r["kv_cache_bytes"] for r in kv_rows(model, load_hardware("h200"), 8, [1024, 32768])]
    assert rows[0]["linear_state_dtype"] == "bf16"
    rows = json.loads(ok(run(runner, *args, "--engine", "vllm", "--state-dtype", "fp32")).stdout)
    assert rows[0]["linear_state_dtype"] == "fp32"


def test_models_list_shows_family_and_state_dtype(runner):
    """`models list` names each model's family and its recurrent-state dtype: the file's and
    the one vLLM and SGLang keep (None for models without recurrent layers)."""
    rows = {r["name"]: r for r in json.loads(ok(run(runner, "models", "list", "-f", "json")).stdout)}
    assert all(r["family"] for r in rows.values())
    assert (rows["qwen3-next-80b"]["state_dtype_vllm"], rows["qwen3-next-80b"]["state_dtype_sglang"]) == ("bf16", "fp32")
    assert rows["kimi-linear-48b"]["state_dtype_vllm"] == "fp32"  # KDA: always fp32 in vLLM
    assert rows["deepseek-v3"]["state_dtype"] is None


def test_kv_reports_size_when_part_lacks_the_weights_dtype(runner):
    """Issue 19: gpt-oss ships MXFP4 weights, which H200 has no tensor cores for; `kv` still
    prints S_kv (18 full layers x 8 KV heads x 128 x 2 B per token, 18 sliding layers capped at
    128 tokens) and names the dtype as the reason there is no T_prefill."""
    res = ok(run(runner, "kv", "-m", DATA / "gpt_oss_120b.json", "-H", "h200", "--lengths", "1K", "-f", "json"))
    row = json.loads(res.stdout)[0]
    assert row["kv_cache_bytes"] == 18 * 8 * 128 * 2 * 1024 + 18 * 8 * 128 * 2 * 128
    assert row["weights_dtype_supported"] is False and "FP4" in row["prefill_note"]
