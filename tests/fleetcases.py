"""Small fleet scenarios for the fleet tests, written to a temporary folder (models and parts from
the shipped catalog; lengths, rates and prices small enough for a brute force)."""

from __future__ import annotations

import yaml

LOGNORMAL = {"kind": "lognormal", "mu": 9.9, "sigma": 1.0, "min_tokens": 128, "max_tokens": 131072}


def write(tmp_path, name: str, body: dict) -> str:
    doc = {"name": name, "description": "fleet test", "model": "prfaas-1t-hybrid", "sources": ["tests"], **body}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def one_pair(tmp_path, name: str, candidates: bool, objective: dict, link: dict | None = None) -> str:
    """The budget case study's question (H200 PrfaaS, H20 local, link sizes), with the parts
    written as one-element candidate lists (fleet planner) or as plain names (one-pair optimizer)."""
    hw = (lambda p: [p]) if candidates else (lambda p: p)
    return write(tmp_path, name, {
        "prfaas": {"hardware": hw("h200"), "gpus_per_instance": 8},
        "local": {"hardware": hw("h20"), "gpus_per_instance": 8},
        "link": link or {"usd_per_gbit_per_s_hour": 0.225, "purchasable_gbit_per_s": [10, 25, 50, 100, 200, 400], "rtt_ms": 10},
        "workload": {"input_tokens": LOGNORMAL, "output_tokens": 1024},
        "slo": {"decode_tokens_per_s": 40},
        "objective": objective,
    })


def two_by_two(tmp_path, name: str = "two-by-two", rates=(3.0, 2.0)) -> str:
    """Two local sites (different lengths and rates) and two PrfaaS sites, one with two parts;
    every link in purchasable sizes except one bought continuously."""
    east = {"name": "east", "hardware": "h200", "gpus_per_instance": 8}
    west = {"name": "west", "hardware": ["h200", "b200"], "gpus_per_instance": 8, "usd_per_gpu_hour": {"h200": 3.0, "b200": 5.5},
            "price_source": "test prices"}

    def local(n, mu, rate, parts):
        return {"name": n, "prefill_hardware": parts, "decode_hardware": "h20", "gpus_per_instance": 8,
                "workload": {"input_tokens": {**LOGNORMAL, "mu": mu}, "output_tokens": 1024, "arrival_req_per_s": rate},
                "slo": {"decode_tokens_per_s": 40}}

    sizes = {"usd_per_gbit_per_s_hour": 0.3, "purchasable_gbit_per_s": [10, 25, 50, 100]}
    return write(tmp_path, name, {
        "sites": {"prfaas": [east, west], "local": [local("a", 9.9, rates[0], ["h20", "h200"]), local("b", 9.3, rates[1], "h20")]},
        "links": [{"from": "east", "to": "a", "rtt_ms": 10, **sizes}, {"from": "west", "to": "a", "rtt_ms": 40, **sizes},
                  {"from": "east", "to": "b", "rtt_ms": 10, **sizes},
                  {"from": "west", "to": "b", "rtt_ms": 40, "usd_per_gbit_per_s_hour": 0.5}],
        "objective": {"kind": "target"},
    })


def slo_one_site(tmp_path, slo: dict, name: str = "slo-one-site", rate: float = 4.0, objective: str = "slo") -> str:
    """One local site (H20 prefill and decode) at ``rate`` req/s with TTFT levels ``slo``, and two
    PrfaaS sites to choose from (east: H200 at 10 ms; west: B200, cheaper per GPU-hour, at 40 ms),
    one part per role, links in purchasable sizes: small enough for the SLO brute force."""
    east = {"name": "east", "hardware": "h200", "gpus_per_instance": 8}
    west = {"name": "west", "hardware": "b200", "gpus_per_instance": 8, "usd_per_gpu_hour": {"b200": 4.0}, "price_source": "test prices"}
    local = {"name": "a", "hardware": "h20", "gpus_per_instance": 8,
             "workload": {"input_tokens": LOGNORMAL, "output_tokens": 1024, "arrival_req_per_s": rate},
             "slo": {"decode_tokens_per_s": 40, **slo}}
    sizes = {"usd_per_gbit_per_s_hour": 0.3, "purchasable_gbit_per_s": [10, 25, 50, 100]}
    return write(tmp_path, name, {
        "sites": {"prfaas": [east, west], "local": [local]},
        "links": [{"from": "east", "to": "a", "rtt_ms": 10, **sizes}, {"from": "west", "to": "a", "rtt_ms": 40, **sizes}],
        "objective": {"kind": objective},
    })


def slo_two_sites(tmp_path, slos: tuple[dict, dict], name: str = "slo-two-sites", rates=(3.0, 2.0)) -> str:
    """Two local sites (H20; different lengths, rates and TTFT levels ``slos``) and two PrfaaS
    sites each linked to both (east: H200, 10 ms; west: B200 at a lower price, 40 ms), one part
    per role: a PrfaaS site may serve both local sites (one shared pool)."""
    east = {"name": "east", "hardware": "h200", "gpus_per_instance": 8}
    west = {"name": "west", "hardware": "b200", "gpus_per_instance": 8, "usd_per_gpu_hour": {"b200": 4.0}, "price_source": "test prices"}

    def local(n, mu, rate, slo):
        return {"name": n, "hardware": "h20", "gpus_per_instance": 8,
                "workload": {"input_tokens": {**LOGNORMAL, "mu": mu}, "output_tokens": 1024, "arrival_req_per_s": rate},
                "slo": {"decode_tokens_per_s": 40, **slo}}

    sizes = {"usd_per_gbit_per_s_hour": 0.3, "purchasable_gbit_per_s": [10, 25, 50, 100]}
    return write(tmp_path, name, {
        "sites": {"prfaas": [east, west], "local": [local("a", 9.9, rates[0], slos[0]), local("b", 9.3, rates[1], slos[1])]},
        "links": [{"from": p, "to": s, "rtt_ms": rtt, **sizes} for p, rtt in (("east", 10), ("west", 40)) for s in ("a", "b")],
        "objective": {"kind": "slo"},
    })
