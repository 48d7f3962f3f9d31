"""Plots of a review (:mod:`review`) and of sweeps, with matplotlib, imported only here and only
when a plot is drawn (the plain commands never load it). Each function returns a Figure; use
:func:`svg` for inline HTML and :func:`png` for files."""

from __future__ import annotations

import io
import math
import re


def _figure(w: float = 6.4, h: float = 3.6):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.add_subplot()


def svg(fig) -> str:
    """The figure as an inline <svg> element (no XML prolog, no external references)."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "path"}):  # glyphs as paths: no fonts to fetch; ids stay unique per figure
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate
    return text[text.index("<svg"):]


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _ok(rows: list[dict], key: str) -> list[dict]:
    return [r for r in rows if r.get("error") is None and r.get(key) is not None]


def histogram(h: dict, threshold_tokens: float | None):
    fig, ax = _figure()
    e = h["edges_tokens"]
    ax.bar(e[:-1], [m * 100 for m in h["mass_frac"]], width=[b - a for a, b in zip(e[:-1], e[1:])], align="edge", color="#8fb3d9", edgecolor="#4a78a8")
    ax.set_xscale("log")
    ax.set_xlabel("prompt length (tokens, log scale)")
    ax.set_ylabel("share of requests (%)")
    ax.axvline(h["mean_tokens"], color="#555", ls=":", label=f"mean {h['mean_tokens']:,.0f}")
    if threshold_tokens is not None:
        ax.axvline(threshold_tokens, color="#c0392b", label=f"threshold t = {threshold_tokens:,.0f}")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Prompt lengths (routing sees the uncached part)")
    return fig


def fig5a(f5: dict, plan: dict):
    fig, ax = _figure()
    t = f5["threshold_tokens"]
    for c in f5["curves"]:
        bold = c["n_pd_prefill"] == plan["n_pd_prefill"]
        ax.plot(t, c["throughput_req_per_s"], lw=2.2 if bold else 1.0, label=f"{c['n_pd_prefill']}P/{c['n_pd_decode']}D")
    if plan["threshold_tokens"] is not None:
        ax.axvline(plan["threshold_tokens"], color="#c0392b", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("routing threshold t (tokens, log scale)")
    ax.set_ylabel("Lambda_max (req/s)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncol=2, title="local split", title_fontsize=7)
    ax.set_title(f"Throughput vs threshold, {f5['n_prfaas']} PrfaaS + {f5['n_local']} local instances ([PRFAAS] Fig. 5a)")
    return fig


def fig5b(f5: dict, plan: dict):
    fig, ax = _figure()
    best = f5["best"]
    ax.plot([b["n_pd_prefill"] for b in best], [b["throughput_req_per_s"] for b in best], "o-")
    ax.plot([plan["n_pd_prefill"]], [plan["throughput_req_per_s"]], "o", color="#c0392b", ms=9, label="plan")
    ax.set_xlabel("local prefill instances N_p (the rest decode)")
    ax.set_ylabel("Lambda_max at the best t (req/s)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("Throughput vs prefill/decode split at the best t ([PRFAAS] Fig. 5b)")
    return fig


def link(rows: list[dict], plan: dict):
    fig, ax = _figure()
    rows = _ok(rows, "throughput_req_per_s")
    x = [r["link.bandwidth_gbit_per_s"] for r in rows]
    ax.plot(x, [r["throughput_req_per_s"] for r in rows], "o-", color="#2c6fbb", ms=3)
    ax.axvline(plan["link_gbit_per_s"], color="#c0392b", ls="--", lw=1, label=f"plan {plan['link_gbit_per_s']:,.0f} Gbit/s")
    ax.set_xscale("log")
    ax.set_xlabel("cross-DC link (Gbit/s, log scale)")
    ax.set_ylabel("Lambda_max (req/s)", color="#2c6fbb")
    ax.set_ylim(0, max([r["throughput_req_per_s"] for r in rows], default=1) * 1.1)
    ax2 = ax.twinx()
    ax2.plot(x, [r["cost_usd_per_hour"] for r in rows], "s-", color="#7f8c8d", ms=3)
    ax2.set_ylabel("$/hour (fleet + link)", color="#7f8c8d")
    ax2.set_ylim(0, max([r["cost_usd_per_hour"] for r in rows], default=1) * 1.1)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("The planned fleet vs link bandwidth")
    return fig


def budget(rows: list[dict], plan: dict):
    fig, ax = _figure()
    rows = _ok(rows, "usd_per_1k_requests")
    ax.plot([r["objective.budget_usd_per_hour"] for r in rows], [r["usd_per_1k_requests"] for r in rows], "o-", color="#27ae60", ms=3)
    lam = plan["throughput_req_per_s"]
    if lam > 0:
        ax.plot([plan["cost_usd_per_hour"]], [plan["cost_usd_per_hour"] / (lam * 3.6)], "o", color="#c0392b", ms=8, label="plan")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("budget ($/hour, log scale)")
    ax.set_ylabel("$ per 1,000 requests")
    ax.set_ylim(bottom=0)
    ax.set_title("Cost per 1k requests vs budget (re-planned at each budget)")
    return fig


def kv(k: dict):
    fig, ax = _figure()
    ax.plot(k["lengths_tokens"], k["model_gbit_per_s"], "o-", ms=3, label=k["model"])
    if k.get("reference_gbit_per_s"):
        ax.plot(k["lengths_tokens"], k["reference_gbit_per_s"], "s--", ms=3, label=f"{k['reference']} (dense attention)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("Phi_kv = S_kv / T_prefill (Gbit/s)")
    ax.legend(fontsize=8)
    ax.set_title(f"KV throughput on {k['gpus']} x {k['hardware']} (roofline, [PRFAAS] Eq. 1)")
    return fig


def sweep(rows: list[dict], keys: list[str], y: str = "throughput_req_per_s"):
    """A 1-D sweep as a line; a 2-D sweep as one line per value of the second key."""
    fig, ax = _figure()
    rows = _ok(rows, y)
    if len(keys) == 1:
        ax.plot([r[keys[0]] for r in rows], [r[y] for r in rows], "o-", ms=3)
    else:
        seconds = sorted({r[keys[1]] for r in rows}, key=lambda v: (isinstance(v, str), v))
        step = max(1, math.ceil(len(seconds) / 10))
        for v in seconds[::step]:
            sub = [r for r in rows if r[keys[1]] == v]
            ax.plot([r[keys[0]] for r in sub], [r[y] for r in sub], "o-", ms=2, label=f"{keys[1]} = {v:g}" if isinstance(v, float) else f"{keys[1]} = {v}")
        ax.legend(fontsize=7)
    ax.set_xlabel(keys[0])
    ax.set_ylabel(y)
    ax.set_title(f"{y} vs {' and '.join(keys)}")
    return fig


def review_figures(rv: dict) -> dict:
    """Every figure of a review, by name."""
    plan = rv["plan"]
    return {
        "lengths": histogram(rv["histogram"], plan["threshold_tokens"]),
        "fig5a": fig5a(rv["fig5"], plan),
        "fig5b": fig5b(rv["fig5"], plan),
        "link": link(rv["link_curve"], plan),
        "budget": budget(rv["budget_curve"], plan),
        "kv": kv(rv["kv"]),
    }


def risk(r: dict):
    """`prfaas-plan risk --plot`: the empirical CDF of each outcome over the samples, the point
    value (every factor 1) dashed and the demand it is judged against in red."""
    from matplotlib.figure import Figure

    samples = r["sample_rows"]
    panels = [("throughput_req_per_s", "Lambda_max (req/s)", None), ("ttft_p90_s", "P90 TTFT at the demand (s)", r["ttft_p90_slo_s"]),
              ("cost_usd_per_hour", "$/hour", r["budget_usd_per_hour"])]
    if r["ttft_p90_slo_s"] is not None:
        panels.append(("goodput_req_per_s", "goodput (req/s)", None))
    fig = Figure(figsize=(3.3 * len(panels), 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    point = r["point"]
    for ax, (key, label, limit) in zip(axes, panels):
        values = sorted(s[key] for s in samples if s[key] is not None and math.isfinite(s[key]))
        if values:
            ax.step(values, [(i + 1) / len(samples) for i in range(len(values))], where="post", color="#2c6fbb")
        if point.get(key) is not None and math.isfinite(point[key]):
            ax.axvline(point[key], color="#555", ls="--", lw=1, label="point")
        if key == "throughput_req_per_s" and r["demand_req_per_s"] is not None:
            demand = sorted(s["demand_req_per_s"] for s in samples)
            ax.step(demand, [(i + 1) / len(demand) for i in range(len(demand))], where="post", color="#c0392b", label="demand")
        elif limit is not None:
            ax.axvline(limit, color="#c0392b", label="SLO" if key == "ttft_p90_s" else "budget")
        if key == "ttft_p90_s" and values and values[-1] > 20 * max(values[0], 1e-9):
            ax.set_xscale("log")  # near saturation the tail spans decades
        ax.set_xlabel(label)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    axes[0].set_ylabel("share of samples <= x")
    fig.suptitle(f"{r['scenario']}: {r['samples']:,} samples (seed {r['seed']}); unstable samples (infinite TTFT) never reach the top", fontsize=9)
    return fig
