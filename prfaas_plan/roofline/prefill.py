"""Prefill time of an instance in its two regimes, and KV throughput ([PRFAAS] Eq. 1-2).

*Latency* (:func:`latency_terms`): one request of l tokens alone on an idle instance, what
[PRFAAS] Tables 3 and 5 measured and the TTFT at zero load. With chunked prefill
(``Instance.chunk_tokens`` = c > 0) the prompt runs as n = l / min(l, c) passes of c tokens;
chunk i attends to its own c tokens and the (i - 1) c already cached, so it holds

    (c^2 / 2 + (i - 1) c^2) / (l^2 / 2) = (2i - 1) / n^2                   (:func:`chunk_attention_frac`)

of the prompt's causal attention (the n shares sum to 1; the first chunk is the cheapest). The
chunks cross the PP stages as a pipeline in which chunk i on stage s waits for chunk i - 1 on s
(its cache) and for chunk i on s - 1 (its activations). With T_i the time of chunk i's pass
through all layers (a stage takes T_i / PP), the last chunk leaves the last stage after

    T_latency(l) = request_overhead + sum_i T_i / PP + (PP - 1) / PP * max_i T_i
                 = request_overhead + n / PP * T_mean + (PP - 1) / PP * T_n

(the longest path through the stages: every chunk on one stage, the costliest, last, chunk on
the others). The fill by the first, cheapest chunk is hidden behind the later ones; what cannot
be hidden is the last chunk's walk through the remaining stages. Without chunking (c = 0) n = 1
and T_latency = request_overhead + T_pass(l): the prompt crosses the stages in series and PP buys
no TTFT at all.

*Throughput* (:func:`throughput_terms`): the instance under load, every attention rank packing
c tokens of many requests per pass (without chunking, B = max(l, ``PREFILL_TOKENS_PER_FORWARD``):
short prompts are packed up to the engine's prefill budget, a long one runs whole), per-forward
overhead shared by them, PP micro-batches in flight (no bubble in steady state).
Instance-seconds per request:

    T_throughput(l) = T_pass(B) * l / (B * DP * PP)

T_pass is :func:`~prfaas_plan.roofline.terms.pass_terms`; in the throughput regime a request's
attention work is spread evenly over its tokens. A measured profile on the same (part, GPU
count) takes precedence where the model carries one (it is a latency measurement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..catalog.hardware import Hardware
from ..catalog.model import ModelSpec, PrefillProfile
from ..errors import PlanError
from . import counts
from . import elementwise as ew
from .instance import PREFILL_TOKENS_PER_FORWARD, Instance, make_instance
from .kv import kv_cache_bytes
from .terms import Terms, pass_terms

if TYPE_CHECKING:  # numpy is imported where an array is made (plain numbers need none)
    import numpy as np

REGIMES = ("latency", "throughput")


@dataclass(frozen=True)
class PrefillTime:
    """T_prefill and its terms, seconds. ``bound`` names the largest term."""

    total_s: float
    terms: dict
    source: str  # "roofline (<regime>)" or "profile: <source>"
    binding: str | None = None

    @property
    def bound(self) -> str:
        if not self.terms:
            return "profile"
        if self.binding is not None:
            return self.binding
        return max(self.terms, key=lambda k: float(self.terms[k]))


def chunk_attention_frac(i, n):
    """(2i - 1) / n^2: chunk i's (1-based) share of an n-chunk prompt's causal attention (module
    docstring); the first chunk holds 1 / n^2, the last (2n - 1) / n^2. n may be fractional."""
    return (2.0 * i - 1.0) / (n * n)


def _pass(inst: Instance, chunk, input_tokens, ranks: int, last: bool = False) -> Terms:
    """One prefill pass of ``chunk`` tokens per rank from requests of ``input_tokens`` tokens: the
    mean chunk of a request (attention share c / l, cache read of half the earlier chunks), or
    with ``last`` its last chunk (share (2n - 1) / n^2, the whole earlier prompt read, logits)."""
    m = inst.model
    l = ew.asfloat(input_tokens)
    share = chunk / l  # requests (or parts of one) in the pass
    n_chunks = ew.maximum(l / chunk, 1.0)
    kv_tok = inst.kv_write_bytes_per_token()
    if last:
        attention_share, cached_chunks, logits = chunk_attention_frac(n_chunks, n_chunks), n_chunks - 1.0, 1.0
    else:
        attention_share, cached_chunks, logits = share, (n_chunks - 1.0) / 2.0, share
    return pass_terms(
        inst,
        tokens_per_rank=chunk,
        ranks=ranks,
        attention_flop_per_rank=counts.prefill_attention_flop(m, l) * attention_share,
        attention_exp_per_rank=counts.prefill_attention_exp(m, l) * attention_share,
        kv_read_bytes_per_rank=kv_tok * chunk * (1.0 + cached_chunks),  # write own, read earlier chunks
        linear_flop_per_rank=counts.linear_attention_flop(m, chunk),
        linear_scan_bytes_per_rank=counts.linear_attention_scan_bytes(m, chunk),
        state_bytes_per_rank=2.0 * inst.state_bytes_per_request() * ew.maximum(share, 1.0),
        logits_per_rank=logits,
        overhead_s=inst.hw.efficiency.forward_overhead_s,
        dedup_per_domain=True,
    )


def latency_chunk_tokens(inst: Instance, input_tokens):
    """Tokens per pass of one request alone: min(l, c), or l without chunking (c = 0)."""
    l = ew.asfloat(input_tokens)
    return l if inst.chunk_tokens == 0 else ew.minimum(l, float(inst.chunk_tokens))


def latency_terms(inst: Instance, input_tokens) -> Terms:
    """T_latency(l) (module docstring) by term; ``pipeline`` holds what the stages add beyond one
    stage's work, (PP - 1) / PP of the last chunk's pass, besides the hand-offs."""
    l = ew.asfloat(input_tokens)
    chunk = latency_chunk_tokens(inst, l)
    one = _pass(inst, chunk, l, 1)
    drain = 0.0
    if inst.pp > 1:
        drain = (inst.pp - 1) / inst.pp * _pass(inst, chunk, l, 1, last=True).total_s
    return one.scaled(l / chunk / inst.pp, pipeline=drain, overhead=inst.hw.efficiency.request_overhead_s)


def throughput_chunk_tokens(inst: Instance, input_tokens):
    """Tokens per rank per pass under load: c, or max(l, PREFILL_TOKENS_PER_FORWARD) without
    chunking (module docstring)."""
    if inst.chunk_tokens:
        return float(inst.chunk_tokens)
    return ew.maximum(ew.asfloat(input_tokens), float(PREFILL_TOKENS_PER_FORWARD))


def throughput_terms(inst: Instance, input_tokens) -> Terms:
    """T_throughput(l) (module docstring): instance-seconds per request under load."""
    l = ew.asfloat(input_tokens)
    chunk = throughput_chunk_tokens(inst, l)
    one = _pass(inst, chunk, l, inst.dp)
    return one.scaled(l / (chunk * inst.dp * inst.pp))


def prefill_tokens_per_s_per_gpu(inst: Instance, input_tokens: float) -> float:
    """Saturated, batched prefill throughput: input tokens per second per GPU."""
    return float(input_tokens / throughput_terms(inst, input_tokens).total_s / inst.gpus)


def roofline_prefill_time(model: ModelSpec, hw: Hardware, gpus: int, input_tokens, regime: str = "latency",
                          instance: Instance | None = None) -> PrefillTime:
    """Roofline T_prefill(l) on ``instance`` (default: the engine default shape of ``gpus`` x
    ``hw``) in ``regime``; ``input_tokens`` may be an array."""
    if regime not in REGIMES:
        raise PlanError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    inst = instance or make_instance(model, hw, gpus)
    t = (latency_terms if regime == "latency" else throughput_terms)(inst, input_tokens)
    return PrefillTime(t.total_s, t.seconds, f"roofline ({regime})", t.binding)


def profile_coefficients(profile: PrefillProfile) -> np.ndarray:
    """Least-squares T(l) = a + b l + c l^2 through a profile's points (degree capped at
    n_points - 1), highest power first as numpy.polyval expects. Overhead + GEMM + causal
    attention is exactly this shape, so the fit also serves between and beyond the points."""
    import numpy as np

    degree = min(2, len(profile.input_tokens) - 1)
    return np.polyfit(np.asarray(profile.input_tokens, float), np.asarray(profile.prefill_time_s, float), degree)


def profile_prefill_time(profile: PrefillProfile, input_tokens: float, coefficients: np.ndarray | None = None) -> PrefillTime:
    import numpy as np

    coeffs = profile_coefficients(profile) if coefficients is None else coefficients
    t = float(np.polyval(coeffs, input_tokens))
    if t <= 0:
        raise PlanError(f"prefill profile ({profile.source}) gives a non-positive time at {input_tokens:.0f} tokens")
    kind = "derived profile" if profile.derived else "profile"
    return PrefillTime(t, {}, f"{kind}: {profile.source}")


def check_weights_fit(inst: Instance) -> None:
    """Raise PlanError unless the instance's weights fit its usable memory (the planner refuses
    what `estimate` only reports)."""
    if not inst.weights_fit():
        usable = inst.hw.memory_capacity_bytes * inst.hw.efficiency.memory_usable_frac
        raise PlanError(
            f"model {inst.model.name} does not fit {inst.describe()}: weights need {inst.weight_bytes_per_gpu() / 1e9:,.1f} GB "
            f"per GPU, usable memory is {usable / 1e9:,.1f} GB (use more GPUs per instance)"
        )


class PrefillModel:
    """T_prefill(l) for a model on an instance in a regime: the model's profile for (part, GPUs)
    when it has one and ``use_profile`` is set, the roofline otherwise. Vectorised over lengths."""

    def __init__(self, model: ModelSpec, hw: Hardware, gpus: int, use_profile: bool = True,
                 regime: str = "latency", instance: Instance | None = None):
        if regime not in REGIMES:
            raise PlanError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
        self.instance = instance or make_instance(model, hw, gpus)
        self.model, self.hw, self.gpus, self.regime = model, hw, self.instance.gpus, regime
        self.profile = model.prefill_profile(hw.name, gpus) if use_profile else None
        if self.profile is None:
            check_weights_fit(self.instance)
        self._coeffs = profile_coefficients(self.profile) if self.profile else None

    @property
    def source(self) -> str:
        return self.time(1024).source

    def time(self, input_tokens: float) -> PrefillTime:
        if self.profile is not None:
            return profile_prefill_time(self.profile, input_tokens, self._coeffs)
        t = roofline_prefill_time(self.model, self.hw, self.gpus, input_tokens, self.regime, self.instance)
        return PrefillTime(float(t.total_s), {k: float(v) for k, v in t.terms.items()}, t.source, t.binding)

    def time_s(self, input_tokens) -> np.ndarray:
        """T_prefill in seconds for an array of lengths."""
        import numpy as np

        lengths = np.atleast_1d(np.asarray(input_tokens, float))
        if self._coeffs is not None:
            return np.polyval(self._coeffs, lengths)
        return np.asarray(roofline_prefill_time(self.model, self.hw, self.gpus, lengths, self.regime, self.instance).total_s, float)


def kv_throughput_bytes_per_s(model: ModelSpec, prefill: PrefillTime, input_tokens: float) -> float:
    """Phi_kv(l) = S_kv(l) / T_prefill(l), bytes/s ([PRFAAS] Eq. 1)."""
    return kv_cache_bytes(model, input_tokens) / prefill.total_s


def cluster_egress_bytes_per_s(n_gpus: int, gpus_per_instance: int, mean_kv_bytes: float, mean_prefill_s: float) -> float:
    """B_out = (N / P) * E[S_kv] / E[T_prefill], bytes/s ([PRFAAS] Eq. 2): the egress an N-GPU
    prefill cluster of P-GPU instances needs when every instance is busy."""
    if n_gpus < 1 or gpus_per_instance < 1:
        raise PlanError("cluster egress needs N >= 1 GPUs and P >= 1 GPUs per instance")
    return (n_gpus / gpus_per_instance) * mean_kv_bytes / mean_prefill_s
