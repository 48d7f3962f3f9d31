"""Published engine measurements (throughput regime) beside `estimate`.

``data/engines-train.json`` is a copy of ../shared/reference/engines-train.json: 19 measured
points (SGLang, TensorRT-LLM; H100, H200, B200, GB200). :data:`SETUPS` states each point's
deployment as `estimate` options, read from the point's ``parallelism`` and ``precision`` fields
(never tuned). The metric each point measured maps to one `estimate` key (:data:`METRIC_KEY`);
co-located (``mixed_tput``) points use the offline-maximum formula in
:func:`~prfaas_plan.roofline.estimate.colocated_tokens_per_s_per_gpu` at the memory-limited batch.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np

from ..catalog.hardware import Hardware, load_hardware
from ..catalog.model import load_model
from ..roofline.estimate import estimate, offline_run_tokens_per_s_per_gpu
from ..roofline.fit import error_frac
from ..roofline.instance import make_instance

DATA = Path(__file__).resolve().parent / "data"
POINTS_FILE = DATA / "engines-train.json"
LLAMA_70B = str(DATA / "llama_3_3_70b_instruct.json")
LLAMA_405B = str(DATA / "llama_3_1_405b_instruct.json")

METRIC_KEY = {
    "prefill_tput": "prefill_input_tokens_per_s_per_gpu",
    "decode_tput": "decode_output_tokens_per_s_per_gpu",
    "decode_tput_membatch": "decode_output_tokens_per_s_per_gpu",
    "mixed_tput": "colocated_output_tokens_per_s_per_gpu",
}

_SGL_H100_PREFILL = {"model": "deepseek-v3", "hardware": "h100", "gpus": 32, "tp": 32, "dp": 32, "ep": 32}
_GB200_DECODE = {"model": "deepseek-v3", "hardware": "gb200", "gpus": 48, "tp": 48, "dp": 48, "ep": 48,
                 "isl": 2000, "osl": 100, "context_tokens": 2050}
_TRT = {"kv_dtype": "fp8"}
_QWEN_ADP = {"model": "qwen3-235b", "gpus": 8, "tp": 8, "dp": 8, "ep": 8, **_TRT}

#: Each point's deployment as `estimate` options (point id -> options).
SETUPS: dict[str, dict] = {
    "sgl-h100-dsv3-prefill-1k": {**_SGL_H100_PREFILL, "isl": 1024},
    "sgl-h100-dsv3-prefill-2k": {**_SGL_H100_PREFILL, "isl": 2048},
    "sgl-h100-dsv3-prefill-4k": {**_SGL_H100_PREFILL, "isl": 4096},
    "sgl-gb200-dsv3-prefill-bf16attn": {"model": "deepseek-v3", "hardware": "gb200", "gpus": 4, "tp": 4, "dp": 4,
                                        "ep": 4, "isl": 2000, "attention_dtype": "bf16", "kv_dtype": "bf16"},
    "sgl-gb200-dsv3-prefill-fp4": {"model": "deepseek-v3", "hardware": "gb200", "gpus": 2, "tp": 2, "dp": 2, "ep": 2,
                                   "isl": 2000, "weights": "fp8", "moe_weights": "fp4", "attention_dtype": "fp8", "kv_dtype": "fp8"},
    "sgl-h100-dsv3-decode-b256": {"model": "deepseek-v3", "hardware": "h100", "gpus": 72, "tp": 72, "dp": 72, "ep": 72,
                                  "isl": 2000, "osl": 100, "context_tokens": 2000, "batch": 18432},
    "sgl-gb200-dsv3-decode-bf16attn": {**_GB200_DECODE, "attention_dtype": "bf16", "kv_dtype": "bf16"},
    "sgl-gb200-dsv3-decode-fp4": {**_GB200_DECODE, "weights": "fp8", "moe_weights": "fp4", "attention_dtype": "fp8", "kv_dtype": "fp8"},
    "trtllm-h200-llama70b-fp8-128-2048": {"model": LLAMA_70B, "hardware": "h200", "gpus": 1, "weights": "fp8", "isl": 128, "osl": 2048, **_TRT},
    "trtllm-h100-llama70b-fp8-128-2048": {"model": LLAMA_70B, "hardware": "h100", "gpus": 2, "weights": "fp8", "isl": 128, "osl": 2048, **_TRT},
    "trtllm-h200-llama70b-fp8-2048-128": {"model": LLAMA_70B, "hardware": "h200", "gpus": 1, "weights": "fp8", "isl": 2048, "osl": 128, **_TRT},
    "trtllm-h100-llama70b-fp8-2048-128": {"model": LLAMA_70B, "hardware": "h100", "gpus": 2, "weights": "fp8", "isl": 2048, "osl": 128, **_TRT},
    "trtllm-b200-llama70b-fp4-128-2048": {"model": LLAMA_70B, "hardware": "b200", "gpus": 1, "weights": "fp4", "isl": 128, "osl": 2048, **_TRT},
    "trtllm-h200-llama405b-fp8-128-2048": {"model": LLAMA_405B, "hardware": "h200", "gpus": 8, "weights": "fp8", "isl": 128, "osl": 2048, **_TRT},
    "trtllm-h100-llama405b-fp8-128-2048": {"model": LLAMA_405B, "hardware": "h100", "gpus": 8, "weights": "fp8", "isl": 128, "osl": 2048, **_TRT},
    "trtllm-h200-qwen3-235b-fp8-128-2048": {**_QWEN_ADP, "hardware": "h200", "weights": "fp8", "isl": 128, "osl": 2048},
    "trtllm-h200-qwen3-235b-fp8-2048-128": {**_QWEN_ADP, "hardware": "h200", "weights": "fp8", "isl": 2048, "osl": 128},
    "trtllm-h100-qwen3-235b-fp8-128-2048": {**_QWEN_ADP, "hardware": "h100", "weights": "fp8", "isl": 128, "osl": 2048},
    "trtllm-b200-qwen3-235b-fp4-128-2048": {**_QWEN_ADP, "hardware": "b200", "weights": "fp4", "isl": 128, "osl": 2048},
}

#: How TensorRT-LLM's perf-overview ran its offline points (docs/source/performance/perf-overview.md
#: at the points' commit): `$num_requests` per ISL/OSL (3,000 for 128/2048 and 2048/128), all queued at
#: once, under the default capacity scheduler GUARANTEED_NO_EVICT, which admits a request only if the
#: cache for its whole ISL + OSL is free. Used only by :func:`as_benchmarked`, an explanation beside
#: the issue's co-located formula; the check and the calibration use the formula.
TRTLLM_OFFLINE_REQUESTS = {(128, 2048): 3000, (2048, 128): 3000}

#: trtllm-bench's own cap on the batch (tensorrt_llm/bench/build/tuning.py, calc_engine_setting and
#: finetune_setting, v1.0): the cache budget is kv_cache_free_gpu_mem_fraction (0.95 for the
#: perf-overview tables) of the GPUs' memory less the weights; a token takes 2 x layers x
#: max(TP, KV heads) x head size bytes (KV heads counted as if replicated over TP, also under
#: attention DP); requests = budget / (ISL + OSL tokens), capped at 4,096 / PP, then rounded up to a
#: multiple of 32 (< 256), 128 (< 1,024) or 256. The run's batch is at most this max_batch_size.
TRTLLM_BENCH_KV_FRAC = 0.95
TRTLLM_BENCH_MAX_REQUESTS = 4096
#: Device memory as the heuristic reads it (get_device_memory: the CUDA device's total, GiB), in MiB
#: as nvidia-smi prints it for the parts of the perf-overview tables (H100 SXM 80GB HBM3, H200 SXM,
#: B200): more than the marketing GB the catalog keeps (80 GB, 141 GB, 180 GB).
TRTLLM_DEVICE_MIB = {"h100": 81_559, "h200": 143_771, "b200": 183_359}

_CLI_FLAGS = {"model": "-m", "hardware": "-H", "gpus": "--gpus", "tp": "--tp", "ep": "--ep", "pp": "--pp", "weights": "--weights",
              "moe_weights": "--moe-weights", "attention_dtype": "--attention-dtype", "kv_dtype": "--kv-dtype", "isl": "--isl",
              "osl": "--osl", "context_tokens": "--context", "batch": "--batch"}


def trtllm_bench_max_batch(model, hw: Hardware, gpus: int, tp: int, pp: int, weights: str, kv_dtype: str, isl: int, osl: int) -> int:
    """max_batch_size trtllm-bench picks for a run (:data:`TRTLLM_BENCH_KV_FRAC`): the heuristic as
    its source states it, with the device memory nvidia-smi reports (:data:`TRTLLM_DEVICE_MIB`)."""
    from .. import units
    from ..catalog.model import FullAttention
    from ..roofline.counts import total_params

    groups = [g for g in model.layers if isinstance(g, FullAttention)]
    layers = sum(g.count for g in groups)
    kv_heads, head_dim = max(tp, groups[0].kv_heads), groups[0].head_dim
    token_gib = 2 * layers * kv_heads * head_dim * units.dtype_bytes(kv_dtype) / units.GIB
    free_gib = gpus * TRTLLM_DEVICE_MIB[hw.name] / 1024 - total_params(model) * units.dtype_bytes(weights) / units.GIB
    raw = min(free_gib * TRTLLM_BENCH_KV_FRAC / (token_gib * (isl + osl)), TRTLLM_BENCH_MAX_REQUESTS) / pp
    if raw < 256:
        return max(64, 32 * math.ceil(raw / 32))
    step = 128 if raw < 1024 else 256
    return step * math.ceil(raw / step)


def setup(point: dict) -> dict:
    """``point``'s deployment as `estimate` options: :data:`SETUPS`, and for a TensorRT-LLM offline
    run its batch, the memory-limited batch capped by trtllm-bench's max_batch_size
    (:func:`trtllm_bench_max_batch`)."""
    return dict(_setup(point["id"], point["kind"]))


@cache
def _setup(point_id: str, kind: str) -> tuple:
    out = dict(SETUPS[point_id])
    if kind == "mixed_tput" and point_id.startswith("trtllm-") and "batch" not in out:
        model, hw, gpus = _model(out["model"]), load_hardware(out["hardware"]), out["gpus"]
        shape = {k: out[k] for k in ("tp", "dp", "ep", "pp", "weights", "kv_dtype") if k in out}
        inst = make_instance(model, hw, gpus, **shape)
        context = out.get("context_tokens", out["isl"] + out["osl"] / 2.0)
        cap = trtllm_bench_max_batch(model, hw, gpus, inst.tp, inst.pp, inst.weights_dtype, inst.kv_dtype, out["isl"], out["osl"])
        out["batch"] = max(1, min(inst.memory_max_batch(context), cap))
    return tuple(out.items())


@cache
def points() -> tuple[dict, ...]:
    return tuple(json.loads(POINTS_FILE.read_text())["points"])


def cli_args(setup: dict) -> list[str]:
    """`prfaas-plan estimate` arguments for a setup (JSON output)."""
    args = []
    for key, value in setup.items():
        if key == "dp":
            args += ["--dp", str(value), "--enable-dp-attention"] if value > 1 else []
        else:
            args += [_CLI_FLAGS[key], str(value)]
    return args + ["-f", "json"]


def _deployment(point: dict, hardware: dict[str, Hardware] | None) -> tuple:
    """(model, part, GPUs, the rest of the setup as :func:`estimate` keywords) of ``point``;
    ``hardware`` overrides catalog parts by name."""
    options = setup(point)
    name = options.pop("hardware")
    hw = (hardware or {}).get(name) or load_hardware(name)
    return _model(options.pop("model")), hw, options.pop("gpus"), options


def predict(point: dict, hardware: dict[str, Hardware] | None = None) -> float:
    """The model's value of ``point``'s measured metric, through :func:`estimate`."""
    model, hw, gpus, setup = _deployment(point, hardware)
    return float(estimate(model, hw, gpus, measured=True, **setup)[METRIC_KEY[point["kind"]]])


def as_benchmarked(point: dict, hardware: dict[str, Hardware] | None = None) -> tuple[float, list[int]] | None:
    """A TensorRT-LLM co-located point as its benchmark ran (:data:`TRTLLM_OFFLINE_REQUESTS`):
    output tokens/s per GPU and the waves, from
    :func:`~prfaas_plan.roofline.estimate.offline_run_tokens_per_s_per_gpu` with the cache reserved
    for ISL + OSL. None for points that are not TensorRT-LLM offline runs."""
    if point["kind"] != "mixed_tput" or not point["id"].startswith("trtllm-"):
        return None
    model, hw, gpus, shape = _deployment(point, hardware)
    isl, osl = shape.pop("isl"), shape.pop("osl")
    cap = shape.pop("batch")
    inst = make_instance(model, hw, gpus, **shape)
    return offline_run_tokens_per_s_per_gpu(inst, isl, osl, TRTLLM_OFFLINE_REQUESTS[(isl, osl)], isl + osl, cap)


@cache
def _model(name: str):
    return load_model(name)


def rows(hardware: dict[str, Hardware] | None = None, benchmarked: bool = False) -> list[dict]:
    """One row per point: measured, predicted, error (exp|ln(pred / meas)| - 1). With
    ``benchmarked``, TensorRT-LLM offline points are predicted as they ran (:func:`as_benchmarked`)."""
    out = []
    for p in points():
        bench = as_benchmarked(p, hardware) if benchmarked else None
        pred = bench[0] if bench else predict(p, hardware)
        meas = float(p["measured_metric"])
        out.append({"id": p["id"], "kind": p["kind"], "metric": p["metric"], "measured": meas, "predicted": pred,
                    "ratio": pred / meas, "error_frac": float(error_frac(pred, meas))})
    return out


def summary(rows_: list[dict]) -> dict:
    err = np.array([r["error_frac"] for r in rows_])
    return {"points": len(rows_), "median_error_frac": float(np.median(err)), "worst_factor": float(1 + err.max())}
