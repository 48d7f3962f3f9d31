"""Words and units for keys on charts and in sheet headers: ``link.bandwidth_gbit_per_s`` reads
"link.bandwidth (Gbit/s)", ``throughput_req_per_s`` "throughput Lambda_max (req/s)". The unit
comes from the key's name (units in names, house style); the key's prefix is kept, so a reader
can type it back into ``--set`` / ``--vary``. Also the colour-blind-safe palette every chart
uses (plots and native workbook charts alike)."""

from __future__ import annotations

#: Okabe & Ito (2008), "Color Universal Design": colours told apart under the common colour-vision
#: deficiencies. Series take these seven in turn (yellow, the faintest on white, last); the eighth,
#: vermillion, is kept for the plan (its marker, its threshold line), so no series shares it.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
PLAN_COLOUR = "#D55E00"
GREY = "#666666"

#: Unit suffixes of key names -> the unit as a reader writes it (longest first).
UNITS = (("_usd_per_gbit_per_s_hour", "$ per Gbit/s-hour"), ("_usd_per_gpu_hour", "$/GPU-hour"), ("_usd_per_hour", "$/hour"),
         ("_gbit_per_s", "Gbit/s"), ("_req_per_s", "req/s"), ("_tokens_per_s", "tokens/s"), ("_tokens", "tokens"), ("_frac", "fraction"),
         ("_ms", "ms"), ("_s", "s"), ("_gb", "GB"))

#: Result keys with a name of their own.
NAMED = {"throughput_req_per_s": "throughput Lambda_max (req/s)", "cost_usd_per_hour": "cost ($/hour)",
         "usd_per_1k_requests": "$ per 1,000 requests", "usd_per_million_tokens.total": "$ per million tokens (input + output)",
         "threshold_tokens": "routing threshold t (tokens)", "link_gbit_per_s": "link (Gbit/s)", "utilisation_frac": "utilisation (fraction)"}


def split_unit(key: str) -> tuple[str, str | None]:
    """(the key without its unit suffix, the unit) of a dotted key; a key that is only a unit
    (``local.usd_per_gpu_hour``) keeps its prefix and reads as a price or an amount."""
    prefix, _, leaf = key.rpartition(".")
    for suffix, unit in UNITS:
        if leaf.endswith(suffix) or leaf == suffix[1:]:
            stem = leaf[: -len(suffix)] if leaf.endswith(suffix) else ""
            if not stem:
                stem = "price" if unit.startswith("$") else "value"
            return (f"{prefix}.{stem}" if prefix else stem), unit
    return key, None


def axis_label(key: str) -> str:
    """A chart axis or header for ``key``: its words and its unit in brackets."""
    if key in NAMED:
        return NAMED[key]
    words, unit = split_unit(key)
    return f"{words} ({unit})" if unit else key


def value_label(key: str, value) -> str:
    """``key = value`` as a legend entry: "local.price 2.25 $/GPU-hour"."""
    words, unit = split_unit(key)
    shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
    return f"{words} {shown}" + (f" {unit}" if unit else "")
