"""Simulate a deployment, or a scenario's plan: the library behind ``prfaas-plan simulate``.

- :func:`simulate`: one deployment, requests, a policy, link and re-planning schedules -> results.
- :func:`simulate_scenario`: plan the scenario as ``optimize`` does, pick the plan or a baseline,
  generate the arrivals (Poisson at a load, bursty, a rate shape, or a trace) and simulate.

Prefix caches (requests with ``hash_ids``): one LRU cache per cluster
(:class:`~prfaas_plan.traces.cache.PrefixCache`, 512-token blocks), shared by the cluster's
prefill instances. Capacity from the HBM left after the weights (:func:`cache_capacity_blocks`):

    blocks = floor(N x P x (HBM x usable_frac - weight bytes per GPU) / (512 x cache bytes per token))

N the cluster's prefill instances (PrfaaS; local prefill only - decode HBM holds the running
batches), P GPUs per instance, cache bytes per token as the instance stores them (full-attention
and MLA layers, TP replication included; linear-attention state is per request and small).
Activations and in-flight prefills are not subtracted; DRAM/SSD cache tiers are not modelled
(pass ``cache_blocks=None`` for an unlimited cache, or explicit sizes).
"""

from __future__ import annotations

import math

import numpy as np

from .. import units
from ..bounds import check
from ..errors import PlanError
from ..planning.workload import scaled_tokens
from ..traces.cache import BLOCK_TOKENS, PrefixCache
from . import arrivals
from .engine import Simulation
from .fcfs import FcfsRun, ineligible
from .metrics import DEFAULT_TTFT_SLO_S, default_warmup_s, results
from .policies import make_policy

#: Default load (fraction of Lambda_max) when neither a load nor a rate is given and the scenario
#: states no arrival rate.
DEFAULT_LOAD_FRAC = 0.8
DEFAULT_DURATION_S = 3600.0
#: Re-planning period without a rate shape to take it from (ServeGen's step).
DEFAULT_REPLAN_PERIOD_S = 600.0
BASELINES = ("prfaas", "homogeneous", "naive")
ENGINES = ("events", "fcfs", "auto")


def cache_capacity_blocks(pool) -> int:
    """512-token blocks the pool's instances can cache in the HBM left after the weights."""
    if pool is None or pool.instances <= 0:
        return 0
    inst = getattr(pool.service, "instance", None)
    if inst is None:
        raise PlanError(f"{pool.name} pool: no instance shape to size its prefix cache from; give cache_blocks")
    free = inst.hw.memory_capacity_bytes * inst.hw.efficiency.memory_usable_frac - inst.weight_bytes_per_gpu()
    per_block = BLOCK_TOKENS * inst.kv_write_bytes_per_token()
    return max(int(pool.instances * inst.gpus * max(free, 0.0) // per_block), 0) if per_block > 0 else 0


def run(dep, requests: arrivals.Requests, policy: str = "static", policy_params: dict | None = None, duration_s: float | None = None,
        link_schedule=(), changes=(), decide=None, decide_every_s: float | None = None, switch_s: float = 60.0,
        cache_blocks="hbm", window_s: float = 1.0, progress=None, engine: str = "events", warmup_s: float | None = None,
        ttft_slo_s: float = DEFAULT_TTFT_SLO_S):
    """Simulate ``dep`` serving ``requests`` and return the finished :class:`Simulation`.
    ``cache_blocks``: "hbm" (the formula above), None (unlimited) or (local, PrfaaS) blocks;
    ``progress(done, total)``: optional, called as arrivals are simulated. ``engine``: "events"
    (the event loop), "fcfs" (the fast path of :mod:`.fcfs`, refused where it does not apply) or
    "auto" (the fast path where it applies); the fast path returns an
    :class:`~prfaas_plan.simulation.fcfs.FcfsRun` whose results were tallied for ``warmup_s`` and
    ``ttft_slo_s``."""
    if duration_s is None:
        duration_s = float(requests.arrival_s[-1]) + window_s if len(requests) else DEFAULT_DURATION_S
    caches = None
    if requests.hash_ids is not None:
        if cache_blocks == "hbm":
            sizes = (cache_capacity_blocks(dep.local), cache_capacity_blocks(dep.prfaas))
        elif cache_blocks is None:
            sizes = (None, None)
        else:
            sizes = tuple(cache_blocks)
        caches = (PrefixCache(sizes[0]), PrefixCache(sizes[1]))
    elif policy == "cache-aware":
        raise PlanError("the cache-aware policy needs requests with prefix identity (a trace with hash_ids, e.g. Mooncake's)")
    pol = make_policy(policy, dep.threshold_tokens, policy_params)
    if engine not in ENGINES:
        raise PlanError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "events":
        why = ineligible(dep, requests, pol, link_schedule, changes, decide)
        if why is None:
            w0 = default_warmup_s(duration_s) if warmup_s is None else float(warmup_s)
            if not 0 <= w0 < duration_s:
                raise PlanError(f"warm-up must be in [0, duration {duration_s:g} s), got {w0:g} s")
            return FcfsRun(dep, requests, pol, duration_s, window_s, w0, ttft_slo_s, progress=progress)
        if engine == "fcfs":
            raise PlanError(f"the FCFS fast path does not apply here ({why})")
    sim = Simulation(dep, requests, pol, duration_s, window_s, switch_s, link_schedule, changes, decide, decide_every_s, caches)
    sim.cache_blocks = None if caches is None else [c.capacity_blocks for c in caches]
    sim.progress = progress
    return sim.run()


def simulate(dep, requests: arrivals.Requests, *, warmup_s: float | None = None, ttft_slo_s: float = DEFAULT_TTFT_SLO_S, **kwargs) -> dict:
    """:func:`run` (with ``engine="auto"`` unless given: the FCFS fast path where it applies),
    then the results (:func:`~prfaas_plan.simulation.metrics.results`)."""
    kwargs.setdefault("engine", "auto")
    sim = run(dep, requests, warmup_s=warmup_s, ttft_slo_s=ttft_slo_s, **kwargs)
    out = results(sim, warmup_s, ttft_slo_s)
    out["policy"] = sim.policy.name
    out["cache_blocks"] = {"pd-prefill": sim.cache_blocks[0], "prfaas": sim.cache_blocks[1]} if sim.cache_blocks else None
    return out


def _check_run(duration_s: float | None, link_drop_at_s, warmup_s, replan_period_s, rate_req_per_s: float | None = None,
               n_requests: int | None = None) -> None:
    """The bounds that depend on the run's duration (:mod:`prfaas_plan.bounds`): the link drop and
    the warm-up inside it, the re-plans and the simulated requests it implies. Called as soon as
    the duration is known (before planning where it is given)."""
    if duration_s is None:
        return
    check("link_drop_at_s", link_drop_at_s, max_value=duration_s)
    check("warmup_s", warmup_s, max_value=duration_s)
    if replan_period_s is not None:
        check("replans", math.floor(duration_s / replan_period_s))
    if n_requests is None and rate_req_per_s is not None:
        n_requests = math.ceil(rate_req_per_s * duration_s)
    check("simulated_requests", n_requests)


def simulate_scenario(sc, *, baseline: str = "prfaas", load: float | None = None, arrival_req_per_s: float | None = None,
                      trace: str | None = None, duration_s: float | None = None, policy: str = "static", seed: int = 0,
                      link_drop_at_s: float | None = None, link_drop_frac: float | None = None, rate_shape: str | None = None,
                      burst_cv2: float | None = None, warmup_s: float | None = None, ttft_slo_s: float = DEFAULT_TTFT_SLO_S,
                      mode: str | None = None, policy_params: dict | None = None, cache_blocks="hbm", replan: bool = False,
                      replan_period_s: float | None = None, switch_s: float = 60.0, replan_rule: str = "hysteresis", progress=None) -> dict:
    """Plan ``sc`` (as ``optimize``), then simulate the plan (or a baseline). Arrivals: the trace
    (its own times, or scaled to the rate), the rate shape (normalised to the rate as its mean
    over the run; non-homogeneous Poisson), gamma gaps with ``burst_cv2``, or Poisson. The rate is
    ``load`` x Lambda_max of the simulated deployment, or ``arrival_req_per_s``, or the
    scenario's arrival rate, or 0.8 x Lambda_max. ``replan``: re-plan the local P/D split and t
    by ``replan_rule`` (:mod:`.replanner`): ``hysteresis`` (default) prices each switch over a
    horizon of ``replan_period_s`` (default the rate shape's step, else 600 s) from a forecast of
    the observed arrivals and switches when the gain pays for it across the forecast's band;
    ``greedy`` takes, every ``replan_period_s``, the lowest analytic P90 at the period's true
    rate. A node changing role is out for ``switch_s``. ``progress(done,
    total)``: optional, called as arrivals are simulated (the `simulate` command's bar)."""
    from ..latency.deployment import deployment
    from ..latency.slo_plan import solve
    from ..planning.planner import optimize

    if baseline not in BASELINES:
        raise PlanError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if load is not None and arrival_req_per_s is not None:
        raise PlanError("give --load or --arrival-req-per-s, not both")
    if trace is not None and (rate_shape is not None or burst_cv2 is not None):
        raise PlanError("a trace brings its own arrivals: give --trace, --rate-shape or --burst-cv2, not several")
    if rate_shape is not None and burst_cv2 is not None:
        raise PlanError("give --rate-shape or --burst-cv2, not both")
    if (link_drop_at_s is None) != (link_drop_frac is None):
        raise PlanError("a link drop needs both --link-drop-at-s and --link-drop-frac")
    for name, value in (("load", load), ("arrival_req_per_s", arrival_req_per_s), ("duration_s", duration_s), ("link_drop_at_s", link_drop_at_s),
                        ("link_drop_frac", link_drop_frac), ("burst_cv2", burst_cv2), ("ttft_slo_s", ttft_slo_s), ("warmup_s", warmup_s),
                        ("replan_period_s", replan_period_s if replan else None), ("switch_s", switch_s), ("seed", seed)):
        check(name, value)
    _check_run(duration_s, link_drop_at_s, warmup_s, replan_period_s if replan else None, arrival_req_per_s)
    if trace is not None or rate_shape is not None:  # read (and checked) before the planning
        from ..catalog.paths import resolve_trace
        from ..traces.rates import read_rate_shape
        from ..traces.readers import read_trace

        tr = read_trace(resolve_trace(trace)) if trace is not None else None
        shape = read_rate_shape(resolve_trace(rate_shape)) if rate_shape is not None else None

    plan = optimize(sc, mode, compare_modes=False, solver=solve)  # the plan `optimize` prints (for an SLO where the scenario states one)
    key = {"prfaas": None, "homogeneous": "homogeneous", "naive": "naive"}[baseline]
    chosen = plan if key is None else plan["baselines"].get(key)
    if chosen is None:
        raise PlanError(f"scenario {sc.name}: no {baseline} baseline ({plan['baseline_errors'].get(key, 'not planned')})")
    dep = deployment(sc, chosen, baseline, mode or plan["mode"])
    lam_max = chosen["throughput_req_per_s"]
    rate = arrival_req_per_s if arrival_req_per_s is not None else (load * lam_max if load is not None else None)
    rng = np.random.default_rng(seed)
    rate_fn = None  # the arrival rate at a time, for re-planning

    if trace is not None:
        unc = None if tr.hash_ids is not None else scaled_tokens(tr.input_tokens, 1.0 - sc.workload.prefix_cache_hit_frac)
        reqs = arrivals.from_trace(tr, rate, sc.workload.output_tokens_mean, unc)
        if duration_s is not None:
            keep = reqs.arrival_s < duration_s
            reqs = arrivals.Requests(reqs.arrival_s[keep], reqs.input_tokens[keep], reqs.uncached_tokens[keep], reqs.output_tokens[keep],
                                     None if reqs.hash_ids is None else reqs.hash_ids[: int(keep.sum())], reqs.source)
        duration_s = duration_s or float(reqs.arrival_s[-1]) + 1.0
        _check_run(duration_s, link_drop_at_s, warmup_s, replan_period_s if replan else None, n_requests=len(reqs))
        arrival_kind = f"{reqs.source} ({'own times' if rate is None else f'times scaled to {rate:g} req/s'})"
    else:
        if rate is None:
            rate = sc.workload.arrival_req_per_s or DEFAULT_LOAD_FRAC * lam_max
        if rate_shape is not None:
            span = float(shape.t_s[-1] - shape.t_s[0]) + (float(shape.t_s[-1] - shape.t_s[-2]) if len(shape.t_s) > 1 else DEFAULT_DURATION_S)
            duration_s = duration_s or span
            t0 = shape.t_s - shape.t_s[0]
            mean = arrivals.mean_rate(t0, shape.rate_req_per_s, duration_s)
            if not mean > 0:
                raise PlanError(f"{rate_shape}: the rate shape is zero over the first {duration_s:g} s")
            replan_period_s = replan_period_s or (float(t0[1] - t0[0]) if len(t0) > 1 else None)
            _check_run(duration_s, link_drop_at_s, warmup_s, replan_period_s if replan else None, rate * float(np.max(shape.rate_req_per_s)) / mean)
            scaled = shape.rate_req_per_s * (rate / mean)
            times = arrivals.thinned_times(t0, scaled, duration_s, rng)
            rate_fn = lambda t: float(arrivals.rate_at(np.array([t]), t0, scaled)[0])  # noqa: E731
            arrival_kind = f"non-homogeneous Poisson, rate shape {rate_shape} scaled to a mean of {rate:g} req/s"
        else:
            duration_s = duration_s or DEFAULT_DURATION_S
            _check_run(duration_s, link_drop_at_s, warmup_s, replan_period_s if replan else None, rate)
            if burst_cv2 is not None:
                times = arrivals.gamma_times(rate, burst_cv2, duration_s, rng)
                arrival_kind = f"gamma inter-arrivals, cv^2 {burst_cv2:g}, {rate:g} req/s"
            else:
                times = arrivals.poisson_times(rate, duration_s, rng)
                arrival_kind = f"Poisson, {rate:g} req/s"
        if key is None and (plan.get("cache_locality") or {}).get("planned_with") == "per-cluster":  # caches that draws cannot replay
            arrival_kind += (f"; drawn requests have no conversations, so the per-cluster prefix caches are not replayed (lengths as "
                             f"with one shared cache; the plan expects {plan['cache_locality']['per_cluster_offload_frac']:.1%} "
                             "offloaded: --trace replays them)")
        reqs = arrivals.synthetic(times, dep.lengths, dep.output_tokens_mean, rng, arrival_kind)
    if len(reqs) == 0:
        raise PlanError("no requests arrive in the simulated time; raise the rate or the duration")
    schedule = () if link_drop_at_s is None else ((link_drop_at_s, dep.link_bytes_per_s * link_drop_frac),)
    profile = sc.link.bandwidth_profile
    if profile is not None:  # the link's day, its shape scaled to the plan's link (planning.bandwidth_profile)
        if schedule:
            raise PlanError("the scenario's link.bandwidth_profile already moves the link: give it or --link-drop-*, not both")
        schedule = profile.schedule(dep.link_bytes_per_s, duration_s)
    decide = None
    decide_every_s = None
    if replan:
        from .replanner import RULES, Replanner, greedy_decision

        if replan_rule not in RULES:
            raise PlanError(f"replan rule must be one of {', '.join(RULES)}, got {replan_rule!r}")
        replan_period_s = replan_period_s or DEFAULT_REPLAN_PERIOD_S
        check("replans", math.floor(duration_s / replan_period_s))
        if replan_rule == "greedy":
            from ..latency.replan import split_options

            if rate_fn is None:
                steady = len(reqs) / duration_s
                rate_fn = lambda t: steady  # noqa: E731
            decide, decide_every_s = greedy_decision(split_options(sc, chosen, mode or plan["mode"]), rate_fn), replan_period_s
        else:
            from ..latency.switching import SwitchModel

            decide = Replanner(SwitchModel(sc, chosen, ttft_slo_s, mode or plan["mode"]), replan_period_s, switch_s)
            decide_every_s = decide.step_s
    out = simulate(dep, reqs, warmup_s=warmup_s, ttft_slo_s=ttft_slo_s, policy=policy, policy_params=policy_params,
                   duration_s=duration_s, link_schedule=schedule, cache_blocks=cache_blocks, decide=decide,
                   decide_every_s=decide_every_s, switch_s=switch_s, progress=progress)
    head = {
        "scenario": sc.name, "deployment": baseline, "mode": mode or plan["mode"], "seed": seed, "arrivals": arrival_kind,
        "threshold_tokens": None if math.isinf(dep.threshold_tokens) else dep.threshold_tokens,
        "n_prfaas": chosen["n_prfaas"], "n_pd_prefill": chosen["n_pd_prefill"], "n_pd_decode": chosen["n_pd_decode"],
        "lambda_max_req_per_s": lam_max, "load_frac": out["arrival_req_per_s"] / lam_max if lam_max > 0 else None,
        "link_drop": None if link_drop_at_s is None else {"at_s": link_drop_at_s, "frac": link_drop_frac,
                                                          "gbit_per_s": units.bytes_per_s_to_gbit_per_s(schedule[0][1])},
        "link_profile": None if profile is None else {"source": profile.source, "worst_frac": profile.worst_frac,
                                                      "mean_frac": profile.mean_frac, "changes": len(schedule)},
        # the offload share the plan predicts for static routing with a prefix cache per cluster
        # (optimize's cache_locality), beside offload_frac: for the PrfaaS plan replaying a trace
        # through per-cluster caches (hash_ids); synthetic arrivals have no caches to compare with
        "cache_locality": plan.get("cache_locality") if key is None and reqs.hash_ids is not None else None,
    }
    return {**head, **out}
