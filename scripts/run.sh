#!/usr/bin/env bash
# `make run`: seed the demo tenant, print where everything is, then run every process of the Procfile in
# the foreground (honcho). Ctrl-C stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" manage.py seed_demo --banner
exec .venv/bin/honcho start -f Procfile
