"""Closed-form models: KV-cache size, parameter and FLOP counts, prefill and decode time."""
