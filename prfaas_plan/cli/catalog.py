"""`prfaas-plan hardware` and `prfaas-plan models`: the catalog (list, show, import)."""

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import units
from ..catalog.hardware import list_hardware, load_hardware
from ..catalog.model import list_models, load_model, model_from_mapping
from ..errors import PlanError
from ..reports.export import write_atomic
from ._common import FormatOpt, OutputOpt, _console, emit, handles_errors


hardware_app = typer.Typer(no_args_is_help=True, help="The accelerator catalog (hardware/*.yaml).")
models_app = typer.Typer(no_args_is_help=True, help="The model catalog (models/*.yaml).")


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
        from ..reports.terminal import fmt as f
        from ..reports.terminal import rows_table, text

        cols = [("name", "name", text), ("bf16_dense_tflops", "BF16 TFLOP/s", f(",.0f")), ("fp8_dense_tflops", "FP8 TFLOP/s", f(",.0f")),
                ("fp4_dense_tflops", "FP4 TFLOP/s", f(",.0f")), ("memory", "memory", text), ("memory_bandwidth_tb_per_s", "HBM TB/s", f(".2f")),
                ("rent_usd_per_gpu_hour", "$/GPU-h", f(".2f")), ("efficiency_basis", "efficiency", text), ("hypothetical", "hypothetical", text)]
        _console().print(rows_table(rows, cols, title="Hardware catalog (dense peaks; prices are rent per GPU-hour)"))

    emit(fmt, output, rows, table)


@hardware_app.command("show")
@handles_errors
def hardware_show(name: Annotated[str, typer.Argument(help="Catalog name (e.g. h200) or path to a YAML file.")], fmt: FormatOpt = None,
                  output: OutputOpt = None) -> None:
    """Show one part with its sources, estimates and efficiency settings (JSON: every field in SI
    base units, as the library holds it; CSV and xlsx: the table's field / value rows)."""
    from ..reports.terminal import kv_value_table

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
    emit(fmt, output, [{"field": k, "value": v} for k, v in pairs], lambda: _console().print(kv_value_table(pairs, title=f"{hw.name} ({hw.path})")),
         document=dataclasses.asdict(hw))


# --- models -------------------------------------------------------------------------------------


@models_app.command("list")
@handles_errors
def models_list(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the models: family, layer stack, parameters, KV bytes per token, fixed state per
    request and the recurrent-state dtype (the model file's, and what vLLM and SGLang keep)."""
    from ..reports.kv_report import catalog_rows

    rows = catalog_rows(list_models())

    def table():
        from ..reports.terminal import fmt as f
        from ..reports.terminal import rows_table, text

        cols = [("name", "name", text), ("family", "family", text), ("architecture", "architecture", text), ("total_params_b", "total B", f(".0f")),
                ("active_params_b", "active B", f(".1f")), ("weights_dtype", "weights", text), ("kv_bytes_per_token", "KV B/token", f(",.0f")),
                ("fixed_state_mib", "fixed MiB/req", f(".1f")), ("state_dtype", "state", text), ("state_dtype_vllm", "vLLM", text),
                ("state_dtype_sglang", "SGLang", text), ("profiles", "profiles", f("d"))]
        _console().print(rows_table(rows, cols, title="Model catalog (parameters computed from the layer stack)"))

    emit(fmt, output, rows, table)


@models_app.command("show")
@handles_errors
def models_show(name: Annotated[str, typer.Argument(help="Catalog name (e.g. kimi-linear-48b) or path to a YAML file.")]) -> None:
    """Show one model: layer groups, parameters, KV formula terms, profiles, sources, estimates."""
    from ..reports.terminal import kv_value_table
    from ..roofline import counts
    from ..roofline.kv import fixed_state_bytes, kv_bytes_per_token, swa_bytes_per_token

    m = load_model(name)
    pub = lambda v: f" (published {v / 1e9:g}B)" if v else ""  # noqa: E731
    pairs = [
        ("description", m.description),
        ("layers", f"{m.num_layers}: {m.architecture_summary()}"),
        ("hidden / vocab", f"{m.hidden_size} / {m.vocab_size}"),
        ("family", m.family or "-"),
        ("dtypes", f"weights {m.dtypes.weights}, KV {m.dtypes.kv_cache}, recurrent state {m.dtypes.linear_state}, conv {m.dtypes.conv_state}"
                   + (f" (checkpoint declares {m.dtypes.declared_state})" if m.dtypes.declared_state else "")),
        ("total parameters", f"{counts.total_params(m) / 1e9:.1f}B{pub(m.published_total_params)}"),
        ("active parameters", f"{counts.active_params(m) / 1e9:.1f}B{pub(m.published_active_params)}"),
        ("weights", f"{counts.weight_bytes(m) / units.GB:.0f} GB"),
        ("KV per token", f"{kv_bytes_per_token(m):,.0f} B ({_layers_named(m, ('gqa', 'mla')) or 'no full-attention layers'})"),
    ]
    if swa_bytes_per_token(m):
        pairs.append(("SWA KV per token", f"{swa_bytes_per_token(m):,.0f} B up to the window ({_layers_named(m, ('swa',))})"))
    if fixed_state_bytes(m):
        pairs.append(("fixed per request", f"{units.bytes_to_mib(fixed_state_bytes(m)):.2f} MiB (recurrent state + conv tail of "
                                           f"{_layers_named(m, ('linear', 'mamba'))})"))
    for g in m.layers:
        pairs.append((f"layer group {g.kind}", ", ".join(f"{k}={v}" for k, v in vars(g).items() if k != "kind")))
    for p in m.prefill_profiles + m.decode_profiles:
        kind = "prefill" if hasattr(p, "prefill_time_s") else "decode"
        pairs.append((f"{kind} profile", f"{p.gpus} x {p.hardware}{' (derived)' if p.derived else ''}: {p.source}"))
    pairs += [("source", s) for s in m.sources]
    pairs += [(f"estimate: {k}", n) for k, n in m.estimates]
    _console().print(kv_value_table(pairs, title=f"{m.name} ({m.path})"))


#: How `models show` names each layer kind.
_KIND_NAMES = {"gqa": "full attention (GQA)", "mla": "MLA", "swa": "sliding window", "linear": "linear attention", "mamba": "Mamba"}


def _layers_named(m, kinds: tuple[str, ...]) -> str:
    """The model's layers of ``kinds``, as "48 MLA + 3 full attention (GQA) layers" ("" if none)."""
    counts: dict[str, int] = {}
    for g in m.layers:
        if g.kind in kinds:
            counts[g.kind] = counts.get(g.kind, 0) + g.count
    return " + ".join(f"{n} {_KIND_NAMES[k]}" for k, n in counts.items()) + " layers" if counts else ""


@models_app.command("import")
@handles_errors
def models_import(
    config: Annotated[Path, typer.Argument(help="A Hugging Face config.json (local file).")],
    name: Annotated[Optional[str], typer.Option(help="Model name (default: from the file name).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the YAML here (default: stdout).")] = None,
) -> None:
    """Turn a Hugging Face config.json into a model YAML. A key that shapes the attention layout or
    the recurrent state and is not understood is an error naming it; every default applied is
    printed as a note (and kept in the YAML's estimates)."""
    import yaml

    from ..catalog.hf_import import import_hf_config  # only this command reads config.json: not at start-up

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
        typer.echo(f"note: {n}", err=True)
