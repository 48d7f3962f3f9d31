"""What a re-plan costs and gains ([PRFAAS] section 3's long timescale, priced): expected TTFT SLO
misses of the local P/D split and threshold over a horizon, with the nodes that change role out
of service while they switch.

**Misses of a schedule** (:func:`fluid_misses`): a schedule is a list of segments (seconds, the
deployment in force); the arrival rate lambda is taken as constant over it. Each deployment has a
capacity mu (its Lambda_max, [PRFAAS] Eq. 7 for its counts and t) and a miss curve m(lambda) =
P(TTFT > SLO) of the analytic model (:func:`~prfaas_plan.latency.ttft.slo_miss_frac`: M/G/c
prefill pools, the link, M/D/c decode; Poisson arrivals, steady state). Requests waiting in the
system (backlog b, requests) are a fluid that drains at mu - lambda:

- lambda >= mu (overloaded): every arrival misses, and b grows by (lambda - mu) per second;
- lambda < mu: while b / mu > SLO (the backlog alone delays an arrival past the SLO) every
  arrival misses; after that a share m(lambda) does; b falls by (mu - lambda) per second.

The backlog b left at the end of the horizon is charged the same way for every schedule: drained
at the fleet's most throughput mu* (the re-planner can move to that split later), the arrivals
until it falls to mu* x SLO, lambda (b - mu* SLO)+ / (mu* - lambda), or where lambda >= mu* the
b requests themselves. One price for what is left, whichever schedule left it: charging it at the
schedule's own last capacity made an overloaded schedule (charged b) look cheaper than a stable
one that drains slowly (charged every arrival until it has drained), and on the 14-day shape's
overloaded first day the rule walked down to splits with less capacity. Stationary queueing
inside a segment, one fluid for the whole fleet across segments: the transient after a change
(queues relaxing to the new steady state) and which pool a waiting request is queued at are not
modelled.

**A switch** from split (N_p, N_d) to (N_p', N_d') at threshold t' (:func:`switch_misses`): for
``transit_s`` (the drain of the nodes that change role plus ``switch_s``, the time a node is out)
the fleet runs as (min(N_p, N_p'), min(N_d, N_d')) at t' - the nodes in transit serve neither
role - and then as (N_p', N_d') for the rest of the horizon. A change of t alone is free.

**The rule** (:func:`best_switch`): switch to the candidate with the largest expected gain G
(misses staying minus misses switching, over the horizon) if G exceeds sqrt(M) at every rate of
the forecast band (lambda_hat - sigma, lambda_hat, lambda_hat + sigma), M the misses staying at
lambda_hat: the dead band, in rate and in misses. A rate that moves inside the band, a gain that
does not pay for the switch at both of its ends, or a gain smaller than the Poisson noise of the
miss count it would be measured by (one standard deviation), changes nothing; switching back
costs another transit, which is the hysteresis. Why the second part: without it, on the ServeGen
day the rule took 5 PD-P / 3 PD-D (Lambda_max 2.34 req/s) at ~1.4 req/s for a gain of ~1 miss in
600 s (of ~30 expected), then had to leave it, nodes out, when the rate jumped late in the day
(17 role changes; with --switch-s 180 its mean TTFT was 7% worse than the static plan's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PlanError
from ..planning.planner import fleet_problem, throughput_model
from ..planning.scenario import Scenario
from ..planning.threshold import best_threshold, placed
from .deployment import Deployment, deployment
from .replan import SplitOption
from .ttft import routing, slo_miss_frac

#: Rates tabulated per miss curve, on [0, capacity) and denser near the capacity (where m rises).
MISS_CURVE_POINTS = 32
#: Thresholds tried per split besides its best and the planned one: the uncached-length deciles
#: (offload shares 90%, 80%, ..., 10%), so a switch re-chooses t over the whole range.
THRESHOLD_QUANTILES = tuple(k / 10 for k in range(1, 10))


@dataclass(frozen=True)
class MissCurve:
    """P(TTFT > SLO) of one deployment against the arrival rate: ``miss_frac`` at
    ``rates_req_per_s`` (increasing, below ``capacity_req_per_s``); 1 at and above the capacity."""

    capacity_req_per_s: float
    rates_req_per_s: np.ndarray
    miss_frac: np.ndarray

    def at(self, rate_req_per_s: float) -> float:
        """m(lambda), linear between the tabulated rates and up to 1 at the capacity."""
        if not rate_req_per_s < self.capacity_req_per_s:
            return 1.0
        x = np.append(self.rates_req_per_s, self.capacity_req_per_s)
        y = np.append(self.miss_frac, 1.0)
        return float(np.interp(rate_req_per_s, x, y))


def miss_curve(dep: Deployment, capacity_req_per_s: float, slo_s: float, cells=None, points: int = MISS_CURVE_POINTS) -> MissCurve:
    """Tabulate :func:`~prfaas_plan.latency.ttft.slo_miss_frac` of ``dep`` at ``points`` rates
    lambda_k = mu (1 - (1 - k / points)^2), k = 0..points-1 (a rate where the analytic model
    finds a queue unstable below mu counts as all misses)."""
    if not capacity_req_per_s > 0:
        return MissCurve(0.0, np.zeros(0), np.zeros(0))
    u = np.arange(points) / points
    rates = capacity_req_per_s * (1.0 - (1.0 - u) ** 2)
    miss = np.empty(points)
    for k, r in enumerate(rates):
        try:
            miss[k] = slo_miss_frac(dep, float(r), slo_s, cells=cells)
        except PlanError:
            miss[k] = 1.0
    return MissCurve(float(capacity_req_per_s), rates, np.maximum.accumulate(miss))


def fluid_misses(segments, rate_req_per_s: float, backlog_req: float, slo_s: float, drain_req_per_s: float) -> float:
    """Expected SLO misses (requests) of ``segments`` [(seconds, MissCurve), ...] at a constant
    arrival rate, starting with ``backlog_req`` requests waiting; what is left at the end drains
    at ``drain_req_per_s`` (mu*, module docstring)."""
    lam, b = float(rate_req_per_s), max(float(backlog_req), 0.0)
    misses = 0.0
    for dur_s, curve in segments:
        if not dur_s > 0:
            continue
        mu = curve.capacity_req_per_s
        if lam >= mu:
            misses += lam * dur_s
            b += (lam - mu) * dur_s
            continue
        late_s = min(max(b - mu * slo_s, 0.0) / (mu - lam), dur_s)  # the backlog alone delays arrivals past the SLO
        misses += lam * late_s + lam * (dur_s - late_s) * curve.at(lam)
        b = max(b - (mu - lam) * dur_s, 0.0)
    mu = float(drain_req_per_s)
    misses += lam * max(b - mu * slo_s, 0.0) / (mu - lam) if lam < mu else b
    return misses


class SwitchModel:
    """The options of a plan's fleet: every local split (N_p + N_d fixed, the PrfaaS fleet and link
    as planned) at its best threshold, the planned one and the length deciles, each with its
    capacity and miss curve at ``slo_s``; deployments with nodes out (a transit) on demand."""

    def __init__(self, sc: Scenario, plan: dict, slo_s: float, mode: str | None = None,
                 quantiles: tuple[float, ...] = THRESHOLD_QUANTILES):
        self.sc, self.mode, self.slo_s = sc, mode or sc.mode, float(slo_s)
        self.tm = throughput_model(sc, self.mode)
        problem = fleet_problem(sc, self.tm, plan)
        self.link = float(problem.link.buy(np.array([0.0]))[0][0])
        self.plan = plan
        self.n_prfaas = plan["n_prfaas"]
        self.total = plan["n_pd_prefill"] + plan["n_pd_decode"]
        self.planned_t = math.inf if plan["threshold_tokens"] is None else float(plan["threshold_tokens"])
        self._states: dict = {}
        self._cells: dict = {}
        lengths = sc.workload.uncached
        deciles = [placed(self.tm, float(lengths.quantile(q)))[0] for q in quantiles]
        self.options: list[SplitOption] = []
        for n_p in range(self.total):
            n_d = self.total - n_p
            _, best_t = best_threshold(problem, self.n_prfaas, n_p, n_d, self.link)
            for t in dict.fromkeys([best_t, self.planned_t, *deciles]):
                option = self.state(n_p, n_d, t)
                if option.throughput_req_per_s > 0:
                    self.options.append(option)
        if not self.options:
            raise PlanError("no split of the local fleet serves any traffic")
        self.capacity_req_per_s = max(o.throughput_req_per_s for o in self.options)  # mu*

    def state(self, n_p: int, n_d: int, t: float) -> SplitOption:
        """The deployment (N_p, N_d) at threshold t with its Lambda_max (cached)."""
        key = (n_p, n_d, float(t))
        if key not in self._states:
            lam = float(self.tm.evaluate(self.tm.needs_at(t), self.n_prfaas, n_p, n_d, self.link)["throughput_req_per_s"][0])
            counts = {"threshold_tokens": t, "n_prfaas": self.n_prfaas, "n_pd_prefill": n_p, "n_pd_decode": n_d,
                      "link_gbit_per_s": self.plan["link_gbit_per_s"]}
            self._states[key] = SplitOption(n_p, n_d, float(t), max(lam, 0.0), deployment(self.sc, counts, "prfaas", self.mode, self.tm))
        return self._states[key]

    def curve(self, option: SplitOption) -> MissCurve:
        """``option``'s miss curve at the SLO (cached; the routing cells shared per threshold)."""
        key = ("curve", option.n_pd_prefill, option.n_pd_decode, option.threshold_tokens)
        if key not in self._states:
            dep = option.deployment
            ck = (option.threshold_tokens, dep.local is None, dep.prfaas is None)
            if ck not in self._cells:
                try:
                    self._cells[ck] = routing(dep)
                except PlanError:  # routes traffic to a pool this split does not have
                    self._cells[ck] = None
            cells = self._cells[ck]
            cap = option.throughput_req_per_s if cells is not None else 0.0
            self._states[key] = miss_curve(dep, cap, self.slo_s, cells)
        return self._states[key]

    def local_service_mean_s(self, option: SplitOption) -> float:
        """Mean instance-seconds of a request on the local prefill pool at ``option``'s t (0
        where nothing is routed there): how long a busy prefill node takes to drain."""
        self.curve(option)
        cells = self._cells[(option.threshold_tokens, option.deployment.local is None, option.deployment.prfaas is None)]
        path = cells.paths.get("local") if cells is not None else None
        return path.service_mean_s if path is not None else 0.0

    def transit(self, current: SplitOption, target: SplitOption) -> SplitOption:
        """The fleet while nodes change role: (min N_p, min N_d) at the target's t."""
        return self.state(min(current.n_pd_prefill, target.n_pd_prefill), min(current.n_pd_decode, target.n_pd_decode),
                          target.threshold_tokens)


def same_split(a: SplitOption, b: SplitOption) -> bool:
    return (a.n_pd_prefill, a.n_pd_decode) == (b.n_pd_prefill, b.n_pd_decode)


def switch_misses(model: SwitchModel, current: SplitOption, target: SplitOption, rate_req_per_s: float, backlog_req: float,
                  horizon_s: float, transit_s: float) -> float:
    """Expected misses over ``horizon_s`` if ``target`` replaces ``current`` now: the transit for
    ``transit_s`` (none for a change of t alone), then the target (module docstring)."""
    if target is current:
        segments = [(horizon_s, model.curve(current))]
    elif same_split(current, target):
        segments = [(horizon_s, model.curve(target))]
    else:
        tau = min(transit_s, horizon_s)
        segments = [(tau, model.curve(model.transit(current, target))), (horizon_s - tau, model.curve(target))]
    return fluid_misses(segments, rate_req_per_s, backlog_req, model.slo_s, model.capacity_req_per_s)


@dataclass(frozen=True)
class Decision:
    """The rule's answer at one moment: the option to switch to (None: stay), its gain in
    expected misses over the horizon at each rate of the band, and the band itself."""

    target: SplitOption | None
    gain_req: tuple[float, ...]
    rates_req_per_s: tuple[float, ...]


def best_switch(model: SwitchModel, current: SplitOption, rates_req_per_s, backlog_req: float, horizon_s: float,
                transit_s) -> Decision:
    """The option with the largest gain at the middle rate among those whose gain over staying
    exceeds sqrt(misses staying at the middle rate) at every rate of ``rates_req_per_s`` (the
    forecast band: low, middle, high); ``transit_s(target)`` the transit of a switch to it, s.
    Stay where none is."""
    rates = tuple(max(float(r), 0.0) for r in rates_req_per_s)
    mid = len(rates) // 2
    stay = [switch_misses(model, current, current, r, backlog_req, horizon_s, 0.0) for r in rates]
    noise = math.sqrt(stay[mid])  # Poisson standard deviation of the misses staying
    best, best_gain = None, ()
    for option in model.options:
        if option is current:
            continue
        tau = 0.0 if same_split(current, option) else transit_s(option)
        gain = tuple(s - switch_misses(model, current, option, r, backlog_req, horizon_s, tau) for s, r in zip(stay, rates))
        if min(gain) > noise and (best is None or gain[mid] > best_gain[mid]):
            best, best_gain = option, gain
    return Decision(best, best_gain, rates)
