#!/usr/bin/env bash
# `make run`: seed the demo tenant, print where everything is, then run every process of the Procfile in
# the foreground (honcho). Ctrl-C stops them. The Procfile always runs localstripe, the offline Stripe fake
# (`stripe`, on 127.0.0.1:$GATEHOUSE_LOCALSTRIPE_PORT, default 8420, webhooks sent to our /stripe/webhook);
# with real Stripe (STRIPE_API_KEY set, STRIPE_API_BASE unset) it runs unused.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" manage.py seed_demo --banner
exec .venv/bin/honcho start -f Procfile
