"""Re-planning rules for the simulation's ``decide(now_s, sim)`` hook (:mod:`.engine`).

- :class:`Replanner` (``hysteresis``, the default): every ``horizon_s / DECISIONS_PER_HORIZON`` it
  forecasts the arrival rate over the next ``horizon_s`` from the arrivals seen so far
  (:class:`~.forecast.RateForecast`: the mean rate of the last ``horizon_s``, lambda_hat, and
  sigma, the RMS of its own past errors), prices every option of the fleet (:class:`~prfaas_plan.latency.switching.SwitchModel`:
  each local split at a grid of thresholds) by its expected TTFT SLO misses over the horizon with
  the switching cost charged - the nodes that change role drain and are out for ``switch_s``, the
  fleet serving as (min N_p, min N_d) meanwhile - and switches only when the gain is positive at
  lambda_hat - sigma, lambda_hat and lambda_hat + sigma (the dead band;
  :func:`~prfaas_plan.latency.switching.best_switch`). t is re-chosen with every switch (the
  options are (split, t) pairs) and may change alone (free). No decision while a switch is under
  way. The backlog it starts from is the requests waiting now (prefill and decode queues).
- :func:`greedy_decision` (``greedy``): the rule before it, per period the option with the lowest
  analytic P90 TTFT at a given rate (:func:`~prfaas_plan.latency.replan.choose`), no cost for a
  switch: kept to compare against.

Drain of a switch, from the simulation's state: decode -> prefill, the k nodes' k x BS_max slots
retire as slots free (idle ones at once, the rest at the completion rate busy / hold, at most
one hold, hold = output tokens x T_step); prefill -> decode, a busy node finishes its request
(the local pool's mean service time; 0 if enough nodes are idle).
"""

from __future__ import annotations

from ..latency.switching import Decision, SwitchModel, best_switch, same_split
from .forecast import RateForecast
from .records import Change

#: Decisions per horizon: a switch is priced over the horizon but considered every horizon / 10,
#: so a change in the rate is acted on within a tenth of the time it must pay back over.
DECISIONS_PER_HORIZON = 10
RULES = ("hysteresis", "greedy")


class Replanner:
    """The hysteresis rule as a ``decide(now_s, sim)`` (module docstring). ``log``: one entry per
    decision, (time s, lambda_hat, sigma, Decision)."""

    def __init__(self, model: SwitchModel, horizon_s: float, switch_s: float):
        self.model, self.horizon_s, self.switch_s = model, float(horizon_s), float(switch_s)
        self.step_s = self.horizon_s / DECISIONS_PER_HORIZON
        self.forecast = RateForecast(self.horizon_s, self.horizon_s)
        p = model.plan
        self.current = model.state(p["n_pd_prefill"], p["n_pd_decode"], model.planned_t)
        self.log: list[tuple[float, float, float, Decision]] = []

    def _in_transit(self, sim) -> bool:
        return sim.pools[0].capacity != sim.target[0] or sim.dec_capacity != sim.target[1] * sim.batch

    def transit_s(self, sim, target) -> float:
        """Drain (module docstring) plus ``switch_s``, for a switch from the current split."""
        cur = self.current
        up = target.n_pd_prefill - cur.n_pd_prefill
        if up > 0:
            dep = cur.deployment
            hold_s = dep.output_tokens_mean * dep.decode_step_s
            need = up * sim.batch - (sim.dec_capacity - sim.dec_busy)
            drain_s = 0.0 if need <= 0 else min(need * hold_s / max(sim.dec_busy, 1), hold_s)
        else:
            local = sim.pools[0]
            drain_s = 0.0 if -up <= local.capacity - local.busy else self.model.local_service_mean_s(cur)
        return drain_s + self.switch_s

    def __call__(self, now_s: float, sim) -> Change | None:
        t_now = float(sim.policy.threshold_tokens)
        if [self.current.n_pd_prefill, self.current.n_pd_decode] != sim.target or self.current.threshold_tokens != t_now:
            self.current = self.model.state(sim.target[0], sim.target[1], t_now)  # changed by someone else
        if self._in_transit(sim):
            return None
        f = self.forecast(sim.req.arrival_s[: sim.next_i], now_s)
        if f is None:
            return None
        rate, sigma = f
        backlog = sim.stage[1] + sim.stage[4]  # waiting for a prefill instance or a decode slot
        d = best_switch(self.model, self.current, (rate - sigma, rate, rate + sigma), backlog, self.horizon_s,
                        lambda target: self.transit_s(sim, target))
        self.log.append((now_s, rate, sigma, d))
        if d.target is None:
            return None
        split = not same_split(self.current, d.target)
        self.current = d.target
        return Change(now_s, d.target.threshold_tokens, d.target.n_pd_prefill if split else None, d.target.n_pd_decode if split else None)


def greedy_decision(options, rate_fn):
    """A ``decide(now_s, sim)`` for the engine: the split and t that
    :func:`prfaas_plan.latency.replan.choose` picks (lowest analytic P90 TTFT) at the rate
    ``rate_fn(now_s)`` of the coming period; None when that is the split and t in force."""
    from ..latency.replan import choose

    def decide(now_s: float, sim) -> Change | None:
        option, _ = choose(options, rate_fn(now_s))
        same = [option.n_pd_prefill, option.n_pd_decode] == sim.target and option.threshold_tokens == sim.policy.threshold_tokens
        return None if same else Change(now_s, option.threshold_tokens, option.n_pd_prefill, option.n_pd_decode)

    return decide
