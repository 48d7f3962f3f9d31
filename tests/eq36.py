"""An independent recomputation of a plan's Lambda_max ([PRFAAS] Eq. 3-6) on a trace workload.

It shares with the planner only the physics of one request: T_prefill(l) of each cluster
(``PrefillModel.time_s``), S_kv(l) (``kv_cache_bytes``) and one decode instance's req/s. No
length distribution, no cells, no cumulative sums: the trace's rows (length v, count w) are
summed directly, each request's uncached length computed as the user would, ``v * (1 - hit)``,
and routed by the documented rule (uncached length L > t goes to PrfaaS). Issue 14: the planner
used to evaluate the scaled trace's CDF as ``base.cdf(x / f)``, where ``(v * f) / f`` rounds one
ulp below v, and so dropped the longest prompts or routed an atom on the threshold the wrong way.
"""

from __future__ import annotations

import math

import numpy as np

from prfaas_plan import units
from prfaas_plan.roofline.kv import kv_cache_bytes


def lambda_by_rule(tm, rows, hit_frac: float, plan: dict, max_utilisation: float) -> dict:
    """Lambda_max and p of ``plan`` (its threshold, counts and link) on the trace ``rows``
    [(input_tokens, count), ...] with ``prefix_cache_hit_frac`` ``hit_frac``, from Eq. 3-6:

        Theta_prfaas = min(N_prfaas / T_r, B_out / S_r),  Theta_pd_p = N_p / T_p,
        Theta_pd_d = N_d * decode req/s,  Lambda = min(Theta_prfaas / p, Theta_pd_p / (1 - p), Theta_pd_d)

    with T_r, S_r, T_p per ``tm.mode``: ``distribution`` the count-weighted means of T(L), S_kv(L)
    over each side of t; ``paper`` T and S_kv at each side's mean length. B_out is the bought
    link times ``max_utilisation`` (what the planner may load it to)."""
    v = np.array([r[0] for r in rows], float)
    w = np.array([r[1] for r in rows], float)
    keep = w > 0
    u, w = v[keep] * (1.0 - hit_frac), w[keep]
    t = math.inf if plan["threshold_tokens"] is None else plan["threshold_tokens"]
    remote = u > t
    p = float(w[remote].sum() / w.sum())
    n_r, n_p, n_d = plan["n_prfaas"], plan["n_pd_prefill"], plan["n_pd_decode"]
    link_bytes_per_s = units.gbit_per_s_to_bytes_per_s(plan["link_gbit_per_s"]) * max_utilisation
    caps = [n_d * tm.decode_req_per_s_per_instance]
    for side, pm, share in ((remote, tm.remote, p), (~remote, tm.local, 1.0 - p)):
        if not side.any():
            continue
        ws, us = w[side], u[side]
        if tm.mode == "paper":
            mean_l = float(np.sum(ws * us) / ws.sum())
            t_s, s_bytes = float(pm.time_s(np.array([mean_l]))[0]), float(kv_cache_bytes(tm.model, mean_l))
        else:
            t_s = float(np.sum(ws * pm.time_s(us)) / ws.sum())
            s_bytes = float(np.sum(ws * kv_cache_bytes(tm.model, us)) / ws.sum())
        if side is remote:
            theta = min(n_r / t_s, link_bytes_per_s / s_bytes)  # Eq. 3
        else:
            theta = n_p / t_s  # Eq. 4
        caps.append(theta / share)  # Eq. 6
    return {"throughput_req_per_s": min(caps), "offload_frac": p,
            "mean_offloaded_tokens": float(np.sum(w[remote] * u[remote]) / w[remote].sum()) if remote.any() else None}
