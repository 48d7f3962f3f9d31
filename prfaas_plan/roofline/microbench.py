"""`prfaas-plan calibrate --microbench`: kernel ceilings measured on the GPU at hand (needs torch).

Measures, on the first CUDA device: dense GEMMs per dtype (bf16 8192^3; fp8 through
``torch._scaled_mm`` where the part and torch support it), causal attention prefill and decode
(``scaled_dot_product_attention``, bf16), an HBM device-to-device copy, and linear attention
where the flash-linear-attention kernels (``fla``) are installed. Each is reported as a fraction
of the part's datasheet peak. These are *kernel* ceilings: an engine reaches less (scheduling,
launches, communication), so a microbenchmark profile bounds `estimate` from above; fit your
engine's own measurements (`calibrate FILE`) for engine-level numbers.

torch is imported only when the microbenchmark runs (``pip install ".[gpu]"``); without torch or
without a CUDA device this raises PlanError and writes nothing.
"""

from __future__ import annotations

from ..catalog.hardware import Hardware
from ..errors import PlanError

GEMM_SIZE = 8192
COPY_BYTES = 2 * 1024**3
ATTN_HEADS, ATTN_HEAD_DIM, ATTN_TOKENS = 32, 128, 8192
DECODE_BATCH, DECODE_CONTEXT = 64, 8192


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


def run_microbench(hw: Hardware) -> dict:
    """Measured kernel fractions of ``hw``'s peaks: {key: fraction} plus raw numbers under 'raw'."""
    torch = _torch()
    import torch.nn.functional as F

    dev = torch.device("cuda")
    n = GEMM_SIZE
    raw: dict = {"device": torch.cuda.get_device_name(0)}
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    raw["gemm_bf16_flop_per_s"] = 2 * n**3 / _time_s(torch, lambda: a @ b)
    out = {"gemm_frac": raw["gemm_bf16_flop_per_s"] / hw.peak_for("bf16")}
    if "fp8" in hw.peak_flop_per_s and hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn"):
        a8 = a.to(torch.float8_e4m3fn)
        b8 = b.t().contiguous().to(torch.float8_e4m3fn).t()
        one = torch.ones((), device=dev)
        try:
            raw["gemm_fp8_flop_per_s"] = 2 * n**3 / _time_s(torch, lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
            raw["gemm_fp8_frac"] = raw["gemm_fp8_flop_per_s"] / hw.peak_for("fp8")
        except (RuntimeError, TypeError) as exc:  # older torch signatures or unsupported part
            raw["gemm_fp8_error"] = str(exc).splitlines()[0]
    h, d, length = ATTN_HEADS, ATTN_HEAD_DIM, ATTN_TOKENS
    q = torch.randn(1, h, length, d, device=dev, dtype=torch.bfloat16)
    t = _time_s(torch, lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True))
    raw["attention_prefill_flop_per_s"] = 2 * h * 2 * d * length * (length + 1) / 2 / t
    out["attention_frac"] = raw["attention_prefill_flop_per_s"] / hw.peak_for("bf16")
    qd = torch.randn(DECODE_BATCH, h, 1, d, device=dev, dtype=torch.bfloat16)
    kv = torch.randn(DECODE_BATCH, h, DECODE_CONTEXT, d, device=dev, dtype=torch.bfloat16)
    t = _time_s(torch, lambda: F.scaled_dot_product_attention(qd, kv, kv))
    raw["attention_decode_bytes_per_s"] = 2 * kv.numel() * kv.element_size() / t
    src = torch.empty(COPY_BYTES // 2, device=dev, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    raw["hbm_copy_bytes_per_s"] = 2 * COPY_BYTES / _time_s(torch, lambda: dst.copy_(src))
    out["memory_frac"] = min(raw["hbm_copy_bytes_per_s"] / hw.memory_bandwidth_bytes_per_s, 1.0)
    try:
        from fla.ops.gla import chunk_gla  # flash-linear-attention, optional
    except ImportError:
        raw["linear_attention"] = "skipped: flash-linear-attention (fla) not installed"
    else:
        t_len, heads, dk = 8192, 16, 128
        qk = torch.randn(1, t_len, heads, dk, device=dev, dtype=torch.bfloat16)
        g = torch.nn.functional.logsigmoid(torch.randn_like(qk))
        t = _time_s(torch, lambda: chunk_gla(qk, qk, qk, g))
        raw["linear_attention_flop_per_s"] = 8 * heads * dk * dk * t_len / t
        out["linear_attention_frac"] = raw["linear_attention_flop_per_s"] / hw.peak_for("bf16")
    out = {k: min(v, 1.0) for k, v in out.items()}
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
