#!/usr/bin/env bash
# Idempotent set-up shared by `make run` and `make test`: virtualenv and Python packages (pinned by
# constraints.txt), then Redis and the embedded PostgreSQL unless REDIS_URL / DATABASE_URL point elsewhere,
# localstripe's own virtualenv, then migrations of the public and every tenant schema.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=$ROOT/.venv
PY=$VENV/bin/python

need_apt() {  # need_apt PACKAGE...: install Debian packages when we can, explain when we cannot
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing $* with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "setup: please install: sudo apt-get install $*" >&2
    exit 1
  fi
}

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python 3.11 or newer is needed (found $(python3 --version))" >&2; exit 1; }
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; need_apt python3-venv; python3 -m venv "$VENV"; }
fi
STAMP=$VENV/.gatehouse-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
  echo "setup: installing Python packages into .venv (pinned by constraints.txt)"
  mkdir -p .data
  if ! { "$PY" -m pip install -q --upgrade pip && "$PY" -m pip install -q -c constraints.txt -e ".[dev,embedded]"; } \
      >.data/pip-install.log 2>&1; then
    cat .data/pip-install.log >&2
    echo "setup: pip install failed (log above, also in .data/pip-install.log)" >&2
    exit 1
  fi
  touch "$STAMP"
fi

mkdir -p .data
if [ -z "${REDIS_URL:-}" ]; then scripts/redis.sh start; fi
if [ -z "${DATABASE_URL:-}" ]; then scripts/postgres.sh start; fi
# localstripe, the offline Stripe fake (own virtualenv), unless real Stripe is set: a key and no API base.
if [ -z "${STRIPE_API_KEY:-}" ] || [ -n "${STRIPE_API_BASE:-}" ]; then scripts/localstripe.sh install; fi

"$PY" manage.py migrate_schemas --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
