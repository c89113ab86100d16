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
source bench/bench_db.sh

# The usage consumer also drains spool files of DATA_DIR/usage-spool into *this* database: never take the dev
# gateway's (written only when Redis was unreachable).
if compgen -G "$ROOT/.data/usage-spool/*" >/dev/null; then
  echo "bench/noisy.sh: $ROOT/.data/usage-spool has files: drain them with the dev consume_usage first" >&2
  exit 1
fi

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
