"""Regression tests for issue 9's bad-input defects (classes 4-9), one per reproducer: every bad
input is one clean line naming the file (and key), exit code 2, nothing written; valid input that
was refused loads. The mechanisms are catalog/files.py (safe reading), catalog/strict_yaml.py
(bounded YAML), reports/export.write_atomic (outputs) and the CLI's one-line usage errors."""

from __future__ import annotations

import copy
import json
import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.files import MAX_YAML_BYTES
from prfaas_plan.catalog.model import load_model
from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.errors import MAX_MESSAGE_CHARS, PlanError
from prfaas_plan.planning.scenario import MAX_MIXTURE_COMPONENTS, load_scenario
from prfaas_plan.planning.workload import load_trace_csv
from prfaas_plan.reports.export import write_atomic

DATA = Path(__file__).resolve().parent / "data"
BASE = yaml.safe_load((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env={"COLUMNS": "200"})


def cli(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, *words):
    """Exit code 2, exactly one 'error:' line on stderr (bounded), nothing on stdout, no
    escaped exception; every word in ``words`` appears in the line."""
    assert result.exit_code == 2, (result.exit_code, result.stderr, repr(result.exception))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert len(lines[0]) <= MAX_MESSAGE_CHARS + len("error: ")
    assert result.stdout == ""
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def scenario(tmp_path: Path, name: str = "s", mutate=None, text: str | None = None) -> Path:
    data = copy.deepcopy(BASE)
    data["name"] = name
    if mutate:
        mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def trace_scenario(tmp_path: Path, csv_path: Path | str) -> Path:
    return scenario(tmp_path, "traced", lambda d: d["workload"].__setitem__("input_tokens", {"kind": "trace", "csv": str(csv_path)}))


# --- class 4: valid input refused ----------------------------------------------------------------


def test_trace_csv_with_byte_order_mark_loads(tmp_path):
    """A CSV saved by Excel starts with a UTF-8 byte-order mark; its header is still input_tokens."""
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffinput_tokens,count\n1000,3\n20000,1\n".encode())
    d = load_trace_csv(path, "here")
    assert d.values == (1000.0, 20000.0)
    assert d.weights == (0.75, 0.25)


def test_yaml_with_byte_order_mark_loads(tmp_path):
    """A scenario file with a byte-order mark loads like one without."""
    plain = scenario(tmp_path, "plain")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"name: plain", b"name: bom"))
    assert load_scenario(bom).workload == load_scenario(plain).workload


# --- class 5: silently wrong numbers -------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -100, "fast", True])
def test_non_finite_purchasable_size_is_an_error(runner, tmp_path, bad):
    """Every entry of purchasable_gbit_per_s is checked as a number: NaN no longer slips past
    `s <= 0` and changes the plan."""
    path = scenario(tmp_path, mutate=lambda d: d["link"].__setitem__("purchasable_gbit_per_s", [100, bad, 400]))
    assert_clean_error(cli(runner, "optimize", path), str(path), "link.purchasable_gbit_per_s[1]")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("mode: paper\nmode: distribution\n", "'mode'"),
        ("slo:\n  tpot_ms: 25\n  tpot_ms: 30\n", "'slo.tpot_ms'"),
        ("a: {x: 1, 'x': 2}\n", "'a.x'"),
    ],
    ids=["top-level", "nested", "quoted-twin"],
)
def test_duplicate_yaml_key_is_an_error(runner, tmp_path, text, key):
    """YAML keeps the last of two equal keys; a planner must not guess which one was meant."""
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\n" + text, encoding="utf-8")
    assert_clean_error(cli(runner, "optimize", path), str(path), key, "given twice")


def test_duplicate_key_in_shipped_scenario_copy_names_lines(tmp_path):
    """The message names both lines, so the user finds the twin."""
    path = scenario(tmp_path)
    path.write_text(path.read_text() + "mode: paper\n")
    with pytest.raises(PlanError, match=r"key 'mode': given twice \(lines \d+ and \d+\)"):
        load_scenario(path)


# --- class 6: tracebacks on bad input ------------------------------------------------------------


def test_trace_that_is_a_folder(runner, tmp_path):
    (tmp_path / "dir.csv").mkdir()
    path = trace_scenario(tmp_path, tmp_path / "dir.csv")
    assert_clean_error(cli(runner, "optimize", path), str(path), "workload.input_tokens.csv", "is a folder")


def test_trace_that_is_binary(runner, tmp_path):
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 8)
    path = trace_scenario(tmp_path, tmp_path / "bin.csv")
    assert_clean_error(cli(runner, "optimize", path), "bin.csv", "binary")


def test_trace_that_is_not_utf8(runner, tmp_path):
    (tmp_path / "latin.csv").write_bytes(b"input_tokens\n1000\n\xe9\n")
    path = trace_scenario(tmp_path, tmp_path / "latin.csv")
    assert_clean_error(cli(runner, "optimize", path), "latin.csv", "not UTF-8", "line 3")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_trace_that_is_a_fifo_does_not_hang(tmp_path):
    """Opening a FIFO for reading blocks until a writer appears; the loader must refuse it at once."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_trace_csv(fifo, "here")
        except PlanError as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the test process can exit, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("loading a FIFO hangs")
    assert outcome and "not a regular file" in outcome[0]


def test_trace_that_is_a_symlink_loop(runner, tmp_path):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    path = trace_scenario(tmp_path, loop)
    assert_clean_error(cli(runner, "optimize", path), "loop.csv", "symbolic link loop")


def test_trace_that_is_unreadable(runner, tmp_path, monkeypatch):
    """Permission denied is one line. (As root every file is readable, so the refusal is
    simulated there by failing the open itself.)"""
    csv_path = tmp_path / "secret.csv"
    csv_path.write_text("input_tokens\n1000\n")
    if IS_ROOT:
        real_open = os.open

        def deny(p, *a, **k):
            if str(p) == str(csv_path):
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(p, *a, **k)

        monkeypatch.setattr(os, "open", deny)
    else:
        csv_path.chmod(0)
    path = trace_scenario(tmp_path, csv_path)
    assert_clean_error(cli(runner, "optimize", path), "secret.csv", "permission denied")


def test_trace_with_a_huge_field(runner, tmp_path):
    """A field over csv's 131,072-character limit is a malformed-CSV line, not a csv.Error."""
    (tmp_path / "wide.csv").write_text("input_tokens\n" + "1" * 140_000 + "\n")
    path = trace_scenario(tmp_path, tmp_path / "wide.csv")
    assert_clean_error(cli(runner, "optimize", path), "wide.csv", "malformed CSV")


def test_models_import_of_a_folder(runner, tmp_path):
    assert_clean_error(cli(runner, "models", "import", tmp_path), str(tmp_path), "is a folder")


def _config(tmp_path: Path, name: str = "config.json", **changes) -> Path:
    cfg = json.loads((DATA / "qwen3_235b_a22b.json").read_text())
    cfg.update(changes)
    path = tmp_path / name
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize("quant", [[1, 2], "fp8", 8])
def test_models_import_non_mapping_quantization_config(runner, tmp_path, quant):
    path = _config(tmp_path, quantization_config=quant)
    assert_clean_error(cli(runner, "models", "import", path), str(path), "quantization_config")


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "NaN", "Infinity"])
def test_models_import_non_finite_json_number(runner, tmp_path, literal):
    """JSON 1e999 parses as inf in Python; int(inf) was an OverflowError."""
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('"hidden_size": 4096', f'"hidden_size": {literal}'))
    assert_clean_error(cli(runner, "models", "import", path), str(path), "not valid JSON")


def test_models_import_absurd_layer_count(runner, tmp_path):
    """A layer count in the trillions is refused before a per-layer list is built for it."""
    path = _config(tmp_path, num_hidden_layers=10**12)
    assert_clean_error(cli(runner, "models", "import", path), "num_hidden_layers")


def test_300_character_file_names(runner, tmp_path):
    """File names past the 255-byte limit: as a scenario, a model, a trace and an output."""
    long = "a" * 300
    assert_clean_error(cli(runner, "optimize", tmp_path / f"{long}.yaml"), "file name too long")
    assert_clean_error(cli(runner, "kv", "-m", tmp_path / f"{long}.yaml", "-H", "h200"), "file name too long")
    assert_clean_error(cli(runner, "kv", "-m", long, "-H", "h200"), "unknown model name")
    path = trace_scenario(tmp_path, tmp_path / f"{long}.csv")
    assert_clean_error(cli(runner, "optimize", path), "file name too long")
    out = tmp_path / f"{long}.json"
    assert_clean_error(cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out), "cannot write")
    assert list(tmp_path.iterdir()) == [path]


def test_output_name_of_250_characters_works(runner, tmp_path):
    """A legal long output name is written: the temporary name beside it must stay legal too."""
    out = tmp_path / ("b" * 245 + ".json")
    res = cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out)
    assert res.exit_code == 0, res.stderr
    assert json.loads(out.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize(("key", "value"), [("prfaas.instances", 10**300), ("local.instances", 10**400), ("local.gpus_per_instance", 10**20)])
def test_integers_with_hundreds_of_digits(runner, tmp_path, key, value):
    section, field = key.split(".")
    path = scenario(tmp_path, mutate=lambda d: d[section].__setitem__(field, value))
    assert_clean_error(cli(runner, "optimize", path), str(path), key)


@pytest.mark.parametrize("option", ["--gpus", "--cluster-gpus"])
def test_gpu_options_with_hundreds_of_digits(runner, option):
    assert_clean_error(cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", option, "1" + "0" * 300), option)


def test_deeply_nested_yaml(runner, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_clean_error(cli(runner, "optimize", path), str(path), "nested deeper")


def test_self_referencing_yaml_alias(runner, tmp_path):
    path = scenario(tmp_path, "selfref")
    path.write_text(path.read_text() + "extra: &loop [1, *loop]\n")
    assert_clean_error(cli(runner, "optimize", path), str(path), "'extra[1]'", "refers to its own anchor")


def test_output_into_a_read_only_folder(runner, tmp_path, monkeypatch):
    """mkstemp ran outside the try, so PermissionError escaped. (As root a folder's mode does
    not stop writes, so there the refusal is simulated on the temporary file's creation.)"""
    folder = tmp_path / "ro"
    folder.mkdir()
    if IS_ROOT:
        real_open = os.open

        def deny(p, flags, *a, **k):
            if Path(p).parent == folder and flags & os.O_CREAT:
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(p, flags, *a, **k)

        monkeypatch.setattr(os, "open", deny)
    else:
        folder.chmod(0o555)
    out = folder / "kv.json"
    assert_clean_error(cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out), str(out), "Permission denied")
    assert list(folder.iterdir()) == []


def test_output_under_a_file(runner, tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    out = tmp_path / "plain.txt" / "kv.json"
    assert_clean_error(cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out), "is not a folder")


def test_output_onto_a_folder(runner, tmp_path):
    assert_clean_error(cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", tmp_path), "is a folder")


# --- class 7: denial of service from a small file ------------------------------------------------


def _laughs(levels: int) -> str:
    text = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels + 1):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n"
    return text


def test_billion_laughs_is_a_short_error_fast(runner, tmp_path):
    """2 KB of nested aliases expand to 10^9 strings; the old loader built an 8 MB error line
    (or ran out of memory). Now: one short line, well under a second."""
    path = scenario(tmp_path, "laughs")
    path.write_text(path.read_text() + _laughs(8))
    assert path.stat().st_size < 3000
    start = time.perf_counter()
    line = assert_clean_error(cli(runner, "optimize", path), str(path), "expand to more than")
    assert time.perf_counter() - start < 5
    assert len(line) < 300


def test_alias_mixture_of_a_million_components_is_refused_fast(runner, tmp_path):
    """A mixture whose components alias a mixture of 10, six levels deep, has 10^6 leaves."""
    leaf = "{kind: lognormal, mu: 9.9, sigma: 1.0, min_tokens: 128, max_tokens: 131072}"
    lines = [f"m0: &m0 {leaf}"]
    for i in range(1, 7):
        comps = ", ".join([f"{{weight: 1, distribution: *m{i - 1}}}"] * 10)
        lines.append(f"m{i}: &m{i} {{kind: mixture, components: [{comps}]}}")
    path = scenario(tmp_path, "mix", mutate=lambda d: d["workload"].__setitem__("input_tokens", "PLACEHOLDER"))
    text = path.read_text().replace("input_tokens: PLACEHOLDER", "input_tokens: *m6")
    path.write_text("\n".join(lines) + "\n" + text)
    start = time.perf_counter()
    assert_clean_error(cli(runner, "optimize", path), str(path))
    assert time.perf_counter() - start < 5


def test_mixture_component_cap_without_aliases(runner, tmp_path):
    """Written out in full (no aliases), a mixture is still capped at MAX_MIXTURE_COMPONENTS."""
    leaf = {"kind": "lognormal", "mu": 9.9, "sigma": 1.0, "min_tokens": 128, "max_tokens": 131072}
    comps = [{"weight": 1, "distribution": dict(leaf)} for _ in range(MAX_MIXTURE_COMPONENTS + 1)]
    path = scenario(tmp_path, mutate=lambda d: d["workload"].__setitem__("input_tokens", {"kind": "mixture", "components": comps}))
    assert_clean_error(cli(runner, "optimize", path), str(path), "workload.input_tokens", f"more than {MAX_MIXTURE_COMPONENTS}")


def test_yaml_size_cap(runner, tmp_path):
    path = scenario(tmp_path, "big")
    path.write_text(path.read_text() + "# " + "x" * MAX_YAML_BYTES + "\n")
    assert_clean_error(cli(runner, "optimize", path), str(path), "larger than")


def test_plan_error_messages_are_one_bounded_line():
    """Whatever a message is built from, a PlanError is one line of bounded length."""
    exc = PlanError("a\nb\r\nc" + "x" * 10 * MAX_MESSAGE_CHARS)
    assert "\n" not in str(exc) and "\r" not in str(exc)
    assert str(exc).startswith("a b c")
    assert len(str(exc)) == MAX_MESSAGE_CHARS


def test_huge_string_value_gives_a_short_message(runner, tmp_path):
    path = scenario(tmp_path, mutate=lambda d: d["prfaas"].__setitem__("use_profile", "y" * 100_000))
    line = assert_clean_error(cli(runner, "optimize", path), "prfaas.use_profile")
    assert len(line) < 300


# --- class 8: files -------------------------------------------------------------------------------


def test_import_name_with_a_folder_writes_nothing(runner, tmp_path, monkeypatch):
    """`--name a/b` (or ../x) used to write the check file outside the temporary folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("a/b", "../escape", ".hidden", "x" * 101):
        assert_clean_error(cli(runner, "models", "import", DATA / "qwen3_235b_a22b.json", "--name", name), "--name")
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "escape.yaml").exists()


def test_new_output_gets_the_umask_mode(runner, tmp_path):
    """A new -o file is created as open() would create it (0666 less the umask), not 0600."""
    out = tmp_path / "kv.json"
    old = os.umask(0o022)
    try:
        assert cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_replaced_output_keeps_its_mode(runner, tmp_path):
    out = tmp_path / "kv.json"
    out.write_text("old")
    out.chmod(0o640)
    assert cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert json.loads(out.read_text())


def test_read_only_output_is_not_replaced(runner, tmp_path):
    out = tmp_path / "kv.json"
    out.write_text("keep me")
    out.chmod(0o444)
    assert_clean_error(cli(runner, "kv", "-m", "kimi-linear-48b", "-H", "h200", "-f", "json", "-o", out), str(out), "read-only")
    assert out.read_text() == "keep me"
    assert list(tmp_path.iterdir()) == [out]


def test_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """Any Python-level failure while writing (here an interrupt during fsync) removes the
    temporary file and leaves the old content in place."""
    out = tmp_path / "plan.json"
    out.write_text("old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(out, "new")
    assert out.read_text() == "old"
    assert list(tmp_path.iterdir()) == [out]


def test_stale_temporary_of_a_killed_run_is_removed(tmp_path):
    """A run killed with SIGKILL leaves its temporary file; the next write to the same target
    removes it (its writer, named in the file name, no longer runs). Others' files stay."""
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".plan.json.prfaas-tmp-{dead_pid}-0badf00d"
    alive = tmp_path / f".plan.json.prfaas-tmp-{os.getpid()}-0badf00d"
    other = tmp_path / ".other.json.prfaas-tmp-1-0badf00d"
    for p in (stale, alive, other):
        p.write_text("partial")
    write_atomic(tmp_path / "plan.json", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["plan.json", alive.name, other.name])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_while_writing_cleans_up(tmp_path):
    """SIGTERM during the write raises SystemExit inside write_atomic, so its cleanup runs."""
    import signal
    import subprocess

    code = (
        "import os, signal, sys\n"
        "from prfaas_plan.reports import export\n"
        "def slow(fd):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "os.fsync = slow\n"
        f"export.write_atomic({str(tmp_path / 'plan.json')!r}, 'x' * 1000)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 128 + signal.SIGTERM, res.stderr
    assert list(tmp_path.iterdir()) == []


# --- class 9: exit codes and messages ------------------------------------------------------------


def test_whatif_fails_when_every_row_fails(runner):
    """A budget below every deployment makes every what-if infeasible: exit 2 with one line
    (the planned case fails first and names the budget), not a table of errors with exit 0."""
    assert_clean_error(cli(runner, "whatif", "paper-case-study", "--budget-usd-per-hour", "1"), "budget", "below the cheapest deployment")


@pytest.mark.parametrize(
    "args",
    [["optimize"], ["kv", "--bogus"], ["kv", "-m", "kimi-linear-48b", "-H", "h200", "--gpus", "many"],
     ["optimize", "paper-case-study", "--mode", "exact"], ["no-such-command"], ["kv", "-m", "kimi-linear-48b", "-H", "h200", "--gpus", "0"]],
    ids=["missing-argument", "unknown-option", "not-an-integer", "bad-choice", "unknown-command", "below-range"],
)
def test_usage_errors_are_one_line(runner, args):
    """click's usage errors were a framed multi-line block; now one line with exit code 2."""
    assert_clean_error(cli(runner, *args), "see --help")


def test_prefix_cache_hit_of_one_names_file_and_key(runner, tmp_path):
    path = scenario(tmp_path, mutate=lambda d: d["workload"].__setitem__("prefix_cache_hit_frac", 1))
    assert_clean_error(cli(runner, "optimize", path), str(path), "workload.prefix_cache_hit_frac")


# --- issue 8 items in models import --------------------------------------------------------------

#: The quantization_config that the FP8 checkpoints of Kimi K2 and MiMo-V2-Flash ship with
#: (block-wise e4m3, as DeepSeek-V3's); the reference configs in tests/data keep structure only.
FP8_BLOCK = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}


@pytest.mark.parametrize("config", ["mimo_v2_flash.json", "deepseek_v3_inference_config_671B.json"])
def test_import_reads_quantization_config(tmp_path, config):
    from prfaas_plan.catalog.hf_import import import_hf_config

    cfg = json.loads((DATA / config).read_text())
    cfg["quantization_config"] = FP8_BLOCK
    path = tmp_path / config
    path.write_text(json.dumps(cfg))
    data, notes = import_hf_config(path)
    assert data["dtypes"]["weights"] == "fp8"
    assert not any("bf16 assumed" in n for n in notes)


@pytest.mark.parametrize(
    ("quant", "dtype"),
    [({"quant_method": "mxfp4"}, "fp4"), ({"quant_method": "awq", "bits": 4}, "int4"),
     ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}}}, "int4"),
     ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "fp4"), ({"quant_method": "fbgemm_fp8"}, "fp8")],
    ids=["mxfp4", "awq-int4", "compressed-tensors-int4", "modelopt-nvfp4", "fbgemm-fp8"],
)
def test_import_quantization_methods(tmp_path, quant, dtype):
    from prfaas_plan.catalog.hf_import import import_hf_config

    data, _ = import_hf_config(_config(tmp_path, quantization_config=quant))
    assert data["dtypes"]["weights"] == dtype


def test_import_unknown_quantization_is_noted(tmp_path):
    from prfaas_plan.catalog.hf_import import import_hf_config

    data, notes = import_hf_config(_config(tmp_path, quantization_config={"quant_method": "hqq"}))
    assert data["dtypes"]["weights"] == "bf16"
    assert any("hqq" in n for n in notes)


def test_import_stdout_loads_under_any_file_name(runner, tmp_path):
    """`models import cfg.json > my-model.yaml` loads: a file given by path may carry any name."""
    res = cli(runner, "models", "import", DATA / "minimax_m2.json")
    assert res.exit_code == 0, res.stderr
    saved = tmp_path / "my-model.yaml"
    saved.write_text(res.stdout)
    m = load_model(saved)
    assert m.name == "minimax-m2"
    assert cli(runner, "kv", "-m", saved, "-H", "h200", "-f", "json").exit_code == 0


def test_copied_scenario_loads_under_another_name(tmp_path):
    """A copy of a shipped scenario runs without editing its name (issue 8 friction)."""
    copy_path = tmp_path / "my-copy.yaml"
    copy_path.write_text((catalog_dir("scenarios") / "paper-case-study.yaml").read_text())
    assert load_scenario(copy_path).name == "paper-case-study"


def test_catalog_name_must_still_match_its_file(tmp_path, monkeypatch):
    """Found by its catalog name, a file must carry that name (a name always finds its file)."""
    from prfaas_plan.catalog import paths
    from prfaas_plan.catalog.hardware import load_hardware

    (tmp_path / "hardware").mkdir()
    (tmp_path / "hardware" / "h999.yaml").write_text((catalog_dir("hardware") / "h200.yaml").read_text())
    monkeypatch.setattr(paths, "catalog_dir", lambda kind: tmp_path / kind)
    with pytest.raises(PlanError, match=r"key 'name': must equal the file name 'h999'"):
        load_hardware("h999")


@pytest.mark.parametrize("name, old, new, key", [
    ("paper-case-study", "hardware: h200", "hardware: b2000", "'prfaas.hardware'"),
    ("paper-case-study", "model: prfaas-1t-hybrid", "model: prfaas-1t-hybri", "'model'"),
    ("multi-site-slo", "hardware: [h200, b200]", "hardware: [h200, b2000]", "'sites.prfaas[0].hardware[1]'"),
])
def test_unknown_catalog_name_names_the_file_and_key(runner, tmp_path, name, old, new, key):
    """A part or model name the catalog lacks is the scenario key's error (file, key, the names
    it knows), wherever the name sits (a one-pair role, a candidate list, the model)."""
    text = (catalog_dir("scenarios") / f"{name}.yaml").read_text()
    assert old in text
    path = tmp_path / "s.yaml"
    path.write_text(text.replace(old, new, 1))
    assert_clean_error(cli(runner, "optimize", path), "s.yaml", key, "did you mean")
