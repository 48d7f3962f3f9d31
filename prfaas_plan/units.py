"""Unit constants and the conversions between the scaled units at the edges and SI inside.

Inside the library every quantity is a plain float in unscaled SI base units whose name says the
unit (``_bytes``, ``_bytes_per_s``, ``_flop``, ``_flop_per_s``, ``_s``, ``_tokens``). YAML keys,
CLI options and table headers may use scaled units (``capacity_gb``, ``link_gbit_per_s``); they
are converted here and nowhere else. GB = 1e9 B and GiB = 2**30 B are kept apart exactly as the
source states them; the paper's KV sizes are MiB (2**20 B) and its bandwidths Gbps (1e9 bit/s).
"""

from __future__ import annotations

import math
import re

from .errors import PlanError

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KIB = 2**10
MIB = 2**20
GIB = 2**30
TFLOP = 1e12
BITS_PER_BYTE = 8
SECONDS_PER_HOUR = 3600.0

#: Bytes per element of each storage dtype. int4/fp4 ignore the per-group scales (~3%).
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "int4": 0.5,
}

#: Which tensor-core peak a GEMM in a weight dtype runs at. int4 weights are dequantised and
#: multiplied in bf16 (W4A16) on parts without a 4-bit integer path.
COMPUTE_DTYPE_OF_WEIGHTS: dict[str, str] = {
    "fp32": "bf16",
    "bf16": "bf16",
    "fp16": "bf16",
    "fp8": "fp8",
    "int8": "fp8",
    "fp4": "fp4",
    "int4": "bf16",
}


def dtype_bytes(dtype: str) -> float:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise PlanError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}") from None


def gbit_per_s_to_bytes_per_s(gbit_per_s: float) -> float:
    return gbit_per_s * GB / BITS_PER_BYTE


def bytes_per_s_to_gbit_per_s(bytes_per_s: float) -> float:
    return bytes_per_s * BITS_PER_BYTE / GB


def tflops_to_flop_per_s(tflops: float) -> float:
    return tflops * TFLOP


def tb_per_s_to_bytes_per_s(tb_per_s: float) -> float:
    return tb_per_s * TB


def gb_per_s_to_bytes_per_s(gb_per_s: float) -> float:
    return gb_per_s * GB


def bytes_to_mib(n_bytes: float) -> float:
    return n_bytes / MIB


def usd_per_hour_to_usd_per_s(usd_per_hour: float) -> float:
    return usd_per_hour / SECONDS_PER_HOUR


_TOKENS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_tokens(text: str | int | float) -> int:
    """Parse a token count such as ``128K``: K = 1024 and M = 1024**2 tokens, as in the paper's
    tables (128K = 131,072). Plain numbers are taken as they are. Fractions (``19.4K``) round to
    the nearest token."""
    if isinstance(text, bool):
        raise PlanError(f"not a token count: {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _TOKENS_RE.match(str(text))
        if not m:
            raise PlanError(f"cannot parse token count {text!r} (use e.g. 1024, 8K, 128K; K = 1024)")
        value = float(m.group(1)) * {"": 1, "k": KIB, "m": MIB}[m.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise PlanError(f"token count must be >= 1, got {text!r}")
    return int(round(value))


def format_tokens(n_tokens: float) -> str:
    """Inverse of :func:`parse_tokens` for display: 131072 -> '128K', 19866 -> '19.4K'."""
    if n_tokens >= KIB:
        k = n_tokens / KIB
        return f"{k:.0f}K" if abs(k - round(k)) < 1e-9 else f"{k:.1f}K"
    return f"{n_tokens:.0f}"
