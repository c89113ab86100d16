#!/usr/bin/env bash
# Billing at scale: the rollups and the invoice run of one period for many tenants, against localstripe.
#
#   bench/billing.sh                                  # 1,000 tenants, 1,000,000 records, period 2026-10
#   bench/billing.sh --records 100000                 # the memory check: same tenants, a tenth of the records
#   bench/billing.sh --tenants 20 --records 20000     # smoke test, ~1 min; flags: --help
#   bench/billing.sh --profile                        # also py-spy the run step and localstripe (raw stacks)
#
# Its own database, gatehouse_billing_bench, dropped and created afresh on every run (its 1,000 tenant schemas
# would slow every other bench's migrate_schemas, and every run starts from the same state), Redis database 7,
# and its own localstripe (state in memory, on a free port), stopped on exit. Starts the dev PostgreSQL and
# Redis if needed (never stops them). Two processes: bench/billing_setup.py (tenants and records, not
# timed), then bench/billing_bench.py (the measured phases), so that the second's peak memory is the billing
# code's alone. Output: bench/results/billing-<commit>-<time>.json, and the logs billing-bench.log and
# billing-localstripe.log there.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=
args=()
for arg in "$@"; do
  case $arg in
    -h|--help) exec .venv/bin/python bench/billing_setup.py --help ;;
    --profile) PROFILE=1 ;;
    *) args+=("$arg") ;;
  esac
done

BENCH_DB=gatehouse_billing_bench
scripts/postgres.sh start
PGBIN=$(.venv/bin/python -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pgserver").submodule_search_locations[0]) / "pginstall" / "bin")')
"$PGBIN/dropdb" --if-exists --force -h 127.0.0.1 -p "${GATEHOUSE_PG_PORT:-55432}" -U postgres "$BENCH_DB"
source bench/bench_db.sh
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/7
unset STRIPE_API_KEY STRIPE_WEBHOOK_SECRET

scripts/localstripe.sh install
LS_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LS_LOG=$ROOT/bench/results/billing-localstripe.log
: >"$ROOT/bench/results/billing-bench.log"
"$ROOT/.data/localstripe/bin/python" scripts/localstripe_serve.py --port "$LS_PORT" --no-persist >"$LS_LOG" 2>&1 &
LS_PID=$!
trap 'kill "$LS_PID" 2>/dev/null || true; wait "$LS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  (: <>"/dev/tcp/127.0.0.1/$LS_PORT") 2>/dev/null && break
  kill -0 "$LS_PID" 2>/dev/null || { cat "$LS_LOG" >&2; echo "bench/billing.sh: localstripe died" >&2; exit 1; }
  sleep 0.1
done
export STRIPE_API_BASE=http://127.0.0.1:$LS_PORT GATEHOUSE_STRIPE_LOCALSTRIPE=true

# The processes' log (stderr: Django's logging at its default level, INFO, which includes two lines per
# Stripe call from the stripe library) goes to a file, so that stdout keeps the progress and the results.
LOG=$ROOT/bench/results/billing-bench.log
PG_PID=$(head -1 "$ROOT/.data/pg/postmaster.pid")
SPY_PID=
for step in setup bench; do
  wrap=()
  if [ -n "$PROFILE" ] && [ "$step" = bench ]; then
    # py-spy's sampling takes CPU of its own on this 2-core machine: profiled runs' times are not the figures.
    wrap=(.venv/bin/py-spy record --format raw --rate 50 -o bench/results/billing-profile-run.txt --)
    .venv/bin/py-spy record --format raw --rate 50 -o bench/results/billing-profile-localstripe.txt \
      --pid "$LS_PID" >>"$LOG" 2>&1 &
    SPY_PID=$!
  fi
  if ! ${wrap[@]+"${wrap[@]}"} "$PY" "bench/billing_$step.py" --localstripe-pid "$LS_PID" --pg-pid "$PG_PID" \
      ${args[@]+"${args[@]}"} 2>>"$LOG"; then
    tail -40 "$LOG" >&2
    echo "bench/billing.sh: bench/billing_$step.py failed (log above, also in $LOG)" >&2
    exit 1
  fi
done
if [ -n "$SPY_PID" ]; then
  kill -INT "$SPY_PID" 2>/dev/null || true
  wait "$SPY_PID" 2>/dev/null || true
  echo "profiles: bench/results/billing-profile-run.txt, bench/results/billing-profile-localstripe.txt"
fi
