#!/usr/bin/env bash
# Benchmark Gatehouse beside LiteLLM and Portkey, in one run of the shared harness (/work/shared/bench).
#
#   bench/run.sh            # full run (~25 min): direct + litellm-prod-priced + litellm-default-priced + portkey + gatehouse
#   bench/run.sh --quick    # smoke test (~5 min, 1 rep, short runs)
#   bench/run.sh --quick --latencies 0 --modes stream     # any other flag goes to the harness's bench.py
#
# Idempotent; run from anywhere. Uses the dev PostgreSQL/Redis servers (started if needed, never stopped) but
# its own database `gatehouse_bench` and Redis database 5. Results: bench/results/<timestamp>[-quick]/
# (results.md, results.json, logs/, the target file, the usage consumer's log, metering.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HARNESS=${GATEHOUSE_BENCH_HARNESS:-/work/shared/bench}
PY=$ROOT/.venv/bin/python
PG_PORT=${GATEHOUSE_PG_PORT:-55432}
REDIS_PORT=${GATEHOUSE_REDIS_PORT:-6390}
BENCH_DB=gatehouse_bench
BENCH_REDIS_DB=5
GW_PORT=9100

quick=0
for a in "$@"; do [ "$a" = --quick ] && quick=1; done
RUN=$(date +%Y%m%d-%H%M%S)$([ $quick = 1 ] && echo -quick || true)
OUT=$ROOT/bench/results/$RUN
KEY_FILE=$ROOT/bench/results/.bench-key
say() { echo "[bench/run.sh $(date +%H:%M:%S)] $*"; }

# ---- environment of every gateway command (seed, consumer, server), and only of those: the peers inherit the
# harness's environment, and LiteLLM reacts to DATABASE_URL / REDIS_URL (prisma setup, Redis cache).
# Gateway defaults otherwise: drop any GATEHOUSE_* tuning that happens to be in the caller's shell.
for v in $(compgen -e | grep '^GATEHOUSE_' || true); do
  case $v in GATEHOUSE_PG_PORT|GATEHOUSE_REDIS_PORT|GATEHOUSE_BENCH_HARNESS) ;; *) unset "$v" ;; esac
done
unset DATABASE_URL REDIS_URL DJANGO_SETTINGS_MODULE
GW_ENV=(
  "DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/$BENCH_DB"
  "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/$BENCH_REDIS_DB"
  'GATEHOUSE_EXTRA_ENDPOINTS={"bench0": {"base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-fake"}, "bench50": {"base_url": "http://127.0.0.1:18081/v1", "api_key": "sk-fake"}}'
  "DJANGO_SETTINGS_MODULE=config.settings.base"
  "GATEHOUSE_DATA_DIR=$ROOT/.data"  # same secret key for the seeded key's hash and the server
)
gw() { env "${GW_ENV[@]}" "$@"; }

# ---- preflight: ports the harness needs must be free (it refuses to start otherwise)
for port in 18080 18081 $GW_PORT; do
  if ss -Htln "sport = :$port" | grep -q .; then
    say "port $port is busy, stop what listens there first:"; ss -Htlnp "sport = :$port" >&2; exit 1
  fi
done
# The usage consumer also drains spool files of DATA_DIR/usage-spool into *this* database: never take the dev
# gateway's (written only when Redis was unreachable).
if compgen -G "$ROOT/.data/usage-spool/*" >/dev/null; then
  say "$ROOT/.data/usage-spool has files (dev usage events?): drain them with the dev consume_usage first"; exit 1
fi

# ---- services and database
scripts/redis.sh start
scripts/postgres.sh start
PGBIN=$("$PY" -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("pgserver").submodule_search_locations[0]) / "pginstall" / "bin")')
if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$BENCH_DB'" | grep -q 1; then
  "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$BENCH_DB"
  say "created database $BENCH_DB"
fi
gw "$PY" manage.py migrate_schemas --noinput -v 0
mkdir -p "$OUT"
seed=$(gw "$PY" bench/prepare.py --key-file "$KEY_FILE")
KEY=$(sed -n 's/^BENCH_KEY=//p' <<<"$seed")
RECORDS_BEFORE=$(sed -n 's/^BENCH_RECORDS=//p' <<<"$seed")
say "tenant bench, key $KEY, RequestRecords before: $RECORDS_BEFORE"

# ---- what is measured: the working tree (commit + uncommitted diff saved beside the results)
COMMIT=$(git rev-parse HEAD)
git diff HEAD >"$OUT/worktree.diff"
GIT_OPTIONAL_LOCKS=0 git status --porcelain >"$OUT/worktree-status.txt"

# ---- target file for the harness
TARGET=$OUT/gatehouse.json
OUT="$OUT" ROOT="$ROOT" KEY="$KEY" GW_PORT="$GW_PORT" "$PY" - "${GW_ENV[@]}" <<'EOF'
import json, os, sys
root, port = os.environ["ROOT"], os.environ["GW_PORT"]
env = dict(item.split("=", 1) for item in sys.argv[1:])
target = {
    "name": "gatehouse",
    "description": "Gatehouse (Django 5.2 + Channels on uvicorn, 1 process, uvloop + httptools), defaults: full "
                   "metering (one XADD to the Redis usage stream awaited before the last byte), structured access "
                   "log on (stdout), no cache; models fake-0ms / fake-50ms in the catalogue, openai_compatible "
                   "endpoints bench0 / bench50 = the fake upstreams. Usage consumer runs beside it on CPU 0.",
    "start": [os.path.join(root, ".venv/bin/uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
              "--port", port, "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"],
    "env": env,
    "cwd": root,
    "port": int(port),
    "ready_url": "http://127.0.0.1:%s/healthz" % port,
    "ready_timeout_s": 60,
    "base_url": "http://127.0.0.1:%s" % port,
    "headers": {"Authorization": "Bearer " + os.environ["KEY"]},
    "model": "fake-{LAT}ms",
    "version_cmd": "cd %s && printf 'gatehouse %%s%%s' \"$(git rev-parse --short=12 HEAD)\" "
                   "\"$(GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no | grep -q . "
                   "&& echo ' + uncommitted changes (worktree.diff)')\"" % root,
}
with open(os.path.join(os.environ["OUT"], "gatehouse.json"), "w") as f:
    json.dump(target, f, indent=2)
EOF

# ---- usage consumer: drains gh:usage during the run, pinned to CPU 0 (with the load generator and upstreams)
CONSUMER_PID=
stop_consumer() {
  [ -n "$CONSUMER_PID" ] || return 0
  alive() { local st; st=$(ps -o stat= -p "$CONSUMER_PID" 2>/dev/null) && [ "${st:0:1}" != Z ]; }
  kill -TERM "$CONSUMER_PID" 2>/dev/null || true  # it stops after the current batch
  for _ in $(seq 150); do alive || break; sleep 0.1; done
  alive && { say "consumer did not stop within 15 s: SIGKILL"; kill -KILL "$CONSUMER_PID" 2>/dev/null || true; }
  wait "$CONSUMER_PID" 2>/dev/null || true
  CONSUMER_PID=
}
# Redis and PostgreSQL serve the metering pipeline; in production they run on other machines. Pin them (every
# thread, and the backends PostgreSQL forks later inherit it) to CPU 0 for the run, beside the load generator
# and the upstreams, so that they do not share the gateway's core; restore their affinity afterwards.
REDIS_PID=$(cat "$ROOT/.data/redis/redis.pid" 2>/dev/null || true)
PG_PID=$(head -1 "$ROOT/.data/pg/postmaster.pid" 2>/dev/null || true)
pin_services() {  # pin_services CPUS
  local pid
  for pid in $REDIS_PID $PG_PID $(pgrep -P "${PG_PID:-0}" 2>/dev/null || true); do
    taskset -a -cp "$1" "$pid" >/dev/null 2>&1 || true
  done
}
finish() { stop_consumer; pin_services "0-$(($(nproc) - 1))"; }
pin_services 0
trap finish EXIT
trap 'exit 130' INT TERM
# (env, not the gw function: a backgrounded function is a subshell, and $! must be the consumer itself)
env "${GW_ENV[@]}" taskset -c 0 "$PY" manage.py consume_usage --consumer "bench-$(hostname)" >"$OUT/consume_usage.log" 2>&1 &
CONSUMER_PID=$!
say "usage consumer pid $CONSUMER_PID (CPU 0), log $OUT/consume_usage.log"

# ---- CPU of the metering pipeline outside the gateway process (the harness counts it as "foreign"): redis-server,
# PostgreSQL (postmaster tree + its reaped backends) and the consumer; printed as seconds "redis pg consumer".
svc_cpu() {
  "$PY" - "$(cat "$ROOT/.data/redis/redis.pid" 2>/dev/null || echo 0)" \
    "$(head -1 "$ROOT/.data/pg/postmaster.pid" 2>/dev/null || echo 0)" "${CONSUMER_PID:-0}" <<'EOF'
import os, sys
tck = os.sysconf("SC_CLK_TCK")
def stat(pid):
    try:
        s = open("/proc/%s/stat" % pid).read()
    except OSError:
        return None
    f = s[s.rfind(")") + 2:].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])  # ppid, own ticks, reaped children's
def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        st = stat(d) if d.isdigit() else None
        if st:
            kids.setdefault(st[0], []).append(int(d))
    out, stack = [], [root]
    while stack:
        p = stack.pop(); out.append(p); stack.extend(kids.get(p, []))
    return out
def secs(pid, children):
    pid = int(pid or 0)
    if not pid or stat(pid) is None:
        return 0.0
    if not children:
        return stat(pid)[1] / tck
    return (sum((stat(p) or (0, 0, 0))[1] for p in tree(pid)) + stat(pid)[2]) / tck
print("%.2f %.2f %.2f" % (secs(sys.argv[1], True), secs(sys.argv[2], True), secs(sys.argv[3], False)))
EOF
}
sleep 2  # let the consumer finish starting (Django set-up) before the first snapshot
CPU_BEFORE=$(svc_cpu)

# ---- the run
args=()
for a in "$@"; do args+=("$a"); done
say "harness: $HARNESS/run.sh peers --target $TARGET --out $OUT ${args[*]:-}"
say "gatehouse $COMMIT$( [ -s "$OUT/worktree.diff" ] && echo ' + uncommitted changes' || true)"
rc=0
"$HARNESS/run.sh" peers --target "$TARGET" --out "$OUT" "${args[@]}" || rc=$?
say "harness exit code $rc"

# ---- let the consumer finish the stream, then stop it and count what was metered
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$BENCH_REDIS_DB" "$@"; }
for _ in $(seq 120); do
  left=$(rcli XLEN gh:usage)
  [ "${left:-0}" = 0 ] && break
  sleep 1
done
CPU_AFTER=$(svc_cpu)
stop_consumer
after=$(gw "$PY" bench/prepare.py --key-file "$KEY_FILE" --count-only)
RECORDS_AFTER=$(sed -n 's/^BENCH_RECORDS=//p' <<<"$after")
{
  echo "RequestRecords of tenant bench: before $RECORDS_BEFORE, after $RECORDS_AFTER, new $((RECORDS_AFTER - RECORDS_BEFORE))"
  echo "gh:usage left in Redis db $BENCH_REDIS_DB: $(rcli XLEN gh:usage) entries; dead letters: $(rcli XLEN gh:usage:dead)"
  awk -v b="$CPU_BEFORE" -v a="$CPU_AFTER" -v n="$((RECORDS_AFTER - RECORDS_BEFORE))" 'BEGIN {
    split(b, x, " "); split(a, y, " "); r = y[1] - x[1]; p = y[2] - x[2]; c = y[3] - x[3]; t = r + p + c;
    printf "metering pipeline CPU during the run (outside the gateway process): redis-server %.1f s, PostgreSQL %.1f s, consumer %.1f s = %.1f s", r, p, c, t;
    if (n > 0) printf ", %.2f ms per new RequestRecord", 1000 * t / n; print "" }'
  "$PY" - "$OUT/results.json" <<'EOF' || true
import json, sys
R = json.load(open(sys.argv[1]))
cells = R["targets"].get("gatehouse", {}).get("cells", {})
n = 0
for c in cells.values():
    for r in [c.get("warmup") or {}] + list(c.get("runs") or []) + [x for r in c.get("runs") or [] for x in r.get("rejected_attempts", [])]:
        n += int(r.get("requests") or r.get("started") or r.get("ok") or 0)
print("requests the harness counted for gatehouse (warm-ups included; wrk drops in-flight ones at the end of a run): %d" % n)
EOF
} | tee "$OUT/metering.txt"
say "results: $OUT/results.md"
exit $rc
