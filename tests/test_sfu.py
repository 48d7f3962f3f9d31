"""The softmax term (issue #17): attention time is F / (peak e_attn) + beta E / SFU, the softmax
work the kernel does not hide under its MMAs, with beta = terms.SOFTMAX_UNHIDDEN_EXP = 1 (from
FlashAttention-3's bf16 and fp8 fractions of the H100 peak). DeepSeek-V3's MLA prefill does 2 x
(192 + 128) = 640 FLOPs per query head per query-key pair and one exponential. The term's share of
attention time follows the part's balance: GB200 fp8 (5 PFLOP/s beside 5 TeraExponentials/s)
> H200 bf16 (989 TFLOP/s beside 4.18) > H20 bf16 (148 TFLOP/s beside 2.47): a compute-poor part
reaches a larger fraction of its peak in attention."""

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


def _exp_per_rank():
    return counts.prefill_attention_exp(load_model("deepseek-v3"), L)


def test_softmax_term_adds_exponentials_over_the_sfu_rate():
    """GB200 fp8: the SFU adds exactly E / 5e12 s on top of the MMAs; GB300 (10.7e12) adds less than half."""
    gb200, gb300 = load_hardware("gb200"), load_hardware("gb300")
    assert gb200.sfu_exp_per_s == 5e12
    fp8 = {"attention_dtype": "fp8", "kv_dtype": "fp8"}
    added = _attention_s(gb200, **fp8) - _attention_s(replace(gb200, sfu_exp_per_s=None), **fp8)
    assert added == pytest.approx(_exp_per_rank() / 5e12, rel=1e-9)
    added_ultra = _attention_s(gb300, **fp8) - _attention_s(replace(gb300, sfu_exp_per_s=None), **fp8)
    assert added_ultra == pytest.approx(_exp_per_rank() / 10.7e12, rel=1e-9)


def _softmax_share(hw, **shape):
    total = _attention_s(hw, **shape)
    return (total - _attention_s(replace(hw, sfu_exp_per_s=None), **shape)) / total


def test_softmax_share_follows_the_parts_balance():
    """Share of attention time outside the MMAs, by hand at e_attn = the part's attention_frac:
    (1 / SFU) / (640 / (peak e) + 1 / SFU). With e = 0.8: GB200 fp8 0.61, H200 bf16 0.23, H20 bf16
    0.07: H20's attention runs at a larger fraction of its own peak."""
    for name, dtype, peak in (("gb200", "fp8", 5e15), ("h200", "bf16", 989e12), ("h20", "bf16", 148e12)):
        hw = load_hardware(name)
        shape = {"attention_dtype": dtype, "kv_dtype": dtype}
        e = hw.efficiency.attention_frac
        expected = (1 / hw.sfu_exp_per_s) / (640 / (peak * e) + 1 / hw.sfu_exp_per_s)
        assert _softmax_share(hw, **shape) == pytest.approx(expected, rel=1e-9), name
    shares = [_softmax_share(load_hardware(n), attention_dtype=d, kv_dtype=d) for n, d in (("gb200", "fp8"), ("h200", "bf16"), ("h20", "bf16"))]
    assert shares[0] > shares[1] > shares[2]


def test_sfu_key_is_optional_and_checked(tmp_path):
    """Parts that publish no SFU rate have no softmax term; a negative rate names the key."""
    from prfaas_plan.errors import PlanError

    assert load_hardware("groq-lpu").sfu_exp_per_s is None
    text = open(load_hardware("h200").path).read().replace("sfu_tera_exp_per_s: 4.18", "sfu_tera_exp_per_s: -1")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(PlanError, match="sfu_tera_exp_per_s"):
        load_hardware(bad)
