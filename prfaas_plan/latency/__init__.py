"""Latency of a plan, analytically (layer 4, beside ``simulation``, which checks it).

- ``deployment.py``: a plan as pools of prefill service, the link and decode slots (the contract
  the simulator shares); ``queueing.py``: M/M/c and M/G/c waits of a pool;
- ``ttft.py``: TTFT mean / P50 / P90 / P99 and TPOT at a load; ``plans.py``: latency and goodput
  beside every plan and baseline ``optimize`` returns (``plans.optimize``);
- ``slo.py``: a TTFT SLO as a lower bound on a pool's instance count; ``replan.py``: re-planning
  the local prefill/decode split over a day.
"""
