"""prfaas-plan: capacity planning for Prefill-as-a-Service (cross-datacenter prefill/decode).

Layers, bottom to top (imports only point down): ``units``/``errors`` -> ``catalog`` (YAML facts)
-> ``roofline`` (KV size, prefill and decode time) -> ``planning`` (traffic, Eq. 3-8, optimizer,
scenarios) -> ``paper`` (published tables, calibration, validation) -> ``reports`` (tables,
export, rendering) -> ``cli``. Start from ``prfaas_plan.planning.planner.optimize``.
"""

__version__ = "0.2.0"
