"""Refit the engine efficiencies jointly to [PRFAAS] Table 3 and engines-train.json; record them.

    python scripts/calibrate.py            # print the fit, Table 3 cells and engine points
    python scripts/calibrate.py --write    # also rewrite every hardware/*.yaml efficiency block
                                           # and the error bands (prfaas_plan/roofline/band_data.py)
    python scripts/calibrate.py --as-benchmarked  # diagnostic: TensorRT-LLM offline points as they
                                                  # ran (waves of 3,000 requests); never written

The eight fitted numbers (prfaas_plan/paper/calibration.py, FITTED) are one set for all parts:
h200.yaml records them with basis: calibrated and the errors; every other part carries the same
fractions of its own peaks (basis: estimate, or calibrated where engine points measured it).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_plan.paper.bands import band_data_source, bands  # noqa: E402
from prfaas_plan.paper.calibration import ENGINE_PARTS, FITTED, fit  # noqa: E402

FIXED = """\
  linear_attention_frac: 0.5      # estimate, not fitted: the kernels are bandwidth-bound (prfaas_plan/paper/calibration.py NOT_FITTED)
  decode_step_overhead_s: 0.003   # estimate: fixed CUDA-graph launch and synchronisation per step
  collective_latency_s: 1.0e-05   # estimate: one NCCL/DeepEP call per layer, ~10 us
  memory_usable_frac: 0.9         # estimate: SGLang mem_fraction_static ~0.88, TRT-LLM 0.9
"""


def block(params: dict[str, float], part: str, t3: tuple[float, float], eng: tuple[float, float]) -> str:
    measured = part in ENGINE_PARTS
    lines = ["efficiency:\n", f"  basis: {'calibrated' if measured else 'estimate'}\n"]
    lines.append(
        "  # One global set fitted by `python scripts/calibrate.py --write` to [PRFAAS] Table 3 (latency\n"
        "  # regime, 24 cells) and the 19 engine points of prfaas_plan/paper/data/engines-train.json\n"
        "  # (throughput regime); the same fractions of this part's own peaks (a GEMM's effective share\n"
        "  # also follows this part's peak : power_w, prfaas_plan/roofline/terms.py gemm_compute_s).\n"
        + ("" if measured else "  # No measurement on this part backs them: override here.\n")
    )
    lines += [f"  {k}: {params[k]}\n" for k in FITTED]
    lines.append(FIXED)
    if part == "h200":
        lines.append(
            "  calibration:\n"
            "    fitted_on: \"[PRFAAS] Table 3 (24 cells) + engines-train.json (19 points), jointly\"\n"
            f"    fitted_keys: [{', '.join(FITTED)}]\n"
            f"    table3_median_error_pct: {t3[0] * 100:.1f}\n"
            f"    table3_worst_factor: {t3[1]:.2f}\n"
            f"    engines_median_error_pct: {eng[0] * 100:.1f}\n"
            f"    engines_worst_factor: {eng[1]:.2f}\n"
        )
    return "".join(lines)


def main() -> int:
    benchmarked = "--as-benchmarked" in sys.argv[1:]
    if benchmarked and "--write" in sys.argv[1:]:
        print("--as-benchmarked is a diagnostic: it is never written", file=sys.stderr)
        return 2
    result = fit(benchmarked)
    print("fitted:", result.params)
    t3, eng = result.table3, result.engines
    print(f"Table 3: median error {t3[0] * 100:.1f}%, worst {t3[1]:.2f}x; engines: median {eng[0] * 100:.1f}%, worst {eng[1]:.2f}x")
    for model, tokens, pred, meas in result.cells:
        print(f"  {model:16s} {tokens // 1024:4d}K  model {pred:6.2f}  paper {meas:6.2f}  ratio {pred / meas:5.2f}")
    for r in result.engine_rows:
        print(f"  {r['id']:38s} model {r['predicted']:9.1f}  measured {r['measured']:9.1f}  ratio {r['ratio']:5.2f}")
    for kind, b in bands(result).items():
        print(f"  band {kind:8s} {b['points']:2d} points: measured / predicted in [{b['low_factor']:.3f}, {b['high_factor']:.3f}] (80%)")
    if "--write" in sys.argv:
        band_path = ROOT / "prfaas_plan" / "roofline" / "band_data.py"
        band_path.write_text(band_data_source(result))
        print("wrote", band_path.relative_to(ROOT))
        for path in sorted((ROOT / "hardware").glob("*.yaml")):
            content = path.read_text()
            cut = content.index("\nefficiency:\n")
            path.write_text(content[: cut + 1] + block(result.params, path.stem, t3, eng))
            print("wrote", path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
