"""Parallelism flags in the engines' spelling (issue 15 item 2, roofline/parallel.py): `--tp` is the
TP world size of a stage as in SGLang and TensorRT-LLM, `--dp N --enable-dp-attention` splits it
into N attention ranks, `--dp-attention` is a deprecated alias for DP = TP; flags that would do
nothing are refused, a TP group across scale-up domains is warned about, and the parsed deployment
is printed in the engines' terms. Regressions: on old main `--gpus 8 --tp 8 --dp-attention` meant
one attention rank of TP 8, and `--tp 32 --ep 32` on 32 H100 was priced with no word."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import load_model
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.roofline.estimate import estimate
from prfaas_plan.roofline.instance import make_instance
from prfaas_plan.roofline.parallel import dp_ranks

runner = CliRunner()


def _estimate_json(*args: str) -> tuple[dict, str]:
    res = runner.invoke(app, ["estimate", *args, "-f", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res.stderr


def test_dp_attention_splits_the_tp_world():
    """qwen3-235b on 8 H200 (the issue's reproducer): `--tp 8 --dp 8 --enable-dp-attention` and the
    deprecated `--tp 8 --dp-attention` are DP attention over 8 ranks of attention TP 1 with EP 8,
    the library's answer for that shape; plain `--tp 8` is one attention group of TP 8, whose GQA
    cache (4 KV heads) is replicated 2x and whose prefill is well under half as fast per GPU."""
    sglang, _ = _estimate_json("-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--tp", "8", "--dp", "8", "--enable-dp-attention")
    alias, _ = _estimate_json("-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--tp", "8", "--dp-attention")
    plain, _ = _estimate_json("-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--tp", "8")
    assert sglang == alias
    assert (sglang["tp"], sglang["attention_tp"], sglang["dp"], sglang["ep"], sglang["pp"]) == (8, 1, 8, 8, 1)
    assert sglang["deployment"] == "tp 8 (attention tp 1 x dp 8), ep 8, pp 1"
    assert sglang["sglang_flags"] == "--tp 8 --dp 8 --enable-dp-attention --ep 8"
    lib = estimate(load_model("qwen3-235b"), load_hardware("h200"), 8, tp=8, dp=8, ep=8)
    assert sglang["prefill_input_tokens_per_s_per_gpu"] == pytest.approx(lib["prefill_input_tokens_per_s_per_gpu"], rel=1e-12)
    assert (plain["attention_tp"], plain["dp"], plain["deployment"]) == (8, 1, "tp 8, ep 1, pp 1")
    assert sglang["prefill_input_tokens_per_s_per_gpu"] > 2 * plain["prefill_input_tokens_per_s_per_gpu"]


def test_deepseek_large_ep_and_the_tp_span_warning():
    """DeepSeek-V3 on 32 H100 (four 8-GPU domains): `--tp 32 --ep 32 --dp 32 --enable-dp-attention`
    is attention TP 1 x DP 32 and warns about nothing; `--tp 32 --ep 32` alone keeps one attention
    group of 32 GPUs, whose all-reduces cross the NIC: one warning line on stderr, and an order of
    magnitude less decode (the issue measured 24x; SGLang's own figure is ~2.6k tok/s/GPU)."""
    dp, dp_err = _estimate_json("-m", "deepseek-v3", "-H", "h100", "--gpus", "32", "--tp", "32", "--ep", "32", "--dp", "32", "--enable-dp-attention")
    tp, tp_err = _estimate_json("-m", "deepseek-v3", "-H", "h100", "--gpus", "32", "--tp", "32", "--ep", "32")
    assert dp["deployment"] == "tp 32 (attention tp 1 x dp 32), ep 32, pp 1" and dp["warnings"] == [] and dp_err == ""
    assert len(tp["warnings"]) == 1 and "32 GPUs" in tp["warnings"][0] and "scale-up domain of 8" in tp["warnings"][0]
    assert tp_err.strip().splitlines() == [f"warning: {tp['warnings'][0]}"]
    assert dp["decode_output_tokens_per_s_per_gpu"] > 10 * tp["decode_output_tokens_per_s_per_gpu"]


def test_table_prints_the_deployment_in_engine_terms():
    res = runner.invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", "--tp", "8", "--dp", "4", "--enable-dp-attention"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "tp 8 (attention tp 2 x dp 4), ep 8, pp 1" in res.stdout
    assert "--tp 8 --dp 4 --enable-dp-attention --ep 8" in res.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--tp", "8", "--dp", "8"], "--dp 8 without --enable-dp-attention"),  # would be replicas, not DP attention
    (["--tp", "8", "--enable-dp-attention"], "--enable-dp-attention: give --dp N"),
    (["--tp", "8", "--dp", "3", "--enable-dp-attention"], "--dp: 3 DP-attention ranks must divide --tp 8"),
    (["--tp", "8", "--dp", "1", "--enable-dp-attention"], "DP attention with 1 rank does nothing"),
    (["--tp", "1", "--ep", "8", "--dp-attention"], "--dp-attention: DP attention with 1 rank does nothing"),  # the old spelling
    (["--dp-attention"], "--dp-attention: means DP attention over the whole TP group"),
    (["--tp", "8", "--dp", "8", "--enable-dp-attention", "--dp-attention"], "give one spelling"),
    (["--tp", "8", "--ep", "16"], "--ep: EP 16 must divide the TP world of 8 GPUs"),  # EP larger than the world
    (["--tp", "16"], "--tp: 16 does not divide --gpus 8"),
    (["--tp", "4", "--pp", "1"], "--tp: TP 4 x PP 1 != --gpus 8"),
])
def test_flags_that_would_do_nothing_are_refused(args, needle):
    res = runner.invoke(app, ["estimate", "-m", "qwen3-235b", "-H", "h200", "--gpus", "8", *args])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines


def test_dp_ranks_by_hand():
    assert dp_ranks(None, False, False, None) is None  # the engine default
    assert dp_ranks(4, True, False, 8) == 4
    assert dp_ranks(None, False, True, 8) == 8  # deprecated alias: DP = TP
    with pytest.raises(PlanError, match="^dp: "):
        dp_ranks(8, False, False, 8, prefix="")  # file keys are named without dashes


def test_make_instance_keeps_p_equal_tp_times_pp(make_tiny_model, make_simple_hardware):
    """GPUs = TP x PP; DP splits TP; attention TP x DP = TP."""
    inst = make_instance(make_tiny_model(), make_simple_hardware(), 16, tp=8, pp=2)
    assert (inst.tp, inst.attention_tp, inst.dp, inst.pp, inst.stage_gpus) == (8, 8, 1, 2, 8)


def _scenario(tmp_path, instance: str):
    from prfaas_plan.planning.scenario import load_scenario

    text = open(load_scenario("paper-case-study-roofline").path).read().replace("name: paper-case-study-roofline", "name: shaped")
    text = text.replace("  hardware: h200\n  gpus_per_instance: 8\n", f"  hardware: h200\n  gpus_per_instance: 8\n  instance: {instance}\n")
    path = tmp_path / "shaped.yaml"
    path.write_text(text)
    return load_scenario(path)


def test_scenario_instance_takes_the_engine_spelling(tmp_path):
    """A cluster's `instance:` reads tp/dp/enable_dp_attention/ep/pp as the CLI does, the
    deprecated dp_attention too, and optimize reports the deployment in the engines' terms."""
    from prfaas_plan.planning.planner import optimize

    sc = _scenario(tmp_path, "{tp: 8, dp: 8, enable_dp_attention: true}")
    assert (sc.prfaas.instance.attention_tp, sc.prfaas.instance.dp, sc.prfaas.instance.ep) == (1, 8, 8)
    assert _scenario(tmp_path, "{tp: 8, dp_attention: true}").prfaas.instance == sc.prfaas.instance
    result = optimize(sc, compare_modes=False)
    assert result["deployments"]["prfaas"]["text"] == "tp 8 (attention tp 1 x dp 8), ep 8, pp 1"
    assert result["deployments"]["local"]["text"] == "tp 8, ep 1, pp 1"


@pytest.mark.parametrize(("instance", "needle"), [
    ("{tp: 8, dp: 8}", "key 'prfaas.instance.dp': dp 8 without enable_dp_attention"),
    ("{tp: 8, enable_dp_attention: true}", "key 'prfaas.instance.enable_dp_attention': give dp N"),
    ("{tp: 1, dp_attention: true}", "key 'prfaas.instance.dp_attention'"),
])
def test_scenario_instance_refuses_no_op_flags(tmp_path, instance, needle):
    with pytest.raises(PlanError, match=needle.replace("(", r"\(")):
        _scenario(tmp_path, instance)
