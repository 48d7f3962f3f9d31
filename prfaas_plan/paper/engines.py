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

_CLI_FLAGS = {"model": "-m", "hardware": "-H", "gpus": "--gpus", "tp": "--tp", "ep": "--ep", "pp": "--pp", "weights": "--weights",
              "moe_weights": "--moe-weights", "attention_dtype": "--attention-dtype", "kv_dtype": "--kv-dtype", "isl": "--isl",
              "osl": "--osl", "context_tokens": "--context", "batch": "--batch"}


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
    setup = dict(SETUPS[point["id"]])
    name = setup.pop("hardware")
    hw = (hardware or {}).get(name) or load_hardware(name)
    return _model(setup.pop("model")), hw, setup.pop("gpus"), setup


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
    inst = make_instance(model, hw, gpus, **shape)
    return offline_run_tokens_per_s_per_gpu(inst, isl, osl, TRTLLM_OFFLINE_REQUESTS[(isl, osl)], isl + osl)


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
