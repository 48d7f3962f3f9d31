"""The `prfaas-plan` command line: thin commands over the library; the only module importing typer.

Every command turns a :class:`~prfaas_plan.errors.PlanError` into one line on stderr and exit
code 2; nothing is written when a command fails.
"""

# No `from __future__ import annotations` here: typer reads every command's annotations on each
# run, and as strings it would compile and evaluate them all again (~5 ms a run).

import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core

from . import units
from .catalog.fields import MAX_COUNT
from .catalog.hardware import list_hardware, load_hardware
from .catalog.hf_import import import_hf_config
from .catalog.model import list_models, load_model, model_from_mapping
from .cli_values import one_blas_thread, plain_values
from .errors import PlanError
from .reports.export import to_csv, to_json, to_xlsx_bytes, write_atomic

#: click's base of usage errors, found through typer's public BadParameter (recent typer vendors
#: click, older typer uses the click package).
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(typer.core.TyperGroup):
    """The root command group: a usage error (unknown option, missing argument, bad value) is
    one line on stderr and exit code 2, like a PlanError, instead of click's framed block."""

    def parse_args(self, ctx, args):
        plain_values(self, ctx)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # the command run, and below a group (hardware, models) its commands
            plain_values(command, ctx, depth=1)
        return name, command, rest

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        one_blas_thread()
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as exc:
            command = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) is not None else ""
            typer.echo(str(PlanError(f"error: {command}{exc.format_message()} (see --help)")), err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Capacity planner for Prefill-as-a-Service (PrfaaS): route long prompts to a remote "
    "prefill cluster, ship their KV cache over Ethernet, decode locally.",
)
hardware_app = typer.Typer(no_args_is_help=True, help="The accelerator catalog (hardware/*.yaml).")
models_app = typer.Typer(no_args_is_help=True, help="The model catalog (models/*.yaml).")
app.add_typer(hardware_app, name="hardware")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"prfaas-plan {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Capacity planner for Prefill-as-a-Service (PrfaaS)."""

app.add_typer(models_app, name="models")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


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


def _fail(message: str) -> None:
    typer.echo(f"error: {PlanError(message)}", err=True)  # PlanError: one bounded line
    raise typer.Exit(2)


def handles_errors(fn):
    """Turn PlanError into one clean line and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PlanError as exc:
            _fail(str(exc))

    return wrapper


def _console():
    from .reports.render import console

    return console()


def _about() -> list[tuple[str, object]]:
    """What produced a workbook (its first sheet): tool, version and date."""
    from datetime import datetime, timezone

    from . import __version__

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
        write_atomic(output, workbook() if workbook else to_xlsx_bytes(sheets or {"rows": rows}, about=_about()))
        return
    text = to_json(rows if document is None else document) if fmt is Format.json else to_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)


# --- hardware -----------------------------------------------------------------------------------


@hardware_app.command("list")
@handles_errors
def hardware_list(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the parts: dense peaks (TFLOP/s), memory, bandwidth, price ($/GPU-hour)."""
    rows = []
    for hw in list_hardware():
        rows.append(
            {
                "name": hw.name,
                "bf16_dense_tflops": hw.peak_flop_per_s.get("bf16", 0) / units.TFLOP or None,
                "fp8_dense_tflops": hw.peak_flop_per_s.get("fp8", 0) / units.TFLOP or None,
                "fp4_dense_tflops": hw.peak_flop_per_s.get("fp4", 0) / units.TFLOP or None,
                "memory": hw.memory_capacity_as_stated,
                "memory_bandwidth_tb_per_s": hw.memory_bandwidth_bytes_per_s / units.TB,
                "rent_usd_per_gpu_hour": hw.rent_usd_per_gpu_hour,
                "efficiency_basis": hw.efficiency.basis,
                "hypothetical": hw.hypothetical,
            }
        )

    def table():
        from .reports.render import fmt as f
        from .reports.render import rows_table, text

        cols = [("name", "name", text), ("bf16_dense_tflops", "BF16 TFLOP/s", f(",.0f")), ("fp8_dense_tflops", "FP8 TFLOP/s", f(",.0f")),
                ("fp4_dense_tflops", "FP4 TFLOP/s", f(",.0f")), ("memory", "memory", text), ("memory_bandwidth_tb_per_s", "HBM TB/s", f(".2f")),
                ("rent_usd_per_gpu_hour", "$/GPU-h", f(".2f")), ("efficiency_basis", "efficiency", text), ("hypothetical", "hypothetical", text)]
        _console().print(rows_table(rows, cols, title="Hardware catalog (dense peaks; prices are rent per GPU-hour)"))

    emit(fmt, output, rows, table)


@hardware_app.command("show")
@handles_errors
def hardware_show(name: Annotated[str, typer.Argument(help="Catalog name (e.g. h200) or path to a YAML file.")]) -> None:
    """Show one part with its sources, estimates and efficiency settings."""
    from .reports.render import kv_value_table

    hw = load_hardware(name)
    e = hw.efficiency
    pairs = [("description", hw.description), ("hypothetical", str(hw.hypothetical))]
    pairs += [(f"{d} dense peak", f"{v / units.TFLOP:,.0f} TFLOP/s") for d, v in hw.peak_flop_per_s.items()]
    pairs += [
        ("memory", f"{hw.memory_capacity_as_stated} ({hw.memory_capacity_bytes / units.GIB:.1f} GiB)"),
        ("memory bandwidth", f"{hw.memory_bandwidth_bytes_per_s / units.TB:.2f} TB/s"),
        ("scale-up per direction", f"{hw.scaleup_bytes_per_s / units.GB:.0f} GB/s" if hw.scaleup_bytes_per_s else "none"),
        ("scale-out NIC", f"{units.bytes_per_s_to_gbit_per_s(hw.scaleout_bytes_per_s):.0f} Gbit/s"),
        ("power", f"{hw.power_w:.0f} W" if hw.power_w else "not published"),
        ("rent", f"${hw.rent_usd_per_gpu_hour:.2f}/GPU-hour ({hw.price_date}; {hw.price_source})"),
        ("efficiency basis", e.basis),
        ("scale-up domain", f"{hw.gpus_per_node} GPUs per node"),
        ("fractions of peak", f"GEMM {e.gemm_frac}, attention {e.attention_frac}, linear attention {e.linear_attention_frac}, HBM {e.memory_frac}, links {e.link_frac}"),
        ("overheads", f"{e.request_overhead_s:.3f} s per request alone, {e.forward_overhead_s * 1e3:.1f} ms per prefill forward, "
                      f"{e.decode_step_overhead_s * 1e3:.1f} ms + {e.decode_request_overhead_s * 1e6:.1f} us per request per decode step"),
        ("expert imbalance", f"busiest EP rank +{e.expert_imbalance_frac:.0%}; usable memory {e.memory_usable_frac}"),
    ]
    pairs += [("source", s) for s in hw.sources]
    pairs += [(f"estimate: {k}", n) for k, n in hw.estimates]
    _console().print(kv_value_table(pairs, title=f"{hw.name} ({hw.path})"))


# --- models -------------------------------------------------------------------------------------


@models_app.command("list")
@handles_errors
def models_list(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the models: layer stack, parameters, KV bytes per token and fixed state per request."""
    from .roofline import counts
    from .roofline.kv import fixed_state_bytes, kv_bytes_per_token

    rows = [
        {
            "name": m.name,
            "architecture": m.architecture_summary(),
            "total_params_b": counts.total_params(m) / 1e9,
            "active_params_b": counts.active_params(m) / 1e9,
            "weights_dtype": m.dtypes.weights,
            "kv_bytes_per_token": kv_bytes_per_token(m),
            "fixed_state_mib": units.bytes_to_mib(fixed_state_bytes(m)),
            "profiles": len(m.prefill_profiles) + len(m.decode_profiles),
        }
        for m in list_models()
    ]

    def table():
        from .reports.render import fmt as f
        from .reports.render import rows_table, text

        cols = [("name", "name", text), ("architecture", "architecture", text), ("total_params_b", "total B", f(".0f")),
                ("active_params_b", "active B", f(".1f")), ("weights_dtype", "weights", text), ("kv_bytes_per_token", "KV B/token", f(",.0f")),
                ("fixed_state_mib", "fixed MiB/req", f(".1f")), ("profiles", "profiles", f("d"))]
        _console().print(rows_table(rows, cols, title="Model catalog (parameters computed from the layer stack)"))

    emit(fmt, output, rows, table)


@models_app.command("show")
@handles_errors
def models_show(name: Annotated[str, typer.Argument(help="Catalog name (e.g. kimi-linear-48b) or path to a YAML file.")]) -> None:
    """Show one model: layer groups, parameters, KV formula terms, profiles, sources, estimates."""
    from .reports.render import kv_value_table
    from .roofline import counts
    from .roofline.kv import fixed_state_bytes, kv_bytes_per_token, swa_bytes_per_token

    m = load_model(name)
    pub = lambda v: f" (published {v / 1e9:g}B)" if v else ""  # noqa: E731
    pairs = [
        ("description", m.description),
        ("layers", f"{m.num_layers}: {m.architecture_summary()}"),
        ("hidden / vocab", f"{m.hidden_size} / {m.vocab_size}"),
        ("dtypes", f"weights {m.dtypes.weights}, KV {m.dtypes.kv_cache}, linear state {m.dtypes.linear_state}, conv {m.dtypes.conv_state}"),
        ("total parameters", f"{counts.total_params(m) / 1e9:.1f}B{pub(m.published_total_params)}"),
        ("active parameters", f"{counts.active_params(m) / 1e9:.1f}B{pub(m.published_active_params)}"),
        ("weights", f"{counts.weight_bytes(m) / units.GB:.0f} GB"),
        ("KV per token", f"{kv_bytes_per_token(m):,.0f} B (full attention + MLA)"),
        ("SWA KV per token", f"{swa_bytes_per_token(m):,.0f} B up to the window"),
        ("fixed per request", f"{units.bytes_to_mib(fixed_state_bytes(m)):.2f} MiB (linear-attention state + conv tail)"),
    ]
    for g in m.layers:
        pairs.append((f"layer group {g.kind}", ", ".join(f"{k}={v}" for k, v in vars(g).items() if k != "kind")))
    for p in m.prefill_profiles + m.decode_profiles:
        kind = "prefill" if hasattr(p, "prefill_time_s") else "decode"
        pairs.append((f"{kind} profile", f"{p.gpus} x {p.hardware}{' (derived)' if p.derived else ''}: {p.source}"))
    pairs += [("source", s) for s in m.sources]
    pairs += [(f"estimate: {k}", n) for k, n in m.estimates]
    _console().print(kv_value_table(pairs, title=f"{m.name} ({m.path})"))


@models_app.command("import")
@handles_errors
def models_import(
    config: Annotated[Path, typer.Argument(help="A Hugging Face config.json (local file).")],
    name: Annotated[Optional[str], typer.Option(help="Model name (default: from the file name).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the YAML here (default: stdout).")] = None,
) -> None:
    """Turn a Hugging Face config.json into a model YAML; say what could not be mapped."""
    import yaml

    data, notes = import_hf_config(config, name=name or (output.stem if output else None))
    text = "# Imported by `prfaas-plan models import`; check dtypes and the estimates below.\n" + yaml.safe_dump(data, sort_keys=False, width=110)
    try:  # the result must load before anything is written (it is checked in memory)
        model_from_mapping(yaml.safe_load(text), str(config))
    except PlanError as exc:
        raise PlanError(f"imported model does not load: {exc}") from None
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)
    for n in notes:
        typer.echo(f"not mapped: {n}", err=True)


# --- kv -----------------------------------------------------------------------------------------


def _tokens_opt(option: str, value: Optional[str]) -> Optional[int]:
    """A token count given on the command line (K = 1024), its errors named by the option."""
    if value is None:
        return None
    try:
        return units.parse_tokens(value)
    except PlanError as exc:
        raise PlanError(f"{option}: {exc}") from None


def _parse_lengths(text: str) -> list[int]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise PlanError("--lengths: give at least one length, e.g. 1K,8K,32K,128K")
    return [_tokens_opt("--lengths", p) for p in parts]


@app.command()
@handles_errors
def kv(
    model: Annotated[str, typer.Option("--model", "-m", help="Model catalog name or path to a model YAML.")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Part catalog name or path to a hardware YAML.")],
    gpus: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="GPUs per prefill instance (P).")] = 8,
    lengths: Annotated[str, typer.Option(help="Comma-separated prompt lengths in tokens; K = 1024 (128K = 131,072).")] = "1K,8K,32K,128K",
    roofline: Annotated[bool, typer.Option("--roofline", help="Ignore measured profiles; use the roofline only.")] = False,
    cluster_gpus: Annotated[Optional[int], typer.Option(min=1, max=MAX_COUNT, help="Also show the egress (Gbit/s) an N-GPU prefill cluster needs at each length ([PRFAAS] Eq. 2).")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Per prompt length: KV cache S_kv (MiB), prefill time T_prefill (s) and what bounds it, and
    KV throughput Phi_kv = S_kv / T_prefill (Gbit/s, 1 Gbit = 1e9 bit; [PRFAAS] Eq. 1)."""
    from .reports.kv_report import kv_rows, kv_summary

    lens = _parse_lengths(lengths)
    m, hw = load_model(model), load_hardware(hardware)
    rows = kv_rows(m, hw, gpus, lens, use_profile=not roofline, cluster_gpus=cluster_gpus)

    def table():
        from .reports.render import fmt as f
        from .reports.render import rows_table, text

        s = kv_summary(m)
        cols = [("input_tokens", "input", lambda v: units.format_tokens(v)), ("kv_cache_mib", "S_kv MiB", f(",.1f")),
                ("prefill_time_s", "T_prefill s", f(".3f")), ("kv_throughput_gbit_per_s", "Phi_kv Gbit/s", f(".2f")), ("bound", "bound", text)]
        if rows[0]["source"].startswith("roofline"):
            from .roofline.terms import TERM_NAMES

            keys = [k.replace("-", "_") + "_s" for k in TERM_NAMES]
            cols += [(k, k[:-2].replace("_", " ") + " s", f(".3f")) for k in keys if any(r.get(k) for r in rows)]
        if cluster_gpus:
            cols.append(("cluster_egress_gbit_per_s", f"egress {cluster_gpus} GPUs Gbit/s", f(",.0f")))
        caption = (f"S_kv = {s['kv_bytes_per_token']:,.0f} B/token x l + {units.bytes_to_mib(s['fixed_bytes_per_request']):.1f} MiB fixed"
                   + (f" + SWA {s['swa_bytes_per_token_below_window']:,.0f} B/token up to the window" if s["swa_bytes_per_token_below_window"] else "")
                   + f"; T_prefill from {rows[0]['source']}")
        con = _console()
        con.print(rows_table(rows, cols, title=f"{m.name} on {gpus} x {hw.name}", caption=caption, width=con.width, keep=5))

    emit(fmt, output, rows, table)


# --- validate -----------------------------------------------------------------------------------


@app.command()
@handles_errors
def validate(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """The paper's Tables 3, 5 and 6 and the measured engine points (engines-train.json) beside
    this model's numbers, with errors."""
    from .paper import validation

    rows = validation.all_rows()

    def table():
        from .reports.render import fmt as f
        from .reports.render import rows_table, text

        def num(v) -> str:
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"

        con = _console()
        for tab, title in validation.TITLES.items():
            sub = [r for r in rows if r["table"] == tab]
            cols = [("item", "item", text), ("input_tokens", "input", lambda v: units.format_tokens(v) if v else "-"), ("quantity", "quantity", text),
                    ("paper", "paper", num), ("model", "model", num), ("error_pct", "error %", f("+.1f")), ("note", "note", text)]
            con.print(rows_table(sub, cols, title=title, caption=validation.summary(sub)))

    emit(fmt, output, rows, table, sheets={f"table{t}": [r for r in rows if r["table"] == t] for t in validation.TITLES})


def main() -> None:  # pragma: no cover - console-script entry point
    app()


# --- optimize / whatif --------------------------------------------------------------------------


class Mode(str, Enum):
    paper = "paper"
    distribution = "distribution"


ModeOpt = Annotated[Optional[Mode], typer.Option("--mode", help="paper: one representative length per path (l_long, l_short), as [PRFAAS]; distribution: expectations over the length distribution. Default: the scenario's.")]
BudgetOpt = Annotated[Optional[float], typer.Option("--budget-usd-per-hour", help="Maximise throughput within this budget (GPU rent + link), USD per hour; instance counts and link bandwidth become free.")]
TargetOpt = Annotated[Optional[float], typer.Option("--target-req-per-s", help="Find the cheapest plan that sustains this many requests per second.")]
ScenarioArg = Annotated[str, typer.Argument(help="Shipped scenario name (see `prfaas-plan scenarios`) or path to a scenario YAML.")]


@app.command()
@handles_errors
def scenarios() -> None:
    """List the shipped scenarios."""
    from .planning.scenario import list_scenarios, load_scenario

    for name in list_scenarios():
        typer.echo(f"{name:32s} {load_scenario(name).description}")


@app.command()
@handles_errors
def optimize(
    scenario: ScenarioArg,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Plan a deployment: routing threshold t (tokens), PrfaaS / local prefill / local decode
    instances, link bandwidth (Gbit/s), throughput Lambda_max (req/s), cost (USD/hour), what binds,
    and the baselines (homogeneous PD, naive heterogeneous) beside it ([PRFAAS] Eq. 3-8), each
    with its analytic TTFT (seconds) at zero load and at the scenario's arrival rate, and its
    goodput (req/s meeting slo.ttft_p90_s) when the scenario sets one."""
    from .planning.planner import PLAN_KEYS
    from .planning.planner import optimize as plan
    from .planning.scenario import load_scenario
    from .reports.provenance import provenance, provenance_columns

    from .latency.plans import add_latency, latency_columns

    sc = load_scenario(scenario)
    result = add_latency(sc, plan(sc, mode.value if mode else None, budget_usd_per_hour, target_req_per_s))
    prov = provenance(sc, result["mode"], "optimize", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s)
    extra = {"verdict": result["verdict"]["text"], "prices": result["prices"], "load": result.get("load"), **provenance_columns(prov)}
    rows = [{"plan": "prfaas", **{k: result[k] for k in PLAN_KEYS}, **latency_columns(result), **extra}]
    rows += [{"plan": name, **{k: b[k] for k in PLAN_KEYS}, **latency_columns(b), **extra} for name, b in result["baselines"].items() if b]

    def table():
        from .reports.render import print_plan

        print_plan(_console(), sc, result)

    def workbook():
        from .reports.review import build_review
        from .reports.xlsx_review import review_workbook

        return review_workbook(build_review(sc, mode.value if mode else None, budget_usd_per_hour, target_req_per_s, command="optimize"))

    emit(fmt, output, rows, table, document={**result, "provenance": prov}, workbook=workbook)


SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Change a scenario key for this run: KEY=VALUE (dotted key, VALUE as in the YAML, e.g. link.bandwidth_gbit_per_s=50, workload.input_tokens_scale=2, local.usd_per_gpu_hour=3) or KEY*=FACTOR (e.g. workload.arrival_req_per_s*=1.5). Repeatable.")]


@app.command()
@handles_errors
def whatif(
    scenario: ScenarioArg,
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Each what-if read twice: RE-PLAN (answer the question again, buying a new fleet) and STRESS
    (keep the planned PrfaaS/local instances and link, change the conditions: can it still carry
    the arrival rate or target?). With --set: your what-if (all --set together); without: the
    standard list (link halves or drops to 10% at the same $ per Gbit/s, prompts 2x longer or
    shorter, prefix cache hits 50%, GPU prices +50%, load +50%)."""
    from .planning.overrides import parse_sets
    from .planning.scenario import load_scenario
    from .planning.whatif import WhatIf, whatif_rows
    from .reports.provenance import provenance, provenance_columns

    sc = load_scenario(scenario)
    whatifs = None
    if set_:
        overrides = parse_sets(set_)
        load_scenario(scenario, overrides)  # a bad key or value fails here, before any planning
        whatifs = (WhatIf("as planned"), WhatIf(", ".join(x for x in set_), overrides))
    m = mode.value if mode else None
    rows = whatif_rows(sc, m, budget_usd_per_hour, target_req_per_s, whatifs)
    prov = provenance(sc, m or sc.mode, "whatif", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s, set=set_)

    def table():
        from .reports.render import whatif_table

        con = _console()
        for t in whatif_table(sc, rows):
            con.print(t)

    def workbook():
        from .reports.xlsx_review import whatif_workbook

        return whatif_workbook(rows, prov)

    emit(fmt, output, [{**r, **provenance_columns(prov)} for r in rows], table, document={"provenance": prov, "whatifs": rows}, workbook=workbook)


# --- estimate (issue #6: one deployment's performance) ------------------------------------------


class EstimateFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class Dtype(str, Enum):
    bf16 = "bf16"
    fp8 = "fp8"
    fp4 = "fp4"
    int4 = "int4"


def _dt(value: Optional[Dtype]) -> Optional[str]:
    return value.value if value is not None else None


@app.command()
@handles_errors
def estimate(
    model: Annotated[str, typer.Option("--model", "-m", help="Model catalog name, model YAML, or a Hugging Face config.json.")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Part catalog name or hardware YAML.")],
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in the instance (P).")],
    tp: Annotated[Optional[int], typer.Option("--tp", help="Tensor-parallel degree (default: all GPUs of a scale-up domain).")] = None,
    ep: Annotated[Optional[int], typer.Option("--ep", help="Expert-parallel degree (default 1 = experts sharded by TP; across domains all GPUs).")] = None,
    dp_attention: Annotated[bool, typer.Option("--dp-attention", help="Data-parallel attention: P / (TP x PP) attention ranks.")] = False,
    pp: Annotated[Optional[int], typer.Option("--pp", help="Pipeline-parallel stages (default 1; across domains for dense models, all GPUs on parts without a scale-up link).")] = None,
    weights: Annotated[Optional[Dtype], typer.Option("--weights", help="Dtype of dense/attention weights (default: the model file's).")] = None,
    moe_weights: Annotated[Optional[Dtype], typer.Option("--moe-weights", help="Dtype of routed-expert weights (default: --weights).")] = None,
    attention_dtype: Annotated[Optional[Dtype], typer.Option("--attention-dtype", help="Attention compute dtype (default fp8 with an fp8 KV cache, else bf16).")] = None,
    kv_dtype: Annotated[Optional[Dtype], typer.Option("--kv-dtype", help="KV-cache dtype (default: the model file's).")] = None,
    isl: Annotated[str, typer.Option("--isl", help="Input tokens per request (K = 1024).")] = "1024",
    osl: Annotated[str, typer.Option("--osl", help="Output tokens per request (K = 1024).")] = "1024",
    context: Annotated[Optional[str], typer.Option("--context", help="Mean context while decoding, tokens (default ISL + OSL/2).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", help="Decode batch per instance (default: the largest that fits memory).")] = None,
    mtp_draft: Annotated[int, typer.Option("--mtp-draft", help="Multi-token prediction: draft tokens per decode step.")] = 0,
    mtp_accept: Annotated[Optional[float], typer.Option("--mtp-accept", help="Mean tokens emitted per request per step with MTP (1 .. draft + 1).")] = None,
    profile: Annotated[Optional[Path], typer.Option("--profile", help="Efficiency profile written by `calibrate` (replaces the part's efficiencies).")] = None,
    fmt: Annotated[EstimateFormat, typer.Option("--format", "-f", help="table, json or csv.")] = EstimateFormat.table,
    output: OutputOpt = None,
) -> None:
    """One deployment's performance: TTFT of one request alone (s), saturated prefill (input
    tokens/s per GPU), decode step, TPOT (s) and output tokens/s per GPU at a batch, with every
    time's terms and what binds. Weights that do not fit memory are reported, not refused."""
    from .catalog.hardware import apply_profile
    from .roofline.estimate import estimate as run_estimate

    m, hw = load_model(model), load_hardware(hardware)
    if profile is not None:
        hw = apply_profile(hw, profile)
    result = run_estimate(
        m, hw, gpus, isl=_tokens_opt("--isl", isl), osl=_tokens_opt("--osl", osl), context_tokens=_tokens_opt("--context", context),
        batch=batch, tp=tp, ep=ep, dp_attention=dp_attention or None, pp=pp, weights=_dt(weights), moe_weights=_dt(moe_weights),
        attention_dtype=_dt(attention_dtype), kv_dtype=_dt(kv_dtype), mtp_draft_tokens=mtp_draft, mtp_accepted_tokens=mtp_accept,
    )
    if fmt is EstimateFormat.table:
        if output is not None:
            raise PlanError("--output needs --format json or csv")
        from .reports.render import estimate_tables

        for t in estimate_tables(result):
            _console().print(t)
        return
    text = to_json(result) if fmt is EstimateFormat.json else to_csv([result])
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)


# --- sweep --------------------------------------------------------------------------------------


@app.command()
@handles_errors
def sweep(
    scenario: ScenarioArg,
    vary: Annotated[list[str], typer.Option("--vary", help="A scenario key and its values: KEY=START:STOP:N (N evenly spaced values, ends included) or KEY=v1,v2,... Give one or two --vary (a 2-D grid).")],
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the sweep (Lambda_max, req/s) to this .png or .svg file.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Answer the scenario's question at every value of one or two keys (re-planned at each
    point): threshold (tokens), instances, link (Gbit/s), Lambda_max (req/s), $/hour, $ per 1k
    requests, what binds. Shows a progress bar on a terminal."""
    from .planning.overrides import parse_axis, parse_sets
    from .planning.scenario import load_scenario
    from .planning.sweep import sweep as run_sweep
    from .reports.provenance import provenance, provenance_columns

    sc = load_scenario(scenario, parse_sets(set_))
    axes = [parse_axis(v) for v in vary]
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise PlanError(f"--plot {plot}: name the file .png or .svg")
    m = mode.value if mode else None
    fmt_now = output_format(fmt, output)
    if fmt_now is Format.table or output is not None:
        from .reports.render import progress

        with progress(f"sweep {', '.join(k for k, _ in axes)}") as tick:
            rows = run_sweep(sc, axes, m, budget_usd_per_hour, target_req_per_s, progress=tick)
    else:
        rows = run_sweep(sc, axes, m, budget_usd_per_hour, target_req_per_s)
    keys = [k for k, _ in axes]
    prov = provenance(sc, m or sc.mode, "sweep", budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s, vary=vary)
    def table():
        from .reports.render import sweep_table

        con = _console()
        con.print(sweep_table(sc, rows, keys, con.width))

    def workbook():
        from .reports.xlsx_review import sweep_workbook

        return sweep_workbook(sc.name, rows, keys, prov)

    emit(fmt, output, [{**r, **provenance_columns(prov)} for r in rows], table, document={"provenance": prov, "points": rows}, workbook=workbook)
    if plot is not None:
        from .reports import plots

        fig = plots.sweep(rows, keys)
        write_atomic(plot, plots.svg(fig) if plot.suffix.lower() == ".svg" else plots.png(fig))


# --- calibrate (issue #6: fit the efficiencies to your own engine) --------------------------------


@app.command()
@handles_errors
def calibrate(
    measurements: Annotated[Optional[Path], typer.Argument(help="YAML (a `measurements` list) or CSV of setups and measured ttft_s, prefill_tokens_per_s_per_gpu, decode_step_s, tpot_s or decode_tokens_per_s_per_gpu.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Profile file to write (YAML; written atomically, only after a successful fit).")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Comma-separated parameters to fit (default: every one the measurements respond to).")] = None,
    microbench: Annotated[bool, typer.Option("--microbench", help='Measure kernel ceilings on the local GPU instead (needs torch: pip install ".[gpu]").')] = False,
    hardware: Annotated[Optional[str], typer.Option("--hardware", "-H", help="The part the microbenchmark runs on (catalog name or YAML).")] = None,
    fmt: Annotated[EstimateFormat, typer.Option("--format", "-f", help="table, json or csv (the per-measurement errors).")] = EstimateFormat.table,
) -> None:
    """Fit the engine efficiencies (fractions of peak, overheads) to your own measurements and
    write them as a profile for `estimate --profile` and scenario clusters
    (`efficiency_profile`); prints the errors before and after. With --microbench, measure
    GEMM, attention, HBM and linear-attention kernel ceilings on the local GPU instead."""
    import datetime

    import yaml

    date = datetime.date.today().isoformat()
    if microbench:
        if measurements is not None:
            raise PlanError("give a measurement file or --microbench, not both")
        if hardware is None:
            raise PlanError("--microbench needs --hardware (the part it runs on, for its datasheet peaks)")
        from .roofline.microbench import microbench_profile

        doc, rows = microbench_profile(load_hardware(hardware), date)
    else:
        if measurements is None:
            raise PlanError("give a measurement file (YAML or CSV), or --microbench")
        from .roofline.fit import fit_measurements, load_measurements, profile_document

        keys = tuple(k.strip() for k in fit.split(",") if k.strip()) if fit else None
        result = fit_measurements(load_measurements(measurements), keys)
        doc = profile_document(result, str(measurements), date)
        rows = result.rows
    if output is not None:
        write_atomic(output, yaml.safe_dump(doc, sort_keys=False))
    if fmt is EstimateFormat.table:
        from .reports.render import fmt as f
        from .reports.render import rows_table, text

        if microbench:
            cols = [("parameter", "parameter", text), ("measured_frac", "fraction of peak", f(".3f"))]
        else:
            cols = [("where", "measurement", text), ("metric", "metric", text), ("measured", "measured", f(".4g")),
                    ("before", "before fit", f(".4g")), ("after", "after fit", f(".4g"))]
        caption = ", ".join(f"{k} {v:.3g}" for k, v in doc.get("errors", {}).items()) + (f"; wrote {output}" if output else "; no --output: nothing written")
        _console().print(rows_table(rows, cols, title=f"calibrate: {doc['fitted_on']}", caption=caption))
        return
    sys.stdout.write(to_json(doc) if fmt is EstimateFormat.json else to_csv(rows))


# --- report -------------------------------------------------------------------------------------


@app.command()
@handles_errors
def report(
    scenario: ScenarioArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="report.html (one self-contained file: inline SVG, nothing fetched), report.md (Markdown plus PNGs in report_files/), or report.xlsx (the reviewer's workbook).")],
    set_: SetOpt = None,
    mode: ModeOpt = None,
    budget_usd_per_hour: BudgetOpt = None,
    target_req_per_s: TargetOpt = None,
) -> None:
    """A design-review report: the question, every input with its source (estimates flagged), the
    length histogram, the plan beside the baselines, what binds and the headroom, plots ([PRFAAS]
    Fig. 5 a/b, link bandwidth, budget, Phi_kv), the what-ifs and the assumptions."""
    from .planning.overrides import parse_sets
    from .planning.scenario import load_scenario
    from .reports.review import build_review

    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".xlsx"):
        raise PlanError(f"{output}: name the report .html, .md or .xlsx")
    if not output.parent.exists():
        raise PlanError(f"{output}: folder {output.parent} does not exist")
    sc = load_scenario(scenario, parse_sets(set_))
    rv = build_review(sc, mode.value if mode else None, budget_usd_per_hour, target_req_per_s, command="report")
    if suffix == ".xlsx":
        from .reports.xlsx_review import review_workbook

        write_atomic(output, review_workbook(rv))
        written = [output]
    else:
        from .reports.html_report import write_report

        written = write_report(rv, output)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    typer.echo(rv["plan"]["verdict"]["text"], err=True)


# --- simulate (issue #7) -------------------------------------------------------------------------


class Policy(str, Enum):
    static = "static"
    bandwidth_aware = "bandwidth-aware"
    cache_aware = "cache-aware"


class Baseline(str, Enum):
    prfaas = "prfaas"
    homogeneous = "homogeneous"
    naive = "naive"


class PrefixCacheSize(str, Enum):
    hbm = "hbm"
    unlimited = "unlimited"


def _params(items: Optional[list[str]]) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlanError(f"--policy-param {item!r}: give KEY=VALUE, e.g. u_high=0.8")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise PlanError(f"--policy-param {item!r}: {value!r} is not a number") from None
    return out


@app.command()
@handles_errors
def simulate(
    scenario: ScenarioArg,
    load: Annotated[Optional[float], typer.Option("--load", help="Arrival rate as a fraction of the simulated deployment's Lambda_max (e.g. 0.8; above 1 overloads it). Default: the scenario's arrival_req_per_s, else 0.8.")] = None,
    arrival_req_per_s: Annotated[Optional[float], typer.Option("--arrival-req-per-s", help="Arrival rate, requests per second (instead of --load).")] = None,
    trace: Annotated[Optional[str], typer.Option("--trace", help="Replay a trace's arrivals and lengths: a shipped name (mooncake_fast25_conversation_trace, azure2023_conv) or a path (Mooncake JSONL, Azure CSV). With --load or --arrival-req-per-s its times are scaled to that rate.")] = None,
    duration_s: Annotated[Optional[float], typer.Option("--duration-s", help="Seconds of arrivals to simulate (the run then drains). Default: 3,600 s, a trace's span, or a rate shape's span.")] = None,
    policy: Annotated[Policy, typer.Option("--policy", help="Routing: static (t as planned), bandwidth-aware (t re-searched when the link or a prefill queue nears a limit), cache-aware (the paper's prefix-cache rules; needs a trace with hash_ids).")] = Policy.static,
    policy_param: Annotated[Optional[list[str]], typer.Option("--policy-param", help="A policy parameter, KEY=VALUE (e.g. u_high=0.8, queue_factor=2, smoothing_s=30, period_s=10, history=2000, t_min_tokens=512, t_max_tokens=131072; cache-aware: u_abundant=0.5). Repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (arrivals and lengths); the same seed gives the same run.")] = 0,
    link_drop_at_s: Annotated[Optional[float], typer.Option("--link-drop-at-s", help="Time (s) at which the link's bandwidth drops (with --link-drop-frac).")] = None,
    link_drop_frac: Annotated[Optional[float], typer.Option("--link-drop-frac", help="Bandwidth after the drop as a fraction of the planned link (e.g. 0.1).")] = None,
    rate_shape: Annotated[Optional[str], typer.Option("--rate-shape", help="CSV of t_s, rate_req_per_s (e.g. servegen_m-large_rate_10min): a non-homogeneous Poisson stream whose mean over the run is the --load / --arrival-req-per-s rate.")] = None,
    burst_cv2: Annotated[Optional[float], typer.Option("--burst-cv2", help="Bursty arrivals: gamma inter-arrival gaps with this squared coefficient of variation (1 = Poisson, e.g. 4).")] = None,
    baseline: Annotated[Baseline, typer.Option("--baseline", help="Simulate the PrfaaS plan or a baseline (homogeneous PD on the same GPUs, naive heterogeneous).")] = Baseline.prfaas,
    ttft_slo_s: Annotated[float, typer.Option("--ttft-slo-s", help="TTFT SLO for the attainment figure, seconds.")] = 5.0,
    warmup_s: Annotated[Optional[float], typer.Option("--warmup-s", help="Seconds at the start left out of the results. Default: min(10% of the duration, 300 s).")] = None,
    prefix_cache: Annotated[PrefixCacheSize, typer.Option("--prefix-cache", help="Per-cluster prefix caches (traces with hash_ids): hbm (the HBM left after the weights) or unlimited.")] = PrefixCacheSize.hbm,
    replan: Annotated[bool, typer.Option("--replan", help="Re-plan the local P/D split and t every period for the coming rate (lowest analytic P90 TTFT).")] = False,
    replan_period_s: Annotated[Optional[float], typer.Option("--replan-period-s", help="Re-planning period, seconds. Default: the rate shape's step, else 600 s.")] = None,
    switch_s: Annotated[float, typer.Option("--switch-s", help="Seconds a local node is out of service while it changes role (prefill <-> decode).")] = 60.0,
    mode: ModeOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Discrete-event simulation of the planned deployment (or a baseline): TTFT mean / P50 / P90 /
    P99 (s), TPOT, throughput (req/s), utilisation and queues per pool, egress over time (Gbit/s),
    SLO attainment, offload share, and the request and token books (conservation)."""
    from .planning.scenario import load_scenario
    from .reports.provenance import provenance, provenance_columns
    from .simulation.run import simulate_scenario

    if not switch_s >= 0:
        raise PlanError(f"--switch-s must be >= 0 s, got {switch_s:g}")
    sc = load_scenario(scenario)
    m = mode.value if mode else None
    result = simulate_scenario(sc, baseline=baseline.value, load=load, arrival_req_per_s=arrival_req_per_s, trace=trace, duration_s=duration_s,
                               policy=policy.value, seed=seed, link_drop_at_s=link_drop_at_s, link_drop_frac=link_drop_frac, rate_shape=rate_shape,
                               burst_cv2=burst_cv2, warmup_s=warmup_s, ttft_slo_s=ttft_slo_s, mode=m, policy_params=_params(policy_param),
                               cache_blocks=None if prefix_cache is PrefixCacheSize.unlimited else "hbm", replan=replan,
                               replan_period_s=replan_period_s, switch_s=switch_s)
    prov = provenance(sc, result["mode"], "simulate", load=load, arrival_req_per_s=arrival_req_per_s, trace=trace, duration_s=duration_s,
                      policy=policy.value, policy_param=policy_param, seed=seed, link_drop_at_s=link_drop_at_s, link_drop_frac=link_drop_frac,
                      rate_shape=rate_shape, burst_cv2=burst_cv2, baseline=baseline.value, ttft_slo_s=ttft_slo_s, warmup_s=warmup_s,
                      prefix_cache=prefix_cache.value, replan=replan or None, replan_period_s=replan_period_s, switch_s=switch_s)
    row = {k: v for k, v in result.items() if k not in ("egress_gbit_per_s_by_minute", "conservation", "replans")}

    def table():
        from .reports.render import print_simulation

        print_simulation(_console(), result)

    emit(fmt, output, [{**row, **provenance_columns(prov)}], table, document={**result, "provenance": prov})
