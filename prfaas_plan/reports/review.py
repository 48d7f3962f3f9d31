"""Everything a design review of one scenario needs, computed once: the plan with its baselines
and verdict, every input with its source, the what-ifs, and the curves. The HTML/Markdown report
and the reviewer's spreadsheet are two views of this."""

from __future__ import annotations

import numpy as np

from ..catalog.model import load_model
from ..errors import PlanError
from ..latency.plans import optimize
from ..latency.slo_plan import solve
from ..planning import curves
from ..planning import planner
from ..planning.inputs import input_rows
from ..planning.scenario import Scenario
from ..planning.whatif import whatif_rows
from .kv_report import kv_rows
from .provenance import provenance

#: The dense-attention reference of the Phi_kv plot ([PRFAAS] Table 3 compares hybrids with it).
DENSE_REFERENCE = "qwen3-235b"
KV_LENGTHS = [int(x) for x in np.geomspace(1024, 131072, 15)]


def question(sc: Scenario, r: dict) -> str:
    """The scenario's question in words."""
    goal = planner.goal(r)
    if goal is None:
        goal = f"the best routing threshold and prefill/decode split for the fleet in place ({sc.prfaas.instances} PrfaaS + {sc.local.instances} local instances)"
    return (f"Serve {sc.model.name} with long prompts prefilled on {sc.prfaas.hardware.name} (PrfaaS) and everything decoded on "
            f"{sc.local.hardware.name}: {goal}? ({r['mode']} mode)")


def answer(sc: Scenario, r: dict) -> str:
    t = "no offload" if r["threshold_tokens"] is None else f"offload prompts longer than {r['threshold_tokens']:,.0f} tokens ({r['offload_frac']:.1%} of requests)"
    return (f"{t}; {r['n_prfaas']} x {sc.prfaas.gpus_per_instance} {sc.prfaas.hardware.name} PrfaaS, {r['n_pd_prefill']} prefill + "
            f"{r['n_pd_decode']} decode x {sc.local.gpus_per_instance} {sc.local.hardware.name}, {r['link_gbit_per_s']:,.0f} Gbit/s link: "
            f"{r['throughput_req_per_s']:.3f} req/s for {r['cost_usd_per_hour']:,.2f} $/hour")


def kv_curves(sc: Scenario) -> dict:
    """Phi_kv = S_kv / T_prefill vs prompt length on one PrfaaS instance, for the scenario's model
    and the dense-attention reference (roofline for both, so they are compared alike)."""
    hw, gpus = sc.prfaas.hardware, sc.prfaas.gpus_per_instance
    out = {"hardware": hw.name, "gpus": gpus, "lengths_tokens": KV_LENGTHS,
           "model": sc.model.name, "model_gbit_per_s": [r["kv_throughput_gbit_per_s"] for r in kv_rows(sc.model, hw, gpus, KV_LENGTHS, use_profile=False)]}
    try:
        dense = load_model(DENSE_REFERENCE)
        out["reference"] = dense.name
        out["reference_gbit_per_s"] = [r["kv_throughput_gbit_per_s"] for r in kv_rows(dense, hw, gpus, KV_LENGTHS, use_profile=False)]
    except PlanError:
        out["reference"], out["reference_gbit_per_s"] = None, None
    return out


def _safe(fn):
    try:
        return fn()
    except PlanError as exc:
        return {"error": str(exc)}


#: The slow steps of :func:`build_review`, for its ``progress(done, total)``: the plan, the
#: what-ifs, the histogram, Fig. 5, the link and budget curves, the KV curves.
REVIEW_STEPS = 7


def build_review(sc: Scenario, mode: str | None = None, budget_usd_per_hour: float | None = None,
                 target_req_per_s: float | None = None, command: str = "report", progress=None) -> dict:
    """Everything a design review shows (the report, the reviewer's workbook); ``progress(done,
    total)`` (optional) is called after each of its :data:`REVIEW_STEPS` slow steps."""
    done = [0]

    def step(value):
        done[0] += 1
        if progress is not None:
            progress(done[0], REVIEW_STEPS)
        return value

    result = step(optimize(sc, mode, budget_usd_per_hour, target_req_per_s))  # with latency and the SLO-aware solver, as `optimize` prints it
    m = result["mode"]
    return {
        "provenance": provenance(sc, m, command, budget_usd_per_hour=budget_usd_per_hour, target_req_per_s=target_req_per_s),
        "question": question(sc, result),
        "answer": answer(sc, result),
        "plan": result,
        "inputs": input_rows(sc),
        "whatifs": step(whatif_rows(sc, m, budget_usd_per_hour, target_req_per_s, base=result, solver=solve)),
        "histogram": step(curves.length_histogram(sc.workload.input if sc.workload.uncached_input is None else sc.workload.uncached_input)),
        "fig5": step(curves.fig5(sc, result, m)),
        "link_curve": step(curves.link_curve(sc, result, m)),
        "budget_curve": step(curves.budget_curve(sc, result, m)),
        "kv": step(kv_curves(sc)),
    }
