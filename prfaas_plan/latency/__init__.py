"""Latency: queueing in the prefill pools and the time to first token (issue #7, in progress)."""
