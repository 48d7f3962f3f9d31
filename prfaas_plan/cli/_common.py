"""What every command shares: the output options (--format, --output) and `emit`, the scenario
options (--mode, --budget-usd-per-hour, --target-req-per-s, --set), each defined once as an
`Annotated` alias, and the PlanError boundary (`handles_errors`, `_fail`)."""

# No `from __future__ import annotations` in the typer modules: typer reads every command's
# annotations on each run, and as strings it would compile and evaluate them all again.

import functools
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..bounds import BOUNDS
from ..catalog.engines import ENGINES
from ..errors import PlanError
from ..reports.export import check_output, to_csv, to_json, write_atomic


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


EngineName = Enum("EngineName", {name: name for name in ENGINES}, type=str)
StateDtype = Enum("StateDtype", {d: d for d in ("fp32", "bf16", "fp16", "fp8")}, type=str)
EngineOpt = Annotated[Optional[EngineName], typer.Option("--engine", help="Serving engine whose defaults to apply: the recurrent-state dtype of linear-attention and Mamba layers (vllm: bf16 with fp32 for KDA and Nemotron-H and the checkpoint's own for Qwen3.5; sglang: fp32; trtllm: the checkpoint's, else bf16). Default: the model file's.")]
StateDtypeOpt = Annotated[Optional[StateDtype], typer.Option("--state-dtype", help="Recurrent-state (SSM) dtype of linear-attention and Mamba layers; overrides --engine's. Default: the model file's.")]
FormatOpt = Annotated[Optional[Format], typer.Option("--format", "-f", help="table (terminal), json, csv, or xlsx (needs --output). Default: table, or the --output file's extension.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write json/csv/xlsx to this file instead of stdout (written atomically; the format follows the extension .json/.csv/.xlsx).")]
_BY_EXTENSION = {".json": Format.json, ".csv": Format.csv, ".xlsx": Format.xlsx}


def output_format(fmt: Format | None, output: Path | None) -> Format:
    """The format to write: --format if given, else the --output file's extension, else a table.
    A --format that contradicts the extension is an error (a .xlsx file holding JSON helps nobody)."""
    if output is None:
        return fmt or Format.table
    by_ext = _BY_EXTENSION.get(output.suffix.lower())
    if fmt is None:
        if by_ext is None:
            raise PlanError(f"{output}: cannot tell the format from the extension; name the file .json, .csv or .xlsx or give --format")
        return by_ext
    if fmt is Format.table:
        raise PlanError("--output needs --format json, csv or xlsx (a table goes to the terminal)")
    if by_ext is not None and by_ext is not fmt:
        raise PlanError(f"--format {fmt.value} contradicts the extension of {output}; drop --format or name the file .{fmt.value}")
    return fmt


@contextmanager
def progress_bar(label: str, fmt: Format | None, output: Path | None):
    """``tick(done, total)`` for a library call: a bar on stderr when it is a terminal and the
    answer is a table or goes to a file (JSON or CSV on stdout is left alone, and rich is not
    even imported for it); otherwise a no-op."""
    if output is None and output_format(fmt, None) is not Format.table:
        yield lambda done, total: None
        return
    from ..reports.terminal import progress

    with progress(label) as tick:
        yield tick


def _fail(message: str) -> None:
    typer.echo(f"error: {PlanError(message)}", err=True)  # PlanError: one bounded line
    raise typer.Exit(2)


#: Parameters that name a file a command writes: checked by :func:`handles_errors` first.
OUTPUT_PARAMS = ("output", "plot")


def handles_errors(fn):
    """Turn PlanError into one clean line and exit code 2 (no traceback); check the command's
    output files (:data:`OUTPUT_PARAMS`) with :func:`check_output` before it runs."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            for name in OUTPUT_PARAMS:  # refused before the work, not after it (a FIFO nobody reads hung)
                if isinstance(kwargs.get(name), Path):
                    check_output(kwargs[name])
            return fn(*args, **kwargs)
        except PlanError as exc:
            _fail(str(exc))

    return wrapper


def _console():
    from ..reports.terminal import console

    return console()


def _about() -> list[tuple[str, object]]:
    """What produced a workbook (its first sheet): tool, version and date."""
    from datetime import datetime, timezone

    from .. import __version__

    return [("tool", "prfaas-plan"), ("version", __version__), ("generated_utc", datetime.now(timezone.utc).isoformat(timespec="seconds"))]


def emit(fmt: Format | None, output: Path | None, rows: list[dict], table_fn, sheets: dict[str, list[dict]] | None = None, document=None,
         workbook=None) -> None:
    """Write ``rows`` in the chosen format (see :func:`output_format`). ``document`` (default:
    rows) is what JSON gets; ``workbook`` (a function returning xlsx bytes) replaces the plain
    one-sheet-per-table workbook."""
    fmt = output_format(fmt, output)
    if fmt is Format.table:
        table_fn()
        return
    if fmt is Format.xlsx:
        if output is None:
            raise PlanError("--format xlsx needs --output FILE.xlsx")
        if workbook is None:
            from ..reports.xlsx import table_workbook  # openpyxl loads only for a workbook

            workbook = lambda: table_workbook(sheets or {"rows": rows}, about=_about())  # noqa: E731
        write_atomic(output, workbook())
        return
    text = to_json(rows if document is None else document) if fmt is Format.json else to_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)


class Mode(str, Enum):
    paper = "paper"
    distribution = "distribution"


ModeOpt = Annotated[Optional[Mode], typer.Option("--mode", help="paper: one representative length per path (l_long, l_short), as [PRFAAS]; distribution: expectations over the length distribution. Default: the scenario's.")]
BudgetOpt = Annotated[Optional[float], typer.Option("--budget-usd-per-hour", help=f"Maximise throughput within this budget (GPU rent + link), USD per hour ({BOUNDS['budget_usd_per_hour'].text()}); instance counts and link bandwidth become free. With a TTFT SLO in the scenario (slo.ttft_p90_s, ttft_p99_s, ttft_mean_s) or slo.max_utilisation_frac: the most goodput (req/s meeting it).")]
TargetOpt = Annotated[Optional[float], typer.Option("--target-req-per-s", help=f"Find the cheapest plan that sustains this many requests per second ({BOUNDS['target_req_per_s'].text()}); with a TTFT SLO (or slo.max_utilisation_frac) in the scenario, the cheapest whose goodput reaches it.")]

#: Exit code of a command run with --strict whose verdict is a WARNING.
STRICT_EXIT = 3
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit with code 3 when the verdict is a WARNING: a stated demand missed (the arrival rate, a TTFT or TPOT SLO at that rate, a utilisation cap, the budget, the target) or a loss to a baseline at equal cost. For scripts and CI; the output is written first.")]


def exit_if_warning(strict: bool, verdict: dict) -> None:
    """--strict: exit code 3 when ``verdict`` (planning/verdict.py) is not OK."""
    if strict and not verdict["ok"]:
        raise typer.Exit(STRICT_EXIT)
ScenarioArg = Annotated[str, typer.Argument(help="Shipped scenario name (see `prfaas-plan scenarios`) or path to a scenario YAML.")]

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Change a scenario key for this run: KEY=VALUE (dotted key, VALUE as in the YAML, e.g. link.bandwidth_gbit_per_s=50, workload.input_tokens_scale=2, local.usd_per_gpu_hour=3) or KEY*=FACTOR (e.g. workload.arrival_req_per_s*=1.5). Repeatable.")]


class ExecutorKind(str, Enum):
    serial = "serial"
    process = "process"
    dask = "dask"


ExecutorOpt = Annotated[Optional[ExecutorKind], typer.Option("--executor", help="Where independent tasks run: serial (this process), process (a local process pool of --workers), dask (a Dask cluster: --scheduler ADDRESS joins one, else a LocalCluster of --workers starts here; pip install \".[distributed]\"). Default: serial, or process when --workers > 1, or dask with --scheduler. Results are identical on each.")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", help="Worker processes for --executor process or a Dask LocalCluster (default: this machine's cores). Each worker runs one BLAS thread.")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Join a running Dask cluster at this address (e.g. tcp://10.0.0.5:8786); its workers need prfaas-plan installed.")]


def executor_from(kind: "ExecutorKind | None", workers: Optional[int], scheduler: Optional[str]):
    """The executor the options ask for (see ExecutorOpt); close it after use (a context manager)."""
    from ..execution.executors import make_executor

    name = kind.value if kind else ("dask" if scheduler else ("process" if workers and workers > 1 else "serial"))
    return make_executor(name, workers, scheduler)


UncertainOpt = Annotated[Optional[list[str]], typer.Option("--uncertain", help="An uncertain factor (1 = as the scenario states): NAME=KIND(param=value,...) or NAME=NUMBER, e.g. arrival_rate_factor=lognormal(mu=0.1,sigma=0.2), link_bandwidth_factor=uniform(min=0.5,max=1), input_tokens_factor=triangular(min=0.9,mode=1,max=1.4), prfaas_price_factor=normal(mean=1,sd=0.1). Names: arrival_rate_factor, input_tokens_factor, prefill_time_factor, decode_time_factor, link_bandwidth_factor, prfaas_price_factor, local_price_factor, link_price_factor. Overrides the scenario's uncertainty: section; the two time factors default to the engine model's error band. Repeatable.")]
SamplesOpt = Annotated[int, typer.Option("--samples", help="Monte Carlo samples (each re-evaluates a fleet under one draw of every uncertain factor).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Root seed: sample i draws from numpy default_rng([i, seed]); the same seed gives the same result on any executor.")]
DesignOpt = Annotated[str, typer.Option("--design", help="lhs (Latin hypercube: one sample per stratum of each factor) or random.")]
