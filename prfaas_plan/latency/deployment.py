"""A planned deployment as the latency model and the simulator see it: pools of prefill
instances with their service and latency times, the link, the decode slots.

Two prefill times per request of l uncached tokens, from the engine model (see
:mod:`prfaas_plan.roofline.prefill`):

- ``service_s(l)``: instance-seconds the request occupies under load (the throughput regime:
  prompts batched up to the token budget of a forward, per-forward overhead shared). The pool's
  capacity is instances / E[service_s]; this is what the planner's Thetas use.
- ``latency_s(l)``: the request's own prefill time once an instance starts it (the latency
  regime: what Tables 3 and 5 measured; the TTFT at zero load).

With a measured profile both are the profile (it is a latency measurement; ``paper`` mode prices
capacity with it as the paper does). A request that starts on an instance frees it for the next
one after ``service_s`` and has its KV after ``latency_s`` (>= service_s): batched prefill
overlaps requests on one instance.

Decode: ``decode_instances`` x ``decode_batch`` (BS_max) slots; a request holds one slot for its
output tokens x ``decode_step_s`` (the step at BS_max, which the TPOT SLO fixes; conservative at
lower batch). The first output token takes one step after admission.

The KV cache of an offloaded request (``kv_bytes(l)``) crosses the link layer by layer while the
prefill runs ([PRFAAS] section 3, layer-wise pipelining): :func:`exposed_transfer_s`, at a rate
no transfer can push above ``transfer_cap_bytes_per_s``, the bound of its TCP connections over the
link's RTT and loss (:func:`~prfaas_plan.latency.wan.transfer_cap_bytes_per_s`; inf with
unlimited connections).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import units
from ..catalog.model import ModelSpec
from ..errors import PlanError
from ..planning.planner import throughput_model
from ..planning.scenario import Scenario
from ..planning.throughput import ThroughputModel
from ..planning.workload import LengthDistribution
from ..roofline.kv import kv_cache_bytes
from ..roofline.prefill import PrefillModel
from .wan import transfer_cap_bytes_per_s

KINDS = ("prfaas", "homogeneous", "naive")


@dataclass(frozen=True)
class PrefillPool:
    """``instances`` identical prefill instances (FCFS): ``service`` prices occupancy, ``alone``
    the request's own prefill time (the same model object where a profile is used)."""

    name: str
    instances: int
    service: PrefillModel
    alone: PrefillModel

    def service_s(self, input_tokens) -> np.ndarray:
        """Instance-seconds per request under load (throughput regime), s."""
        return self.service.time_s(input_tokens)

    def latency_s(self, input_tokens) -> np.ndarray:
        """Prefill time of the request itself once started (latency regime), s; never below
        its service time."""
        return np.maximum(self.alone.time_s(input_tokens), self.service.time_s(input_tokens))


@dataclass(frozen=True)
class Deployment:
    """One plan (the PrfaaS plan or a baseline) ready for latency: requests with uncached
    length l > ``threshold_tokens`` prefill on ``prfaas`` and ship their KV over the link, the
    others on ``local``; every request decodes locally."""

    kind: str
    model: ModelSpec
    lengths: LengthDistribution  # uncached prompt lengths, what routing and prefill see
    threshold_tokens: float  # inf: nothing offloaded; 0: everything
    prfaas: PrefillPool | None
    local: PrefillPool | None
    link_bytes_per_s: float
    rtt_s: float
    decode_instances: int
    decode_batch: int  # BS_max per instance
    decode_step_s: float
    output_tokens_mean: float
    decode_accepted_tokens: float = 1.0  # tokens emitted per decode step (MTP accepted length)
    transfer_cap_bytes_per_s: float = math.inf  # the most one transfer's TCP connections carry (:mod:`.wan`)
    link_available_frac: float = 1.0  # the analytic model's share of link_bytes_per_s: the bandwidth profile's worst (1 without one)

    @property
    def decode_slots(self) -> int:
        return self.decode_instances * self.decode_batch

    def kv_bytes(self, input_tokens) -> np.ndarray:
        """S_kv(l): bytes shipped per offloaded request."""
        return np.asarray(kv_cache_bytes(self.model, np.asarray(input_tokens, float)), float)

    def offloaded(self, input_tokens) -> np.ndarray:
        """True where a request of uncached length l goes to the PrfaaS cluster (l > t)."""
        return np.asarray(input_tokens, float) > self.threshold_tokens

    def decode_service_s(self, output_tokens) -> np.ndarray:
        """Seconds a request holds a decode slot: its output tokens x the step at BS_max."""
        return np.asarray(output_tokens, float) * self.decode_step_s


def exposed_transfer_s(kv_bytes, prefill_s, bandwidth_bytes_per_s: float, layers: int) -> np.ndarray:
    """The part of the KV transfer that TTFT sees: the cache streams layer by layer while the
    prefill computes, so what remains after the prefill ends is the larger of the transfer's
    excess over the prefill and the last layer's share, which cannot start before that layer is
    computed:

        T_exposed = max(S / B - T_prefill, S / (B * layers)),

    B the bandwidth this transfer gets (the link's, or its share of it under load)."""
    if not bandwidth_bytes_per_s > 0:
        return np.full_like(np.asarray(kv_bytes, float), math.inf)
    transfer = np.asarray(kv_bytes, float) / bandwidth_bytes_per_s
    return np.maximum(transfer - np.asarray(prefill_s, float), transfer / max(layers, 1))


def deployment(sc: Scenario, plan: dict, kind: str = "prfaas", mode: str | None = None, tm: ThroughputModel | None = None) -> Deployment:
    """The deployment of ``plan`` (a :func:`~prfaas_plan.planning.planner.plan_dict`, or a
    baseline of the same shape) in scenario ``sc``. ``kind`` only labels it; the threshold and
    the counts come from the plan. ``mode`` (default the scenario's): in ``paper`` mode prefill
    occupancy is the single-request latency, as the paper prices capacity. ``tm``: the
    scenario's throughput model in that mode, if already built."""
    if kind not in KINDS:
        raise PlanError(f"deployment kind must be one of {', '.join(KINDS)}, got {kind!r}")
    mode = mode or sc.mode
    tm = tm or throughput_model(sc, mode)
    t = plan["threshold_tokens"]
    threshold = math.inf if t is None else float(t)

    def pool(name: str, cluster, service: PrefillModel | None, n: int) -> PrefillPool | None:
        if n <= 0 or service is None:
            return None
        alone = PrefillModel(sc.model, cluster.hardware, cluster.gpus_per_instance, cluster.use_profile, "latency", cluster.instance)
        return PrefillPool(name, n, service, alone)

    return Deployment(
        kind=kind,
        model=sc.model,
        lengths=sc.workload.uncached,
        threshold_tokens=threshold,
        prfaas=pool("prfaas", sc.prfaas, tm.remote, plan["n_prfaas"]),
        local=pool("pd-prefill", sc.local, tm.local, plan["n_pd_prefill"]),
        link_bytes_per_s=units.gbit_per_s_to_bytes_per_s(plan["link_gbit_per_s"] or 0.0),
        rtt_s=sc.link.rtt_s,
        decode_instances=plan["n_pd_decode"],
        decode_batch=tm.decode.bs_max,
        decode_step_s=tm.decode.step_s,
        output_tokens_mean=sc.workload.output_tokens_mean,
        decode_accepted_tokens=tm.decode.accepted_tokens,
        transfer_cap_bytes_per_s=transfer_cap_bytes_per_s(sc.link.connections, sc.link.rtt_s, sc.link.loss_frac),
        link_available_frac=sc.link.available_frac,
    )
