"""Cost per million tokens, the unit serving is compared in, for a plan's fleet.

The fleet is reserved capacity: it costs its $/hour whether busy or not, so the price of a token
is the fleet's $/hour over the tokens it serves in an hour at the rate served, which is the
scenario's arrival rate when it sets one (a plan that cannot carry it serves its Lambda_max),
else Lambda_max. Prefill and decode are priced apart, as providers list input and output
tokens:

- input  = (PrfaaS instances + local prefill instances + the link) $/hour
           / (served req/s x E[L_in] x 3600) x 1e6;
- output = (local decode instances) $/hour / (served req/s x E[L_out] x 3600) x 1e6;
- total  = the whole fleet's $/hour / (served req/s x (E[L_in] + E[L_out]) x 3600) x 1e6.

E[L_in] is the whole prompt (cached prefix included: the tokens a user sends and is billed for);
E[L_out] the mean output length. Nothing here is a per-token market price: it is what the plan's
reserved fleet costs per token at that load.
"""

from __future__ import annotations

from .. import units

TOKENS_PER_MILLION = 1e6


def usd_per_million_tokens(prefill_usd_per_hour: float, decode_usd_per_hour: float, served_req_per_s: float,
                           mean_input_tokens: float, mean_output_tokens: float) -> dict:
    """``{"input", "output", "total"}`` in $ per million tokens (formulas in the module
    docstring): the prefill side's $/hour per million input tokens served, the decode side's per
    million output tokens, everything per million input + output tokens. ``None`` where no such
    token is served (a rate or a mean length of 0)."""
    per_hour = lambda tokens_per_req: served_req_per_s * tokens_per_req * units.SECONDS_PER_HOUR  # noqa: E731
    price = lambda usd_per_hour, tokens_per_req: (  # noqa: E731
        usd_per_hour / per_hour(tokens_per_req) * TOKENS_PER_MILLION if per_hour(tokens_per_req) > 0 else None)
    return {
        "input": price(prefill_usd_per_hour, mean_input_tokens),
        "output": price(decode_usd_per_hour, mean_output_tokens),
        "total": price(prefill_usd_per_hour + decode_usd_per_hour, mean_input_tokens + mean_output_tokens),
    }


def served_req_per_s(lambda_max_req_per_s: float, arrival_req_per_s: float | None) -> float:
    """The rate a plan serves: the arrival rate when given, at most Lambda_max; else Lambda_max."""
    return lambda_max_req_per_s if arrival_req_per_s is None else min(arrival_req_per_s, lambda_max_req_per_s)
