"""`prfaas-plan estimate`: one deployment's performance, for checking the model against an engine.

For an instance (:func:`~.instance.make_instance`) and a workload (ISL, OSL, decode context):

- ``tp``, ``attention_tp``, ``dp``, ``ep``, ``pp`` and ``deployment``: the parallelism in the
  engines' terms (:mod:`.parallel`), with ``warnings`` (a TP group across scale-up domains);
- ``ttft_single_request_s``: latency-regime prefill of one ISL-token prompt on an idle instance;
- ``prefill_input_tokens_per_s_per_gpu``: throughput-regime (saturated, batched) prefill;
- ``decode_batch``: the given batch per instance (at most ``memory_max_batch``, else an error
  naming it), else the largest whose caches fit memory;
- ``decode_step_s``, ``tpot_s`` (step / accepted MTP length), ``decode_output_tokens_per_s_per_gpu``;
- ``weights_fit``: whether the weights fit usable memory (HBM x ``memory_usable_frac``). Weights
  beyond usable memory but within the whole HBM are reported (engines squeeze their reserves:
  SGLang ran DeepSeek-V3 fp4 prefill on 2 x GB200, 181 GB of weights per GPU against 167 GB
  usable); weights beyond the whole HBM are an error naming --gpus, since the engine would then
  offload to host memory, which the roofline does not model (issue 14: it printed numbers).
- co-located (aggregated) output tokens/s per GPU at batch C = ``decode_batch``:
  C * OSL / (C * ISL / (prefill tokens/s per GPU * P) + OSL * T_step(C)) / P.
Every time comes with its terms (seconds) and the term that binds; every metric ``K`` above with
``K_low`` / ``K_high``, the 80% error band of the shipped calibration (:mod:`.bands`).
"""

from __future__ import annotations

from .. import units
from ..bounds import check
from ..catalog.hardware import Hardware
from ..catalog.model import ModelSpec
from ..errors import PlanError
from .bands import add_bands
from .decode import step_terms
from .instance import Instance, make_instance
from .prefill import latency_terms, throughput_terms


def default_context_tokens(isl: float, osl: float) -> float:
    """Mean context a request holds while decoding: ISL + OSL / 2."""
    return isl + osl / 2.0


def estimate_instance(inst: Instance, isl: int, osl: int, context_tokens: float | None = None, batch: int | None = None,
                      measured: bool = False) -> dict:
    """The `estimate` JSON object (module docstring) for ``inst``. ``measured``: the setup is one
    an engine ran (a calibration or validation point), so its batch and weights are facts: a batch
    beyond the model's ``memory_max_batch`` or weights beyond the HBM mean the memory model is
    conservative there, and are evaluated rather than refused."""
    if isl < 1 or osl < 1:
        raise PlanError(f"--isl and --osl must be >= 1 token, got {isl} and {osl}")
    context = default_context_tokens(isl, osl) if context_tokens is None else float(context_tokens)
    if context <= 0:
        raise PlanError(f"--context: must be > 0 tokens, got {context}")
    need, whole = inst.weight_bytes_per_gpu(), inst.hw.memory_capacity_bytes
    if need > whole and not measured:
        raise PlanError(f"--gpus {inst.gpus}: model {inst.model.name} does not fit {inst.describe()}: weights need {need / units.GB:,.1f} GB "
                        f"per GPU, more than the part's whole memory ({whole / units.GB:,.1f} GB); an engine would offload them to host "
                        "memory, which the roofline does not model (use more GPUs)")
    mem_batch = inst.memory_max_batch(context)
    if batch is not None:
        check("batch", batch, f"--batch (at context {context:,.0f} tokens)", max_value=None if measured else max(mem_batch, 1))
    decode_batch = batch if batch is not None else mem_batch
    lat = latency_terms(inst, isl)
    tput = throughput_terms(inst, isl)
    prefill_tps_gpu = isl / float(tput.total_s) / inst.gpus
    deployment = inst.deployment()
    out = {
        "model": inst.model.name,
        "hardware": inst.hw.name,
        "gpus": inst.gpus,
        "tp": inst.tp,  # the engines' spelling (roofline/parallel.py): TP world size of a stage
        "attention_tp": inst.attention_tp,
        "dp": inst.dp,
        "dp_attention": inst.dp_attention,
        "ep": inst.ep,
        "pp": inst.pp,
        "deployment": deployment["text"],
        "sglang_flags": deployment["sglang_flags"],
        "warnings": deployment["warnings"],
        "scaleup_domain_gpus": inst.domain_gpus,
        "weights": inst.weights_dtype,
        "moe_weights": inst.moe_weights_dtype,
        "attention_dtype": inst.attention_dtype,
        "kv_dtype": inst.kv_dtype,
        "state_dtype": inst.model.dtypes.linear_state if inst.state_bytes_per_request() else None,  # recurrent layers' state
        "mtp_draft_tokens": inst.mtp_draft_tokens,
        "mtp_accepted_tokens": inst.mtp_accepted_tokens,
        "chunk_tokens": inst.chunk_tokens,
        "isl": isl,
        "osl": osl,
        "context_tokens": context,
        "weights_fit": inst.weights_fit(),
        "weight_gb_per_gpu": inst.weight_bytes_per_gpu() / units.GB,
        "usable_memory_gb_per_gpu": inst.hw.memory_capacity_bytes * inst.hw.efficiency.memory_usable_frac / units.GB,
        "memory_max_batch": mem_batch,
        "ttft_single_request_s": float(lat.total_s),
        "prefill_input_tokens_per_s_per_gpu": prefill_tps_gpu,
        "bound_prefill": tput.bound,
        "prefill_latency_terms_s": lat.floats(),
        "prefill_throughput_terms_s_per_request": tput.floats(),
        "decode_batch": decode_batch,
    }
    if decode_batch >= 1:
        step = step_terms(inst, decode_batch, context)
        step_s = float(step.total_s)
        out.update({
            "decode_step_s": step_s,
            "tpot_s": step_s / inst.mtp_accepted_tokens,
            "decode_output_tokens_per_s_per_gpu": decode_batch * inst.mtp_accepted_tokens / step_s / inst.gpus,
            "bound_decode": step.bound,
            "decode_terms_s": step.floats(),
            "colocated_output_tokens_per_s_per_gpu": colocated_tokens_per_s_per_gpu(
                decode_batch, isl, osl, prefill_tps_gpu, step_s / inst.mtp_accepted_tokens, inst.gpus),
        })
    else:  # not one request fits beside the weights
        out.update({"decode_step_s": None, "tpot_s": None, "decode_output_tokens_per_s_per_gpu": 0.0,
                    "bound_decode": "memory", "decode_terms_s": {}, "colocated_output_tokens_per_s_per_gpu": 0.0})
    return add_bands(out)


def colocated_tokens_per_s_per_gpu(batch: float, isl: float, osl: float, prefill_tps_per_gpu: float, tpot_s: float, gpus: int) -> float:
    """Output tokens/s per GPU when C requests share P GPUs for prefill and decode (offline
    maximum): C OSL / (C ISL / (prefill tokens/s per GPU x P) + OSL x T_token(C)) / P."""
    return batch * osl / colocated_cycle_s(batch, isl, osl, prefill_tps_per_gpu * gpus, tpot_s) / gpus


def colocated_cycle_s(batch: float, isl: float, osl: float, prefill_tps: float, tpot_s: float) -> float:
    """Seconds for C requests to be prefilled at ``prefill_tps`` (tokens/s of the instance) and
    decoded OSL steps together: C ISL / prefill_tps + OSL x T_token(C)."""
    return batch * isl / prefill_tps + osl * tpot_s


def offline_run_tokens_per_s_per_gpu(inst: Instance, isl: int, osl: int, requests: int, reserve_tokens: float,
                                     max_batch: int | None = None) -> tuple[float, list[int]]:
    """Output tokens/s per GPU of an offline benchmark that queues ``requests`` identical requests
    at once, and the waves it runs them in. An instance admits requests while each can reserve
    ``reserve_tokens`` of cache (ISL + OSL under a no-evict scheduler such as TensorRT-LLM's
    default GUARANTEED_NO_EVICT; ISL + OSL / 2 for the mean). Identical requests finish together, so
    the run is a sequence of waves of b = min(cap, left) requests, each taking
    b ISL / (prefill tokens/s per GPU x P) + OSL x T_token(b) (:func:`colocated_cycle_s`), and the
    result is requests x OSL / total time / P.
    With requests a multiple of the cap it equals the co-located formula at the cap; a short last
    wave runs at a small batch and lowers the result. ``max_batch`` caps the waves further (the
    engine's max_batch_size)."""
    if requests < 1:
        raise PlanError(f"requests must be >= 1, got {requests}")
    cap = inst.memory_max_batch(reserve_tokens)
    if max_batch is not None:
        cap = min(cap, max_batch)
    if cap < 1:
        raise PlanError(f"not one request of {reserve_tokens:.0f} tokens fits beside the weights on {inst.describe()}")
    prefill_tps = isl / float(throughput_terms(inst, isl).total_s)  # per instance
    context = default_context_tokens(isl, osl)
    waves, left, total_s = [], requests, 0.0
    while left > 0:
        b = min(cap, left)
        tpot_s = float(step_terms(inst, b, context).total_s) / inst.mtp_accepted_tokens
        total_s += colocated_cycle_s(b, isl, osl, prefill_tps, tpot_s)
        waves.append(b)
        left -= b
    return requests * osl / total_s / inst.gpus, waves


def estimate(model: ModelSpec, hw: Hardware, gpus: int, *, isl: int = 1024, osl: int = 1024, context_tokens: float | None = None,
             batch: int | None = None, measured: bool = False, **shape) -> dict:
    """`prfaas-plan estimate` as a function; ``shape`` takes :func:`make_instance`'s options."""
    return estimate_instance(make_instance(model, hw, gpus, **shape), isl, osl, context_tokens, batch, measured)
