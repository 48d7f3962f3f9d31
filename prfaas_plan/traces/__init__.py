"""Real request traces: readers (Mooncake JSONL, Azure CSV, rate shapes) and a prefix-cache model.

Layer 1, beside ``catalog``: imports only ``prfaas_plan.errors``, ``prfaas_plan.units`` and
``prfaas_plan.catalog``. Import the modules directly (``prfaas_plan.traces.cache``,
``prfaas_plan.traces.readers``); this file imports nothing so each stays cheap to load.
"""
