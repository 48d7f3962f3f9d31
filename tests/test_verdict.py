"""The verdict checks every stated demand (issue #16, item 2): the arrival rate, each latency SLO
at that rate, utilisation caps, the budget, the target; a miss is named in the first line, and
`--strict` makes any WARNING exit 3. Hand-made results for the rules, the real CLI for the rest."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.cli import app
from prfaas_plan.planning.verdict import verdict


def result(**extra) -> dict:
    """A plan of 10 req/s for 100 $/hour, 8 req/s arriving, P90 3 s / P99 6 s / mean 2 s at that
    rate, TPOT 25 ms, pools 50 / 60 / 70% busy."""
    at = {"ttft_p90_s": 3.0, "ttft_p99_s": 6.0, "ttft_mean_s": 2.0, "tpot_s": 0.025, "decode_utilisation_frac": 0.7,
          "paths": {"prfaas": {"utilisation_frac": 0.5}, "local": {"utilisation_frac": 0.6}}}
    r = {"throughput_req_per_s": 10.0, "cost_usd_per_hour": 100.0, "baselines": {},
         "load": {"arrival_req_per_s": 8.0, "headroom_frac": 0.25},
         "latency": {"at_arrival_rate": at, "zero_load": at}, "slo": {"tpot_s": 0.025}}
    for k, v in extra.items():
        r[k] = {**r[k], **v} if isinstance(v, dict) and isinstance(r.get(k), dict) else v
    return r


def test_all_demands_met_is_ok():
    v = verdict(result(slo={"ttft_p90_s": 4.0, "ttft_p99_s": 6.0, "ttft_mean_s": 2.0}, budget_usd_per_hour=100.0))
    assert v["ok"] and v["text"].startswith("OK: carries the scenario's 8 req/s (workload.arrival_req_per_s) with 25% headroom; meets the TTFT SLO at 8 req/s")


@pytest.mark.parametrize("slo, words", [
    ({"ttft_p90_s": 2.0}, "P90 TTFT 3 s at 8 req/s exceeds the 2 s SLO"),
    ({"ttft_p99_s": 5.0}, "P99 TTFT 6 s at 8 req/s exceeds the 5 s SLO"),
    ({"ttft_mean_s": 1.5}, "mean TTFT 2 s at 8 req/s exceeds the 1.5 s SLO"),
    ({"tpot_s": 0.02}, "TPOT 25 ms exceeds the 20 ms SLO"),
    ({"max_utilisation_frac": {"local_decode": 0.6}}, "local decode 70% utilised at 8 req/s, over the 60% cap"),
    ({"max_utilisation_frac": {"prfaas": 0.4}}, "PrfaaS prefill 50% utilised at 8 req/s, over the 40% cap"),
])
def test_each_missed_level_is_named_first(slo, words):
    v = verdict(result(slo=slo))
    assert not v["ok"] and v["text"].startswith("WARNING: ") and words in v["text"].splitlines()[0]


def test_a_level_met_to_the_percentiles_precision_is_met():
    """P90 3.000001 s against a 3 s SLO: within the percentiles' 1e-6 precision."""
    r = result(slo={"ttft_p90_s": 3.0})
    r["latency"]["at_arrival_rate"]["ttft_p90_s"] = 3.000001
    assert verdict(r)["ok"]


def test_unstable_at_the_rate_is_a_miss():
    r = result(slo={"ttft_p90_s": 4.0})
    r["latency"] = {"at_arrival_rate": None, "at_arrival_rate_error": "decode pool at 120.0% utilisation is unstable", "zero_load": None}
    assert verdict(r)["text"].startswith("WARNING: P90 TTFT unbounded at 8 req/s (decode pool at 120.0%")


def test_budget_and_target():
    assert "costs 100.00 $/hour, over the 90.00 $/hour budget" in verdict(result(budget_usd_per_hour=90.0))["text"]
    assert "reaches 10 req/s, below the 12 req/s target" in verdict(result(target_req_per_s=12.0))["text"]
    r = result(target_req_per_s=9.0, slo={"ttft_p90_s": 4.0})
    r["latency"]["goodput_req_per_s"] = 8.5
    assert "goodput 8.5 req/s (TTFT within the SLO) is below the 9 req/s target" in verdict(r)["text"]
    r["latency"]["goodput_req_per_s"] = 9.0
    assert verdict(r)["ok"]


def test_equal_cost_baseline_compared_by_goodput_under_an_slo():
    """With a TTFT SLO the yardstick is goodput: a baseline with more Lambda_max but less goodput
    does not beat the plan; one with more goodput does."""
    base = {"cost_usd_per_hour": 100.0, "throughput_req_per_s": 12.0, "latency": {"goodput_req_per_s": 6.0}}
    r = result(slo={"ttft_p90_s": 4.0}, baselines={"homogeneous_equal_cost": base})
    r["latency"]["goodput_req_per_s"] = 9.0
    assert verdict(r)["ok"] and "1.50x homogeneous PD at the same cost in goodput" in verdict(r)["text"]
    base["latency"]["goodput_req_per_s"] = 9.9
    assert "loses to homogeneous PD at the same cost: 9 vs 9.9 req/s of goodput" in verdict(r)["text"]


# --- the CLI ----------------------------------------------------------------------------------------


def cli(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def _scenario(tmp_path, name: str, mutate) -> str:
    data = yaml.safe_load((catalog_dir("scenarios") / f"{name}.yaml").read_text())
    mutate(data)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_strict_turns_a_warning_into_exit_3(tmp_path):
    """The case study's fixed fleet at 2.5 req/s with a 3 s P90 SLO: its P90 there is ~5.6 s. The
    first line says so; exit 0 without --strict, 3 with it (output still written)."""
    path = _scenario(tmp_path, "paper-case-study", lambda d: (d["workload"].update(arrival_req_per_s=2.5), d["slo"].update(ttft_p90_s=3)))
    plain = cli("optimize", path)
    assert plain.exit_code == 0
    assert plain.stdout.splitlines()[0].startswith("WARNING: P90 TTFT 5.") and "at 2.5 req/s exceeds the 3 s SLO" in plain.stdout.splitlines()[0]
    strict = cli("optimize", path, "--strict", "-f", "json")
    assert strict.exit_code == 3 and json.loads(strict.stdout)["verdict"]["ok"] is False
    out = tmp_path / "r.html"
    rep = cli("report", path, "-o", out, "--strict")
    assert rep.exit_code == 3 and out.exists() and "WARNING: P90 TTFT" in rep.stderr


def test_strict_with_an_ok_verdict_exits_0():
    res = cli("optimize", "slo-case-study", "--strict", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["verdict"]["ok"] is True


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["objective"].update(kind="slo"), "key 'workload.arrival_req_per_s': missing (objective kind slo"),
    (lambda d: (d["objective"].update(kind="slo"), d["workload"].update(arrival_req_per_s=2)), "key 'slo.ttft_p90_s': objective kind slo needs a TTFT level"),
    (lambda d: d["slo"].update(max_utilisation_frac=1.5), "key 'slo.max_utilisation_frac': must be a fraction in (0, 1]"),
    (lambda d: d["slo"].update(max_utilisation_frac={"decode": 0.7}), "key 'slo.max_utilisation_frac.decode': unknown key"),
    (lambda d: d["slo"].update(ttft_p99_s=-1), "slo.ttft_p99_s"),
])
def test_bad_slo_keys_are_one_line_exit_2(tmp_path, mutate, words):
    res = cli("optimize", _scenario(tmp_path, "paper-case-study", mutate))
    assert res.exit_code == 2 and words in res.stderr and res.stderr.count("\n") == 1, res.stderr
