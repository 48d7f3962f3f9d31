"""The engine model's commands: `estimate` (one deployment), `calibrate` (fit the efficiencies),
`kv` (KV cache and Phi_kv per prompt length) and `validate` (the paper's tables and engine points)."""

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import units
from ..catalog.fields import MAX_COUNT
from ..catalog.hardware import load_hardware
from ..catalog.model import load_model
from ..errors import PlanError
from ..reports.export import to_csv, to_json, write_atomic
from ._common import EngineOpt, FormatOpt, OutputOpt, SetOpt, StateDtypeOpt, _console, emit, handles_errors


def _deployed(model: str, engine, state_dtype):
    """The model as ``--engine`` / ``--state-dtype`` deploy it, and where its state dtype came from."""
    from ..catalog.engines import deploy

    return deploy(load_model(model), engine.value if engine else None, state_dtype.value if state_dtype else None)


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


@handles_errors
def kv(
    model: Annotated[str, typer.Option("--model", "-m", help="Model catalog name or path to a model YAML.")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Part catalog name or path to a hardware YAML.")],
    gpus: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="GPUs per prefill instance (P).")] = 8,
    lengths: Annotated[str, typer.Option(help="Comma-separated prompt lengths in tokens; K = 1024 (128K = 131,072).")] = "1K,8K,32K,128K",
    roofline: Annotated[bool, typer.Option("--roofline", help="Ignore measured profiles; use the roofline only.")] = False,
    cluster_gpus: Annotated[Optional[int], typer.Option(min=1, max=MAX_COUNT, help="Also show the egress (Gbit/s) an N-GPU prefill cluster needs at each length ([PRFAAS] Eq. 2).")] = None,
    engine: EngineOpt = None,
    state_dtype: StateDtypeOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Per prompt length: KV cache S_kv (MiB), prefill time T_prefill (s) and what bounds it, and
    KV throughput Phi_kv = S_kv / T_prefill (Gbit/s, 1 Gbit = 1e9 bit; [PRFAAS] Eq. 1). S_kv is
    shown even when the weights do not fit the part or its dtype does not run there; the prefill
    columns are then empty and the caption says why."""
    from ..reports.kv_report import kv_rows, kv_summary

    lens = _parse_lengths(lengths)
    (m, state_source), hw = _deployed(model, engine, state_dtype), load_hardware(hardware)
    rows = kv_rows(m, hw, gpus, lens, use_profile=not roofline, cluster_gpus=cluster_gpus)

    def table():
        from ..reports.terminal import fmt as f
        from ..reports.terminal import rows_table, text

        s = kv_summary(m)
        cols = [("input_tokens", "input", lambda v: units.format_tokens(v)), ("kv_cache_mib", "S_kv MiB", f(",.1f")),
                ("prefill_time_s", "T_prefill s", f(".3f")), ("kv_throughput_gbit_per_s", "Phi_kv Gbit/s", f(".2f")), ("bound", "bound", text)]
        if rows[0]["source"] is None:
            cols = cols[:2]
        elif rows[0]["source"].startswith("roofline"):
            from ..roofline.terms import TERM_NAMES

            keys = [k.replace("-", "_") + "_s" for k in TERM_NAMES]
            cols += [(k, k[:-2].replace("_", " ") + " s", f(".3f")) for k in keys if any(r.get(k) for r in rows)]
        if cluster_gpus:
            cols.append(("cluster_egress_gbit_per_s", f"egress {cluster_gpus} GPUs Gbit/s", f(",.0f")))
        caption = (f"S_kv = {s['kv_bytes_per_token']:,.0f} B/token x l + {units.bytes_to_mib(s['fixed_bytes_per_request']):.1f} MiB fixed"
                   + (f" + SWA {s['swa_bytes_per_token_below_window']:,.0f} B/token up to the window" if s["swa_bytes_per_token_below_window"] else "")
                   + (f"; recurrent state {s['linear_state_dtype']} ({state_source})" if s["fixed_bytes_per_request"] else "")
                   + (f"; T_prefill from {rows[0]['source']}" if rows[0]["source"] else ""))
        con = _console()
        if rows[0]["prefill_note"]:  # a two-column table: caption and note as lines of their own
            con.print(rows_table(rows, cols, title=f"{m.name} (S_kv)"))
            con.print(caption)
            con.print(f"no T_prefill on {gpus} x {hw.name}: {rows[0]['prefill_note']}")
        else:
            con.print(rows_table(rows, cols, title=f"{m.name} on {gpus} x {hw.name}", caption=caption, width=con.width, keep=5))

    emit(fmt, output, rows, table)


# --- validate -----------------------------------------------------------------------------------


@handles_errors
def validate(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """The paper's Tables 3, 5 and 6 and the measured engine points (engines-train.json) beside
    this model's numbers, with errors."""
    from ..paper import validation

    rows = validation.all_rows()

    def table():
        from ..reports.terminal import fmt as f
        from ..reports.terminal import rows_table, text

        def num(v) -> str:
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"

        con = _console()
        for tab, title in validation.TITLES.items():
            sub = [r for r in rows if r["table"] == tab]
            cols = [("item", "item", text), ("input_tokens", "input", lambda v: units.format_tokens(v) if v else "-"), ("quantity", "quantity", text),
                    ("paper", "paper", num), ("model", "model", num), ("error_pct", "error %", f("+.1f")), ("note", "note", text)]
            con.print(rows_table(sub, cols, title=title, caption=validation.summary(sub)))

    emit(fmt, output, rows, table, sheets={f"table{t}": [r for r in rows if r["table"] == t] for t in validation.TITLES})


# --- estimate (issue #6: one deployment's performance) ------------------------------------------


class EstimateFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class Role(str, Enum):
    prfaas = "prfaas"
    local = "local"


class Dtype(str, Enum):
    bf16 = "bf16"
    fp8 = "fp8"
    fp4 = "fp4"
    int4 = "int4"


def _dt(value: Optional[Dtype]) -> Optional[str]:
    return value.value if value is not None else None


@handles_errors
def estimate(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model catalog name, model YAML, or a Hugging Face config.json (required without --scenario).")] = None,
    hardware: Annotated[Optional[str], typer.Option("--hardware", "-H", help="Part catalog name or hardware YAML (required without --scenario).")] = None,
    gpus: Annotated[Optional[int], typer.Option("--gpus", help="GPUs in the instance, P (required without --scenario).")] = None,
    scenario: Annotated[Optional[str], typer.Option("--scenario", help="Estimate a scenario cluster's instance instead: its model, part (with its efficiency_profile), GPUs and instance shape; change them with --set.")] = None,
    cluster: Annotated[Role, typer.Option("--cluster", help="With --scenario: the cluster to estimate, prfaas or local.")] = Role.prfaas,
    set_: SetOpt = None,
    tp: Annotated[Optional[int], typer.Option("--tp", help="Tensor-parallel world size of a pipeline stage, as SGLang's --tp and TensorRT-LLM's tp_size: GPUs = TP x PP (default: GPUs / PP).")] = None,
    dp: Annotated[Optional[int], typer.Option("--dp", help="With --enable-dp-attention: attention runs as DP data-parallel ranks of TP / DP GPUs each (SGLang's --dp); must divide --tp.")] = None,
    enable_dp_attention: Annotated[bool, typer.Option("--enable-dp-attention", help="Split attention into --dp data-parallel ranks (SGLang's flag; TensorRT-LLM's enable_attention_dp is --dp = --tp).")] = False,
    ep: Annotated[Optional[int], typer.Option("--ep", help="Expert-parallel ranks over the TP world (default 1 = experts sharded by TP; with DP attention or across domains, the largest that gives each rank an expert).")] = None,
    pp: Annotated[Optional[int], typer.Option("--pp", help="Pipeline-parallel stages (default 1; across domains for dense models, all GPUs on parts without a scale-up link).")] = None,
    dp_attention: Annotated[bool, typer.Option("--dp-attention", help="Deprecated: DP attention over the whole TP group, the same as --dp TP --enable-dp-attention.")] = False,
    weights: Annotated[Optional[Dtype], typer.Option("--weights", help="Dtype of dense/attention weights (default: the model file's).")] = None,
    moe_weights: Annotated[Optional[Dtype], typer.Option("--moe-weights", help="Dtype of routed-expert weights (default: --weights).")] = None,
    attention_dtype: Annotated[Optional[Dtype], typer.Option("--attention-dtype", help="Attention compute dtype (default fp8 with an fp8 KV cache, else bf16).")] = None,
    kv_dtype: Annotated[Optional[Dtype], typer.Option("--kv-dtype", help="KV-cache dtype (default: the model file's).")] = None,
    isl: Annotated[str, typer.Option("--isl", help="Input tokens per request (K = 1024).")] = "1024",
    osl: Annotated[str, typer.Option("--osl", help="Output tokens per request (K = 1024).")] = "1024",
    context: Annotated[Optional[str], typer.Option("--context", help="Mean context while decoding, tokens (default ISL + OSL/2).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", help="Decode batch per instance (default: the largest that fits memory).")] = None,
    mtp_draft: Annotated[int, typer.Option("--mtp-draft", help="Multi-token prediction: draft tokens per decode step.")] = 0,
    mtp_accept: Annotated[Optional[float], typer.Option("--mtp-accept", help="Mean tokens emitted per request per step with MTP (1 .. draft + 1); required with --mtp-draft (no default: it depends on the model and data).")] = None,
    chunk_tokens: Annotated[Optional[int], typer.Option("--chunk-tokens", help="Chunked-prefill size, tokens per forward pass; 0 = no chunking (a prompt crosses PP stages in series). Default: --engine's (SGLang --chunked-prefill-size 8192 on < 160 GiB parts, else 16384; TensorRT-LLM max_num_tokens 8192; vLLM serve max_num_batched_tokens 8192), else 16384.")] = None,
    profile: Annotated[Optional[Path], typer.Option("--profile", help="Efficiency profile written by `calibrate` (replaces the part's efficiencies).")] = None,
    engine: EngineOpt = None,
    state_dtype: StateDtypeOpt = None,
    fmt: Annotated[EstimateFormat, typer.Option("--format", "-f", help="table, json or csv.")] = EstimateFormat.table,
    output: OutputOpt = None,
) -> None:
    """One deployment's performance: TTFT of one request alone (s), saturated prefill (input
    tokens/s per GPU), decode step, TPOT (s) and output tokens/s per GPU at a batch, with every
    time's terms and what binds. Weights that do not fit memory are reported, not refused.
    The deployment is -m/-H/--gpus with the parallelism flags, or a scenario cluster's (--scenario)."""
    from ..roofline.estimate import estimate_instance
    from ..roofline.instance import make_instance

    shape = {"--model": model, "--hardware": hardware, "--gpus": gpus, "--tp": tp, "--dp": dp, "--enable-dp-attention": enable_dp_attention or None,
             "--ep": ep, "--pp": pp, "--dp-attention": dp_attention or None, "--weights": weights, "--moe-weights": moe_weights,
             "--attention-dtype": attention_dtype, "--kv-dtype": kv_dtype, "--mtp-draft": mtp_draft or None, "--mtp-accept": mtp_accept, "--profile": profile,
             "--chunk-tokens": chunk_tokens, "--engine": engine, "--state-dtype": state_dtype}
    if scenario is not None:
        from ..planning.overrides import parse_sets
        from ..planning.scenario import load_scenario

        given = [k for k, v in shape.items() if v is not None]
        if given:
            raise PlanError(f"--scenario: the instance comes from the scenario; change it with --set (e.g. --set {cluster.value}.instance.tp=8), not {given[0]}")
        inst = getattr(load_scenario(scenario, parse_sets(set_)), cluster.value).instance
    else:
        if set_:
            raise PlanError("--set changes a scenario key; give --scenario too")
        missing = [k for k in ("--model", "--hardware", "--gpus") if shape[k] is None]
        if missing:
            raise PlanError(f"missing option {missing[0]} (or give --scenario)")
        from ..catalog.hardware import apply_profile
        from ..roofline.parallel import dp_ranks

        hw = load_hardware(hardware) if profile is None else apply_profile(load_hardware(hardware), profile)
        if chunk_tokens is None and engine is not None:  # the engine's chunked-prefill default on this part
            from ..catalog.engines import engine_chunk_tokens

            chunk_tokens = engine_chunk_tokens(engine.value, hw)
        inst = make_instance(_deployed(model, engine, state_dtype)[0], hw, gpus, tp=tp, dp=dp_ranks(dp, enable_dp_attention, dp_attention, tp), ep=ep, pp=pp,
                             weights=_dt(weights), moe_weights=_dt(moe_weights), attention_dtype=_dt(attention_dtype), kv_dtype=_dt(kv_dtype),
                             mtp_draft_tokens=mtp_draft, mtp_accepted_tokens=mtp_accept, chunk_tokens=chunk_tokens)
    result = estimate_instance(inst, _tokens_opt("--isl", isl), _tokens_opt("--osl", osl), _tokens_opt("--context", context), batch)
    for warning in result["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    if fmt is EstimateFormat.table:
        if output is not None:
            raise PlanError("--output needs --format json or csv")
        from ..reports.render import estimate_tables

        for t in estimate_tables(result):
            _console().print(t)
        return
    text = to_json(result) if fmt is EstimateFormat.json else to_csv([result])
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)


# --- calibrate (issue #6: fit the efficiencies to your own engine) --------------------------------


@handles_errors
def calibrate(
    measurements: Annotated[Optional[Path], typer.Argument(help="YAML (a `measurements` list) or CSV of setups and measured ttft_s, prefill_tokens_per_s_per_gpu, decode_step_s, tpot_s, decode_tokens_per_s_per_gpu or output_tokens_per_s_per_gpu; with --deployment, a benchmark tool's result file instead.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Profile file to write (YAML; written atomically, only after a successful fit).")] = None,
    fit: Annotated[Optional[str], typer.Option("--fit", help="Comma-separated parameters to fit (default: every one the measurements identify; one they cannot is refused).")] = None,
    deployment: Annotated[Optional[Path], typer.Option("--deployment", help="YAML of the deployment a benchmark file ran (model, hardware, gpus; optional tp, dp, ep, pp, weights, kv_dtype, chunk_tokens, ...): MEASUREMENTS is then a `vllm bench serve --save-result` JSON, SGLang `bench_serving --output-file` JSONL or `trtllm-bench --report_json` file.")] = None,
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
        from ..roofline.microbench import microbench_profile

        doc, rows = microbench_profile(load_hardware(hardware), date)
    else:
        if measurements is None:
            raise PlanError("give a measurement file (YAML or CSV), or --microbench")
        from ..roofline.fit import fit_measurements, load_measurements, profile_document

        keys = tuple(k.strip() for k in fit.split(",") if k.strip()) if fit else None
        if deployment is not None:
            from ..roofline.bench_files import load_bench_file, load_deployment

            points = load_bench_file(measurements, load_deployment(deployment), str(deployment))
        else:
            points = load_measurements(measurements)
        result = fit_measurements(points, keys)
        doc = profile_document(result, str(measurements), date)
        rows = result.rows
    if output is not None:
        write_atomic(output, yaml.safe_dump(doc, sort_keys=False))
    if fmt is EstimateFormat.table:
        from ..reports.terminal import fmt as f
        from ..reports.terminal import rows_table, text

        if microbench:
            cols = [("parameter", "parameter", text), ("measured_frac", "fraction of peak", f(".3f"))]
        else:
            cols = [("where", "measurement", text), ("metric", "metric", text), ("measured", "measured", f(".4g")),
                    ("before", "before fit", f(".4g")), ("after", "after fit", f(".4g"))]
        caption = ", ".join(f"{k} {v:.3g}" for k, v in doc.get("errors", {}).items()) + (f"; wrote {output}" if output else "; no --output: nothing written")
        if not microbench:
            caption += "\nfitted: " + ", ".join(f"{k} {doc['efficiency'][k]:.4g}" + (" (at its bound)" if k in doc["at_bound"] else "") for k in doc["fitted_keys"])
            caption += "".join(f"\nleft fixed: {k} {doc['efficiency'][k]:.4g}: {why}" for k, why in doc["left_fixed"].items())
        _console().print(rows_table(rows, cols, title=f"calibrate: {doc['fitted_on']}", caption=caption))
        return
    sys.stdout.write(to_json(doc) if fmt is EstimateFormat.json else to_csv(rows))

