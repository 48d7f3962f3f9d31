"""Planning (layer 3): traffic, the PrfaaS throughput model, the optimizer and the questions asked of it.

- ``scenario.py`` (files), ``inputs.py`` (every input resolved, with its source), ``overrides.py``
  (``--set``, ``--vary``), ``uncertainty.py``, ``trace_input.py``, ``workload.py`` (length
  distributions, output length, prefix-cache hits);
- ``throughput.py`` ([PRFAAS] Eq. 3-6), ``problem.py`` and ``optimizer.py`` (Eq. 7-8: threshold,
  instance counts, link), ``planner.py`` (a plan with its baselines), ``verdict.py``,
  ``token_cost.py`` ($ per million tokens);
- ``whatif.py`` (re-plan and stress), ``sweep.py``, ``curves.py`` (a review's curves as data).
"""
