"""Chunked prefill as an engine setting (issue #17): without chunking a prompt crosses the PP
stages in series, so PP buys no TTFT; with chunking the chunks pipeline and the last, costliest
chunk's walk through the remaining stages is what PP cannot hide. Numbers on Llama-3.3-70B fp8,
a 128K prompt, H200."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.paper.engines import LLAMA_70B
from prfaas_plan.roofline.estimate import estimate
from prfaas_plan.catalog.engines import engine_chunk_tokens
from prfaas_plan.roofline.instance import PREFILL_TOKENS_PER_FORWARD, make_instance
from prfaas_plan.roofline.prefill import chunk_attention_frac, latency_terms, throughput_terms

L = 131_072
HIDDEN_BYTES = 8192 * 2.0  # Llama-70B hidden size, bf16 activations


@pytest.fixture(scope="module")
def llama():
    return load_model(LLAMA_70B), load_hardware("h200")


def _ttft(llama, gpus, **shape):
    m, hw = llama
    return estimate(m, hw, gpus, isl=L, osl=16, weights="fp8", **shape)


def test_chunk_shares_of_causal_attention():
    """Chunk i of n attends to its own triangle and the i - 1 chunks before it: (2i - 1) / n^2.
    For n = 8: the first chunk 1/64, the last 15/64, and the eight sum to 64/64."""
    assert chunk_attention_frac(1, 8) == pytest.approx(1 / 64)
    assert chunk_attention_frac(8, 8) == pytest.approx(15 / 64)
    assert sum(chunk_attention_frac(i, 8) for i in range(1, 9)) == pytest.approx(1.0)
    assert chunk_attention_frac(1, 1) == 1.0  # one chunk is the whole prompt


def test_no_chunking_pp_buys_no_ttft(llama):
    """--chunk-tokens 0 --pp 4: the 128K prompt runs through the four stages one after another, so
    TTFT is one GPU's whole-prompt time (the same layers, the same per-GPU kernels) plus three
    hand-offs of the prompt's activations over NVLink: 3 x (128K x 8192 x 2 B / (450 GB/s x
    link_frac) + collective latency) = 3 x 9.9 ms at link_frac 0.48. TP4 for comparison splits
    every layer and is ~3x faster."""
    m, hw = llama
    e = hw.efficiency
    one_gpu = _ttft(llama, 1, chunk_tokens=0)["ttft_single_request_s"]
    pp4 = _ttft(llama, 4, tp=1, pp=4, chunk_tokens=0)["ttft_single_request_s"]
    handoffs = 3 * (L * HIDDEN_BYTES / (hw.scaleup_bytes_per_s * e.link_frac) + e.collective_latency_s)
    assert pp4 == pytest.approx(one_gpu + handoffs, rel=1e-9)
    assert pp4 / one_gpu < 1.01
    assert _ttft(llama, 4, tp=4, chunk_tokens=0)["ttft_single_request_s"] < one_gpu / 2.5


def test_chunked_pp_pipelines_and_the_last_chunk_drains(llama):
    """--chunk-tokens 16384 --pp 4 on 128K: n = 8 chunks. With the one-GPU whole prompt split into
    A (attention, s) and G (everything else that scales with tokens, s), and f the per-pass
    overhead, a chunk's pass takes G/8 + A share + f: the mean chunk A/8, the last 15A/64. The
    stages add (PP - 1)/PP of the last chunk to the n/PP passes of one stage:

        TTFT = r + (8/4) (G/8 + A/8 + f) + (3/4) (G/8 + 15A/64 + f)

    (plus 8 + 3 small hand-offs, < 1%). About 19 s against 46 s unchunked."""
    m, hw = llama
    e = hw.efficiency
    whole = _ttft(llama, 1, chunk_tokens=0)
    terms = whole["prefill_latency_terms_s"]
    a = terms["attention"] + terms["kv-hbm"]
    g = terms["gemm"] + terms["weights-hbm"] + terms["activations-hbm"]
    f, r = e.forward_overhead_s, e.request_overhead_s
    hand = r + 2 * (g / 8 + a / 8 + f) + 0.75 * (g / 8 + 15 * a / 64 + f)
    chunked = _ttft(llama, 4, tp=1, pp=4, chunk_tokens=16384)["ttft_single_request_s"]
    assert chunked == pytest.approx(hand, rel=0.01)
    assert chunked < 0.5 * whole["ttft_single_request_s"]
    # smaller chunks drain faster (the last chunk is cheaper) but pay more per-pass overheads
    c8k = _ttft(llama, 4, tp=1, pp=4, chunk_tokens=8192)["ttft_single_request_s"]
    assert c8k < chunked


def test_pp1_chunking_changes_only_per_pass_costs(llama):
    """Without PP the chunks run one after another: the work is the same, only the per-pass
    overhead (n passes instead of 1) and the re-read of cached chunks differ."""
    m, hw = llama
    e = hw.efficiency
    whole = _ttft(llama, 1, chunk_tokens=0)["ttft_single_request_s"]
    chunked = _ttft(llama, 1, chunk_tokens=16384)["ttft_single_request_s"]
    assert chunked - whole == pytest.approx(7 * e.forward_overhead_s, rel=0.05)


def test_default_is_the_calibrated_budget_and_engines_are_documented(llama):
    """No chunk size given: the 16,384-token budget the calibration was fitted with. SGLang picks by
    GPU memory (H200 141 GB -> 8192, B200 180 GB -> 16384); TensorRT-LLM 8192; vLLM serve 8192."""
    m, hw = llama
    assert make_instance(m, hw, 1).chunk_tokens == PREFILL_TOKENS_PER_FORWARD == 16_384
    assert engine_chunk_tokens("sglang", hw) == 8192
    assert engine_chunk_tokens("sglang", load_hardware("b200")) == 16_384
    assert engine_chunk_tokens("trtllm", hw) == 8192
    assert engine_chunk_tokens("vllm", hw) == 8192
    with pytest.raises(PlanError, match="--engine.*unknown engine 'tgi'"):
        engine_chunk_tokens("tgi", hw)
    # `estimate --engine sglang` on H200 prices 8K chunks unless --chunk-tokens says otherwise
    import json

    run = CliRunner().invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--engine", "sglang", "-f", "json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["chunk_tokens"] == 8192
    run = CliRunner().invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--engine", "sglang", "--chunk-tokens", "0", "-f", "json"])
    assert json.loads(run.stdout)["chunk_tokens"] == 0


def test_throughput_regime_without_chunking_packs_up_to_the_budget(llama):
    """Under load without chunking a pass holds max(l, 16384) tokens: 1K prompts are packed 16 to a
    pass (as with 16K chunks), a 128K prompt runs whole in one pass."""
    m, hw = llama
    none, c16 = make_instance(m, hw, 1, chunk_tokens=0), make_instance(m, hw, 1, chunk_tokens=16384)
    assert float(throughput_terms(none, 1024).total_s) == pytest.approx(float(throughput_terms(c16, 1024).total_s))
    assert float(latency_terms(none, L).total_s) < float(latency_terms(c16, L).total_s)  # one pass overhead, not 8


def test_bad_chunk_tokens_is_one_line(llama):
    m, hw = llama
    with pytest.raises(PlanError, match="--chunk-tokens.*>= 0"):
        make_instance(m, hw, 1, chunk_tokens=-1)
    res = CliRunner().invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--chunk-tokens", "-5"])
    assert res.exit_code == 2 and "--chunk-tokens" in res.stderr and "Traceback" not in res.output


def test_cli_and_scenario_take_the_chunk_size(tmp_path):
    """`estimate --chunk-tokens` reaches the instance (and the JSON says which was used); a
    scenario's instance block takes chunk_tokens, a bad one names the key."""
    import json

    res = CliRunner().invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--isl", "128K", "--chunk-tokens", "0", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["chunk_tokens"] == 0
    from test_estimate import _roofline_scenario

    sc = _roofline_scenario(tmp_path, "  instance: {chunk_tokens: 8192}\n")
    assert sc.prfaas.instance.chunk_tokens == 8192
    sc = _roofline_scenario(tmp_path, "  instance: {engine: sglang}\n")  # the engine's default on H200
    assert sc.prfaas.instance.chunk_tokens == 8192
    with pytest.raises(PlanError, match="prfaas.instance.*chunk_tokens"):
        _roofline_scenario(tmp_path, "  instance: {chunk_tokens: -1}\n")
