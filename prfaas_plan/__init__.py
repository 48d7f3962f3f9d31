"""prfaas-plan: capacity planning for Prefill-as-a-Service (cross-datacenter prefill/decode).

Layers, bottom to top (imports only point down; tests/test_layering.py checks it): ``units`` /
``errors`` -> ``catalog`` (YAML facts), ``traces`` (request traces), ``execution`` (where
independent tasks run) -> ``roofline`` (the engine model: KV size, prefill and decode time of an
instance) -> ``planning`` (traffic, Eq. 3-8, the optimizer, scenarios, what-ifs, sweeps) ->
``latency`` (analytic TTFT), ``simulation`` (discrete-event check) -> ``paper`` (published tables,
calibration, validation), ``risk`` (plans under uncertainty) -> ``reports`` (tables, workbooks,
HTML, plots) -> ``cli``. Start from ``prfaas_plan.latency.plans.optimize`` (a plan with
its baselines and latency, what `prfaas-plan optimize` prints).
"""

__version__ = "0.2.0"
