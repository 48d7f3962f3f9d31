"""Plots of a review (:mod:`review`) and of sweeps, with matplotlib, imported only here and only
when a plot is drawn (the plain commands never load it). Each function returns a Figure; use
:func:`svg` for inline HTML and :func:`png` for files."""

from __future__ import annotations

import io
import math
import re


#: A dash per palette colour, so lines stay apart in greyscale and where two colours are close
#: (blue and sky blue are 1st and 5th).
LINE_STYLES = ["-", "--", "-", "--", "-.", "-", ":"]

#: Characters per title line: a longer title wraps instead of running off the figure.
TITLE_CHARS = 62


def _figure(w: float = 6.4, h: float = 3.6):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from .labels import PALETTE

    fig = Figure(figsize=(w, h), layout="constrained")
    ax = fig.add_subplot()
    ax.set_prop_cycle(color=list(PALETTE), linestyle=LINE_STYLES)  # colour-blind-safe; neighbouring blues differ in dash too
    return fig, ax


def _title(ax, text: str) -> None:
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(text, TITLE_CHARS, break_on_hyphens=False)), fontsize=10)


def _legend_outside(fig, ax, title: str | None = None, axes=()) -> None:
    """The legend right of the plot, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    for other in axes:
        h, lab = other.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if not handles:
        return
    if len(handles) <= 3 and title is None:  # a few entries: one row below the axis label, the plot keeps its width
        fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=7, frameon=False)
    else:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7, title=title, title_fontsize=7, frameon=False)


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """Ticks within [lo, hi]: 1-2-3-5 per decade over a short span, 1-2-5 up to two decades, else
    powers of ten."""
    import math

    steps = (1, 2, 3, 5) if hi / lo <= 20 else (1, 2, 5) if hi / lo <= 150 else (1,)
    out = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in steps]
    ticks = [v for v in out if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
    return ticks if len(ticks) >= 2 else [lo, hi]


def _plain_log(ax, which: str, lo: float, hi: float, fmt=lambda v: f"{v:,.0f}", base: int = 10) -> None:
    """A log axis whose ticks read as plain numbers (``1,000``, ``$2,000``), not ``10^3``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    if base == 2:
        import math

        ticks = [2.0**e for e in range(math.ceil(math.log2(lo)), math.floor(math.log2(hi)) + 1)]
    else:
        ticks = _nice_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _k_tokens(v: float) -> str:
    """Token counts in K = 1,024 tokens, as the paper's tables and the command line write them."""
    return f"{v / 1024:g}K" if v >= 1024 else f"{v:,.0f}"


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
    from .labels import GREY, PALETTE, PLAN_COLOUR

    fig, ax = _figure()
    e = h["edges_tokens"]
    ax.bar(e[:-1], [m * 100 for m in h["mass_frac"]], width=[b - a for a, b in zip(e[:-1], e[1:])], align="edge", color=PALETTE[4], edgecolor=PALETTE[0])
    _plain_log(ax, "x", e[0], e[-1])
    ax.set_xlabel("prompt length (tokens, log scale)")
    ax.set_ylabel("share of requests (%)")
    ax.axvline(h["mean_tokens"], color=GREY, ls=":", label=f"mean {h['mean_tokens']:,.0f} tokens")
    if threshold_tokens is not None:
        ax.axvline(threshold_tokens, color=PLAN_COLOUR, label=f"threshold t = {threshold_tokens:,.0f} tokens")
    _legend_outside(fig, ax)
    _title(ax, "Prompt lengths (routing sees the uncached part)")
    return fig


#: Fig. 5a draws at most this many splits (one palette colour each), those nearest the plan's.
FIG5A_LINES = 7


def fig5a(f5: dict, plan: dict):
    from .labels import PLAN_COLOUR

    fig, ax = _figure(7.2, 3.8)
    t = f5["threshold_tokens"]
    curves = sorted(sorted(f5["curves"], key=lambda c: abs(c["n_pd_prefill"] - plan["n_pd_prefill"]))[:FIG5A_LINES], key=lambda c: c["n_pd_prefill"])
    for c in curves:
        bold = c["n_pd_prefill"] == plan["n_pd_prefill"]
        ax.plot(t, c["throughput_req_per_s"], lw=2.6 if bold else 1.2, label=f"{c['n_pd_prefill']}P / {c['n_pd_decode']}D" + (" (plan)" if bold else ""))
    if plan["threshold_tokens"] is not None:
        ax.axvline(plan["threshold_tokens"], color=PLAN_COLOUR, ls="--", lw=1, label=f"plan t = {plan['threshold_tokens']:,.0f}")
    _plain_log(ax, "x", min(t), max(t))
    ax.set_xlabel("routing threshold t (tokens, log scale)")
    ax.set_ylabel("throughput Lambda_max (req/s)")
    ax.set_ylim(bottom=0)
    shown = "" if len(curves) == len(f5["curves"]) else f"; the {len(curves)} splits nearest the plan's"
    _legend_outside(fig, ax, title="local prefill / decode")
    _title(ax, f"Throughput vs threshold, {f5['n_prfaas']} PrfaaS + {f5['n_local']} local instances{shown} ([PRFAAS] Fig. 5a)")
    return fig


def fig5b(f5: dict, plan: dict):
    from .labels import PALETTE, PLAN_COLOUR

    fig, ax = _figure()
    best = f5["best"]
    ax.plot([b["n_pd_prefill"] for b in best], [b["throughput_req_per_s"] for b in best], "o-", color=PALETTE[0], ms=3, label="best t per split")
    ax.plot([plan["n_pd_prefill"]], [plan["throughput_req_per_s"]], "o", color=PLAN_COLOUR, ms=9, label="plan")
    ax.set_xlabel("local prefill instances N_p (the rest decode)")
    ax.set_ylabel("Lambda_max at the best t (req/s)")
    ax.set_ylim(bottom=0)
    _legend_outside(fig, ax)
    _title(ax, "Throughput vs prefill/decode split at the best t ([PRFAAS] Fig. 5b)")
    return fig


def _top(values: list[float]) -> float:
    """An upper y limit leaving 10% above the data (so a line at the top is not clipped)."""
    return max([v for v in values if v is not None], default=1.0) * 1.1 or 1.0


def link(rows: list[dict], plan: dict):
    from .labels import GREY, PALETTE, PLAN_COLOUR

    fig, ax = _figure()
    rows = _ok(rows, "throughput_req_per_s")
    x = [r["link.bandwidth_gbit_per_s"] for r in rows]
    lam, cost = [r["throughput_req_per_s"] for r in rows], [r["cost_usd_per_hour"] for r in rows]
    ax.plot(x, lam, "o-", color=PALETTE[0], ms=3, label="throughput (left)")
    ax.axvline(plan["link_gbit_per_s"], color=PLAN_COLOUR, ls="--", lw=1, label=f"plan {plan['link_gbit_per_s']:,.0f} Gbit/s")
    if x:
        _plain_log(ax, "x", min(x), max(x))
    ax.set_xlabel("cross-DC link (Gbit/s, log scale)")
    ax.set_ylabel("throughput Lambda_max (req/s)", color=PALETTE[0])
    ax.set_ylim(0, _top(lam))
    ax2 = ax.twinx()
    ax2.plot(x, cost, "s--", color=GREY, ms=3, label="cost (right)")
    ax2.set_ylabel("cost, fleet + link ($/hour)", color=GREY)
    ax2.set_ylim(0, _top(cost))
    _legend_outside(fig, ax, axes=[ax2])
    _title(ax, "The planned fleet vs link bandwidth")
    return fig


def budget(rows: list[dict], plan: dict):
    from .labels import PALETTE, PLAN_COLOUR

    fig, ax = _figure()
    rows = _ok(rows, "usd_per_1k_requests")
    x, y = [r["objective.budget_usd_per_hour"] for r in rows], [r["usd_per_1k_requests"] for r in rows]
    ax.plot(x, y, "o-", color=PALETTE[2], ms=3, label="re-planned")
    lam = plan["throughput_req_per_s"]
    if lam > 0:
        y.append(plan["cost_usd_per_hour"] / (lam * 3.6))
        ax.plot([plan["cost_usd_per_hour"]], [y[-1]], "o", color=PLAN_COLOUR, ms=8, label="plan")
    if x:
        _plain_log(ax, "x", min(x), max(x), fmt=lambda v: f"${v:,.0f}")
    ax.set_xlabel("budget ($/hour, log scale)")
    ax.set_ylabel("$ per 1,000 requests")
    ax.set_ylim(0, _top(y))
    _legend_outside(fig, ax)
    _title(ax, "Cost per 1,000 requests vs budget (re-planned at each budget)")
    return fig


def kv(k: dict):
    fig, ax = _figure()
    ax.plot(k["lengths_tokens"], k["model_gbit_per_s"], "o-", ms=3, label=k["model"])
    ys = list(k["model_gbit_per_s"])
    if k.get("reference_gbit_per_s"):
        ax.plot(k["lengths_tokens"], k["reference_gbit_per_s"], "s--", ms=3, label=f"{k['reference']} (dense attention)")
        ys += k["reference_gbit_per_s"]
    _plain_log(ax, "x", min(k["lengths_tokens"]), max(k["lengths_tokens"]), fmt=_k_tokens, base=2)
    lo, hi = min(ys), max(ys)  # log: the models differ ~10x, so a linear axis would flatten the hybrid's curve
    _plain_log(ax, "y", lo * 0.8, hi * 1.25, fmt=lambda v: f"{v:,.3g}")
    ax.set_ylim(lo * 0.8, hi * 1.25)
    ax.set_xlabel("prompt length (tokens, K = 1,024, log scale)")
    ax.set_ylabel("Phi_kv (Gbit/s, log scale)")
    _legend_outside(fig, ax)
    _title(ax, f"KV throughput Phi_kv = S_kv / T_prefill on {k['gpus']} x {k['hardware']} (roofline, [PRFAAS] Eq. 1)")
    return fig


def sweep(rows: list[dict], keys: list[str], y: str = "throughput_req_per_s"):
    """A 1-D sweep as a line; a 2-D sweep as one line per value of the second key (at most
    seven, one palette colour each). Numeric x axes run over the data; y starts at 0."""
    from .labels import PALETTE, axis_label, value_label

    fig, ax = _figure(7.2, 3.8)
    rows = _ok(rows, y)
    numeric = all(isinstance(r[keys[0]], (int, float)) and not isinstance(r[keys[0]], bool) for r in rows)
    style = "o-" if numeric else "o"  # parts or other names: points, no line implying values between them
    if len(keys) == 1:
        ax.plot([r[keys[0]] for r in rows], [r[y] for r in rows], style, ms=3 if numeric else 7)
    else:
        seconds = sorted({r[keys[1]] for r in rows}, key=lambda v: (isinstance(v, str), v))
        step = max(1, math.ceil(len(seconds) / len(PALETTE)))
        for v in seconds[::step]:
            sub = [r for r in rows if r[keys[1]] == v]
            ax.plot([r[keys[0]] for r in sub], [r[y] for r in sub], style, ms=3 if numeric else 7, label=value_label(keys[1], v))
        _legend_outside(fig, ax)
    xs = [r[keys[0]] for r in rows]
    if xs and numeric and min(xs) < max(xs):
        ax.set_xlim(min(xs), max(xs))
    ax.set_ylim(0, _top([r[y] for r in rows]))
    ax.set_xlabel(axis_label(keys[0]))
    ax.set_ylabel(axis_label(y))
    _title(ax, f"{axis_label(y).split(' (')[0]} vs {' and '.join(axis_label(k).split(' (')[0] for k in keys)} (re-planned at each point)")
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
