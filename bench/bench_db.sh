# Sourced by bench/cache.sh, bench/noisy.sh and bench/billing.sh from the repository root: the benchmark
# database (gatehouse_bench, or $BENCH_DB if the caller set it) and Redis database 5, with no GATEHOUSE_*
# setting of the caller's shell leaking in (ports excepted); starts the dev PostgreSQL and Redis if needed
# (never stops them), creates and migrates the database. Sets ROOT, PY, PG_PORT, REDIS_PORT, BENCH_DB.
ROOT=$(pwd)
PY=$ROOT/.venv/bin/python
PG_PORT=${GATEHOUSE_PG_PORT:-55432}
REDIS_PORT=${GATEHOUSE_REDIS_PORT:-6390}
BENCH_DB=${BENCH_DB:-gatehouse_bench}
for v in $(compgen -e | grep '^GATEHOUSE_' || true); do
  case $v in GATEHOUSE_PG_PORT|GATEHOUSE_REDIS_PORT) ;; *) unset "$v" ;; esac
done
export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/$BENCH_DB
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/5
export DJANGO_SETTINGS_MODULE=config.settings.base
export GATEHOUSE_DATA_DIR=$ROOT/.data
scripts/redis.sh start
scripts/postgres.sh start
PGBIN=$("$PY" -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pgserver").submodule_search_locations[0]) / "pginstall" / "bin")')
if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$BENCH_DB'" | grep -q 1; then
  "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$BENCH_DB"
fi
"$PY" manage.py migrate_schemas --noinput -v 0
mkdir -p bench/results
