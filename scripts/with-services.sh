#!/usr/bin/env bash
# Run a command with Redis and PostgreSQL up; stop afterwards whichever of them this script started,
# so Ctrl-C on `make run` stops everything, and `make test` leaves a running `make run` alone.
set -euo pipefail
cd "$(dirname "$0")/.."
redis_was_up=0; pg_was_up=0
[ -n "${REDIS_URL:-}" ] || ! scripts/redis.sh status 2>/dev/null || redis_was_up=1
[ -n "${DATABASE_URL:-}" ] || ! scripts/postgres.sh status 2>/dev/null || pg_was_up=1
cleanup() {
  [ -n "${REDIS_URL:-}" ] || [ $redis_was_up = 1 ] || scripts/redis.sh stop || true
  [ -n "${DATABASE_URL:-}" ] || [ $pg_was_up = 1 ] || scripts/postgres.sh stop || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
scripts/setup.sh
"$@"
