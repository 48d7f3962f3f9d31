"""Planning on real traces: ``workload.input_tokens: {kind: trace, file, format, cache}``
(prfaas_plan/planning/trace_input.py) and the shipped mooncake-case-study scenario. Routing and
prefill see the uncached lengths of the prefix-cache replay; decode holds whole prompts."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.errors import PlanError
from prfaas_plan.planning.inputs import inputs_mapping
from prfaas_plan.planning.overrides import Override
from prfaas_plan.planning.planner import optimize, throughput_model
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.sweep import sweep
from prfaas_plan.planning.whatif import standard_whatifs
from prfaas_plan.planning.workload import Empirical, Scaled

BASE = yaml.safe_load((catalog_dir("scenarios") / "mooncake-case-study.yaml").read_text())


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def case():
    return load_scenario("mooncake-case-study")


def write_scenario(tmp_path: Path, input_tokens: dict, **workload) -> Path:
    data = copy.deepcopy(BASE)
    data.pop("name")
    data["workload"] = {"input_tokens": input_tokens, **workload}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tiny_mooncake(tmp_path: Path) -> Path:
    """Three requests: A (1,200 tokens, blocks 0-2), A again, and B extending A's first two
    blocks to 2,000 tokens. Unlimited cache: uncached 1,200, 1 (all hit; 1 token recomputed), 976."""
    rows = [(0, 1200, 20, [0, 1, 2]), (1000, 1200, 40, [0, 1, 2]), (2000, 2000, 60, [0, 1, 3, 4])]
    path = tmp_path / "tiny.jsonl.gz"
    text = "\n".join(json.dumps({"timestamp": t, "input_length": i, "output_length": o, "hash_ids": h}) for t, i, o, h in rows)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_case_study_workload(case):
    """Whole prompts (mean 12,035) for decode, uncached ones (mean 7,538.5) for routing and
    prefill, the trace's output mean (342.6); the attribution joins the scenario's sources."""
    wl = case.workload
    assert wl.input.mean() == pytest.approx(12_035.06, abs=0.01)
    assert wl.uncached.mean() == pytest.approx(7_538.49, abs=0.01)
    assert wl.output_tokens_mean == pytest.approx(342.62, abs=0.01)
    assert wl.decode_context_tokens() == pytest.approx(12_035.06 + 342.62 / 2, abs=0.02)
    assert throughput_model(case).lengths is wl.uncached_input
    assert wl.prefix_cache_model.startswith("unlimited prefix cache")
    assert any(s.startswith("Mooncake traces: Qin et al.") for s in case.sources)
    inputs = inputs_mapping(case)
    assert inputs["workload.cached_input_token_frac"] == pytest.approx(0.3736, abs=1e-4)
    assert inputs["workload.mean_uncached_input_tokens"] == pytest.approx(7_538.49, abs=0.01)


def test_case_study_plan(case):
    """The paper's fleet on Mooncake traffic (recorded when the scenario was added): a much lower
    threshold than the log-normal's 19,437 (uncached prompts are shorter), 4/4/4, ~9.3 req/s
    with all three stages nearly balanced under decode's ceiling (outputs average 343 tokens,
    not 1,024, so decode carries 9.34 req/s). Tolerances leave room for profile refits."""
    plan = optimize(case, compare_modes=False)
    assert (plan["n_prfaas"], plan["n_pd_prefill"], plan["n_pd_decode"]) == (4, 4, 4)
    assert plan["threshold_tokens"] == pytest.approx(5_550, rel=0.03)
    assert plan["throughput_req_per_s"] == pytest.approx(9.33, rel=0.01)
    assert plan["throughput_req_per_s"] <= plan["theta_pd_decode_req_per_s"] * (1 + 1e-9)
    assert plan["theta_pd_decode_req_per_s"] == pytest.approx(9.340, rel=0.005)
    assert plan["offload_frac"] == pytest.approx(0.35, abs=0.01)


def test_cache_models_on_a_tiny_trace(tmp_path):
    trace = tiny_mooncake(tmp_path)
    def load(cache):
        return load_scenario(write_scenario(tmp_path, {"kind": "trace", "file": trace.name, **cache}))
    none = load({}).workload
    assert none.uncached_input is None and none.uncached is none.input
    assert none.input == Empirical((1200.0, 2000.0), (2 / 3, 1 / 3), 40.0)
    unlimited = load({"cache": {"kind": "unlimited"}}).workload
    assert unlimited.uncached.values == (1.0, 976.0, 1200.0) and unlimited.input == none.input
    assert load({"cache": {"kind": "lru", "capacity_blocks": 0}}).workload.uncached.values == (1200.0, 2000.0)
    # LRU of 2 blocks: A's blocks are touched tail first, so its tail block 2 is evicted first and
    # A again reuses blocks 0 and 1 (1,200 - 1,024 = 176 uncached)
    assert load({"cache": {"kind": "lru", "capacity_blocks": 2}}).workload.uncached.values == (176.0, 976.0, 1200.0)
    # LRU of 1 block: A leaves only its head block 0 (tail first), so A again reuses 512 tokens
    assert load({"cache": {"kind": "lru", "capacity_blocks": 1}}).workload.uncached.values == (688.0, 1200.0, 1488.0)
    scaled = load_scenario(write_scenario(tmp_path, {"kind": "trace", "file": trace.name, "cache": {"kind": "unlimited"}},
                                          input_tokens_scale=2.0)).workload
    assert isinstance(scaled.uncached, Scaled) and scaled.uncached.mean() == pytest.approx(2 * unlimited.uncached.mean())


def test_shipped_names_formats_and_the_csv_key(tmp_path):
    """A shipped trace by name (no extension), Azure by content, and the project's CSV through
    `file:` giving the same distribution as the older `csv:` key (fractional counts too)."""
    az = load_scenario(write_scenario(tmp_path, {"kind": "trace", "file": "azure2023_conv"})).workload
    assert az.input.mean() == pytest.approx(1154.70, abs=0.01) and az.uncached_input is None
    (tmp_path / "h.csv").write_text("input_tokens,count\n1000,0.5\n3000,1.5\n")
    via_file = load_scenario(write_scenario(tmp_path, {"kind": "trace", "file": "h.csv"}, output_tokens=100)).workload
    via_csv = load_scenario(write_scenario(tmp_path, {"kind": "trace", "csv": "h.csv"}, output_tokens=100)).workload
    assert via_file.input == via_csv.input and via_file.input.mean() == pytest.approx(2500)


def test_flat_hit_share_still_applies_without_a_cache_model(tmp_path):
    wl = load_scenario(write_scenario(tmp_path, {"kind": "trace", "file": "azure2023_conv"}, prefix_cache_hit_frac=0.5)).workload
    assert wl.uncached.mean() == pytest.approx(1154.70 / 2, abs=0.01)


BAD = [
    ({"cache": {"kind": "unlimited"}}, {"prefix_cache_hit_frac": 0.2}, ["workload.prefix_cache_hit_frac", "already models the prefix cache"]),
    ({"file": "azure2023_conv.csv", "format": None, "cache": {"kind": "unlimited"}}, {}, ["workload.input_tokens.file", "azure2023_conv.csv", "needs block hashes"]),
    ({"format": "azure", "cache": {"kind": "unlimited"}}, {}, ["workload.input_tokens.cache", "only mooncake traces"]),
    ({"cache": {"kind": "lru"}}, {}, ["workload.input_tokens.cache.capacity_blocks", "missing"]),
    ({"cache": {"kind": "unlimited", "capacity_blocks": 5}}, {}, ["workload.input_tokens.cache.capacity_blocks", "only for cache kind lru"]),
    ({"cache": {"kind": "lru", "capacity_blocks": -1}}, {}, ["capacity_blocks", ">= 0"]),
    ({"cache": {"kind": "fifo"}}, {}, ["workload.input_tokens.cache.kind", "none, unlimited, lru"]),
    ({"format": "jsonl"}, {}, ["workload.input_tokens.format", "mooncake, azure, csv"]),
    ({"csv": "x.csv"}, {}, ["workload.input_tokens.file", "exactly one of file"]),
    ({"file": "no-such-trace"}, {}, ["workload.input_tokens.file", "no shipped trace is named 'no-such-trace'"]),
    ({"spread": True}, {}, ["workload.input_tokens.spread", "unknown key"]),
    ({"format": "azure"}, {}, ["workload.input_tokens.file", "line 1", "'TIMESTAMP'"]),
]


@pytest.mark.parametrize("change,workload,words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_trace_settings_are_one_line(runner, tmp_path, change, workload, words):
    it = {**BASE["workload"]["input_tokens"], **change}
    if "format" in change and "cache" not in change:
        it.pop("cache")
    path = write_scenario(tmp_path, it, **workload)
    res = runner.invoke(app, ["optimize", str(path)])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), (res.stderr, repr(res.exception))
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_cache_model_inside_a_mixture_is_refused(tmp_path):
    mix = {"kind": "mixture", "components": [
        {"weight": 1, "distribution": dict(BASE["workload"]["input_tokens"])},
        {"weight": 1, "distribution": {"kind": "lognormal", "mu": 9, "sigma": 1, "min_tokens": 128, "max_tokens": 131072}}]}
    with pytest.raises(PlanError, match=r"components\[0\].distribution.cache': a prefix-cache model is allowed only"):
        load_scenario(write_scenario(tmp_path, mix, output_tokens=500))


def test_whatif_offers_no_cache_instead_of_a_flat_hit_share(case):
    labels = [w.label for w in standard_whatifs(case)]
    assert "no prefix cache" in labels and "prefix-cache hit 50%" not in labels
    plain = load_scenario("paper-case-study")
    assert "prefix-cache hit 50%" in [w.label for w in standard_whatifs(plain)]
    off = load_scenario(case.path, (Override("workload.input_tokens.cache", {"kind": "none"}),))
    assert off.workload.uncached_input is None and off.workload.uncached.mean() == pytest.approx(12_035.06, abs=0.01)


def test_sweep_tells_cache_models_apart(case):
    """Two points that differ only in the cache model must not share a throughput model."""
    rows = sweep(case, [("workload.input_tokens.cache", [{"kind": "none"}, {"kind": "unlimited"}])])
    assert rows[0]["threshold_tokens"] != rows[1]["threshold_tokens"]
    assert rows[1]["throughput_req_per_s"] == pytest.approx(optimize(case, compare_modes=False)["throughput_req_per_s"])


def test_optimize_cli_json(runner):
    res = runner.invoke(app, ["optimize", "mooncake-case-study", "-f", "json"])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["n_prfaas"] == 4 and np.isclose(out["throughput_req_per_s"], 9.33, rtol=0.01)
    assert out["provenance"]["inputs"]["workload.prefix_cache_model"].startswith("unlimited prefix cache")
