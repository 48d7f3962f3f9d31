"""Discrete-event simulation of a planned PrfaaS deployment (issue #7): arrivals (Poisson, bursty,
a rate shape, traces), FCFS prefill pools with batched prefill, the cross-datacenter link as a
shared pipe, decode slots, per-cluster prefix caches, routing policies and re-planning.

Layer 4, beside ``latency``. Import the modules directly: ``simulation.run`` (simulate a
deployment or a scenario), ``simulation.engine`` (the event loop), ``simulation.arrivals``,
``simulation.link``, ``simulation.policies``, ``simulation.metrics``.
"""
