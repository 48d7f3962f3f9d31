"""`prfaas-plan report`: one self-contained HTML file (inline CSS and SVG, nothing fetched) or
Markdown plus PNGs, from a review (:mod:`review`). Plan numbers carry ``data-key`` /
``data-value`` attributes: the exact values of ``optimize -f json``."""

from __future__ import annotations

import html
import json
from pathlib import Path

from .export import to_json, write_atomic
from .review_tables import ASSUMPTIONS, Table, review_tables

FIGURES = [
    ("lengths", "Workload: prompt-length histogram"),
    ("fig5a", "Throughput vs routing threshold for each prefill/decode split"),
    ("fig5b", "Throughput vs split at the best threshold"),
    ("link", "Throughput and cost vs link bandwidth"),
    ("budget", "Cost per 1k requests vs budget"),
    ("kv", "Phi_kv vs prompt length against a dense-attention reference"),
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
.prov{color:#666;font-size:.85em} .verdict{padding:.6em 1em;border-radius:4px;font-weight:600}
.ok{background:#e8f5e9;border:1px solid #81c784} .bad{background:#ffebee;border:1px solid #e57373}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.estimate{background:#fff8e1} td.warning{background:#ffebee;font-weight:600} .note{color:#555;font-size:.85em}
figure{margin:1em 0} figcaption{font-weight:600;margin-bottom:.3em} svg{max-width:100%;height:auto}
"""


def _is_num(c) -> bool:
    return isinstance(c.value, (int, float)) and not isinstance(c.value, bool)


def _html_table(t: Table) -> str:
    out = [f"<h2>{html.escape(t.title)}</h2>", "<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.header) + "</tr>"]
    for row in t.rows:
        cells = []
        for c in row:
            cls = " ".join(x for x in ("num" if _is_num(c) else "", c.flag or "") if x)
            attrs = f' class="{cls}"' if cls else ""
            if c.key is not None:
                attrs += f' data-key="{html.escape(c.key)}" data-value="{html.escape(json.dumps(c.value))}"'
            cells.append(f"<td{attrs}>{html.escape(c.text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if t.note:
        out.append(f'<p class="note">{html.escape(t.note)}</p>')
    return "\n".join(out)


def _prov_line(rv: dict) -> str:
    p = rv["provenance"]
    extra = f"; overrides {', '.join(p['overrides'])}" if p["overrides"] else ""
    return (f"prfaas-plan {p['version']}, generated {p['generated_utc']}, mode {p['mode']}, scenario {p['scenario']} "
            f"({p['scenario_path']}){extra}")


def _head(rv: dict) -> list[str]:
    """The page's head, title, provenance, verdict, question and answer."""
    r, v = rv["plan"], rv["plan"]["verdict"]
    return [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>PrfaaS plan: {html.escape(r['scenario'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>PrfaaS plan: {html.escape(r['scenario'])}</h1>",
        f'<p class="prov" id="provenance">{html.escape(_prov_line(rv))}</p>',
        f'<p class="verdict {"ok" if v["ok"] else "bad"}" id="verdict">{html.escape(v["text"])}</p>',
        "<h2>Question</h2>", f"<p>{html.escape(rv['question'])}</p>",
        "<h2>Answer</h2>", f'<p id="answer">{html.escape(rv["answer"])}</p>',
    ]


def _tail(r: dict) -> list[str]:
    embedded = to_json(r).replace("</", "<\\/")  # the plan itself, for tools reading the report
    return [f'<script type="application/json" id="plan-json">{embedded}</script>', "</body></html>"]


def render_fleet_html(rv: dict) -> str:
    """The report of a fleet scenario (:mod:`.fleet_review`): the mix, links, local sites,
    inputs, what-ifs and assumptions; no plots (each is a one-pair question)."""
    from .fleet_review import FLEET_ASSUMPTIONS, fleet_tables

    parts = _head(rv) + [_html_table(t) for t in fleet_tables(rv)]
    parts.append("<h2>Assumptions</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in FLEET_ASSUMPTIONS) + "</ul>")
    return "\n".join(parts + _tail(rv["plan"])) + "\n"


def render_html(rv: dict, figures: dict[str, str]) -> str:
    """The report; ``figures``: name -> inline <svg> text."""
    r = rv["plan"]
    parts = _head(rv)
    tables = review_tables(rv)
    parts.append(_html_table(tables[0]))
    parts.append(_html_table(tables[1]))
    parts.append(_html_table(tables[2]))
    parts.append("<h2>Plots</h2>")
    for name, caption in FIGURES:
        parts.append(f'<figure id="fig-{name}"><figcaption>{html.escape(caption)}</figcaption>{figures[name]}</figure>')
    parts.append(_html_table(tables[3]))
    o = r.get("other_mode")
    parts.append("<h2>Assumptions</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in ASSUMPTIONS) + "</ul>")
    if o:
        parts.append(f'<p class="note">In {o["mode"]} mode the same question gives {o["throughput_req_per_s"]:.3f} req/s with '
                     f'{o["n_prfaas"]}/{o["n_pd_prefill"]}/{o["n_pd_decode"]} instances.</p>')
    return "\n".join(parts + _tail(r)) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    out = [f"## {t.title}", "", "| " + " | ".join(map(_md_cell, t.header)) + " |", "|" + "---|" * len(t.header)]
    for row in t.rows:
        out.append("| " + " | ".join(_md_cell(("**" + c.text + "**") if c.flag == "warning" else c.text) for c in row) + " |")
    if t.note:
        out += ["", f"_{t.note}_"]
    return "\n".join(out) + "\n"


def render_fleet_markdown(rv: dict) -> str:
    """The fleet report as Markdown (the tables of :func:`render_fleet_html`)."""
    from .fleet_review import FLEET_ASSUMPTIONS, fleet_tables

    r = rv["plan"]
    parts = [f"# PrfaaS plan: {r['scenario']}", "", f"_{_prov_line(rv)}_", "", f"**{r['verdict']['text']}**", "",
             "## Question", "", rv["question"], "", "## Answer", "", rv["answer"], ""]
    parts += [_md_table(t) for t in fleet_tables(rv)] + ["## Assumptions", ""] + [f"- {a}" for a in FLEET_ASSUMPTIONS]
    return "\n".join(parts) + "\n"


def render_markdown(rv: dict, image_dir: str) -> str:
    r = rv["plan"]
    tables = review_tables(rv)
    parts = [f"# PrfaaS plan: {r['scenario']}", "", f"_{_prov_line(rv)}_", "",
             f"**{r['verdict']['text']}**", "", "## Question", "", rv["question"], "", "## Answer", "", rv["answer"], ""]
    parts += [_md_table(tables[0]), _md_table(tables[1]), _md_table(tables[2]), "## Plots", ""]
    parts += [f"![{caption}]({image_dir}/{name}.png)\n" for name, caption in FIGURES]
    parts += [_md_table(tables[3]), "## Assumptions", ""] + [f"- {a}" for a in ASSUMPTIONS]
    return "\n".join(parts) + "\n"


def write_report(rv: dict, output: Path) -> list[Path]:
    """Write the report as ``output`` (.html: one file; .md: the file plus ``<stem>_files/*.png``).
    Everything is rendered first; files are written atomically. Returns the paths written."""
    suffix = output.suffix.lower()
    if rv.get("kind") == "fleet":
        write_atomic(output, render_fleet_html(rv) if suffix in (".html", ".htm") else render_fleet_markdown(rv))
        return [output]
    from . import plots

    figs = plots.review_figures(rv)
    if suffix in (".html", ".htm"):
        write_atomic(output, render_html(rv, {k: plots.svg(f) for k, f in figs.items()}))
        return [output]
    folder = output.parent / f"{output.stem}_files"
    images = {name: plots.png(fig) for name, fig in figs.items()}
    text = render_markdown(rv, folder.name)
    folder.mkdir(exist_ok=True)
    written = []
    for name, data in images.items():
        write_atomic(folder / f"{name}.png", data)
        written.append(folder / f"{name}.png")
    write_atomic(output, text)
    return [output, *written]
