"""Tenant guardrails: requests and tokens per minute, requests in flight, monthly spend and token budgets.

One Lua script in Redis admits a request against every limit of its tenant and its API key at once (one
round trip on the hot path); a second settles it in the same round trip as the usage event.
docs/LIMITS.md explains the model.
"""
