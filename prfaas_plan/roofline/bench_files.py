"""Measurements from the files engines' benchmark tools write, for `prfaas-plan calibrate`.

Three formats, recognised by their content (each run is one serving benchmark at a concurrency C):

- ``vllm bench serve --save-result``: one JSON object per file (``model_id``, ``max_concurrency``,
  ``completed``, ``total_input_tokens``, ``total_output_tokens``, ``output_throughput``,
  ``mean_ttft_ms``, ``mean_tpot_ms``, ...; vllm/benchmarks/serve.py);
- SGLang ``python -m sglang.bench_serving --output-file``: JSON Lines, one object per run
  (``backend``, ``dataset_name``, ``max_concurrency``, ``completed``, ``total_input_tokens``,
  ``total_output_tokens``, ``output_throughput``, ``mean_ttft_ms``, ``mean_tpot_ms``, ...);
- ``trtllm-bench throughput --report_json``: one JSON object with ``request_info``
  (``num_requests``, ``avg_num_concurrent_requests``), ``performance``
  (``system_output_throughput_tok_s``, ...), ``streaming_metrics`` (``avg_ttft_ms``,
  ``avg_tpot_ms``, present with ``--streaming``) and ``dataset`` (``avg_isl``, ``avg_osl``).

None of them records the deployment (part, GPUs, parallelism, dtypes, chunk size): it comes from a
small YAML (:func:`load_deployment`) in the keys of a calibrate measurement. Each run gives, at
ISL = input tokens / completed requests, OSL likewise and decode batch C:

- ``tpot_s`` = mean TPOT (the decode step at batch C, MTP included), where the run streamed;
- ``output_tokens_per_s_per_gpu`` = output throughput / GPUs, which `estimate` models as the
  co-located cycle at batch C (prefill of C prompts, then OSL decode steps);
- ``ttft_s`` = mean TTFT, only where C = 1 (a request alone: the latency regime; at C > 1 the TTFT
  holds queueing and co-scheduled prefills the single-request model does not price).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..catalog.fields import Fields, load_yaml_mapping
from ..errors import PlanError
from .fit import Measurement, setup_options

FORMATS = ("vllm", "sglang", "trtllm")


def load_deployment(path: str | Path) -> dict:
    """The deployment YAML: model, hardware, gpus and optional estimate shape keys (as in a
    calibrate measurement: tp, dp, enable_dp_attention, ep, pp, weights, moe_weights,
    attention_dtype, kv_dtype, mtp_draft, mtp_accept, chunk_tokens). Checked here (unknown keys,
    bad values), so each run's errors are the run's own."""
    p = Path(path)
    raw = load_yaml_mapping(p)
    for key in ("isl", "osl", "context", "batch", "metric", "value"):
        if key in raw:
            raise PlanError(f"{p}: key {key!r}: comes from each benchmark run, not from the deployment")
    f = Fields(dict(raw), p)
    setup_options(f)
    f.done()
    return raw


def detect(path: Path, text: str) -> tuple[str, list[dict]]:
    """(format, runs) of a benchmark file; PlanError naming the file if it is none of FORMATS."""
    stripped = text.strip()
    try:
        doc = json.loads(stripped)
        runs = [doc]
    except json.JSONDecodeError:
        try:
            runs = [json.loads(line) for line in stripped.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise PlanError(f"{path}: not JSON or JSON Lines ({exc.msg} at line {exc.lineno})") from None
        doc = None
    if not runs or not all(isinstance(r, dict) for r in runs):
        raise PlanError(f"{path}: expected a JSON object (or one per line)")
    first = runs[0]
    if "performance" in first and "request_info" in first:
        return "trtllm", runs
    if "mean_tpot_ms" in first and ("model_id" in first or "endpoint_type" in first):
        return "vllm", runs
    if "mean_tpot_ms" in first and "dataset_name" in first:
        return "sglang", runs
    raise PlanError(f"{path}: not a vllm bench serve --save-result JSON, SGLang bench_serving JSONL or trtllm-bench --report_json file "
                    "(no 'performance'/'request_info', nor 'mean_tpot_ms' beside 'model_id' or 'dataset_name')")


def _num(run: dict, where: str, *keys: str, required: bool = True):
    cur = run
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            if required:
                raise PlanError(f"{where}: key {'.'.join(keys)!r} missing")
            return None
        cur = cur[k]
    if cur is None and not required:
        return None
    if isinstance(cur, bool) or not isinstance(cur, (int, float)) or not cur == cur or cur < 0:
        raise PlanError(f"{where}: key {'.'.join(keys)!r} must be a number >= 0, got {cur!r}")
    return float(cur)


def _serving(run: dict, where: str) -> dict:
    """vLLM and SGLang runs share their metric names."""
    done = _num(run, where, "completed")
    if done < 1:
        raise PlanError(f"{where}: key 'completed' is 0: no request finished")
    conc = run.get("max_concurrency")
    if conc is None:
        raise PlanError(f"{where}: key 'max_concurrency' is missing or null: the decode batch is unknown "
                        "(rerun with --max-concurrency, or give the batch in a measurements YAML)")
    return {"isl": _num(run, where, "total_input_tokens") / done, "osl": _num(run, where, "total_output_tokens") / done,
            "concurrency": _num(run, where, "max_concurrency"), "output_tokens_per_s": _num(run, where, "output_throughput"),
            "ttft_s": _num(run, where, "mean_ttft_ms", required=False), "tpot_s": _num(run, where, "mean_tpot_ms", required=False)}


def _trtllm(run: dict, where: str) -> dict:
    return {"isl": _num(run, where, "dataset", "avg_isl"), "osl": _num(run, where, "dataset", "avg_osl"),
            "concurrency": _num(run, where, "request_info", "avg_num_concurrent_requests"),
            "output_tokens_per_s": _num(run, where, "performance", "system_output_throughput_tok_s"),
            "ttft_s": _num(run, where, "streaming_metrics", "avg_ttft_ms", required=False),
            "tpot_s": _num(run, where, "streaming_metrics", "avg_tpot_ms", required=False)}


def load_bench_file(path: str | Path, deployment: dict, deployment_where: str) -> list[Measurement]:
    """Measurements (module docstring) of every run in a benchmark file, under ``deployment``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{p}: cannot read file ({exc.__class__.__name__})") from None
    fmt, runs = detect(p, text)
    out = []
    for i, run in enumerate(runs):
        where = f"{p}: {fmt} run {i + 1}"
        r = _trtllm(run, where) if fmt == "trtllm" else _serving(run, where)
        if r["isl"] < 1 or r["osl"] < 1 or r["concurrency"] <= 0:
            raise PlanError(f"{where}: mean input/output lengths and concurrency must be positive, got {r['isl']:.1f}, {r['osl']:.1f}, {r['concurrency']:.1f}")
        batch = max(int(round(r["concurrency"])), 1)
        base = {**deployment, "isl": int(round(r["isl"])), "osl": int(round(r["osl"])), "batch": batch}
        model, hardware, gpus_n, options = setup_options(Fields(base, deployment_where))
        points = [("output_tokens_per_s_per_gpu", r["output_tokens_per_s"] / gpus_n)]
        if r["tpot_s"]:
            points.append(("tpot_s", r["tpot_s"] / 1e3))
        if r["ttft_s"] and batch == 1:
            points.append(("ttft_s", r["ttft_s"] / 1e3))
        for metric, value in points:
            if value > 0:
                out.append(Measurement(f"{where} {metric}", model, hardware, gpus_n, options, metric, float(value)))
    return out
