#!/usr/bin/env bash
# Instructions per request of the request path, under callgrind: deterministic, so two commits compare
# within a percent or two on this shared machine, where CPU time varies by ±15 % between runs.
#
#   bench/instructions.sh [--stream] [REV ...]     # default: the working tree; REV: any git revision
#
# For each checkout: bench/asgi_drive.py with 20 and with 220 requests under `valgrind --tool=callgrind`;
# (Ir(220) - Ir(20)) / 200 = instructions per request (start-up and warm-up cancel out). About 3-4 minutes a
# checkout. Uses bench/run.sh's database, Redis database and key (run `bench/run.sh --quick` once first) and
# starts the harness's fake upstream on :18080.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HARNESS=${GATEHOUSE_BENCH_HARNESS:-/work/shared/bench}
mode=()
revs=()
for a in "$@"; do
  if [ "$a" = --stream ]; then mode=(--stream); else revs+=("$a"); fi
done
[ ${#revs[@]} -gt 0 ] || revs=(WORKTREE)
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
[ -s bench/results/.bench-key ] || { echo "no bench key: run bench/run.sh --quick once first" >&2; exit 1; }
export DATABASE_URL=postgres://postgres@127.0.0.1:${GATEHOUSE_PG_PORT:-55432}/gatehouse_bench
export REDIS_URL=redis://127.0.0.1:${GATEHOUSE_REDIS_PORT:-6390}/5
export GATEHOUSE_EXTRA_ENDPOINTS='{"bench0": {"base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-fake"}}'
export DJANGO_SETTINGS_MODULE=config.settings.base GATEHOUSE_DATA_DIR=$ROOT/.data GATEHOUSE_ACCESS_LOG=true
node "$HARNESS/upstream/server.js" --port 18080 >/dev/null 2>&1 &
UPSTREAM=$!
WORK=$(mktemp -d)
trap 'kill $UPSTREAM 2>/dev/null || true; for d in "$WORK"/rev-*; do [ -d "$d" ] && git worktree remove --force "$d"; done; rm -rf "$WORK"' EXIT
sleep 1
ir() {  # ir DIR N: instructions of one run
  (cd "$1" && valgrind --tool=callgrind --callgrind-out-file="$WORK/out" "$ROOT/.venv/bin/python" \
    "$ROOT/bench/asgi_drive.py" "$2" "${mode[@]}" >/dev/null 2>"$WORK/err") || { cat "$WORK/err" >&2; exit 1; }
  grep -o "Collected : [0-9]*" "$WORK/err" | awk '{print $3}'
}
for rev in "${revs[@]}"; do
  dir=$ROOT
  if [ "$rev" != WORKTREE ]; then
    dir=$WORK/rev-$(git rev-parse --short "$rev")
    git worktree add --detach "$dir" "$rev" >/dev/null 2>&1
  fi
  few=$(ir "$dir" 20)
  many=$(ir "$dir" 220)
  awk -v r="$rev" -v a="$few" -v b="$many" -v m="${mode[*]:-non-streaming}" \
    'BEGIN { printf "%s (%s): %.2fM instructions per request\n", r, m, (b - a) / 200 / 1e6 }'
done
