"""The design-review workbook of a fleet scenario (sites or candidate parts): Summary, the fleet
(the mix, links, local sites) on one sheet, Inputs, What-ifs. Every table is the report's own
(:mod:`.fleet_review`), written with its exact values (numbers stay numbers, formatted by their
unit-named keys), so the workbook, the HTML and ``optimize -f json`` agree."""

from __future__ import annotations

from .fleet_review import FLEET_ASSUMPTIONS, fleet_tables
from .review_tables import Table
from .xlsx import Sheet, define_section, new_workbook, number_format, review_summary, save
from .xlsx_review import _inputs

#: Number formats of table columns whose cells carry no JSON key, by header.
_HEADER_KEYS = {"req/s": "throughput_req_per_s", "$/h": "cost_usd_per_hour", "$/h vs plan": "cost_usd_per_hour", "Gbit/s": "gbit_per_s",
                "links Gbit/s": "gbit_per_s", "utilisation": "utilisation_frac", "offloaded": "offload_frac"}


def _value(c):
    """A cell's value: the number it shows (exact), else its text."""
    return c.value if isinstance(c.value, (int, float)) and not isinstance(c.value, bool) else c.text


def write_table(s: Sheet, t: Table, freeze: bool = False) -> tuple[int, int]:
    """A review table as a sheet block: its title, header, rows (flagged rows filled) and note."""
    s.title(t.title)
    keys = []
    for i, h in enumerate(t.header):
        key = next((r[i].key for r in t.rows if r[i].key), None)
        keys.append(key.rsplit(".", 1)[-1] if key else _HEADER_KEYS.get(h, ""))
    first, last = s.table(t.header, [[_value(c) for c in row] for row in t.rows], keys=keys,
                          flags=[any(c.flag == "warning" for c in row) for row in t.rows], freeze=freeze)
    for i, k in enumerate(keys):  # percentages shown as such
        if k.endswith("_frac"):
            for r in range(first, last + 1):
                s.ws.cell(r, i + 1).number_format = number_format(k) or "0.0%"
    if t.note:
        s.line("note", t.note)
    s.row += 1
    return first, last


def _summary(wb, rv: dict) -> Sheet:
    r, p = rv["plan"], rv["provenance"]
    s = review_summary(wb, f"PrfaaS fleet plan review: {r['scenario']}", rv)
    items = [("cost", r["cost_usd_per_hour"], "$/hour", "cost_usd_per_hour"),
             ("throughput", r["throughput_req_per_s"], "req/s", "throughput_req_per_s")]
    if r["alpha"] is not None:
        items.append(("multiple of every site's rate", r["alpha"], "x", ""))
    for role in ("prfaas", "local-prefill", "local-decode"):
        pools = [e for e in r["fleet"] if e["role"] == role]
        items += [(f"{role} GPUs", sum(e["instances"] * e["gpus_per_instance"] for e in pools), "GPUs", ""),
                  (f"{role} cost", sum(e["usd_per_hour"] for e in pools), "$/hour", "usd_per_hour")]
    items.append(("links", sum(lk["usd_per_hour"] for lk in r["links"]), "$/hour", "usd_per_hour"))
    first, _ = s.table(["key number", "value", "unit"], [[a, v, u] for a, v, u, _ in items], freeze=True)
    for i, (_, v, _, key) in enumerate(items):
        fmt = number_format(key) if key else None
        if fmt and isinstance(v, (int, float)):
            s.ws.cell(first + i, 2).number_format = fmt
    for k in ("version", "generated_utc", "mode", "command", "scenario_path"):
        s.line(k, str(p[k]))
    if p["overrides"]:
        s.line("overrides", ", ".join(p["overrides"]))
    return s


def fleet_review_workbook(rv: dict) -> bytes:
    """Summary, Fleet (mix, links, local sites, assumptions), Inputs, What-ifs; the Summary ends
    with where each section is, each section a workbook-level name."""
    wb = new_workbook()
    summary = _summary(wb, rv)
    mix, links, sites, _, whatifs = fleet_tables(rv)
    s = Sheet(wb, "Fleet")
    sections = []
    for name, t in (("Mix", mix), ("Links", links), ("Sites", sites)):
        start = s.row
        write_table(s, t, freeze=name == "Mix")
        sections.append((name, s.ws.title, start, s.row - 1))
    s.title("Assumptions")
    for a in FLEET_ASSUMPTIONS:
        s.line("", a)
    s.finish()
    sections += _inputs(wb, rv)
    w = Sheet(wb, "What-ifs")
    write_table(w, whatifs, freeze=True)
    w.finish()
    sections.append(("What-ifs", w.ws.title, 1, w.row - 1))
    summary.row += 1
    summary.title("Where each section is")
    summary.table(["section", "sheet", "rows", "name"], [[name, sheet, f"{a}-{b}", define_section(wb, name, sheet, a, b)]
                                                         for name, sheet, a, b in sections])
    summary.finish()
    return save(wb)
