"""The softmax floor (issue #17): attention is held to the slower of its tensor-core MMAs and its
exponentials on the special-function unit. DeepSeek-V3's MLA prefill does 2 x (192 + 128) = 640
FLOPs per query head per query-key pair and one exponential. With fp8 attention on GB200
(5 PFLOP/s fp8, 5 TeraExponentials/s) the MMAs take 640 / 5e15 = 1.28e-13 s per pair-head and the
exponential 1 / 5e12 = 2.0e-13 s: the SFU binds, 1.5625x the MMA time. Blackwell Ultra (GB300,
10.7 TeraExponentials/s: 0.93e-13 s) takes it off again; Hopper bf16 never meets it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.roofline import counts
from prfaas_plan.roofline.instance import make_instance
from prfaas_plan.roofline.prefill import latency_terms

L = 131_072


def _attention_s(hw, **shape):
    m = load_model("deepseek-v3")
    inst = make_instance(m, hw, 4, tp=4, ep=4, dp=4, chunk_tokens=0, **shape)
    return float(latency_terms(inst, L).seconds["attention"])


def test_exponentials_count_one_per_head_per_pair():
    """MLA: 128 heads x 61 layers x l(l+1)/2 pairs; FLOPs are 640 x that."""
    m = load_model("deepseek-v3")
    pairs = 1024 * 1025 / 2
    assert counts.prefill_attention_exp(m, 1024) == pytest.approx(61 * 128 * pairs)
    assert counts.prefill_attention_flop(m, 1024) == pytest.approx(640 * counts.prefill_attention_exp(m, 1024))


def test_sfu_binds_fp8_attention_on_gb200_not_on_gb300():
    gb200 = load_hardware("gb200")
    assert gb200.sfu_exp_per_s == 5e12
    with_floor = _attention_s(gb200, attention_dtype="fp8", kv_dtype="fp8")
    without = _attention_s(replace(gb200, sfu_exp_per_s=None), attention_dtype="fp8", kv_dtype="fp8")
    assert with_floor / without == pytest.approx((1 / 5e12) / (640 / 5e15), rel=1e-9)  # 1.5625
    gb300 = load_hardware("gb300")
    assert _attention_s(gb300, attention_dtype="fp8", kv_dtype="fp8") == pytest.approx(
        _attention_s(replace(gb300, sfu_exp_per_s=None), attention_dtype="fp8", kv_dtype="fp8"))


def test_hopper_bf16_attention_is_mma_bound():
    """H200 bf16: 640 / 989e12 = 6.5e-13 s of MMA per pair-head against 1 / 4.18e12 = 2.4e-13 s of
    exponentials (measured on an H200: SDPA used 0.30 of the SFU at 0.62 of the bf16 peak)."""
    h200 = load_hardware("h200")
    assert _attention_s(h200) == pytest.approx(_attention_s(replace(h200, sfu_exp_per_s=None)))


def test_sfu_key_is_optional_and_checked(tmp_path):
    """Parts that publish no SFU rate have no floor; a negative rate names the key."""
    from prfaas_plan.errors import PlanError

    assert load_hardware("h20").sfu_exp_per_s is None
    text = open(load_hardware("h200").path).read().replace("sfu_tera_exp_per_s: 4.18", "sfu_tera_exp_per_s: -1")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(PlanError, match="sfu_tera_exp_per_s"):
        load_hardware(bad)
