#!/usr/bin/env bash
# Noisy neighbour: does tenant A flooding far above its limits slow tenant B down? (~3 min)
#
#   bench/noisy.sh                          # 3 rounds of 20 s baseline + 20 s flood
#   bench/noisy.sh --rounds 1 --seconds 5   # smoke test; other flags: bench/noisy_neighbour.py --help
#
# Starts the dev PostgreSQL and Redis if needed (never stops them), creates and migrates the benchmark
# database (gatehouse_bench), uses Redis database 5. bench/noisy_neighbour.py then starts the provider
# simulator, the usage consumer and one gateway process itself. For the run, Redis and PostgreSQL are pinned
# to CPU 0 (with the driver, wrk, the simulator and the consumer) and the gateway to CPU 1, as in
# bench/run.sh; their affinity is set back to all CPUs on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=$ROOT/.venv/bin/python
PG_PORT=${GATEHOUSE_PG_PORT:-55432}
REDIS_PORT=${GATEHOUSE_REDIS_PORT:-6390}
BENCH_DB=gatehouse_bench
for v in $(compgen -e | grep '^GATEHOUSE_' || true); do
  case $v in GATEHOUSE_PG_PORT|GATEHOUSE_REDIS_PORT) ;; *) unset "$v" ;; esac
done
export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/$BENCH_DB
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/5
export DJANGO_SETTINGS_MODULE=config.settings.base
export GATEHOUSE_DATA_DIR=$ROOT/.data

# The usage consumer also drains spool files of DATA_DIR/usage-spool into *this* database: never take the dev
# gateway's (written only when Redis was unreachable).
if compgen -G "$ROOT/.data/usage-spool/*" >/dev/null; then
  echo "bench/noisy.sh: $ROOT/.data/usage-spool has files: drain them with the dev consume_usage first" >&2
  exit 1
fi
scripts/redis.sh start
scripts/postgres.sh start
PGBIN=$("$PY" -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pgserver").submodule_search_locations[0]) / "pginstall" / "bin")')
if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$BENCH_DB'" | grep -q 1; then
  "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$BENCH_DB"
fi
"$PY" manage.py migrate_schemas --noinput -v 0
mkdir -p bench/results

REDIS_PID=$(cat "$ROOT/.data/redis/redis.pid" 2>/dev/null || true)
PG_PID=$(head -1 "$ROOT/.data/pg/postmaster.pid" 2>/dev/null || true)
pin_services() {  # pin_services CPUS: redis-server (every thread), the postmaster and its processes
  local pid
  for pid in $REDIS_PID $PG_PID $(pgrep -P "${PG_PID:-0}" 2>/dev/null || true); do
    taskset -a -cp "$1" "$pid" >/dev/null 2>&1 || true
  done
}
if [ "$(nproc)" -ge 2 ]; then
  pin_services 0
  trap 'pin_services "0-$(($(nproc) - 1))"' EXIT
  trap 'exit 130' INT TERM
fi
"$PY" bench/noisy_neighbour.py --redis-pid "${REDIS_PID:-0}" --pg-pid "${PG_PID:-0}" "$@"
