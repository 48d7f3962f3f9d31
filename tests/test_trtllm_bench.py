"""trtllm-bench's max_batch_size (paper/engines.py, trtllm_bench_max_batch): the TensorRT-LLM offline
points run at the smaller of the memory batch and the benchmark's own cap, which counts KV heads as
replicated over TP (max(TP, KV heads)) even under attention DP."""

from __future__ import annotations

import math

import pytest

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.paper import engines
from prfaas_plan.roofline.counts import total_params


def test_qwen3_on_8xh100_by_hand():
    """Qwen3-235B fp8 on 8 x H100, 128/2048: a token is 2 x 94 layers x max(8, 4) heads x 128 x 1 B
    = 192,512 B; free = 8 x 81,559 MiB - the fp8 weights; requests = 0.95 free / (2,176 tokens);
    ~1,000 of them round up to a multiple of 128 (raw < 1,024) or 256."""
    m = load_model("qwen3-235b")
    free = 8 * 81_559 * 2**20 - total_params(m)
    raw = 0.95 * free / (192_512 * 2176)
    expected = 128 * math.ceil(raw / 128) if raw < 1024 else 256 * math.ceil(raw / 256)
    got = engines.trtllm_bench_max_batch(m, load_hardware("h100"), 8, 8, 1, "fp8", "fp8", 128, 2048)
    assert got == expected
    assert 900 < raw < 1100  # the heuristic's cap is far below the ~2,500 requests the cache holds under attention DP


def test_small_and_capped_requests_round_as_the_heuristic_does(monkeypatch):
    """Below 256 requests: a multiple of 32, at least 64; above 4,096 the cap holds (divided by PP)."""
    m, h200 = load_model("qwen3-235b"), load_hardware("h200")
    tiny = engines.trtllm_bench_max_batch(m, h200, 8, 8, 1, "fp8", "fp8", 60_000, 60_000)
    assert tiny % 32 == 0 and tiny >= 64
    monkeypatch.setitem(engines.TRTLLM_DEVICE_MIB, "h200", 10**9)  # memory without end
    assert engines.trtllm_bench_max_batch(m, h200, 8, 8, 1, "fp8", "fp8", 128, 128) == 4096
    assert engines.trtllm_bench_max_batch(m, h200, 8, 8, 2, "fp8", "fp8", 128, 128) == 2048


@pytest.mark.parametrize("point_id", ["trtllm-h100-qwen3-235b-fp8-128-2048", "trtllm-h200-llama70b-fp8-2048-128"])
def test_offline_points_take_the_smaller_batch(point_id):
    """The setup's batch is min(memory batch, trtllm-bench cap); SGLang points keep theirs."""
    from prfaas_plan.roofline.instance import make_instance

    point = next(p for p in engines.points() if p["id"] == point_id)
    setup = engines.setup(point)
    base = engines.SETUPS[point_id]
    m, hw = engines._model(base["model"]), load_hardware(base["hardware"])
    shape = {k: base[k] for k in ("tp", "dp", "ep", "weights", "kv_dtype") if k in base}
    inst = make_instance(m, hw, base["gpus"], **shape)
    cap = engines.trtllm_bench_max_batch(m, hw, base["gpus"], inst.tp, inst.pp, inst.weights_dtype, inst.kv_dtype, base["isl"], base["osl"])
    assert setup["batch"] == min(inst.memory_max_batch(base["isl"] + base["osl"] / 2), cap)
    sgl = next(p for p in engines.points() if p["id"] == "sgl-gb200-dsv3-decode-fp4")
    assert "batch" not in engines.setup(sgl)
