"""Accelerator parts: datasheet peaks, prices and the efficiency settings kept apart from them.

One YAML file per part in ``hardware/``. Keys carry their units (``bf16_dense_tflops``,
``capacity_gb`` or ``capacity_gib`` exactly as the source states it); :func:`load_hardware`
converts them once into SI floats on :class:`Hardware`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import units
from ..errors import PlanError
from .fields import Fields, open_catalog_file
from .paths import catalog_names


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of the datasheet peaks and fixed overheads of a serving engine on a part.

    These are not datasheet facts: for H200 they are fitted once to [PRFAAS] Table 3 (see
    ``scripts/calibrate.py``); other parts document how theirs were chosen (``basis``).
    """

    basis: str
    gemm_frac: float  # the MMAs' share of the GEMM dtype's tensor peak, beside the power-limit time (roofline/terms.py gemm_compute_s)
    attention_frac: float  # softmax attention kernels, share of the attention dtype's peak
    linear_attention_frac: float  # linear-attention (KDA/GDN/Lightning) kernels, share of bf16 peak
    memory_frac: float  # achieved share of HBM bandwidth (weights, KV, activations)
    link_frac: float  # achieved share of the scale-up link / NIC in collectives (bus bandwidth)
    request_overhead_s: float  # fixed latency of one request alone (latency regime only)
    forward_overhead_s: float  # per prefill forward pass (scheduling, launch, sampling)
    decode_step_overhead_s: float  # fixed per decode step (CUDA-graph launch, synchronisation)
    decode_request_overhead_s: float  # per request per decode step (scheduler, sampling, detokenising)
    expert_imbalance_frac: float  # busiest EP rank's extra routed load over the mean
    collective_latency_s: float  # fixed latency per collective call (per layer)
    memory_usable_frac: float  # share of memory for weights + caches
    note: str = ""


@dataclass(frozen=True)
class Hardware:
    """One accelerator part, all numbers in SI base units (per GPU / per chip)."""

    name: str
    description: str
    hypothetical: bool
    peak_flop_per_s: dict[str, float]  # dtype -> dense peak; dtypes without support are absent
    memory_capacity_bytes: float
    memory_bandwidth_bytes_per_s: float
    scaleup_bytes_per_s: float  # one direction, per GPU; 0 where the part has no scale-up link
    gpus_per_node: int  # scale-up domain: GPUs joined by the scale-up link (8 HGX, 72 NVL72, 1 = none)
    scaleout_bytes_per_s: float
    power_w: float | None
    rent_usd_per_gpu_hour: float
    price_date: str
    price_source: str
    efficiency: Efficiency
    sources: tuple[str, ...]
    estimates: tuple[tuple[str, str], ...]
    path: str = ""
    memory_capacity_as_stated: str = field(default="", compare=False)
    sfu_exp_per_s: float | None = None  # special-function-unit exponentials/s (softmax floor); None = not published

    def peak_for(self, dtype: str) -> float:
        """Dense tensor peak for GEMMs in ``dtype``; falls back to the nearest wider supported
        dtype (fp4 -> fp8 -> bf16) and, for parts with only narrow formats (Rubin CPX), runs
        wider math at the narrowest supported peak halved per step up."""
        order = ["fp4", "fp8", "bf16"]
        start = order.index(dtype) if dtype in order else 2
        for d in order[start:]:
            if d in self.peak_flop_per_s:
                return self.peak_flop_per_s[d]
        for steps, d in enumerate(reversed(order[:start]), start=1):
            if d in self.peak_flop_per_s:
                return self.peak_flop_per_s[d] / 2**steps
        raise PlanError(f"{self.path}: no tensor peak given for any dtype")

    @property
    def bf16_flop_per_s(self) -> float:
        return self.peak_for("bf16")


def load_hardware(name_or_path: str | Path) -> Hardware:
    path, f, name = open_catalog_file("hardware", name_or_path)
    description = f.str("description")
    hypothetical = f.bool("hypothetical")

    peak = f.sub("peak")
    peaks: dict[str, float] = {}
    for dtype in ("bf16", "fp8", "fp4"):
        value = peak.num(f"{dtype}_dense_tflops", None)
        if value is not None:
            peaks[dtype] = units.tflops_to_flop_per_s(value)
    sfu = peak.num("sfu_tera_exp_per_s", None, min_value=0.0)
    peak.done()
    if not peaks:
        raise f.error("peak", "at least one of bf16/fp8/fp4_dense_tflops must be given")

    mem = f.sub("memory")
    if mem.has("capacity_gb") and mem.has("capacity_gib"):
        raise mem.error("capacity_gb", "give capacity_gb or capacity_gib, not both")
    if mem.has("capacity_gib"):
        cap_gib = mem.num("capacity_gib")
        capacity_bytes, stated = cap_gib * units.GIB, f"{cap_gib:g} GiB"
    else:
        cap_gb = mem.num("capacity_gb")
        capacity_bytes, stated = cap_gb * units.GB, f"{cap_gb:g} GB"
    bandwidth = units.tb_per_s_to_bytes_per_s(mem.num("bandwidth_tb_per_s"))
    mem.done()

    ic = f.sub("interconnect")
    scaleup_bidir = ic.num("scaleup_bidirectional_gb_per_s", 0.0, min_value=0.0)
    scaleout = units.gbit_per_s_to_bytes_per_s(ic.num("scaleout_gbit_per_s"))
    gpus_per_node = ic.int("gpus_per_node")
    if scaleup_bidir == 0 and gpus_per_node != 1:
        raise ic.error("gpus_per_node", f"must be 1 for a part without a scale-up link, got {gpus_per_node}")
    ic.done()

    power_w = f.num("power_w", None)
    price = f.sub("price")
    rent = price.num("rent_usd_per_gpu_hour")
    price.num("buy_usd", None)
    price_date = str(price.raw("date"))
    price_source = price.str("source")
    price.done()

    efficiency = _load_efficiency(f.sub("efficiency"))
    sources, estimates = f.sources(), f.estimates()
    f.done()
    return Hardware(
        name=name,
        description=description,
        hypothetical=hypothetical,
        peak_flop_per_s=peaks,
        memory_capacity_bytes=capacity_bytes,
        memory_bandwidth_bytes_per_s=bandwidth,
        scaleup_bytes_per_s=units.gb_per_s_to_bytes_per_s(scaleup_bidir) / 2,
        scaleout_bytes_per_s=scaleout,
        gpus_per_node=gpus_per_node,
        power_w=power_w,
        rent_usd_per_gpu_hour=rent,
        price_date=price_date,
        price_source=price_source,
        efficiency=efficiency,
        sources=sources,
        estimates=estimates,
        path=str(path),
        memory_capacity_as_stated=stated,
        sfu_exp_per_s=sfu * 1e12 if sfu else None,
    )


def _load_efficiency(e: Fields) -> Efficiency:
    eff = Efficiency(
        basis=e.str("basis", choices=("calibrated", "derived", "estimate")),
        gemm_frac=e.frac("gemm_frac"),
        attention_frac=e.frac("attention_frac"),
        linear_attention_frac=e.frac("linear_attention_frac"),
        memory_frac=e.frac("memory_frac"),
        link_frac=e.frac("link_frac"),
        request_overhead_s=e.num("request_overhead_s", min_value=0.0),
        forward_overhead_s=e.num("forward_overhead_s", min_value=0.0),
        decode_step_overhead_s=e.num("decode_step_overhead_s", min_value=0.0),
        decode_request_overhead_s=e.num("decode_request_overhead_s", min_value=0.0),
        expert_imbalance_frac=e.num("expert_imbalance_frac", min_value=0.0),
        collective_latency_s=e.num("collective_latency_s", min_value=0.0),
        memory_usable_frac=e.frac("memory_usable_frac"),
        note=e.str("note", ""),
    )
    e.raw("calibration", None)  # free-form record of the fit (scripts/calibrate.py)
    e.done()
    return eff


def list_hardware() -> list[Hardware]:
    return [load_hardware(n) for n in catalog_names("hardware")]


def load_profile_efficiency(path: str | Path) -> Efficiency:
    """The efficiency block of a profile file written by `prfaas-plan calibrate` (same keys as a
    hardware file's ``efficiency``; other top-level keys record how it was fitted)."""
    from .fields import load_yaml_mapping

    p = Path(path)
    f = Fields(load_yaml_mapping(p), p)
    eff = _load_efficiency(f.sub("efficiency"))
    for key in ("kind", "hardware", "date", "fitted_on", "errors", "fitted_keys", "left_fixed", "at_bound", "note"):
        f.raw(key, None)
    f.done()
    return eff


def apply_profile(hw: Hardware, path: str | Path) -> Hardware:
    """``hw`` with the efficiencies of a calibrated profile (fractions of this part's peaks)."""
    return replace(hw, efficiency=load_profile_efficiency(path))
