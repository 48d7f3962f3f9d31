"""`prfaas-plan calibrate --microbench`: kernel ceilings measured on the GPU at hand (needs torch).

:func:`measure` times, on the first CUDA device, in absolute units (no catalog needed):

- dense GEMMs: bf16 8192^3; fp8 through ``torch._scaled_mm`` where the part and torch support it;
  and bf16 at the token counts a prefill chunk (16,384), a small chunk (2,048) and a decode batch
  (64) give (M x 8192 x 8192), to show how the achieved fraction falls with M;
- causal attention prefill at 4K, 8K and 16K tokens and decode (``scaled_dot_product_attention``, bf16);
- the special-function unit: a Triton kernel that chains ``exp2`` in registers (one MUFU.EX2 per
  element per step, no memory traffic), exponentials per second where Triton is installed;
- an HBM device-to-device copy;
- linear attention as the chunked scan of the flash-linear-attention kernels (chunk C = 64, head
  dim 128) reduces to: intra-chunk Q K^T and (Q K^T) V, chunk-state K^T V, the prefix scan of the
  states over chunks, and Q S; plain torch (batched matmuls and a cumulative sum), or the ``fla``
  ``chunk_gla`` kernel where it is installed. Reported as seconds per token per head and as the
  fraction of the bf16 peak at the model's count (8 d_k d_v FLOPs per token per head,
  ``counts.LINEAR_ATTENTION_FLOP_PER_STATE_ELEMENT``), the quantity ``linear_attention_frac`` is.

:func:`run_microbench` turns them into fractions of a part's datasheet peaks. These are *kernel*
ceilings: an engine reaches less (scheduling, launches, communication), so a microbenchmark profile
bounds `estimate` from above; fit your engine's own measurements (`calibrate FILE`) for
engine-level numbers. ``python -m prfaas_plan.roofline.microbench OUT.json`` writes the absolute
measurements with their provenance (date, device, torch/Triton/CUDA versions).

torch is imported only when the microbenchmark runs (``pip install ".[gpu]"``); without torch or
without a CUDA device this raises PlanError and writes nothing. This module imports nothing of
the catalog at load time, so it runs where only torch is installed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..errors import PlanError
from .terms import GEMM_FLOP_PER_JOULE

if TYPE_CHECKING:
    from ..catalog.hardware import Hardware

GEMM_SIZE = 8192
GEMM_TOKENS = (16_384, 2_048, 64)  # M of M x 8192 x 8192: prefill chunk, small chunk, decode batch
COPY_BYTES = 2 * 1024**3
ATTN_HEADS, ATTN_HEAD_DIM, ATTN_LENGTHS = 32, 128, (4096, 8192, 16384)
ATTN_TOKENS = 8192  # the length whose fraction becomes attention_frac
DECODE_BATCH, DECODE_CONTEXT = 64, 8192
#: linear attention: tokens, heads per rank, head dim, chunk (fla's chunk size is 64)
LIN_TOKENS, LIN_HEADS, LIN_DIM, LIN_CHUNK = 8192, 16, 128, 64
LIN_FLOP_PER_STATE_ELEMENT = 8.0  # = counts.LINEAR_ATTENTION_FLOP_PER_STATE_ELEMENT (not imported: no catalog here)
#: SFU probe: elements, exp2 steps per element, elements per Triton program
SFU_ELEMENTS, SFU_STEPS, SFU_BLOCK = 1 << 24, 256, 1024


def _torch():
    try:
        import torch
    except ImportError:
        raise PlanError('calibrate --microbench needs torch: pip install ".[gpu]"') from None
    if not torch.cuda.is_available():
        raise PlanError("calibrate --microbench: no CUDA GPU visible (torch.cuda.is_available() is False)")
    return torch


def _time_s(torch, fn, repeat: int = 20) -> float:
    """Median wall time of ``fn`` on the GPU, after warm-up (CUDA events)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def _guarded(raw: dict, key: str, fn) -> None:
    """Run one probe; a failure is recorded under ``key + '_error'`` instead of ending the run."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any kernel or compiler failure is a recorded result
        raw[f"{key}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _gemms(torch, raw: dict) -> None:
    dev, n = torch.device("cuda"), GEMM_SIZE
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    raw["gemm_bf16_flop_per_s"] = 2 * n**3 / _time_s(torch, lambda: a @ b)
    for m in GEMM_TOKENS:
        x = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        raw[f"gemm_bf16_m{m}_flop_per_s"] = 2 * m * n * n / _time_s(torch, lambda: x @ b)
    if hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn"):
        a8 = a.to(torch.float8_e4m3fn)
        b8 = b.t().contiguous().to(torch.float8_e4m3fn).t()
        one = torch.ones((), device=dev)
        raw["gemm_fp8_flop_per_s"] = 2 * n**3 / _time_s(
            torch, lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16))


def _attention(torch, raw: dict) -> None:
    import torch.nn.functional as F

    dev, h, d = torch.device("cuda"), ATTN_HEADS, ATTN_HEAD_DIM
    for length in ATTN_LENGTHS:
        q = torch.randn(1, h, length, d, device=dev, dtype=torch.bfloat16)
        t = _time_s(torch, lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True))
        pairs = length * (length + 1) / 2
        raw[f"attention_prefill_{length}_flop_per_s"] = 2 * h * 2 * d * pairs / t
        raw[f"attention_prefill_{length}_exp_per_s"] = h * pairs / t  # one exponential per score
    raw["attention_prefill_flop_per_s"] = raw[f"attention_prefill_{ATTN_TOKENS}_flop_per_s"]
    qd = torch.randn(DECODE_BATCH, h, 1, d, device=dev, dtype=torch.bfloat16)
    kc = torch.randn(DECODE_BATCH, h, DECODE_CONTEXT, d, device=dev, dtype=torch.bfloat16)
    vc = torch.randn_like(kc)  # separate K and V tensors: both are read from HBM
    t = _time_s(torch, lambda: F.scaled_dot_product_attention(qd, kc, vc))
    raw["attention_decode_bytes_per_s"] = 2 * kc.numel() * kc.element_size() / t


def _copy(torch, raw: dict) -> None:
    src = torch.empty(COPY_BYTES // 2, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    raw["hbm_copy_bytes_per_s"] = 2 * COPY_BYTES / _time_s(torch, lambda: dst.copy_(src))


def _sfu(torch, raw: dict) -> None:
    """Exponentials per second of the special-function unit: each element runs SFU_STEPS chained
    exp2 (x <- 2^-x stays in [0.5, 1]) in registers; loads and stores are 8 B per element."""
    import triton

    from .sfu_kernel import exp_chain

    x = torch.rand(SFU_ELEMENTS, device="cuda", dtype=torch.float32)
    out = torch.empty_like(x)
    grid = (SFU_ELEMENTS // SFU_BLOCK,)
    t = _time_s(torch, lambda: exp_chain[grid](x, out, STEPS=SFU_STEPS, BLOCK=SFU_BLOCK))
    raw["sfu_exp_per_s"] = SFU_ELEMENTS * SFU_STEPS / t
    raw["triton_version"] = triton.__version__


def _linear_attention(torch, raw: dict) -> None:
    """The chunked scan's products (module docstring), timed as one sequence."""
    dev, length, h, d, c = torch.device("cuda"), LIN_TOKENS, LIN_HEADS, LIN_DIM, LIN_CHUNK
    n = length // c
    q = torch.randn(h * n, c, d, device=dev, dtype=torch.bfloat16) * d**-0.5
    k, v = torch.randn_like(q) * d**-0.5, torch.randn_like(q)
    mask = torch.ones(c, c, device=dev, dtype=torch.bool).tril()

    def chunk_scan():
        scores = torch.bmm(q, k.transpose(1, 2)).masked_fill_(~mask, 0.0)
        out = torch.bmm(scores, v)  # intra-chunk
        states = torch.bmm(k.transpose(1, 2), v).float().view(h, n, d, d)  # per-chunk K^T V
        prefix = torch.cumsum(states, dim=1).to(torch.bfloat16).view(h * n, d, d)  # inclusive scan
        return out + torch.bmm(q, prefix)  # inter-chunk Q S (the shift by one chunk is not timed)

    t = _time_s(torch, chunk_scan)
    raw["linear_attention_torch_s_per_token_per_head"] = t / (length * h)
    raw["linear_attention_torch_flop_per_s"] = LIN_FLOP_PER_STATE_ELEMENT * d * d * length * h / t
    try:
        from fla.ops.gla import chunk_gla  # flash-linear-attention, optional
    except ImportError:
        raw["linear_attention_fla"] = "skipped: flash-linear-attention (fla) not installed"
        return
    qk = torch.randn(1, length, h, d, device=dev, dtype=torch.bfloat16)
    g = torch.nn.functional.logsigmoid(torch.randn_like(qk))
    t = _time_s(torch, lambda: chunk_gla(qk, qk, qk, g))
    raw["linear_attention_fla_s_per_token_per_head"] = t / (length * h)
    raw["linear_attention_fla_flop_per_s"] = LIN_FLOP_PER_STATE_ELEMENT * d * d * length * h / t


def measure() -> dict:
    """Absolute measurements on the first CUDA device (module docstring), with provenance; a probe
    that fails is recorded as ``<probe>_error``. Raises PlanError without torch or a GPU."""
    torch = _torch()
    from datetime import datetime, timezone

    raw: dict = {"device": torch.cuda.get_device_name(0), "torch_version": torch.__version__,
                 "cuda_version": torch.version.cuda, "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for key, probe in (("gemm", _gemms), ("attention", _attention), ("hbm_copy", _copy), ("sfu", _sfu),
                       ("linear_attention", _linear_attention)):
        _guarded(raw, key, lambda probe=probe: probe(torch, raw))
        torch.cuda.empty_cache()
    return raw


def fractions(raw: dict, hw: Hardware) -> dict:
    """Measured kernel fractions of ``hw``'s peaks from :func:`measure`'s numbers (capped at 1);
    ``gemm_frac`` is the MMAs' share with the power-limit time of :func:`~.terms.gemm_compute_s`
    taken out, so the model gives the measured GEMM rate back."""
    out = {}
    if "gemm_bf16_flop_per_s" in raw:  # the MMAs' share: the power-limit time (terms.gemm_compute_s) taken out
        seconds_per_flop = 1.0 / raw["gemm_bf16_flop_per_s"]
        if hw.power_w:
            seconds_per_flop -= 1.0 / (hw.power_w * GEMM_FLOP_PER_JOULE)
        out["gemm_frac"] = 1.0 / (seconds_per_flop * hw.peak_for("bf16")) if seconds_per_flop > 0 else 1.0
    if "gemm_fp8_flop_per_s" in raw and "fp8" in hw.peak_flop_per_s:
        raw["gemm_fp8_frac"] = raw["gemm_fp8_flop_per_s"] / hw.peak_for("fp8")
    if "attention_prefill_flop_per_s" in raw:
        out["attention_frac"] = raw["attention_prefill_flop_per_s"] / hw.peak_for("bf16")
    if "hbm_copy_bytes_per_s" in raw:
        out["memory_frac"] = raw["hbm_copy_bytes_per_s"] / hw.memory_bandwidth_bytes_per_s
    lin = raw.get("linear_attention_fla_flop_per_s", raw.get("linear_attention_torch_flop_per_s"))
    if lin is not None:
        out["linear_attention_frac"] = lin / hw.peak_for("bf16")
    return {k: min(v, 1.0) for k, v in out.items()}


def run_microbench(hw: Hardware) -> dict:
    """Measured kernel fractions of ``hw``'s peaks: {key: fraction} plus raw numbers under 'raw'."""
    raw = measure()
    out = fractions(raw, hw)
    out["raw"] = raw
    return out


def microbench_profile(hw: Hardware, date: str) -> tuple[dict, list[dict]]:
    """Run the microbenchmark on ``hw`` and return (profile document, rows of measured fractions);
    the profile keeps the part's other efficiencies and says the fractions are kernel ceilings."""
    from dataclasses import replace

    measured = run_microbench(hw)
    raw = measured.pop("raw")
    eff = replace(hw.efficiency, basis="calibrated", **measured)
    doc = {"kind": "efficiency-profile", "hardware": hw.name, "date": date, "fitted_on": f"microbenchmark on {raw['device']}",
           "fitted_keys": sorted(measured), "note": "kernel ceilings, not engine-level efficiencies; raw: " + repr(raw),
           "efficiency": {k: v for k, v in vars(eff).items() if k != "note"}}
    return doc, [{"parameter": k, "measured_frac": v} for k, v in measured.items()]


def main(argv: list[str]) -> int:
    """``python -m prfaas_plan.roofline.microbench OUT.json``: :func:`measure` written as JSON."""
    import json

    if len(argv) != 1:
        print("usage: python -m prfaas_plan.roofline.microbench OUT.json", file=sys.stderr)
        return 2
    try:
        raw = measure()
    except PlanError as exc:
        print(exc, file=sys.stderr)
        return 2
    with open(argv[0], "w", encoding="utf-8") as fh:
        json.dump(raw, fh, indent=1, sort_keys=True)
    print(json.dumps(raw, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
