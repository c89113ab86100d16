"""The provider simulator: a small, real HTTP server that speaks OpenAI's Chat Completions and Anthropic's
Messages wire formats, so that `make run`, the tests and the benchmarks work without provider keys.

It is a fake: answers are words derived from the prompt, and latency, throughput and failures follow
per-model settings changed at run time through `POST /_control`. Run it with
`python manage.py simulate_provider --port 8100`. Nothing here needs Django settings or a database.

Modules: `app` (ASGI routes and fault injection), `profiles` (per-model settings, control state),
`parsing` (request validation), `answers` (generated text and tool calls), `openai_wire` and
`anthropic_wire` (response builders), `asgi` and `sse` (plumbing), `server` (uvicorn).
"""
