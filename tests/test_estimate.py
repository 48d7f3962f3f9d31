"""Instance shapes, communication terms by hand, `estimate` (API and CLI) and its bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from prfaas_plan.catalog.hardware import load_hardware
from prfaas_plan.catalog.model import FFN, load_model
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.paper import engines
from prfaas_plan.roofline.decode import step_terms
from prfaas_plan.roofline.estimate import colocated_tokens_per_s_per_gpu, estimate, offline_run_tokens_per_s_per_gpu
from prfaas_plan.roofline.instance import make_instance
from prfaas_plan.roofline.terms import allreduce_s, dispatch_combine_s


def moe_tiny(make_tiny_model):
    """The tiny model with 2 MoE layers of 16 experts (top-2, width 32) instead of its FFN."""
    return make_tiny_model(ffn=FFN(0, 0, 2, 16, 2, 0, 32, 0))


# --- shapes -------------------------------------------------------------------------------------


def test_default_shapes(models):
    """Inside a scale-up domain: TP over all GPUs. Across domains: MoE models run DP attention
    with EP over all GPUs, dense models TP inside a domain and PP across; Rubin CPX (no NVLink)
    pipelines over its NIC."""
    h200, h20, cpx = load_hardware("h200"), load_hardware("h20"), load_hardware("rubin-cpx")
    i = make_instance(models["qwen3-235b"], h200, 8)
    assert (i.tp, i.ep, i.dp, i.pp) == (8, 1, 1, 1)
    big = make_instance(models["prfaas-1t-hybrid"], h20, 512)
    assert (big.tp, big.attention_tp, big.ep, big.dp, big.pp, big.overlap_comm) == (512, 1, 256, 512, 1, True)  # EP <= 384 experts
    assert big.expert_group == 256
    dense = make_instance(load_model(engines.LLAMA_70B), h200, 16)
    assert (dense.tp, dense.pp) == (8, 2)
    c = make_instance(models["prfaas-1t-hybrid"], cpx, 8)
    assert (c.tp, c.pp, c.domain_gpus) == (1, 8, 1)


def test_spanning_domains_is_not_priced_as_nvlink(models):
    """512 H20 of the 1T model: its expert dispatch crosses the NIC; the same shape inside one
    hypothetical 512-GPU NVLink domain is several times faster."""
    m, h20 = models["prfaas-1t-hybrid"], load_hardware("h20")
    shape = {"tp": 512, "dp": 512, "ep": 256}
    real = make_instance(m, h20, 512, **shape)
    one_domain = make_instance(m, replace(h20, gpus_per_node=512), 512, **shape)
    assert dispatch_combine_s(real, 1000, False) > 3 * dispatch_combine_s(one_domain, 1000, False)


def test_allreduce_by_hand(make_tiny_model, make_simple_hardware):
    """Ring all-reduce: 2 (g-1)/g x buffer per GPU on the scale-up link inside a domain; across
    domains an extra 2 (n-1)/n x buffer / domain over the NIC."""
    hw = make_simple_hardware()
    inst = make_instance(make_tiny_model(), hw, 2)
    assert allreduce_s(inst, 8, 1e6) == pytest.approx(2 * 7 / 8 * 1e6 / 5e10, rel=1e-12)
    assert allreduce_s(inst, 16, 1e6) == pytest.approx(2 * 7 / 8 * 1e6 / 5e10 + 2 * 1 / 2 * 1e6 / 8 / 2.5e10, rel=1e-12)
    assert allreduce_s(inst, 1, 1e6) == 0


def test_dispatch_combine_by_hand(make_tiny_model, make_simple_hardware):
    """EP16 on 8-GPU domains, top-2, hidden 64, 3 B per copy (fp8 out, bf16 back): per expert
    (decode kernels) 2 x 7/16 copies stay in the domain, 2 x 8/16 cross the NIC; with one send
    per remote domain (prefill kernels) 1 x (1 - (1/2)^2) copies cross."""
    hw = make_simple_hardware()
    inst = make_instance(moe_tiny(make_tiny_model), hw, 16, tp=16, dp=16, ep=16)
    per_copy = 64 * 3
    intra = 1000 * 2 * 7 / 16 * per_copy / 5e10
    assert dispatch_combine_s(inst, 1000, False) == pytest.approx(max(intra, 1000 * 2 * 8 / 16 * per_copy / 2.5e10), rel=1e-12)
    assert dispatch_combine_s(inst, 1000, True) == pytest.approx(max(intra, 1000 * 0.75 * per_copy / 2.5e10), rel=1e-12)


def test_expert_imbalance_only_with_expert_parallelism(make_tiny_model, make_simple_hardware):
    """The busiest EP rank carries +20% of the routed GEMM work; TP-sharded experts do not."""
    m, hw = moe_tiny(make_tiny_model), make_simple_hardware(memory_bandwidth_bytes_per_s=1e18)
    tp = step_terms(make_instance(m, hw, 8), 8192, 10).seconds["gemm"]
    ep = step_terms(make_instance(m, hw, 8, tp=8, ep=8), 8192, 10).seconds["gemm"]
    dense = step_terms(make_instance(m, replace(hw, efficiency=replace(hw.efficiency, expert_imbalance_frac=0.0)), 8, tp=8, ep=8), 8192, 10)
    assert ep > tp
    assert dense.seconds["gemm"] == pytest.approx(tp, rel=1e-12)


def test_decode_reads_the_experts_the_batch_touches(make_tiny_model, make_simple_hardware):
    """One request reads the dense weights, the LM head and its k = 2 experts in each of the 2
    MoE layers; a huge batch reads all 16 experts (E (1 - (1 - k/E)^B) -> E)."""
    m, hw = moe_tiny(make_tiny_model), make_simple_hardware()
    inst = make_instance(m, hw, 1)
    expert, head = 3 * 64 * 32 * 2, 100 * 64 * 2
    dense = inst.dense_weight_bytes() - head
    one = step_terms(inst, 1, 10).seconds["weights-hbm"]
    assert one == pytest.approx((dense + head) / 5e11 + 2 * 2 * expert / 5e11, rel=1e-12)
    many = step_terms(inst, 10**6, 10).seconds
    assert many["weights-hbm"] + many["gemm"] >= 2 * 16 * expert / 5e11


@pytest.mark.parametrize("name", ["deepseek-v3", "qwen3-235b", "prfaas-1t-hybrid", "kimi-linear-48b"])
def test_decode_step_non_decreasing_in_batch(models, name):
    """A bigger batch never steps faster, for TP, DP-attention + EP and cross-domain shapes."""
    m, h200 = models[name], load_hardware("h200")
    for inst in (make_instance(m, h200, 8), make_instance(m, h200, 16), make_instance(m, h200, 8, tp=8, dp=8, ep=8)):
        steps = [float(step_terms(inst, b, 4096).total_s) for b in (1, 2, 8, 32, 128, 512, 2048, 8192)]
        assert all(b >= a for a, b in zip(steps, steps[1:]))


# --- bad shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"tp": 3}, "--tp"),
    ({"tp": 4, "pp": 1}, "--tp"),  # TP4 x PP1 != 8 GPUs
    ({"tp": 8, "dp": 3}, "--dp"),  # DP ranks must divide TP
    ({"ep": 512, "tp": 512, "dp": 512, "gpus": 512}, "--ep"),  # > 256 experts
    ({"pp": 64, "gpus": 64}, "--pp"),  # > 61 layers
    ({"weights": "fp4"}, "--weights"),  # Hopper has no FP4
    ({"moe_weights": "fp4"}, "--moe-weights"),
    ({"attention_dtype": "int4"}, "--attention-dtype"),
    ({"mtp_accepted_tokens": 2.0}, "--mtp-accept"),
    ({"mtp_draft_tokens": 1, "mtp_accepted_tokens": 3.0}, "--mtp-accept"),
])
def test_bad_shapes_name_the_option(models, kwargs, option):
    kwargs = dict(kwargs)
    gpus = kwargs.pop("gpus", 8)
    with pytest.raises(PlanError, match=option):
        make_instance(models["deepseek-v3"], load_hardware("h200"), gpus, **kwargs)


def test_ep_on_dense_model_is_refused():
    with pytest.raises(PlanError, match="--ep"):
        make_instance(load_model(engines.LLAMA_70B), load_hardware("h200"), 8, ep=8)


# --- estimate -----------------------------------------------------------------------------------


def test_estimate_reports_weights_beyond_usable_memory(models):
    """DeepSeek-V3 with fp4 experts on 2 x GB200: 181 GB per GPU, beyond usable memory (167 GB),
    within the whole HBM (186 GB; SGLang ran this prefill point): reported, with no decode batch.
    With fp8 experts (344 GB per GPU) it is refused."""
    r = estimate(models["deepseek-v3"], load_hardware("gb200"), 2, tp=2, dp=2, ep=2, moe_weights="fp4", isl=2000)
    with pytest.raises(PlanError, match="more than the part's whole memory"):
        estimate(models["deepseek-v3"], load_hardware("gb200"), 2, tp=2, dp=2, ep=2, isl=2000)
    assert r["weights_fit"] is False
    assert r["decode_batch"] == 0 and r["decode_output_tokens_per_s_per_gpu"] == 0.0
    assert r["prefill_input_tokens_per_s_per_gpu"] > 0


def test_estimate_refuses_weights_beyond_the_whole_memory(models):
    """Issue 14: prfaas-1t-hybrid on 1 x H200 printed numbers for an instance that cannot hold
    its weights; the roofline has no host-offload term, so it is an error naming --gpus."""
    with pytest.raises(PlanError, match=r"^--gpus 1: model prfaas-1t-hybrid does not fit .* more than the part's whole memory"):
        estimate(models["prfaas-1t-hybrid"], load_hardware("h200"), 1)


def test_estimate_refuses_a_batch_beyond_memory(models):
    """Issue 14: --batch 10,000,000 reported decode at 10M requests; the largest batch that fits
    is named instead, and that batch itself is accepted."""
    m, hw = models["prfaas-1t-hybrid"], load_hardware("h200")
    fits = estimate(m, hw, 8)["memory_max_batch"]
    assert estimate(m, hw, 8, batch=fits)["decode_batch"] == fits
    with pytest.raises(PlanError, match=rf"^--batch \(at context 1,536 tokens\): must be a whole number in \[1, {fits:,}\]"):
        estimate(m, hw, 8, batch=10_000_000)


def test_estimate_colocated_formula(models):
    """Co-located output tokens/s per GPU = C OSL / (C ISL / (prefill x P) + OSL x TPOT) / P."""
    r = estimate(load_model(engines.LLAMA_70B), load_hardware("h200"), 1, weights="fp8", kv_dtype="fp8", isl=128, osl=2048)
    c, p = r["decode_batch"], r["gpus"]
    expected = c * 2048 / (c * 128 / (r["prefill_input_tokens_per_s_per_gpu"] * p) + 2048 * r["tpot_s"]) / p
    assert r["colocated_output_tokens_per_s_per_gpu"] == pytest.approx(expected, rel=1e-12)
    assert colocated_tokens_per_s_per_gpu(10, 100, 10, 1000.0, 0.01, 1) == pytest.approx(100 / (1 + 0.1), rel=1e-12)
    assert r["decode_batch"] == r["memory_max_batch"]


def test_offline_run_in_waves():
    """An offline run of N identical requests, each reserving ISL + OSL of cache: whole waves at the
    cap give the co-located formula at the cap; a short last wave runs small and lowers the result;
    the time adds wave by wave."""
    model, hw = load_model(engines.LLAMA_70B), load_hardware("h200")
    inst = make_instance(model, hw, 1, weights="fp8", kv_dtype="fp8")
    isl, osl = 128, 2048
    cap = inst.memory_max_batch(isl + osl)
    at_cap = estimate(model, hw, 1, weights="fp8", kv_dtype="fp8", isl=isl, osl=osl, batch=cap)
    whole, waves = offline_run_tokens_per_s_per_gpu(inst, isl, osl, 3 * cap, isl + osl)
    assert waves == [cap, cap, cap]
    assert whole == pytest.approx(at_cap["colocated_output_tokens_per_s_per_gpu"], rel=1e-12)
    short, waves = offline_run_tokens_per_s_per_gpu(inst, isl, osl, 2 * cap + 5, isl + osl)
    assert waves == [cap, cap, 5] and short < whole
    five = estimate(model, hw, 1, weights="fp8", kv_dtype="fp8", isl=isl, osl=osl, batch=5)
    cycle = lambda r: r["decode_batch"] * osl / r["colocated_output_tokens_per_s_per_gpu"]  # noqa: E731  seconds
    assert short == pytest.approx((2 * cap + 5) * osl / (2 * cycle(at_cap) + cycle(five)), rel=1e-12)
    with pytest.raises(PlanError, match="requests"):
        offline_run_tokens_per_s_per_gpu(inst, isl, osl, 0, isl + osl)


def test_as_benchmarked_only_for_trtllm_offline_points():
    kinds = {p["id"]: engines.as_benchmarked(p) is not None for p in engines.points()}
    assert kinds["trtllm-h100-qwen3-235b-fp8-128-2048"] and not kinds["sgl-h100-dsv3-decode-b256"]
    assert sum(kinds.values()) == sum(p["id"].startswith("trtllm-") for p in engines.points())


def test_ttft_is_latency_and_slower_than_batched(models):
    """TTFT (one request alone) takes longer than the instance-time a prompt costs under load."""
    r = estimate(models["qwen3-235b"], load_hardware("h200"), 8, isl=8192)
    per_request_under_load = 8192 / (r["prefill_input_tokens_per_s_per_gpu"] * 8)
    assert r["ttft_single_request_s"] > per_request_under_load
    assert r["ttft_single_request_s"] == pytest.approx(sum(r["prefill_latency_terms_s"].values()), rel=1e-9)


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env={"COLUMNS": "200"})


REQUIRED = ("ttft_single_request_s", "prefill_input_tokens_per_s_per_gpu", "decode_batch", "decode_step_s",
            "decode_output_tokens_per_s_per_gpu", "tpot_s", "weights_fit", "bound_prefill", "bound_decode")


@pytest.mark.parametrize("point", ["sgl-h100-dsv3-decode-b256", "trtllm-h200-llama70b-fp8-128-2048", "sgl-gb200-dsv3-prefill-fp4"])
def test_cli_and_api_agree(runner, point):
    """`estimate -f json` is the API's result, key for key (engine points' setups)."""
    setup = dict(engines.SETUPS[point])
    res = runner.invoke(app, ["estimate", *engines.cli_args(setup)])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.stdout)
    model, hw, gpus = load_model(setup.pop("model")), load_hardware(setup.pop("hardware")), setup.pop("gpus")
    api = json.loads(json.dumps(estimate(model, hw, gpus, **setup)))
    assert set(REQUIRED) <= set(cli)
    assert cli == api


def test_cli_table_and_csv(runner):
    res = runner.invoke(app, ["estimate", "-m", "minimax-m2.5", "-H", "h200", "--gpus", "8", "--isl", "8K", "--batch", "64"])
    assert res.exit_code == 0, res.output
    assert "TTFT" in res.stdout and "bound" in res.stdout
    csv = runner.invoke(app, ["estimate", "-m", "minimax-m2.5", "-H", "h200", "--gpus", "8", "-f", "csv"])
    assert csv.exit_code == 0 and "ttft_single_request_s" in csv.stdout.splitlines()[0]


@pytest.mark.parametrize(("args", "needle"), [
    (["--gpus", "8", "--tp", "3"], "--tp"),
    (["--gpus", "8", "--weights", "fp4"], "--weights"),
    (["--gpus", "64", "--pp", "64"], "--pp"),
    (["--gpus", "8", "--tp", "8", "--ep", "512", "--dp", "8", "--enable-dp-attention"], "--ep"),
    (["--gpus", "8", "--isl", "lots"], "--isl"),
    (["--gpus", "8", "--batch", "0"], "--batch"),
    (["--gpus", "8", "--mtp-draft", "2"], "--mtp-accept"),  # was: accepted length 1.0, TPOT = the whole step
])
def test_cli_bad_input_one_line_exit_2(runner, tmp_path, args, needle):
    out = tmp_path / "e.json"
    res = runner.invoke(app, ["estimate", "-m", "deepseek-v3", "-H", "h200", *args, "-f", "json", "-o", str(out)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not out.exists()


# --- the planner builds the instance from the scenario ------------------------------------------


def _roofline_scenario(tmp_path, prfaas_extra: str, gpus: int = 8):
    from prfaas_plan.planning.scenario import load_scenario

    text = open(load_scenario("paper-case-study-roofline").path).read()
    text = text.replace("name: paper-case-study-roofline", "name: shaped")
    text = text.replace("  hardware: h200\n  gpus_per_instance: 8\n", f"  hardware: h200\n  gpus_per_instance: {gpus}\n{prfaas_extra}")
    path = tmp_path / "shaped.yaml"
    path.write_text(text)
    return load_scenario(path)


def test_scenario_sets_the_instance_shape(tmp_path):
    """A cluster's `instance` block reaches the roofline the planner prices; the default is the
    engine's; a 16-GPU H200 instance of the MoE model runs EP across two NVLink domains."""
    from prfaas_plan.planning.planner import throughput_model

    sc = _roofline_scenario(tmp_path, "  instance: {tp: 1, pp: 8}\n")
    assert (sc.prfaas.instance.tp, sc.prfaas.instance.pp) == (1, 8)
    tm = throughput_model(sc)
    assert tm.remote.instance is sc.prfaas.instance
    assert (sc.local.instance.tp, sc.local.instance.pp) == (8, 1)
    wide = _roofline_scenario(tmp_path, "", gpus=16)
    assert (wide.prfaas.instance.ep, wide.prfaas.instance.dp, wide.prfaas.instance.overlap_comm) == (16, 16, True)


def test_scenario_bad_instance_names_the_key(tmp_path):
    with pytest.raises(PlanError, match="prfaas.instance.*tp"):
        _roofline_scenario(tmp_path, "  instance: {tp: 3}\n")
    with pytest.raises(PlanError, match="fp4"):
        _roofline_scenario(tmp_path, "  instance: {weights: fp4}\n")


def test_mtp_draft_without_acceptance_is_refused(models, tmp_path):
    """Draft tokens without an accepted length have no honest default (it depends on the model's
    draft module and the data); current main took A = 1, pricing the draft passes and never
    their tokens. The CLI, the API and the scenario key refuse it alike, naming the option."""
    with pytest.raises(PlanError, match="--mtp-accept.*--mtp-draft 2"):
        make_instance(models["deepseek-v3"], load_hardware("h200"), 8, mtp_draft_tokens=2)
    with pytest.raises(PlanError, match=r"key 'prfaas\.instance': mtp_accept: .*mtp_draft 2 \(1 \.\. 3"):
        _roofline_scenario(tmp_path, "  instance: {mtp_draft: 2}\n")
    sc = _roofline_scenario(tmp_path, "  instance: {mtp_draft: 2, mtp_accept: 2.5}\n")
    assert (sc.prfaas.instance.mtp_draft_tokens, sc.prfaas.instance.mtp_accepted_tokens) == (2, 2.5)


def test_validate_shows_the_engine_points(runner):
    """`validate -f json` carries the 19 engine points beside Tables 3, 5 and 6, with the same
    predictions as scripts/check_engines.py (through estimate)."""
    res = runner.invoke(app, ["validate", "-f", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    eng = [r for r in rows if r["table"] == "E"]
    assert {r["table"] for r in rows} == {3, 5, 6, "E"}  # table numbers are numbers; "E" the engine points
    assert len(eng) == 19
    by_id = {r["id"]: r for r in engines.rows()}
    for r in eng:
        assert r["model"] == pytest.approx(by_id[r["item"]]["predicted"], rel=1e-12)
        assert r["paper"] == by_id[r["item"]]["measured"]
