"""Refit the global calibration under term variants that were tried and left out (issue #17).

    python scripts/term_variants.py              # every variant: fitted values, Table 3 and engine errors
    python scripts/term_variants.py --loo        # also leave-one-out errors and band coverage (~1 min each)
    python scripts/term_variants.py gemm-hbm decode-hidden@1e-4   # only the named variants

A diagnostic beside scripts/calibrate.py: it writes nothing. Each variant swaps one term of the
shipped engine model for another form, in this process only, and refits the same global
parameters (prfaas_plan/paper/calibration.py) on the same points:

- ``shipped``: the model as it ships (GEMMs slowed by the power limit, per-request decode time
  additive).
- ``gemm-none``: no balance term for GEMMs (one gemm_frac of peak on every part; before issue #17's
  GEMM half).
- ``gemm-hbm``: the GEMM balance as tensor peak x b/2 : HBM bandwidth, 990 bf16 FLOP/B (least
  squares over the same published matmul maxima as the shipped power term).
- ``gemm-sm``: the GEMM balance as tensor peak x b/2 : SFU rate (SMs x 16 x clock, the part's SM
  resources), 1,597 FLOP per exponential slot (same table); no term where no SFU rate is published.
- ``decode-hidden``: per-request decode time hidden by an overlap scheduler (SGLang, TensorRT-LLM
  and vLLM's async scheduling): step = max(GPU step, requests per rank x t) + fixed step overhead,
  t fitted from the usual start; ``decode-hidden@T`` holds t at T seconds.
- ``decode-per-layer``: per-request decode time as GPU work per layer (t x layers / 80).
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan import units  # noqa: E402
from prfaas_plan.paper import calibration  # noqa: E402
from prfaas_plan.paper.bands import leave_one_out, point_residuals  # noqa: E402
from prfaas_plan.roofline import decode, terms  # noqa: E402
from prfaas_plan.roofline import elementwise as ew  # noqa: E402

GEMM_HBM_FLOP_PER_BYTE = 990.0
GEMM_SM_FLOP_PER_EXP = 1597.0


def _gemm_balance(resource):
    """A gemm_compute_s whose extra term is F b / (2 x resource(hw)); no term where it is None."""
    def gemm_compute_s(inst, flop, weights_dtype):
        dtype = units.COMPUTE_DTYPE_OF_WEIGHTS[weights_dtype]
        hw = inst.hw
        t = flop / (hw.peak_for(dtype) * hw.efficiency.gemm_frac)
        r = resource(hw)
        return t + flop * units.dtype_bytes(dtype) / (2.0 * r) if r else t
    return gemm_compute_s


def _decode_pass(kind: str):
    """decode.pass_terms with the per-request part of the overhead hidden (max with the GPU step) or
    scaled by the model's depth."""
    original = terms.pass_terms

    def pass_terms(inst, *args, overhead_s, **kwargs):
        e = inst.hw.efficiency
        per_request = overhead_s - e.decode_step_overhead_s
        if kind == "per-layer":
            return original(inst, *args, overhead_s=e.decode_step_overhead_s + per_request * inst.model.num_layers / 80.0, **kwargs)
        t = original(inst, *args, overhead_s=e.decode_step_overhead_s, **kwargs)
        gpu = t.total_s - e.decode_step_overhead_s
        return t.scaled(1.0, overhead=ew.maximum(per_request - gpu, 0.0))
    return pass_terms


@contextmanager
def variant(name: str):
    """Patch the engine model (and, for ``decode-hidden@T``, the fitted set) for one variant."""
    saved = [(terms, "gemm_compute_s", terms.gemm_compute_s), (decode, "gemm_compute_s", decode.gemm_compute_s),
             (decode, "pass_terms", decode.pass_terms), (calibration, "BOUNDS", calibration.BOUNDS),
             (calibration, "FITTED", calibration.FITTED), (calibration, "NOT_FITTED", calibration.NOT_FITTED)]
    base, _, held = name.partition("@")
    try:
        gemm = {"gemm-none": lambda hw: None,
                "gemm-hbm": lambda hw: hw.memory_bandwidth_bytes_per_s * GEMM_HBM_FLOP_PER_BYTE,
                "gemm-sm": lambda hw: hw.sfu_exp_per_s * GEMM_SM_FLOP_PER_EXP if hw.sfu_exp_per_s else None}.get(base)
        if gemm is not None:
            terms.gemm_compute_s = decode.gemm_compute_s = _gemm_balance(gemm)
        elif base in ("decode-hidden", "decode-per-layer"):
            decode.pass_terms = _decode_pass("hidden" if base == "decode-hidden" else "per-layer")
            if held:
                key = "decode_request_overhead_s"
                calibration.BOUNDS = tuple(b for b in calibration.BOUNDS if b[0] != key)
                calibration.FITTED = tuple(b[0] for b in calibration.BOUNDS)
                calibration.NOT_FITTED = {**calibration.NOT_FITTED, key: float(held)}
        elif base != "shipped":
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}, decode-hidden@T")
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)


VARIANTS = ("shipped", "gemm-none", "gemm-hbm", "gemm-sm", "decode-hidden", "decode-hidden@2e-5", "decode-hidden@5e-5",
            "decode-hidden@1e-4", "decode-hidden@2e-4", "decode-hidden@4e-4", "decode-per-layer")


def _stats(logs) -> str:
    err = np.exp(np.abs(np.asarray(logs))) - 1
    return f"{np.median(err) * 100:.1f}% / {1 + err.max():.3f}x"


def main(argv: list[str]) -> int:
    loo = "--loo" in argv
    names = [a for a in argv if not a.startswith("--")] or list(VARIANTS)
    for name in names:
        with variant(name):
            result = calibration.fit()
            res = point_residuals(result)
            t3 = [r for i, _, r in res if i.startswith("table3:")]
            eng = [r for i, _, r in res if not i.startswith("table3:")]
            worst = max(res, key=lambda x: abs(x[2]))
            keep = ("gemm_frac", "link_frac", "decode_request_overhead_s", "expert_imbalance_frac")
            print(f"{name:20s} Table 3 {_stats(t3)}  engines {_stats(eng)}  worst {worst[0]} "
                  f"({math.exp(abs(worst[2])):.3f}x)  " + ", ".join(f"{k} {result.params[k]:.4g}" for k in keep), flush=True)
            if loo:
                rows = leave_one_out()
                lt3 = [r["r"] for r in rows if r["id"].startswith("table3:")]
                leng = [r["r"] for r in rows if not r["id"].startswith("table3:")]
                print(f"{'':20s} leave-one-out: Table 3 {_stats(lt3)}  engines {_stats(leng)}  "
                      f"band coverage {sum(r['inside'] for r in rows)} of {len(rows)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
