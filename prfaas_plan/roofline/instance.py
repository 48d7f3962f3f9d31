"""One serving instance: part, GPUs, parallelism, dtypes; and where its bytes live.

An :class:`Instance` is what prefill, decode, `estimate` and the planner all price. It holds

- the part and the number of GPUs P = TP x PP, in the engines' spelling (SGLang, TensorRT-LLM;
  :mod:`.parallel`): TP is the tensor-parallel world size of a pipeline stage, PP the stages;
  DP attention splits TP into DP ranks of attention TP = TP / DP each (DP = 1: none). Routed
  experts are spread over the TP GPUs of a stage, either sharded by tensor parallelism (EP = 1)
  or placed whole on EP ranks (expert parallelism, dispatch/combine);
- the part's scale-up domain (``gpus_per_node``): a collective whose group fits inside it runs
  on the scale-up link (NVLink), one that spans domains crosses the NIC;
- dtypes per component: dense/attention weights, routed-expert weights, attention compute, KV
  cache; optional multi-token prediction (MTP: draft tokens per step and mean accepted length).

Defaults (:func:`make_instance`) are what engines do on the part: inside one scale-up domain,
TP over all GPUs (SGLang/vLLM default); across domains, MoE models run DP attention with expert
parallelism over all GPUs (the large-EP deployments; at most one rank per expert), dense models
TP inside a domain and PP across; parts without a scale-up link (Rubin CPX) pipeline over the
NIC. A shape is never priced as one NVLink domain when it spans several.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .. import units
from ..catalog.hardware import Hardware
from ..catalog.model import MLA, FullAttention, LinearAttention, Mamba, ModelSpec, SlidingWindow
from ..errors import PlanError
from . import counts
from . import elementwise as ew

DTYPES = ("bf16", "fp8", "fp4", "int4")

#: Tokens each attention rank (DP rank) packs into one prefill forward pass (chunked prefill
#: budget) when the deployment does not say (``chunk_tokens`` None). The one figure stated in
#: ../shared/reference/engines-train.json is 16,384 per GPU for SGLang's DP-attention prefill,
#: and the shipped calibration was fitted with it. Engines' own defaults differ
#: (catalog/engines.py, ``engine_chunk_tokens``: SGLang 8,192 on parts under 160 GiB, 16,384
#: above; vLLM serve 8,192; TensorRT-LLM 8,192); give ``chunk_tokens`` to price one. [E]
PREFILL_TOKENS_PER_FORWARD = 16_384

@dataclass(frozen=True)
class Instance:
    model: ModelSpec
    hw: Hardware
    gpus: int
    attention_tp: int  # tensor parallel inside each attention rank (TP / DP)
    ep: int
    dp: int  # data-parallel attention ranks (1 without DP attention)
    pp: int
    weights_dtype: str  # dense layers, attention projections, shared experts, LM head
    moe_weights_dtype: str  # routed experts
    attention_dtype: str  # compute dtype of softmax attention
    kv_dtype: str
    mtp_draft_tokens: int = 0
    mtp_accepted_tokens: float = 1.0  # mean tokens emitted per request per decode step (>= 1)
    overlap_comm: bool = False  # two-batch overlap hides EP dispatch/combine behind compute
    chunk_tokens: int = PREFILL_TOKENS_PER_FORWARD  # chunked-prefill size per pass; 0 = no chunking

    # -- shape ----------------------------------------------------------------------------------
    @property
    def dp_attention(self) -> bool:
        return self.dp > 1

    @property
    def tp(self) -> int:
        """Tensor-parallel world size of a stage, the engines' ``tp`` (= attention TP x DP)."""
        return self.attention_tp * self.dp

    def deployment(self) -> dict:
        """The parallelism in the engines' terms (:mod:`.parallel`): tp (world size of a stage),
        attention_tp, dp, enable_dp_attention, ep, pp; ``text`` as one line
        (``tp 8 (attention tp 1 x dp 8), ep 8, pp 1``), the SGLang flags and ``warnings``
        (:meth:`tp_span_warning`)."""
        dp = f" (attention tp {self.attention_tp} x dp {self.dp})" if self.dp > 1 else ""
        flags = f"--tp {self.tp}" + (f" --dp {self.dp} --enable-dp-attention" if self.dp > 1 else "") + (f" --ep {self.ep}" if self.ep > 1 else "")
        return {"tp": self.tp, "attention_tp": self.attention_tp, "dp": self.dp, "enable_dp_attention": self.dp > 1, "ep": self.ep,
                "pp": self.pp, "text": f"tp {self.tp}{dp}, ep {self.ep}, pp {self.pp}",
                "sglang_flags": flags + (f" --pp {self.pp}" if self.pp > 1 else ""), "warnings": [w for w in (self.tp_span_warning(),) if w]}

    def tp_span_warning(self) -> str | None:
        """A warning when a tensor-parallel all-reduce group is larger than the scale-up domain
        (its collectives then cross the NIC, [scaling-book] a costly shape engines avoid): the
        attention TP group, or with DP attention and EP = 1 the FFN's TP world. None otherwise."""
        group = self.stage_gpus if self.dp > 1 and self.ep == 1 else self.attention_tp
        if group <= self.domain_gpus:
            return None
        what = "the FFN's TP world" if group != self.attention_tp else "the attention TP group"
        return (f"{what} spans {group} GPUs, more than a {self.hw.name} scale-up domain of {self.domain_gpus}: "
                "its all-reduces cross the NIC (engines keep TP inside a domain and use PP, or DP attention with EP, across)")

    @property
    def stage_gpus(self) -> int:
        """GPUs of one pipeline stage (= TP = attention TP x DP): the routed experts are spread over these."""
        return self.gpus // self.pp

    @property
    def expert_group(self) -> int:
        """GPUs one copy of the routed experts is spread over: the EP ranks, or with EP = 1 the
        whole stage (experts sharded by tensor parallelism). Stages larger than this hold
        several copies, each serving its share of the tokens."""
        return self.ep if self.ep > 1 else self.stage_gpus

    @property
    def domain_gpus(self) -> int:
        return self.hw.gpus_per_node

    def describe(self) -> str:
        dt = f"weights {self.weights_dtype}/{self.moe_weights_dtype}, attention {self.attention_dtype}, KV {self.kv_dtype}"
        return f"{self.gpus} x {self.hw.name} ({self.deployment()['text']}; {dt})"

    # -- peaks ----------------------------------------------------------------------------------
    def gemm_peak_flop_per_s(self, weights_dtype: str) -> float:
        """Tensor peak a GEMM over weights of ``weights_dtype`` runs at (int4 runs W4A16 in bf16)."""
        return self.hw.peak_for(units.COMPUTE_DTYPE_OF_WEIGHTS[weights_dtype])

    @property
    def attention_peak_flop_per_s(self) -> float:
        return self.hw.peak_for(self.attention_dtype)

    # -- bytes (cached: an instance is immutable) -------------------------------------------------
    @cached_property
    def dense_params(self) -> float:
        return counts.dense_params(self.model)

    def dense_weight_bytes(self) -> float:
        """Non-routed weights (attention, dense FFN, shared experts, routers, LM head) of one copy."""
        m = self.model
        return (self.dense_params + m.vocab_size * m.hidden_size) * units.dtype_bytes(self.weights_dtype)

    def expert_bytes(self) -> float:
        """One routed expert of one layer."""
        return counts.expert_params(self.model) * units.dtype_bytes(self.moe_weights_dtype)

    def weight_bytes_per_gpu(self) -> float:
        """Resident weights on each GPU: the dense copy sharded by attention TP and PP (replicated
        over DP ranks), all routed experts spread over the stage's GPUs, the embedding table replicated."""
        m, f = self.model, self.model.ffn
        experts = f.moe_layers * f.experts * self.expert_bytes()
        embed = m.vocab_size * m.hidden_size * units.dtype_bytes(self.weights_dtype) * (0 if m.tie_word_embeddings else 1)
        return (self.dense_weight_bytes() + embed) / (self.attention_tp * self.pp) + experts / (self.expert_group * self.pp)

    def weights_fit(self) -> bool:
        return self.weight_bytes_per_gpu() <= self.hw.memory_capacity_bytes * self.hw.efficiency.memory_usable_frac

    def kv_replication(self, group) -> float:
        """How many copies of a layer's cache attention TP keeps: heads shard over
        min(TP, heads) ranks, so GQA with fewer KV heads than TP ranks duplicates, and MLA's
        shared latent sits whole on every TP rank (why engines run MLA with DP attention)."""
        tp = self.attention_tp
        if isinstance(group, MLA):
            return float(tp)
        if isinstance(group, Mamba):  # heads (Mamba2) or channels (Mamba1) shard over attention TP
            return tp / min(tp, group.heads or group.inner_dim)
        heads = group.value_heads if isinstance(group, LinearAttention) else group.kv_heads
        return tp / min(tp, heads)

    @cached_property
    def _cache_parts(self) -> tuple[float, list[tuple[float, int]], float]:
        """(bytes per token of full/MLA layers, [(bytes per token, window)] of SWA layers, fixed
        state bytes of linear layers), each with its TP replication, in the instance's KV dtype."""
        from .kv import layer_kv_bytes_per_token, recurrent_state_bytes

        m, kv = self.model, self.kv_dtype
        grow, swa, state = 0.0, [], 0.0
        for g in m.layers:
            rep = self.kv_replication(g)
            if isinstance(g, (FullAttention, MLA)):
                grow += g.count * layer_kv_bytes_per_token(g, kv) * rep
            elif isinstance(g, SlidingWindow):
                swa.append((g.count * layer_kv_bytes_per_token(g, kv) * rep, g.window_tokens))
            else:
                state += g.count * recurrent_state_bytes(g, m.dtypes.linear_state, m.dtypes.conv_state) * rep
        return grow, swa, state

    def kv_write_bytes_per_token(self) -> float:
        """Cache bytes a prefilled token writes (full, MLA and SWA layers), TP replication included."""
        grow, swa, _ = self._cache_parts
        return grow + sum(b for b, _ in swa)

    def state_bytes_per_request(self) -> float:
        return self._cache_parts[2]

    def attention_cache_bytes(self, context_tokens):
        """Softmax-attention cache of one request at ``context_tokens`` (SWA capped at its window)."""
        grow, swa, _ = self._cache_parts
        return grow * context_tokens + sum(b * ew.minimum(context_tokens, w) for b, w in swa)

    def cache_bytes_per_request(self, context_tokens) -> float:
        """Memory one request's cache takes on the instance, TP replication included."""
        return self.attention_cache_bytes(context_tokens) + self.state_bytes_per_request()

    def memory_max_batch(self, context_tokens: float) -> int:
        """Largest number of requests whose caches fit beside the weights (0 if none)."""
        free = self.gpus * (self.hw.memory_capacity_bytes * self.hw.efficiency.memory_usable_frac - self.weight_bytes_per_gpu())
        per = self.cache_bytes_per_request(context_tokens)
        return max(int(free // per), 0) if per > 0 else 10**9


def dtype_unsupported(hw: Hardware, dtype: str) -> str | None:
    """Why ``hw`` cannot run weights or attention in ``dtype`` (None when it can)."""
    if dtype == "fp4" and "fp4" not in hw.peak_flop_per_s:
        return f"{hw.name} has no FP4 tensor cores (fp4 needs Blackwell or later); use fp8 or int4"
    if dtype == "fp8" and "fp8" not in hw.peak_flop_per_s and "fp4" not in hw.peak_flop_per_s:
        return f"{hw.name} has no FP8 tensor cores"
    return None


def _check_dtype(hw: Hardware, option: str, dtype: str) -> None:
    if dtype not in DTYPES and dtype not in units.DTYPE_BYTES:
        raise PlanError(f"{option}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    why = dtype_unsupported(hw, dtype)
    if why:
        raise PlanError(f"{option}: {why}")


def make_instance(
    model: ModelSpec,
    hw: Hardware,
    gpus: int,
    *,
    tp: int | None = None,
    dp: int | None = None,
    ep: int | None = None,
    pp: int | None = None,
    dp_attention: bool | None = None,
    weights: str | None = None,
    moe_weights: str | None = None,
    attention_dtype: str | None = None,
    kv_dtype: str | None = None,
    mtp_draft_tokens: int = 0,
    mtp_accepted_tokens: float | None = None,
    chunk_tokens: int | None = None,
) -> Instance:
    """Build and check an instance in the engines' spelling (:mod:`.parallel`): ``tp`` the
    tensor-parallel world size of a stage (P = TP x PP), ``dp`` the DP-attention ranks splitting
    it (attention TP = TP / DP; 1 or None without DP attention), ``ep``, ``pp``. ``dp_attention``
    is the deprecated alias DP = TP (:func:`.parallel.dp_ranks`). Options left at None take the
    engine default (module docstring). Raises :class:`PlanError` naming the option for an
    inconsistent shape."""
    if gpus < 1:
        raise PlanError(f"--gpus: must be >= 1, got {gpus}")
    if dp_attention:
        from .parallel import dp_ranks

        dp = dp_ranks(dp, False, True, tp)
    moe = model.ffn.moe_layers > 0
    domain = hw.gpus_per_node
    if pp is None:
        if tp is not None:
            if tp < 1 or gpus % tp:
                raise PlanError(f"--tp: {tp} does not divide --gpus {gpus} (--tp is the tensor-parallel world size of a pipeline stage: GPUs = TP x PP)")
            pp = gpus // tp
        elif dp is not None or ep is not None or (gpus <= domain and domain > 1) or (moe and domain > 1):
            pp = 1
        elif domain == 1:
            pp = gpus  # no scale-up link: pipeline stages over the NIC
        elif gpus % domain:
            raise PlanError(f"--gpus: {gpus} GPUs span scale-up domains of {domain} unevenly; give --tp and --pp")
        else:
            pp = gpus // domain  # dense model across domains: TP inside each, PP across
    if pp < 1:
        raise PlanError(f"--pp: must be >= 1, got {pp}")
    if gpus % pp:
        raise PlanError(f"--pp: {pp} does not divide --gpus {gpus}")
    stage = gpus // pp
    if dp is None:  # MoE across domains: DP attention over the whole stage with EP (the large-EP deployments)
        dp = stage if moe and stage > domain and tp is None else 1
    if tp is None:
        tp = stage
    if tp != stage:
        raise PlanError(f"--tp: TP {tp} x PP {pp} != --gpus {gpus} (--tp is the tensor-parallel world size of a pipeline stage, as in SGLang and TensorRT-LLM)")
    if dp < 1 or tp % dp:
        raise PlanError(f"--dp: {dp} DP-attention ranks must divide --tp {tp} (attention TP = TP / DP)")
    if ep is None:
        ep = 1
        if moe and (dp > 1 or stage > domain):  # the largest EP over the stage that has an expert per rank
            ep = max(d for d in range(1, min(stage, model.ffn.experts) + 1) if stage % d == 0)
    if ep < 1:
        raise PlanError(f"--ep: must be >= 1, got {ep}")
    if pp > model.num_layers:
        raise PlanError(f"--pp: {pp} pipeline stages > {model.num_layers} layers of {model.name}")
    if ep > 1 and not moe:
        raise PlanError(f"--ep: {model.name} has no routed experts")
    if moe and ep > model.ffn.experts:
        raise PlanError(f"--ep: EP {ep} > {model.ffn.experts} experts of {model.name}")
    if ep > stage or stage % ep:
        raise PlanError(f"--ep: EP {ep} must divide the TP world of {stage} GPUs (a pipeline stage)")
    weights = weights or model.dtypes.weights
    moe_weights = moe_weights or weights
    kv_dtype = kv_dtype or model.dtypes.kv_cache
    if attention_dtype is None:
        attention_dtype = "fp8" if kv_dtype == "fp8" and "fp8" in hw.peak_flop_per_s else "bf16"
    for option, dt in (("--weights", weights), ("--moe-weights", moe_weights), ("--attention-dtype", attention_dtype), ("--kv-dtype", kv_dtype)):
        _check_dtype(hw, option, dt)
    if attention_dtype not in ("bf16", "fp8", "fp4"):
        raise PlanError(f"--attention-dtype: attention computes in bf16, fp8 or fp4, not {attention_dtype}")
    if mtp_draft_tokens < 0:
        raise PlanError(f"--mtp-draft: must be >= 0, got {mtp_draft_tokens}")
    if mtp_draft_tokens and mtp_accepted_tokens is None:
        # No default: the accepted length depends on the model, its draft module and the data
        # (DeepSeek-V3, arXiv 2412.19437 Sec. 5.4.3: 85-90% of its one draft token accepted, A 1.85-1.9);
        # taking A = 1 would price the draft passes and never their tokens.
        raise PlanError(f"--mtp-accept: give the mean tokens emitted per request per step with --mtp-draft "
                        f"{mtp_draft_tokens} (1 .. {mtp_draft_tokens + 1}; e.g. 1.85 for DeepSeek-V3's one draft token)")
    accepted = 1.0 if mtp_accepted_tokens is None else float(mtp_accepted_tokens)
    if mtp_draft_tokens == 0 and accepted != 1.0:
        raise PlanError("--mtp-accept: give --mtp-draft too")
    if not 1.0 <= accepted <= mtp_draft_tokens + 1:
        raise PlanError(f"--mtp-accept: mean accepted tokens per step must lie in [1, {mtp_draft_tokens + 1}], got {accepted}")
    if chunk_tokens is None:
        chunk_tokens = PREFILL_TOKENS_PER_FORWARD
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 0:
        raise PlanError(f"--chunk-tokens: must be a whole number of tokens >= 0 (0 = no chunking), got {chunk_tokens!r}")
    # Engines that spread experts across scale-up domains run two-batch overlap (SGLang TBO,
    # DeepEP): dispatch/combine of one micro-batch hides behind the other's compute.
    overlap = ep > domain
    return Instance(model, hw, gpus, tp // dp, ep, dp, pp, weights, moe_weights, attention_dtype, kv_dtype,
                    mtp_draft_tokens, accepted, overlap, chunk_tokens)
