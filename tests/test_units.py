"""prfaas_plan.units: token counts with the paper's K = 1024, and the one place scaled units
(Gbit/s, TB/s, GB, MiB) turn into SI."""

from __future__ import annotations

import math

import pytest

from prfaas_plan import units
from prfaas_plan.errors import PlanError


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("1K", 1024),  # the paper's K is 1024 tokens
        ("128K", 131_072),  # [PRFAAS] Tables 3 and 5: 128K = 131,072
        ("8k", 8192),  # case-insensitive suffix
        (" 32K ", 32_768),  # surrounding blanks ignored
        ("1M", 1024**2),
        ("19.4K", 19_866),  # 19.4 x 1024 = 19,865.6 rounds to the nearest token
        ("1024", 1024),  # plain numbers taken as they are
        ("1000", 1000),
        (2048, 2048),  # ints pass through
        (19865.6, 19_866),  # floats round
    ],
)
def test_parse_tokens_accepts(text, tokens):
    """Lengths on the CLI use K = 1024 exactly as the paper's tables do."""
    assert units.parse_tokens(text) == tokens
    assert isinstance(units.parse_tokens(text), int)


@pytest.mark.parametrize(
    "bad",
    ["abc", "0", "-5", "1.5Q", "nan", "inf", "", "K", "1K5", "0.4", float("nan"), float("inf"), 0, -3, True],
)
def test_parse_tokens_rejects(bad):
    """Garbage, non-positive, non-finite and unknown suffixes are a PlanError, not a crash or 0."""
    with pytest.raises(PlanError):
        units.parse_tokens(bad)


def test_parse_tokens_error_names_the_input():
    """The message repeats what the user typed so a CLI error is self-explanatory."""
    with pytest.raises(PlanError, match="abc"):
        units.parse_tokens("abc")


def test_gbit_per_s_conversion_by_hand():
    """1 Gbit/s = 1e9 bit/s = 1.25e8 B/s (the paper's Gbps is decimal, bits not bytes)."""
    assert units.gbit_per_s_to_bytes_per_s(1.0) == 1.25e8
    assert units.gbit_per_s_to_bytes_per_s(400.0) == 50e9
    assert units.bytes_per_s_to_gbit_per_s(1.25e8) == 1.0


@pytest.mark.parametrize("gbit", [0.0, 1e-3, 1.0, 13.0, 100.0, 400.0, 1800.0, 3.8e3])
def test_gbit_bytes_round_trip(gbit):
    """Converting to B/s and back returns the same bandwidth."""
    assert units.bytes_per_s_to_gbit_per_s(units.gbit_per_s_to_bytes_per_s(gbit)) == pytest.approx(gbit, rel=1e-12, abs=0)


def test_other_scaled_units_by_hand():
    """TB/s, GB/s and TFLOP/s are decimal; MiB is 2**20 (the paper's KV sizes)."""
    assert units.tb_per_s_to_bytes_per_s(4.8) == pytest.approx(4.8e12, rel=1e-15)
    assert units.gb_per_s_to_bytes_per_s(450) == 450e9
    assert units.tflops_to_flop_per_s(989) == 989e12
    assert units.bytes_to_mib(2**20) == 1.0
    assert units.bytes_to_mib(190.8 * 2**20) == pytest.approx(190.8, rel=1e-15)
    assert units.usd_per_hour_to_usd_per_s(3.6) == pytest.approx(0.001, rel=1e-12)


def test_gb_and_gib_kept_apart():
    """GB = 1e9 B and GiB = 2**30 B are different constants (141 GB != 141 GiB)."""
    assert units.GB == 1e9
    assert units.GIB == 2**30
    assert 141 * units.GIB / (141 * units.GB) == pytest.approx(1.073741824, rel=1e-12)


def test_dtype_bytes():
    """Element sizes of the storage dtypes; an unknown dtype is a PlanError."""
    assert units.dtype_bytes("fp32") == 4
    assert units.dtype_bytes("bf16") == 2
    assert units.dtype_bytes("fp8") == 1
    assert units.dtype_bytes("int4") == 0.5
    with pytest.raises(PlanError, match="fp7"):
        units.dtype_bytes("fp7")


@pytest.mark.parametrize(
    ("tokens", "text"),
    [(131_072, "128K"), (1024, "1K"), (8192, "8K"), (19_866, "19.4K"), (1000, "1000"), (1, "1"), (1536, "1.5K")],
)
def test_format_tokens(tokens, text):
    """Display of token counts mirrors the paper's tables (K = 1024)."""
    assert units.format_tokens(tokens) == text


@pytest.mark.parametrize("text", ["1K", "8K", "32K", "128K", "19.4K", "1.5K", "100"])
def test_format_parse_round_trip(text):
    """What format_tokens prints, parse_tokens reads back to the same display."""
    assert units.format_tokens(units.parse_tokens(text)) == text


def test_parse_tokens_result_is_finite_int():
    """A large but valid count stays an exact int (no float artefacts)."""
    n = units.parse_tokens("1024M")
    assert n == 2**30 and isinstance(n, int) and math.isfinite(n)
