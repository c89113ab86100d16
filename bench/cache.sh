#!/usr/bin/env bash
# The semantic cache's benchmarks, on the benchmark database (gatehouse_bench) and Redis database 5:
#
#   bench/cache.sh eval [--limit N]     # precision / recall / false-hit rate on the labelled pairs (~5 min)
#   bench/cache.sh speed [--sizes ...]  # embedding, ANN, lookup and end-to-end hit latency (~10 min)
#
# Starts the dev PostgreSQL and Redis if needed (never stops them), creates and migrates the database.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: bench/cache.sh eval|speed [args]}
shift
source bench/bench_db.sh
case $what in
  eval) exec "$PY" bench/cache_eval.py "$@" ;;
  speed) exec "$PY" bench/cache_speed.py "$@" ;;
  *) echo "bench/cache.sh: eval or speed, not $what" >&2; exit 2 ;;
esac
