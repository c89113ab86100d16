#!/usr/bin/env bash
# Local Redis for dev and tests, on 127.0.0.1:$GATEHOUSE_REDIS_PORT with data in .data/redis.
# Usage: scripts/redis.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA_DIR=${GATEHOUSE_DATA_DIR:-$ROOT/.data}
PORT=${GATEHOUSE_REDIS_PORT:-6390}
DIR=$DATA_DIR/redis

ensure_installed() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "redis: installing redis-server with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis: redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install redis-server)," >&2
    echo "       or point REDIS_URL at a running Redis." >&2
    exit 1
  fi
}

ping() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

start() {
  ensure_installed
  if ping; then echo "redis: already running on 127.0.0.1:$PORT"; return 0; fi
  mkdir -p "$DIR"
  # Append-only file on: the usage stream lives here until the consumer has stored it.
  redis-server --port "$PORT" --bind 127.0.0.1 --daemonize yes --dir "$DIR" \
    --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --save '' --appendonly yes \
    --appendfsync everysec >/dev/null
  for _ in $(seq 50); do ping && break; sleep 0.1; done
  ping || { echo "redis: failed to start, see $DIR/redis.log" >&2; exit 1; }
  echo "redis: started on 127.0.0.1:$PORT (data: $DIR)"
}

stop() {
  if command -v redis-cli >/dev/null 2>&1 && ping; then
    redis-cli -h 127.0.0.1 -p "$PORT" shutdown >/dev/null 2>&1 || true
    echo "redis: stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) ping ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
