"""Planning: traffic, the PrfaaS throughput model (Eq. 3-6), the optimizer (Eq. 7-8), scenarios, plans and what-ifs."""
