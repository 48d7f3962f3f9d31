"""`prfaas-plan simulate`: the discrete-event simulation of a plan or a baseline."""

from enum import Enum
from typing import Annotated, Optional

import typer

from ..bounds import BOUNDS
from ..errors import PlanError
from ._common import FormatOpt, ModeOpt, OutputOpt, ScenarioArg, SetOpt, _console, emit, handles_errors, progress_bar


class Policy(str, Enum):
    static = "static"
    bandwidth_aware = "bandwidth-aware"
    cache_aware = "cache-aware"


class ReplanRule(str, Enum):
    hysteresis = "hysteresis"
    greedy = "greedy"


class Baseline(str, Enum):
    prfaas = "prfaas"
    homogeneous = "homogeneous"
    naive = "naive"


class PrefixCacheSize(str, Enum):
    hbm = "hbm"
    unlimited = "unlimited"


def _params(items: Optional[list[str]]) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlanError(f"--policy-param {item!r}: give KEY=VALUE, e.g. u_high=0.8")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise PlanError(f"--policy-param {item!r}: {value!r} is not a number") from None
    return out


#: What `simulate` tells a user with a fleet scenario (the simulator runs one pair of clusters).
FLEET_ADVICE = ("to simulate one local site, write it as a one-pair scenario with the parts and instance counts `prfaas-plan optimize "
                "-f json` plans for it (objective kind fixed-fleet, link.bandwidth_gbit_per_s as planned) and simulate that")


@handles_errors
def simulate(
    scenario: ScenarioArg,
    load: Annotated[Optional[float], typer.Option("--load", help="Arrival rate as a fraction of the simulated deployment's Lambda_max (e.g. 0.8; above 1 overloads it). Default: the scenario's arrival_req_per_s, else 0.8.")] = None,
    arrival_req_per_s: Annotated[Optional[float], typer.Option("--arrival-req-per-s", help="Arrival rate, requests per second (instead of --load).")] = None,
    trace: Annotated[Optional[str], typer.Option("--trace", help="Replay a trace's arrivals and lengths: a shipped name (mooncake_fast25_conversation_trace, azure2023_conv) or a path (Mooncake JSONL, Azure CSV). With --load or --arrival-req-per-s its times are scaled to that rate.")] = None,
    duration_s: Annotated[Optional[float], typer.Option("--duration-s", help="Seconds of arrivals to simulate (the run then drains). Default: 3,600 s, a trace's span, or a rate shape's span.")] = None,
    policy: Annotated[Policy, typer.Option("--policy", help="Routing: static (t as planned), bandwidth-aware (t re-searched when the link or a prefill queue nears a limit), cache-aware (the paper's prefix-cache rules; needs a trace with hash_ids).")] = Policy.static,
    policy_param: Annotated[Optional[list[str]], typer.Option("--policy-param", help="A policy parameter, KEY=VALUE (e.g. u_high=0.8, queue_factor=2, smoothing_s=30, period_s=10, history=2000, t_min_tokens=512, t_max_tokens=131072; cache-aware: u_abundant=0.5). Repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (arrivals and lengths); the same seed gives the same run.")] = 0,
    link_drop_at_s: Annotated[Optional[float], typer.Option("--link-drop-at-s", help="Time (s) at which the link's bandwidth drops (with --link-drop-frac); inside the simulated run.")] = None,
    link_drop_frac: Annotated[Optional[float], typer.Option("--link-drop-frac", help=f"Bandwidth after the drop as a fraction of the planned link (e.g. 0.1; {BOUNDS['link_drop_frac'].text()}: a cut link is not modelled).")] = None,
    rate_shape: Annotated[Optional[str], typer.Option("--rate-shape", help="CSV of t_s, rate_req_per_s (e.g. servegen_m-large_rate_10min): a non-homogeneous Poisson stream whose mean over the run is the --load / --arrival-req-per-s rate.")] = None,
    burst_cv2: Annotated[Optional[float], typer.Option("--burst-cv2", help="Bursty arrivals: gamma inter-arrival gaps with this squared coefficient of variation (1 = Poisson, e.g. 4).")] = None,
    baseline: Annotated[Baseline, typer.Option("--baseline", help="Simulate the PrfaaS plan or a baseline (homogeneous PD on the same GPUs, naive heterogeneous).")] = Baseline.prfaas,
    ttft_slo_s: Annotated[float, typer.Option("--ttft-slo-s", help=f"TTFT SLO for the attainment figure, seconds ({BOUNDS['ttft_slo_s'].text()}).")] = 5.0,
    warmup_s: Annotated[Optional[float], typer.Option("--warmup-s", help="Seconds at the start left out of the results. Default: min(10% of the duration, 300 s).")] = None,
    prefix_cache: Annotated[PrefixCacheSize, typer.Option("--prefix-cache", help="Per-cluster prefix caches (traces with hash_ids): hbm (the HBM left after the weights) or unlimited.")] = PrefixCacheSize.hbm,
    replan: Annotated[bool, typer.Option("--replan", help="Re-plan the local P/D split and t as the rate moves (see --replan-rule).")] = False,
    replan_rule: Annotated[ReplanRule, typer.Option("--replan-rule", help="hysteresis: forecast the rate from the arrivals seen, switch only when the expected SLO misses saved over the period pay for the nodes out (--switch-s) across the forecast's error band, deciding every tenth of the period; greedy: every period the lowest analytic P90 TTFT at the period's true rate, no switching cost.")] = ReplanRule.hysteresis,
    replan_period_s: Annotated[Optional[float], typer.Option("--replan-period-s", help=f"Re-planning period, seconds ({BOUNDS['replan_period_s'].text()}): the horizon a switch must pay back over (hysteresis), or the decision period (greedy). Default: the rate shape's step, else 600 s.")] = None,
    switch_s: Annotated[float, typer.Option("--switch-s", help="Seconds a local node is out of service while it changes role (prefill <-> decode).")] = 60.0,
    set_: SetOpt = None,
    mode: ModeOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Discrete-event simulation of the planned deployment (or a baseline): TTFT mean / P50 / P90 /
    P99 (s), TPOT, throughput (req/s), utilisation and queues per pool, egress over time (Gbit/s),
    SLO attainment, offload share, and the request and token books (conservation)."""
    from ..planning.locality import locality_columns
    from ..planning.overrides import parse_sets
    from ..planning.scenario import load_scenario, one_pair_only
    from ..reports.provenance import provenance, provenance_columns
    from ..simulation.run import simulate_scenario

    sc = one_pair_only(load_scenario(scenario, parse_sets(set_)), "simulate", FLEET_ADVICE)
    m = mode.value if mode else None
    with progress_bar("simulate: arrivals", fmt, output) as tick:
        result = simulate_scenario(sc, baseline=baseline.value, load=load, arrival_req_per_s=arrival_req_per_s, trace=trace, duration_s=duration_s,
                                   policy=policy.value, seed=seed, link_drop_at_s=link_drop_at_s, link_drop_frac=link_drop_frac, rate_shape=rate_shape,
                                   burst_cv2=burst_cv2, warmup_s=warmup_s, ttft_slo_s=ttft_slo_s, mode=m, policy_params=_params(policy_param),
                                   cache_blocks=None if prefix_cache is PrefixCacheSize.unlimited else "hbm", replan=replan,
                                   replan_period_s=replan_period_s, switch_s=switch_s, replan_rule=replan_rule.value, progress=tick)
    prov = provenance(sc, result["mode"], "simulate", load=load, arrival_req_per_s=arrival_req_per_s, trace=trace, duration_s=duration_s,
                      policy=policy.value, policy_param=policy_param, seed=seed, link_drop_at_s=link_drop_at_s, link_drop_frac=link_drop_frac,
                      rate_shape=rate_shape, burst_cv2=burst_cv2, baseline=baseline.value, ttft_slo_s=ttft_slo_s, warmup_s=warmup_s,
                      prefix_cache=prefix_cache.value, replan=replan or None, replan_rule=replan_rule.value if replan else None,
                      replan_period_s=replan_period_s, switch_s=switch_s)
    row = {k: v for k, v in result.items() if k not in ("egress_gbit_per_s_by_minute", "conservation", "replans")}

    def table():
        from ..reports.render import print_simulation

        print_simulation(_console(), result)

    emit(fmt, output, [{**row, **locality_columns(result["cache_locality"]), **provenance_columns(prov)}], table, document={**result, "provenance": prov})

