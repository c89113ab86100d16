#!/usr/bin/env bash
# localstripe, the offline Stripe fake for dev and tests, on 127.0.0.1:$GATEHOUSE_LOCALSTRIPE_PORT.
# It is GPLv3 and never a dependency of Gatehouse: it lives in its own virtualenv, .data/localstripe.
# State is kept in .data/localstripe-run/state.pickle, not in localstripe's shared /tmp/localstripe.pickle
# (scripts/localstripe_serve.py). Webhook endpoints live in memory only: serve and start register ours.
# Usage: scripts/localstripe.sh install         create the virtualenv if it is missing
#        scripts/localstripe.sh serve [ARGS]    run in the foreground (Procfile); ARGS e.g. --from-scratch
#        scripts/localstripe.sh start|stop|status   the same as a daemon, pid and log in .data/localstripe-run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA_DIR=${GATEHOUSE_DATA_DIR:-$ROOT/.data}
PORT=${GATEHOUSE_LOCALSTRIPE_PORT:-8420}
VERSION=1.15.10
VENV=$DATA_DIR/localstripe
RUN=$DATA_DIR/localstripe-run
BASE=http://127.0.0.1:$PORT
WEBHOOK_URL=${GATEHOUSE_STRIPE_WEBHOOK_URL:-http://127.0.0.1:${GATEHOUSE_PORT:-8000}/stripe/webhook}
WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_gatehouse_dev_only}

install() {
  [ -x "$VENV/bin/localstripe" ] && return 0
  local log=$DATA_DIR/localstripe-install.log
  echo "localstripe: installing localstripe==$VERSION into $VENV"
  mkdir -p "$DATA_DIR"
  if ! { { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } \
      && "$VENV/bin/python" -m pip install -q "localstripe==$VERSION"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "localstripe: install failed (log above, also in $log)" >&2
    exit 1
  fi
}

up() { (: <>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

wait_up() {  # wait_up PID: until the server accepts connections, up to 30 s, unless PID exits first
  for _ in $(seq 300); do
    up && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

register_webhook() {
  if curl -sSf -o /dev/null "$BASE/_config/webhooks/gatehouse" \
      --data-urlencode "url=$WEBHOOK_URL" --data-urlencode "secret=$WEBHOOK_SECRET"; then
    echo "localstripe: webhook registered: $WEBHOOK_URL"
  else
    echo "localstripe: could not register the webhook on $BASE" >&2
    return 1
  fi
}

serve() {
  install
  if up; then
    echo "localstripe: something already listens on $BASE (scripts/localstripe.sh stop?)" >&2
    exit 1
  fi
  mkdir -p "$RUN"
  # In the background, so the server stays the foreground process that honcho supervises and signals.
  # $$ is this script's pid, which becomes the server's with exec.
  ( if wait_up $$; then register_webhook; else echo "localstripe: did not come up" >&2; fi ) &
  exec "$VENV/bin/python" scripts/localstripe_serve.py --host 127.0.0.1 --port "$PORT" \
    --state "$RUN/state.pickle" "$@"
}

ours() {  # ours PID: PID is a running localstripe launcher (not a recycled pid)
  ps -p "$1" -o args= 2>/dev/null | grep -q localstripe_serve.py
}

start() {
  install
  mkdir -p "$RUN"
  if up; then
    echo "localstripe: already running on $BASE"
  else
    nohup "$VENV/bin/python" scripts/localstripe_serve.py --host 127.0.0.1 --port "$PORT" \
      --state "$RUN/state.pickle" >>"$RUN/localstripe.log" 2>&1 &
    echo $! >"$RUN/localstripe.pid"
    wait_up $! || { echo "localstripe: failed to start, see $RUN/localstripe.log" >&2; exit 1; }
    echo "localstripe: started on $BASE (state and log: $RUN)"
  fi
  register_webhook
}

stop() {
  local pid
  pid=$(cat "$RUN/localstripe.pid" 2>/dev/null) || return 0
  if ours "$pid"; then
    kill "$pid"
    for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
    echo "localstripe: stopped"
  fi
  rm -f "$RUN/localstripe.pid"
}

case "${1:-}" in
  install) install ;;
  serve) shift; serve "$@" ;;
  start) start ;;
  stop) stop ;;
  status) up ;;
  *) echo "usage: $0 install|serve [ARGS]|start|stop|status" >&2; exit 2 ;;
esac
