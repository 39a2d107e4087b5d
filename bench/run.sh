#!/usr/bin/env bash
# shardline benchmark suite (SPEC.md section 9): direct PostgreSQL, PgBouncer and shardline measured
# in the same run, against the same server, reported as ratios.
#
#   bench/run.sh [BUILD_DIR]          (make bench runs it with BUILD_DIR=build)
#
# Environment: BENCH_SECONDS (default 10) per pgbench run, BENCH_IDLE_CLIENTS (default 10000),
# BENCH_KEEP=1 keeps the temp dir (logs, configs) for inspection.
#
# One run: `shardline demo` starts one PostgreSQL primary and the proxy (pool size P); PgBouncer is
# started in transaction mode with default_pool_size P against the same primary; pgbench runs
# each scenario against all three; per-transaction logs give latency percentiles; /proc gives
# proxy CPU per transaction and proxy RSS with idle clients held by bench/idle_clients.py.
# Routed scenarios: a second demo with 2 shards and a second proxy (`shardline serve`) that
# shards the pgbench tables; -S and a distinct-literal -M simple script through it are compared
# with the pass-through proxy above (1 shard) in the same run, and so are two tenant-less scatter
# reads through it (count(*), ORDER BY ... LIMIT 10): latency on 2 shards vs 1. Last, micro_bench (built from
# bench/*_bench.cpp) measures the parser + router CPU per statement.
# Replica scenarios: a third demo with 1 shard and 1 streaming replica, and one `shardline serve`
# per replica config on it: a 90% read / 10% write script with session consistency (reads may go
# to the replica) vs strong (primary only) vs eventual, and pgbench -N with the commit-LSN probe
# on vs off (replicas.track_commit_lsn), alternated A B A B.
# Proxy ceiling (bench/null_ceiling.sh): shardline and PgBouncer in front of build/null_backend,
# a server that answers at once, so the proxies' own CPU per transaction and tps per core show.
set -euo pipefail

BUILD_ARG=${1:-build}
SECS=${BENCH_SECONDS:-10}
IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-10000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
PGBOUNCER=/usr/sbin/pgbouncer
DB_USER=app        # what `shardline demo` creates (user app / password secret / db app)
DB_PASSWORD=secret
DB_NAME=app
SCALE=10

die() { echo "bench: $*" >&2; exit 1; }

[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer, got '$SECS'"
[[ $IDLE_CLIENTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_IDLE_CLIENTS must be a positive integer, got '$IDLE_CLIENTS'"
[[ -d $BUILD_ARG ]] || die "build dir '$BUILD_ARG' does not exist (run make build first)"
BUILD=$(cd "$BUILD_ARG" && pwd)
BIN=$BUILD/shardline
[[ -x $BIN ]] || die "$BIN not found or not executable (run make build first)"
MICRO=$BUILD/micro_bench
[[ -x $MICRO ]] || die "$MICRO not found or not executable (run make build first)"
[[ -x $BUILD/null_backend ]] || die "$BUILD/null_backend not found or not executable (run make build first)"
[[ -x $PGBOUNCER ]] || die "$PGBOUNCER not found: apt-get install pgbouncer"
[[ -x $PY ]] || die "$PY not found: apt-get install python3"
for tool in pgbench psql getconf awk sort timeout; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH (pgbench and psql: apt-get install postgresql-client)"
done
IS_ROOT=0
if [[ $(id -u) -eq 0 ]]; then
  IS_ROOT=1
  id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user (apt-get install postgresql-15)"
fi

# Enough descriptors for 10,000 idle clients in the proxies (inherited: we start them) and in
# the client process. The hard limit may be below 65536 in containers; take what we may.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited ]] && (( NOFILE < IDLE_CLIENTS + 256 )); then
  die "open file limit is $NOFILE (hard $(ulimit -Hn)), too low for $IDLE_CLIENTS idle clients; set BENCH_IDLE_CLIENTS lower"
fi
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/shardline-bench.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/logs" "$TMP/out" "$TMP/pgbouncer"
DEMO_PID=""
PGB_PID=""
IDLE_PID=""
DEMO2_PID=""
ROUTED_PID=""
DEMO3_PID=""
declare -A REP_PID=()  # replica scenarios: target -> pid of its `shardline serve`

# stop_proc PID SIGNAL NAME: signals PID and waits up to 60 s for it to exit, then kills it.
stop_proc() {
  local pid=$1 sig=$2 name=$3
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid"
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench: $name (pid $pid) ignored SIG$sig for 60 s; killing it" >&2
    kill -KILL "$pid"
  fi
  wait "$pid" 2>/dev/null
}

# Stops, in order, what this script started: idle clients, PgBouncer, the routing proxy, then
# the demos (SIGINT, so that they stop their PostgreSQL servers themselves). A demo that died
# leaves its servers behind: they are stopped from their pid files.
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n $IDLE_PID ]] && kill -0 "$IDLE_PID" 2>/dev/null; then
    kill -TERM "$IDLE_PID"; wait "$IDLE_PID" 2>/dev/null
  fi
  if [[ -n $PGB_PID ]] && kill -0 "$PGB_PID" 2>/dev/null; then
    kill -TERM "$PGB_PID"; wait "$PGB_PID" 2>/dev/null
  fi
  stop_proc "$ROUTED_PID" TERM "shardline serve (routed)"
  stop_proc "$TWOPC_PID" TERM "shardline serve (routed2pc)"
  local t
  for t in "${!REP_PID[@]}"; do stop_proc "${REP_PID[$t]}" TERM "shardline serve ($t)"; done
  for t in "${!MET_PID[@]}"; do stop_proc "${MET_PID[$t]}" TERM "shardline serve ($t)"; done
  stop_proc "$DEMO3_PID" INT "shardline demo (1 shard, 1 replica)"
  stop_proc "$DEMO2_PID" INT "shardline demo (2 shards)"
  stop_proc "$DEMO_PID" INT "shardline demo"
  local d
  for d in "$TMP"/cluster/s* "$TMP"/cluster2/s* "$TMP"/cluster3/s*; do
    [[ -f $d/postmaster.pid ]] || continue
    echo "bench: stopping PostgreSQL left running in $d" >&2
    if (( IS_ROOT )); then
      runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl stop -m immediate -D "$d" >/dev/null 2>&1
    else
      pg_ctl stop -m immediate -D "$d" >/dev/null 2>&1
    fi
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "bench: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port on 127.0.0.1 that nobody listens on, below the ephemeral range so that client sockets
# of this very benchmark cannot take it between the check and the server's bind.
# `pick_port VAR [OFFSET...]` sets VAR to it; the port plus each OFFSET must be free too (a
# 2-shard demo puts shard i on base-port + 10 * i). Not run in $(...): TAKEN_PORTS must persist.
TAKEN_PORTS=" "
pick_port() {
  local var=$1 p q ports ok
  shift
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    ports="$p"
    for q in "$@"; do ports+=" $(( p + q ))"; done
    ok=1
    for q in $ports; do [[ $TAKEN_PORTS == *" $q "* ]] && ok=0; done
    (( ok )) || continue
    # shellcheck disable=SC2086  # $ports is a list of ports
    if $PY - $ports <<'EOF' 2>/dev/null
import socket, sys
for port in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port))); s.close()
EOF
    then TAKEN_PORTS+="$ports "; printf -v "$var" '%s' "$p"; return 0; fi
  done
  die "no free port found on 127.0.0.1"
}
PG_PORT="" SL_PORT="" PGB_PORT="" PG2_PORT="" SL2_PORT="" ROUTED_PORT=""
pick_port PG_PORT
pick_port SL_PORT
pick_port PGB_PORT
pick_port PG2_PORT 10   # the 2-shard demo: s0 on PG2_PORT, s1 on PG2_PORT + 10
pick_port SL2_PORT      # that demo's own proxy (unused: it shards no pgbench table)
pick_port ROUTED_PORT   # `shardline serve` sharding the pgbench tables over those 2 shards
TWOPC_PORT="" TWOPC_PID=""
pick_port TWOPC_PORT    # the same with cross_shard_transactions: 2pc (section 2b)
PG3_PORT="" SL3_PORT=""
pick_port PG3_PORT 1    # the replica demo: primary on PG3_PORT, its streaming replica on PG3_PORT + 1
pick_port SL3_PORT      # that demo's own proxy (unused: the scenarios run their own configs)
# One `shardline serve` per replica config, all on the replica demo's two servers (section 2c).
REP_TARGETS=(rep_session rep_strong rep_eventual rep_notrack)
declare -A REP_PORT=()
for t in "${REP_TARGETS[@]}"; do pick_port "REP_PORT[$t]"; done
# Proxy ceiling (bench/null_ceiling.sh): the null backend, a shardline and a PgBouncer in front of it.
NB_PORT="" NBSL_PORT="" NBPGB_PORT=""
pick_port NB_PORT
pick_port NBSL_PORT
pick_port NBPGB_PORT
# Metrics cost: two `shardline serve` on the first demo's server, admin.metrics true vs false.
MET_TARGETS=(met_on met_off)
declare -A MET_PORT=() MET_PID=()
for t in "${MET_TARGETS[@]}"; do pick_port "MET_PORT[$t]"; done

# utime+stime in clock ticks; the command name (field 2) may hold spaces, so cut after ')'.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

wait_sql() {  # port seconds: until SELECT 1 works through that port
  local port=$1 secs=$2 i
  for (( i = 0; i < secs * 10; i++ )); do
    if PGPASSWORD=$DB_PASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -h 127.0.0.1 -p "$port" -U "$DB_USER" \
         -d "$DB_NAME" -Atc 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
echo "bench: temp dir $TMP; ports: postgres $PG_PORT, shardline $SL_PORT, pgbouncer $PGB_PORT; ${SECS}s per run"

# ---- 1. PostgreSQL + shardline (one shard, no replicas) -------------------------------------
echo "bench: starting shardline demo (1 shard, 0 replicas)"
wait_demo() {  # pid log: until the demo says it is up (180 s at most)
  local pid=$1 log=$2
  for _ in $(seq 1 1800); do
    grep -q 'shardline demo is up' "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "shardline demo exited during startup (log $log)"; }
    sleep 0.1
  done
  grep -q 'shardline demo is up' "$log" || { tail -n 30 "$log" >&2; die "shardline demo did not come up in 180 s (log $log)"; }
}
"$BIN" demo --dir "$TMP/cluster" --shards 1 --replicas 0 --port "$SL_PORT" --base-port "$PG_PORT" --no-sample --http-port 0 \
  >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
wait_demo "$DEMO_PID" "$TMP/demo.log"
wait_sql "$PG_PORT" 30 || die "PostgreSQL on port $PG_PORT does not accept app/secret"
wait_sql "$SL_PORT" 30 || { tail -n 30 "$TMP/demo.log" >&2; die "shardline on port $SL_PORT does not answer SELECT 1"; }
POOL_SIZE=$(sed -n 's/^pool:.*size: *\([0-9][0-9]*\).*/\1/p' "$TMP/cluster/shardline.yaml")
[[ -n $POOL_SIZE ]] || die "cannot read pool size from $TMP/cluster/shardline.yaml"
grep -q '^pool:.*mode: *transaction' "$TMP/cluster/shardline.yaml" \
  || die "$TMP/cluster/shardline.yaml does not use pool mode transaction; the comparison would be unfair"

echo "bench: pgbench -i -s $SCALE directly against PostgreSQL"
PGPASSWORD=$DB_PASSWORD pgbench -i -s "$SCALE" -q -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" "$DB_NAME" \
  >"$TMP/init.log" 2>&1 || { cat "$TMP/init.log" >&2; die "pgbench -i failed"; }

# ---- 2. PgBouncer -----------------------------------------------------------------------------
PGB_VERSION=$("$PGBOUNCER" --version | awk 'NR == 1 { print $2 }')
PGB_MAJOR=${PGB_VERSION%%.*}
PGB_MINOR=${PGB_VERSION#*.}; PGB_MINOR=${PGB_MINOR%%.*}
PGB_HAS_PREPARED=0
(( PGB_MAJOR > 1 || (PGB_MAJOR == 1 && PGB_MINOR >= 21) )) && PGB_HAS_PREPARED=1
# The SCRAM secret, so that PgBouncer authenticates clients by SCRAM like shardline and passes
# SCRAM through to the server; read over the superuser's unix socket of the demo cluster.
SCRAM_SECRET=$(psql -X -h "$TMP/cluster/sock" -p "$PG_PORT" -U postgres -d postgres -Atc \
  "SELECT rolpassword FROM pg_authid WHERE rolname = '$DB_USER'")
[[ $SCRAM_SECRET == SCRAM-SHA-256\$* ]] || die "could not read the SCRAM secret of $DB_USER (got '$SCRAM_SECRET')"
printf '"%s" "%s"\n' "$DB_USER" "$SCRAM_SECRET" >"$TMP/pgbouncer/userlist.txt"
{
  echo "[databases]"
  echo "$DB_NAME = host=127.0.0.1 port=$PG_PORT dbname=$DB_NAME"
  echo "[pgbouncer]"
  echo "listen_addr = 127.0.0.1"
  echo "listen_port = $PGB_PORT"
  echo "unix_socket_dir ="
  echo "auth_type = scram-sha-256"
  echo "auth_file = $TMP/pgbouncer/userlist.txt"
  echo "pool_mode = transaction"
  echo "default_pool_size = $POOL_SIZE"
  echo "max_client_conn = 20000"
  echo "logfile = $TMP/pgbouncer/pgbouncer.log"
  echo "log_connections = 0"
  echo "log_disconnections = 0"
  echo "ignore_startup_parameters = extra_float_digits"
  if (( PGB_HAS_PREPARED )); then
    echo "max_prepared_statements = 0"
  else
    echo "; max_prepared_statements = 0: PgBouncer $PGB_VERSION has no such setting (no prepared statement support)"
  fi
} >"$TMP/pgbouncer/pgbouncer.ini"
if (( IS_ROOT )); then
  chown -R postgres: "$TMP/pgbouncer"
  "$PGBOUNCER" -u postgres "$TMP/pgbouncer/pgbouncer.ini" >"$TMP/pgbouncer/stdout.log" 2>&1 &
else
  "$PGBOUNCER" "$TMP/pgbouncer/pgbouncer.ini" >"$TMP/pgbouncer/stdout.log" 2>&1 &
fi
PGB_PID=$!
wait_sql "$PGB_PORT" 30 || {
  cat "$TMP/pgbouncer/stdout.log" "$TMP/pgbouncer/pgbouncer.log" >&2 2>/dev/null
  die "PgBouncer $PGB_VERSION on port $PGB_PORT does not answer SELECT 1"
}

# ---- 2b. routed: a second demo with 2 shards, and a proxy that shards the pgbench tables --------
# The demo's own proxy shards no pgbench table (it would pass them through to the home shard),
# so a second proxy runs on the same two servers with the demo config's one-line `sharding:`
# replaced: accounts and history by aid, branches by bid, tellers by tid. Tables, rows and
# primary keys all go through that proxy (like tests/clients/pgbench_sharded_test.sh): DDL is
# broadcast to both shards and COPY is split row by row, because pgbench -i's own data step runs
# in one transaction, which cannot span shards.
echo "bench: starting a second shardline demo (2 shards, 0 replicas) for the routed scenarios"
"$BIN" demo --dir "$TMP/cluster2" --shards 2 --replicas 0 --port "$SL2_PORT" --base-port "$PG2_PORT" --no-sample --http-port 0 \
  >"$TMP/demo2.log" 2>&1 &
DEMO2_PID=$!
# The replica demo (section 2c) starts meanwhile; it is waited for after the routed load.
echo "bench: starting a third shardline demo (1 shard, 1 replica) for the replica scenarios"
"$BIN" demo --dir "$TMP/cluster3" --shards 1 --replicas 1 --port "$SL3_PORT" --base-port "$PG3_PORT" --no-sample --http-port 0 \
  >"$TMP/demo3.log" 2>&1 &
DEMO3_PID=$!
wait_demo "$DEMO2_PID" "$TMP/demo2.log"
DEMO2_CONFIG=$TMP/cluster2/shardline.yaml
if ! grep -q '^sharding: ' "$DEMO2_CONFIG" || ! grep -q '^listen: ' "$DEMO2_CONFIG"; then
  die "$DEMO2_CONFIG has no one-line 'listen:' and 'sharding:' to replace"
fi
sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $ROUTED_PORT}/" \
  -e 's/^sharding: .*/sharding:\
  logical_shards: 1024\
  key: tenant_id\
  tables:\
    pgbench_accounts: {key: aid}\
    pgbench_history: {key: aid}\
    pgbench_branches: {key: bid}\
    pgbench_tellers: {key: tid}/' "$DEMO2_CONFIG" >"$TMP/routed.yaml"
ROUTED_POOL=$(sed -n 's/^pool:.*size: *\([0-9][0-9]*\).*/\1/p' "$TMP/routed.yaml")
"$BIN" serve --config "$TMP/routed.yaml" >"$TMP/routed.log" 2>&1 </dev/null &
ROUTED_PID=$!
wait_sql "$ROUTED_PORT" 60 || { tail -n 30 "$TMP/routed.log" >&2; die "the routing shardline on port $ROUTED_PORT does not answer SELECT 1"; }

routed_pgbench() {  # what -> log; pgbench -i steps through the routing proxy
  local what=$1 log=$2; shift 2
  PGPASSWORD=$DB_PASSWORD timeout 600 pgbench -h 127.0.0.1 -p "$ROUTED_PORT" -U "$DB_USER" "$@" "$DB_NAME" \
    >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "$what through the routing proxy failed (log above)"; }
}
shard_sql() {  # shard-index sql: as the superuser on one shard of the 2-shard demo
  psql -X -h "$TMP/cluster2/sock" -p $(( PG2_PORT + 10 * $1 )) -U postgres -d "$DB_NAME" -Atc "$2"
}
T_LOAD=$(date +%s)
echo "bench: pgbench -i -s $SCALE through the routing proxy (tables, COPY split by key, primary keys, vacuum)"
routed_pgbench "pgbench -i -I dt" "$TMP/routed-init-dt.log" -i -I dt -s "$SCALE"
# pgbench -i's rows for scale $SCALE: the same values and fillers as its client-side generation.
cat >"$TMP/gen.sh" <<'EOF'
case "$1" in
  branches) awk -v s="$2" 'BEGIN { for (i = 1; i <= s; i++) printf "%d\t0\n", i }' ;;
  tellers) awk -v s="$2" 'BEGIN { for (i = 1; i <= 10 * s; i++) printf "%d\t%d\t0\n", i, int((i - 1) / 10) + 1 }' ;;
  accounts) awk -v s="$2" 'BEGIN { for (i = 1; i <= 100000 * s; i++) printf "%d\t%d\t0\t\n", i, int((i - 1) / 100000) + 1 }' ;;
esac
EOF
routed_copy() {  # table columns rows
  local out
  out=$(PGPASSWORD=$DB_PASSWORD psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$ROUTED_PORT" -U "$DB_USER" -d "$DB_NAME" \
    -c "\\copy pgbench_$1 ($2) from program 'bash $TMP/gen.sh $1 $SCALE'" 2>&1) || true
  [[ $out == "COPY $3" ]] || die "\\copy into pgbench_$1 through the routing proxy: want 'COPY $3', got: $out"
}
routed_copy branches "bid, bbalance" "$SCALE"
routed_copy tellers "tid, bid, tbalance" "$(( 10 * SCALE ))"
routed_copy accounts "aid, bid, abalance, filler" "$(( 100000 * SCALE ))"
routed_pgbench "pgbench -i -I p" "$TMP/routed-init-p.log" -i -I p -s "$SCALE"
routed_pgbench "pgbench -i -I v" "$TMP/routed-init-v.log" -i -I v -s "$SCALE"
ROUTED_ROWS=()
for shard in 0 1; do
  n=$(shard_sql "$shard" "SELECT count(*) FROM pgbench_accounts") || die "cannot count the accounts of shard s$shard"
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || die "shard s$shard of the 2-shard demo holds no accounts ('$n')"
  ROUTED_ROWS+=("$n")
done
(( ROUTED_ROWS[0] + ROUTED_ROWS[1] == 100000 * SCALE )) \
  || die "the shards hold ${ROUTED_ROWS[0]} + ${ROUTED_ROWS[1]} accounts, not $(( 100000 * SCALE ))"
LOAD_SECS=$(( $(date +%s) - T_LOAD ))
echo "bench: loaded in ${LOAD_SECS} s: s0 holds ${ROUTED_ROWS[0]} accounts, s1 ${ROUTED_ROWS[1]}"
# routed2pc: the routing config with cross_shard_transactions: 2pc, on the same two shards.
sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $TWOPC_PORT}/" \
  -e 's/^  key: tenant_id$/  key: tenant_id\
  cross_shard_transactions: 2pc/' "$TMP/routed.yaml" >"$TMP/routed2pc.yaml"
grep -q '^  cross_shard_transactions: 2pc$' "$TMP/routed2pc.yaml" || die "could not set cross_shard_transactions in $TMP/routed2pc.yaml"
"$BIN" serve --config "$TMP/routed2pc.yaml" >"$TMP/routed2pc.log" 2>&1 </dev/null &
TWOPC_PID=$!
wait_sql "$TWOPC_PORT" 60 || { tail -n 30 "$TMP/routed2pc.log" >&2; die "shardline serve (routed2pc) on port $TWOPC_PORT does not answer SELECT 1"; }

# ---- 2c. replicas: 1 shard + 1 streaming replica, one proxy per replica config -----------------
# The demo's config lists the replica; each proxy gets that file with its own listen port and
# its own one-line `replicas:` (the demo's lag limits and poll interval, which the demo writes):
#   rep_session   default_consistency session, track_commit_lsn true  (reads may use the replica)
#   rep_strong    default_consistency strong                           (primary only)
#   rep_eventual  default_consistency eventual                         (any eligible replica)
#   rep_notrack   default_consistency session, track_commit_lsn false  (no commit-LSN probe)
# rep_session and rep_notrack differ in track_commit_lsn only: the write-only A/B pair.
wait_demo "$DEMO3_PID" "$TMP/demo3.log"
DEMO3_CONFIG=$TMP/cluster3/shardline.yaml
REP_LIMITS=$(sed -n 's/^replicas: *{\(max_lag_bytes: *[0-9]*, *max_lag_ms: *[0-9]*, *poll_interval_ms: *[0-9]*\).*/\1/p' "$DEMO3_CONFIG")
[[ -n $REP_LIMITS ]] || die "$DEMO3_CONFIG has no one-line 'replicas: {max_lag_bytes: ..., max_lag_ms: ..., poll_interval_ms: ...}' to replace"
grep -q "replicas: \[{host: 127.0.0.1, port: $(( PG3_PORT + 1 ))}\]" "$DEMO3_CONFIG" \
  || die "$DEMO3_CONFIG does not list the replica on port $(( PG3_PORT + 1 ))"
grep -q '^listen: ' "$DEMO3_CONFIG" || die "$DEMO3_CONFIG has no one-line 'listen:' to replace"
echo "bench: pgbench -i -s $SCALE directly against the replica demo's primary"
PGPASSWORD=$DB_PASSWORD pgbench -i -s "$SCALE" -q -h 127.0.0.1 -p "$PG3_PORT" -U "$DB_USER" "$DB_NAME" \
  >"$TMP/init3.log" 2>&1 || { cat "$TMP/init3.log" >&2; die "pgbench -i on the replica demo failed"; }
declare -A REP_CONSISTENCY=([rep_session]=session [rep_strong]=strong [rep_eventual]=eventual [rep_notrack]=session)
declare -A REP_TRACK=([rep_session]=true [rep_strong]=true [rep_eventual]=true [rep_notrack]=false)
for t in "${REP_TARGETS[@]}"; do
  sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: ${REP_PORT[$t]}}/" \
    -e "s/^replicas: .*/replicas: {$REP_LIMITS, default_consistency: ${REP_CONSISTENCY[$t]}, report_lsn: true, track_commit_lsn: ${REP_TRACK[$t]}}/" \
    "$DEMO3_CONFIG" >"$TMP/$t.yaml"
  "$BIN" serve --config "$TMP/$t.yaml" >"$TMP/$t.log" 2>&1 </dev/null &
  REP_PID[$t]=$!
done
for t in "${REP_TARGETS[@]}"; do
  wait_sql "${REP_PORT[$t]}" 60 || { tail -n 30 "$TMP/$t.log" >&2; die "shardline serve ($t) on port ${REP_PORT[$t]} does not answer SELECT 1"; }
done
# ---- 2d. metrics on vs off: the first demo's config, only admin.metrics differs -----------------
grep -q '^admin: {' "$TMP/cluster/shardline.yaml" || die "$TMP/cluster/shardline.yaml has no one-line 'admin: {...}' to extend"
declare -A MET_VALUE=([met_on]=true [met_off]=false)
for t in "${MET_TARGETS[@]}"; do
  sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: ${MET_PORT[$t]}}/" \
    -e "s/^admin: {/admin: {metrics: ${MET_VALUE[$t]}, /" "$TMP/cluster/shardline.yaml" >"$TMP/$t.yaml"
  "$BIN" serve --config "$TMP/$t.yaml" >"$TMP/$t.log" 2>&1 </dev/null &
  MET_PID[$t]=$!
done
for t in "${MET_TARGETS[@]}"; do
  wait_sql "${MET_PORT[$t]}" 60 || { tail -n 30 "$TMP/$t.log" >&2; die "shardline serve ($t) on port ${MET_PORT[$t]} does not answer SELECT 1"; }
done

# 90% reads / 10% single-statement UPDATEs in autocommit, the aid uniform over the table.
cat >"$TMP/readheavy.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set r random(1, 10)
\if :r = 1
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
\else
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
\endif
EOF

# pgbench -M simple with a different text every time, so that the proxy's template cache
# misses on every statement: \set r makes each literal pair new. -s is given because pgbench
# sets :scale to 1 for custom scripts otherwise.
cat >"$TMP/distinct.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set r random(1, 1000000000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND :r = :r;
EOF

# ---- 3./4. pgbench scenarios -------------------------------------------------------------------
SCENARIOS=("-S -M simple -c 16" "-S -M extended -c 16" "-S -M prepared -c 16" "-S -M extended -c 1" "-N -M extended -c 16")
TARGETS=(direct pgbouncer shardline)
# routed: the proxy sharding the pgbench tables over the 2-shard demo (section 2b); it only
# runs the routed scenarios below, not SCENARIOS.
declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$PGB_PORT [shardline]=$SL_PORT [routed]=$ROUTED_PORT [routed2pc]=$TWOPC_PORT)
declare -A PROXY_PID=([direct]="" [pgbouncer]=$PGB_PID [shardline]=$DEMO_PID [routed]=$ROUTED_PID [routed2pc]=$TWOPC_PID)
declare -A PROXY_LOG=([pgbouncer]=$TMP/pgbouncer/pgbouncer.log [shardline]=$TMP/demo.log [routed]=$TMP/routed.log
                      [routed2pc]=$TMP/routed2pc.log)
for t in "${REP_TARGETS[@]}"; do
  PORT[$t]=${REP_PORT[$t]}; PROXY_PID[$t]=${REP_PID[$t]}; PROXY_LOG[$t]=$TMP/$t.log
done
for t in "${MET_TARGETS[@]}"; do
  PORT[$t]=${MET_PORT[$t]}; PROXY_PID[$t]=${MET_PID[$t]}; PROXY_LOG[$t]=$TMP/$t.log
done
declare -A TPS AVG P50 P99 CPU STATUS NOTE
declare -A DOWN  # target -> the scenario during which its process exited

# Runs one pgbench and fills TPS/AVG/P50/P99/CPU/STATUS/NOTE[idx,target]. STATUS is ok, na
# (PgBouncer without prepared statement support) or error.
run_one() {
  local idx=$1 target=$2 scen=$3
  local key="$idx,$target" port=${PORT[$target]} pid=${PROXY_PID[$target]}
  local prefix="$TMP/logs/s$idx.$target" out="$TMP/out/s$idx.$target.txt"
  local clients threads rc c0=0 c1=0
  clients=$(awk '{ for (i = 1; i < NF; i++) if ($i == "-c") print $(i + 1) }' <<<"$scen")
  threads=$(( clients < 2 ? clients : 2 ))
  if [[ -n ${DOWN[$target]:-} ]]; then
    STATUS[$key]=error; NOTE[$key]="not run: $target exited during ${DOWN[$target]}"; return
  fi
  [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
  set +e
  # shellcheck disable=SC2086  # $scen is a list of pgbench options
  PGPASSWORD=$DB_PASSWORD timeout $(( SECS + 60 )) pgbench -n -h 127.0.0.1 -p "$port" -U "$DB_USER" \
    $scen -j "$threads" -T "$SECS" --log --log-prefix="$prefix" "$DB_NAME" >"$out" 2>&1
  rc=$?
  set -e
  if [[ -n $pid ]]; then
    if ! kill -0 "$pid" 2>/dev/null; then
      DOWN[$target]="'$scen'"
      STATUS[$key]=error
      NOTE[$key]="$target process exited during the run: $(tail -n 3 "${PROXY_LOG[$target]}" 2>/dev/null | tr '\n' ' ')"
      return
    fi
    c1=$(cpu_ticks "$pid")
  fi
  local txns failed errline
  txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
  errline=$(grep -m1 -E 'ERROR|FATAL|error|aborted|timed out|terminated' "$out" || true)
  if [[ $rc -ne 0 || -z $txns || $txns -eq 0 || ${failed:-0} -ne 0 ]]; then
    if [[ $target == pgbouncer && $scen == *"-M prepared"* ]] && (( ! PGB_HAS_PREPARED )); then
      STATUS[$key]=na
      NOTE[$key]="PgBouncer $PGB_VERSION has no prepared statement support in transaction mode: ${errline:-exit $rc}"
    else
      STATUS[$key]=error
      NOTE[$key]="pgbench exit $rc${failed:+, $failed failed transactions}: ${errline:-$(tail -n 1 "$out")}"
      [[ $rc -eq 124 ]] && NOTE[$key]="pgbench did not finish within $(( SECS + 60 )) s (hang?): ${errline}"
    fi
    return
  fi
  STATUS[$key]=ok
  TPS[$key]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n 1)
  # Column 3 of the per-transaction log is the latency in microseconds (non-numeric if failed).
  local stats
  stats=$(cat "$prefix".[0-9]* | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n | awk '
    { v[NR] = $1; s += $1 }
    END {
      if (NR == 0) { print "- - -"; exit }
      i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++; if (i99 < 1) i99 = 1
      printf "%.1f %d %d\n", s / NR, v[i50], v[i99]
    }')
  read -r "AVG[$key]" "P50[$key]" "P99[$key]" <<<"$stats"
  if [[ -n $pid ]]; then
    CPU[$key]=$(awk -v d=$(( c1 - c0 )) -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
  fi
  rm -f "$prefix".[0-9]*
}

# Warm-up: caches, and each proxy's server pool, before anything is measured.
for target in "${TARGETS[@]}" routed routed2pc "${REP_TARGETS[@]}" "${MET_TARGETS[@]}"; do
  PGPASSWORD=$DB_PASSWORD pgbench -n -h 127.0.0.1 -p "${PORT[$target]}" -U "$DB_USER" -S -c 4 -j 2 -T 1 \
    "$DB_NAME" >"$TMP/out/warmup.$target.txt" 2>&1 || true
done

# ROUTED_IDX: the scenario also run through the routing proxy, right after the pass-through
# runs it is compared with. DL: the distinct-literal script (key "dl,TARGET").
ROUTED_IDX=1
DL_OPTS="-M simple -c 16 -s $SCALE -f $TMP/distinct.sql"
DL_LABEL="distinct literals, -M simple -c 16"
for idx in "${!SCENARIOS[@]}"; do
  targets=("${TARGETS[@]}")
  (( idx == ROUTED_IDX )) && targets+=(routed)
  for target in "${targets[@]}"; do
    echo "bench: pgbench ${SCENARIOS[$idx]} -j 2 -T $SECS against $target"
    run_one "$idx" "$target" "${SCENARIOS[$idx]}"
  done
done
for target in direct shardline routed; do
  echo "bench: pgbench $DL_LABEL -j 2 -T $SECS against $target"
  run_one dl "$target" "$DL_OPTS"
done

# Scatter reads: tenant-less statements the routed proxy sends to both shards and merges (count
# summed; a k-way merge of the shards' first 10 rows), against the same statement on one shard
# (the pass-through proxy over the one-database setup) and directly.
echo 'SELECT count(*) FROM pgbench_accounts;' >"$TMP/scatter_count.sql"
echo 'SELECT aid, abalance FROM pgbench_accounts ORDER BY aid DESC LIMIT 10;' >"$TMP/scatter_top.sql"
SC_NAMES=(count top)
declare -A SC_OPTS=([count]="-M extended -c 4 -f $TMP/scatter_count.sql" [top]="-M extended -c 4 -f $TMP/scatter_top.sql")
declare -A SC_LABEL=([count]="SELECT count(*) FROM pgbench_accounts" [top]="SELECT aid, abalance FROM pgbench_accounts ORDER BY aid DESC LIMIT 10")
for sc in "${SC_NAMES[@]}"; do
  for target in direct shardline routed; do
    echo "bench: pgbench scatter '${SC_LABEL[$sc]}' -M extended -c 4 -j 2 -T $SECS against $target"
    run_one "sc$sc" "$target" "${SC_OPTS[$sc]}"
  done
done

# ---- 4b. replica scenarios (section 2c) --------------------------------------------------------
# Reads per run: the transactions pgbench processed minus the writes, which are counted exactly
# by the growth of sum(abalance) (each UPDATE adds 1). Reads the replica served: the growth of
# reads_served of s0's replica in that proxy's SHOW REPLICAS.
RH_OPTS="-M extended -c 16 -s $SCALE -f $TMP/readheavy.sql"
RH_LABEL="90% reads / 10% UPDATE, -M extended -c 16"
declare -A RH_READS RH_WRITES RH_REPLICA RH_STATE RH_NOTE
replica_row() {  # port -> "reads_served|state|lag_ms" of s0's replica 0, from the admin console
  PGPASSWORD=$DB_PASSWORD psql -X -h 127.0.0.1 -p "$1" -U "$DB_USER" -d shardline -A -F'|' \
    -c 'SHOW REPLICAS' 2>/dev/null | awk -F'|' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["shard"] == "s0" && $col["replica"] == "0" { print $col["reads_served"] "|" $col["state"] "|" $col["lag_ms"] }'
}
abalance_sum() {  # on the replica demo's primary, as the superuser
  psql -X -h "$TMP/cluster3/sock" -p "$PG3_PORT" -U postgres -d "$DB_NAME" -Atc 'SELECT sum(abalance) FROM pgbench_accounts'
}
readheavy_run() {  # target
  local t=$1 key="rh,$1" r0 r1 w0 w1 txns
  r0=$(replica_row "${PORT[$t]}" || true); w0=$(abalance_sum || true)
  echo "bench: pgbench $RH_LABEL -j 2 -T $SECS against $t (${REP_CONSISTENCY[$t]} consistency)"
  run_one rh "$t" "$RH_OPTS"
  [[ ${STATUS[$key]} == ok ]] || return 0
  r1=$(replica_row "${PORT[$t]}" || true); w1=$(abalance_sum || true)
  txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TMP/out/srh.$t.txt")
  if [[ $w0 =~ ^[0-9]+$ && $w1 =~ ^[0-9]+$ ]]; then
    RH_WRITES[$key]=$(( w1 - w0 )); RH_READS[$key]=$(( txns - (w1 - w0) ))
  else RH_NOTE[$key]="sum(abalance) not readable ('$w0', '$w1')"; fi
  if [[ ${r0%%|*} =~ ^[0-9]+$ && ${r1%%|*} =~ ^[0-9]+$ ]]; then
    RH_REPLICA[$key]=$(( ${r1%%|*} - ${r0%%|*} ))
    RH_STATE[$key]=$(awk -F'|' '{ printf "%s, lag %s ms", $2, ($3 == "" ? "?" : $3) }' <<<"$r1")
  else RH_NOTE[$key]+="${RH_NOTE[$key]:+; }SHOW REPLICAS gave no s0 replica row ('$r0', '$r1')"; fi
}
for t in rep_session rep_strong rep_eventual; do readheavy_run "$t"; done
# Commit-LSN probe on (rep_session) vs off (rep_notrack), same servers, alternated A B A B so
# that drift (checkpoints, table growth, other load) falls on both.
WO_SCEN="-N -M extended -c 16"
WO_ROUNDS=(1 2)
for round in "${WO_ROUNDS[@]}"; do
  for t in rep_session rep_notrack; do
    echo "bench: pgbench $WO_SCEN -j 2 -T $SECS against $t (track_commit_lsn ${REP_TRACK[$t]}, round $round)"
    run_one "wo$round" "$t" "$WO_SCEN"
  done
done

# Metrics on (met_on) vs off (met_off), same server, alternated A B A B.
MET_SCEN="-S -M simple -c 16"
MET_ROUNDS=(1 2 3)
for round in "${MET_ROUNDS[@]}"; do
  for t in met_on met_off; do
    echo "bench: pgbench $MET_SCEN -j 2 -T $SECS against $t (admin.metrics ${MET_VALUE[$t]}, round $round)"
    run_one "met$round" "$t" "$MET_SCEN"
  done
done

# Two-phase commit (routed2pc): a transaction of two INSERTs on one shard vs one on each shard
# (its COMMIT is PREPARE, the decision in the catalog, COMMIT PREPARED), and the one-shard
# transaction with 2pc on (routed2pc) vs off (routed), alternated. INSERTs into pgbench_history
# (sharded by aid) of two aids that live on s0 and s1: no row contention between clients.
TX_A0=$(shard_sql 0 "SELECT min(aid) FROM pgbench_accounts")
TX_A1=$(shard_sql 1 "SELECT min(aid) FROM pgbench_accounts")
cat >"$TMP/tx1.sql" <<'EOF'
BEGIN;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :a0, 1, now());
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :a0, 2, now());
END;
EOF
sed 's/:a0, 2,/:a1, 2,/' "$TMP/tx1.sql" >"$TMP/tx2.sql"
TX_OPTS="-M simple -c 4 -D a0=$TX_A0 -D a1=$TX_A1"
for tx in tx1 tx2; do
  echo "bench: pgbench $TX_OPTS -f $tx.sql -j 2 -T $SECS against routed2pc"
  run_one "$tx" routed2pc "$TX_OPTS -f $TMP/$tx.sql"
done
declare -A TP_VALUE=([routed2pc]=2pc [routed]=deny)
TP_ROUNDS=(1 2 3)
for round in "${TP_ROUNDS[@]}"; do
  for t in routed2pc routed; do
    echo "bench: pgbench $TX_OPTS -f tx1.sql -j 2 -T $SECS against $t (cross_shard_transactions ${TP_VALUE[$t]}, round $round)"
    run_one "tp$round" "$t" "$TX_OPTS -f $TMP/tx1.sql"
  done
done
TX_PREPARED=$(( $(shard_sql 0 "SELECT count(*) FROM pg_prepared_xacts") + $(shard_sql 1 "SELECT count(*) FROM pg_prepared_xacts") ))

# Both shards must have served the routed runs, or they measured a one-shard path.
ROUTED_XACTS=$(PGPASSWORD=$DB_PASSWORD psql -X -h 127.0.0.1 -p "$ROUTED_PORT" -U "$DB_USER" -d shardline -A -F'|' \
  -c 'SHOW STATS' 2>&1 | awk -F'|' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["role"] == "primary" && $col["total_xact_count"] ~ /^[0-9]+$/ { printf "%s%s %s", sep, $col["shard"], $col["total_xact_count"]; sep = ", " }')

# ---- 5. idle clients: proxy RSS ---------------------------------------------------------------
declare -A RSS0 RSS1 CONN_RATE IDLE_NOTE
idle_test() {
  local target=$1 pid=${PROXY_PID[$1]} port=${PORT[$1]} out="$TMP/out/idle.$1.txt" line i
  if [[ -n ${DOWN[$target]:-} ]]; then IDLE_NOTE[$target]="not run: $target is down"; return; fi
  RSS0[$target]=$(rss_kb "$pid")
  echo "bench: opening $IDLE_CLIENTS idle connections to $target"
  $PY "$HERE/idle_clients.py" --port "$port" --user "$DB_USER" --password "$DB_PASSWORD" \
    --dbname "$DB_NAME" -n "$IDLE_CLIENTS" --connect-timeout 150 >"$out" 2>&1 &
  IDLE_PID=$!
  for (( i = 0; i < 1700; i++ )); do
    grep -qE '^(CONNECTED|ERROR)' "$out" 2>/dev/null && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
  done
  line=$(grep -m1 -E '^(CONNECTED|ERROR)' "$out" || true)
  if [[ $line != CONNECTED* ]]; then
    IDLE_NOTE[$target]="idle clients failed: ${line:-$(tail -n 2 "$out" | tr '\n' ' ')}"
    kill -0 "$pid" 2>/dev/null || IDLE_NOTE[$target]+=" ($target process exited)"
  else
    sleep 1  # let the proxy settle after the last handshake
    RSS1[$target]=$(rss_kb "$pid")
    CONN_RATE[$target]=$(awk '{ print $4 }' <<<"$line")
    IDLE_NOTE[$target]="$(awk '{ printf "%d connected in %s s", $2, $3 }' <<<"$line")"
    # The idle clients must still work: a sample of them runs SELECT 1.
    kill -USR1 "$IDLE_PID"
    for (( i = 0; i < 600; i++ )); do
      grep -qE '^(VERIFIED|ERROR)' "$out" 2>/dev/null && break
      kill -0 "$IDLE_PID" 2>/dev/null || break
      sleep 0.1
    done
    line=$(grep -m1 -E '^(VERIFIED|ERROR)' "$out" || true)
    if [[ $line == VERIFIED* ]]; then
      IDLE_NOTE[$target]+=", $(awk '{ print $2 }' <<<"$line") sampled ones answered SELECT 1"
    else
      IDLE_NOTE[$target]+=", but SELECT 1 on them failed: ${line:-no answer}"
      RSS1[$target]=""
    fi
  fi
  kill -TERM "$IDLE_PID" 2>/dev/null || true
  wait "$IDLE_PID" 2>/dev/null || true
  IDLE_PID=""
}
idle_test shardline
idle_test pgbouncer

# ---- 5a. proxy ceiling: both proxies in front of the null backend (PostgreSQL out of the picture) --
echo "bench: proxy ceiling: shardline and PgBouncer in front of null_backend"
NULL_REPORT=$(bash "$HERE/null_ceiling.sh" "$BUILD" "$TMP/cluster/shardline.yaml" "$TMP/pgbouncer/userlist.txt" \
  "$NB_PORT" "$NBSL_PORT" "$NBPGB_PORT" "$TMP/null" "$SECS" 2>&1) || NULL_REPORT="- null_ceiling.sh failed: $NULL_REPORT"

# ---- 5b. parser + router CPU per statement (bench/*_bench.cpp, Google Benchmark) ---------------
# Last, when no pgbench runs, so that the single-threaded figures are not shared with a load.
echo "bench: micro_bench (parser + router CPU per statement)"
declare -A MICRO_US MICRO_ERR
MICRO_NAMES=()
MICRO_NOTE=""
if timeout 300 "$MICRO" --benchmark_min_time=0.5 --benchmark_out="$TMP/micro.json" --benchmark_out_format=json \
     >"$TMP/micro.txt" 2>&1; then
  # name, CPU time per op in us (or ERROR and the message), iterations; one line each.
  while IFS=$'\t' read -r name us iters; do
    MICRO_NAMES+=("$name")
    if [[ $us == ERROR ]]; then MICRO_ERR[$name]=$iters; else MICRO_US[$name]=$us; fi
  done < <($PY - "$TMP/micro.json" <<'EOF'
import json, sys
scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("error_occurred"):
        print(b["name"], "ERROR", b.get("error_message", "error").replace("\t", " "), sep="\t")
    else:
        print(b["name"], "%.3f" % (b["cpu_time"] * scale[b["time_unit"]]), b["iterations"], sep="\t")
EOF
  )
  (( ${#MICRO_NAMES[@]} > 0 )) || MICRO_NOTE="micro_bench reported no benchmark: $(tail -n 3 "$TMP/micro.txt" | tr '\n' ' ')"
else
  MICRO_NOTE="micro_bench failed (exit $?): $(tail -n 3 "$TMP/micro.txt" | tr '\n' ' ')"
fi

# ---- 6. report --------------------------------------------------------------------------------
fmt_tps() {  # key -> cell
  case ${STATUS[$1]:-} in
    ok) printf '%.0f' "${TPS[$1]}" ;;
    na) printf 'n/a' ;;
    *) printf 'ERROR' ;;
  esac
}
ratio() {  # a b -> a/b with x, or -
  if [[ -n $1 && -n $2 ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; else printf -- '-'; fi
}
declare -A AB_MEAN_TPS AB_MEAN_CPU  # "PREFIX,TARGET" -> mean over ab_rounds' rounds (when all ran)
ab_rounds() {  # SETTING LABEL PREFIX ROUNDS_VAR VALUES_VAR A B SUFFIX: two configs run in alternated rounds
  local setting=$1 label=$2 prefix=$3 a=$6 b=$7 suffix=$8 t round k sum_tps sum_cpu n
  local -n ab_rounds_list=$4 ab_values=$5
  local -A mean_tps mean_cpu
  echo "| $setting | round | tps | p50/p99 ms | proxy CPU us/txn |"
  echo "|---|---:|---:|---:|---:|"
  for t in "$a" "$b"; do
    sum_tps=0; sum_cpu=0; n=0
    for round in "${ab_rounds_list[@]}"; do
      k="$prefix$round,$t"
      printf '| %s | %s | %s | %s | %s |\n' "${ab_values[$t]}" "$round" "$(fmt_tps "$k")" "$(lat "$k")" \
        "$( [[ ${STATUS[$k]:-} == ok ]] && echo "${CPU[$k]}" || echo -)"
      if [[ ${STATUS[$k]:-} == ok ]]; then
        sum_tps=$(awk -v a="$sum_tps" -v b="${TPS[$k]}" 'BEGIN { print a + b }')
        sum_cpu=$(awk -v a="$sum_cpu" -v b="${CPU[$k]}" 'BEGIN { print a + b }')
        n=$(( n + 1 ))
      fi
    done
    if (( n == ${#ab_rounds_list[@]} )); then
      mean_tps[$t]=$(awk -v a="$sum_tps" -v n="$n" 'BEGIN { printf "%.1f", a / n }')
      mean_cpu[$t]=$(awk -v a="$sum_cpu" -v n="$n" 'BEGIN { printf "%.1f", a / n }')
      printf '| %s | mean | %.0f | - | %s |\n' "${ab_values[$t]}" "${mean_tps[$t]}" "${mean_cpu[$t]}"
      AB_MEAN_TPS[$prefix,$t]=${mean_tps[$t]}; AB_MEAN_CPU[$prefix,$t]=${mean_cpu[$t]}
    fi
  done
  if [[ -n ${mean_tps[$a]:-} && -n ${mean_tps[$b]:-} ]]; then
    echo
    echo "- $label on vs off: tps $(ratio "${mean_tps[$a]}" "${mean_tps[$b]}")" \
         "($(awk -v a="${mean_tps[$a]}" -v b="${mean_tps[$b]}" 'BEGIN { printf "%+.1f%%", 100 * (a / b - 1) }')), proxy CPU" \
         "$(awk -v a="${mean_cpu[$a]}" -v b="${mean_cpu[$b]}" 'BEGIN { printf "%+.1f us/txn (%+.1f%%)", a - b, (b > 0 ? 100 * (a / b - 1) : 0) }')$suffix"
  fi
  for round in "${ab_rounds_list[@]}"; do
    for t in "$a" "$b"; do
      k="$prefix$round,$t"
      [[ ${STATUS[$k]:-} == ok ]] || echo "- $setting ${ab_values[$t]}, round $round: ${STATUS[$k]:-error}: ${NOTE[$k]:-}"
    done
  done
}

lat() {  # key -> p50/p99 in ms
  if [[ ${STATUS[$1]:-} == ok && ${P50[$1]} != - ]]; then
    awk -v a="${P50[$1]}" -v b="${P99[$1]}" 'BEGIN { printf "%.3f/%.3f", a / 1000, b / 1000 }'
  else printf -- '-'; fi
}
ok_tps() { if [[ ${STATUS[$1]:-} == ok ]]; then printf '%s' "${TPS[$1]}"; fi; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

REPORT="$TMP/report.md"
{
  echo "# shardline benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "shardline $(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo '?') vs PgBouncer $PGB_VERSION vs" \
       "PostgreSQL $(psql -X -h "$TMP/cluster/sock" -p "$PG_PORT" -U postgres -d postgres -Atc 'SHOW server_version' | cut -d' ' -f1)," \
       "pgbench -s $SCALE, ${SECS} s per run, -j 2, 1 shard, pool size $POOL_SIZE (transaction mode) in both proxies," \
       "$(nproc) CPUs, load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg) (other work shares the machine). Everything on 127.0.0.1, same machine: ratios matter, absolute numbers do not."
  echo
  echo "| scenario | direct tps | pgbouncer tps | shardline tps | shardline/direct | shardline/pgbouncer | direct p50/p99 ms | pgbouncer p50/p99 ms | shardline p50/p99 ms | shardline CPU us/txn | pgbouncer CPU us/txn |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for idx in "${!SCENARIOS[@]}"; do
    d="$idx,direct"; b="$idx,pgbouncer"; s="$idx,shardline"
    # shellcheck disable=SC2016  # the backquotes are Markdown
    printf '| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${SCENARIOS[$idx]}" \
      "$(fmt_tps "$d")" "$(fmt_tps "$b")" "$(fmt_tps "$s")" \
      "$(ratio "$(ok_tps "$s")" "$(ok_tps "$d")")" "$(ratio "$(ok_tps "$s")" "$(ok_tps "$b")")" \
      "$(lat "$d")" "$(lat "$b")" "$(lat "$s")" \
      "$( [[ ${STATUS[$s]:-} == ok ]] && echo "${CPU[$s]}" || echo -)" \
      "$( [[ ${STATUS[$b]:-} == ok ]] && echo "${CPU[$b]}" || echo -)"
  done
  echo
  for target in shardline pgbouncer; do
    if [[ -n ${RSS1[$target]:-} ]]; then
      echo "- idle clients, $target: RSS $(mb "${RSS0[$target]}") before, $(mb "${RSS1[$target]}") with $IDLE_CLIENTS idle clients" \
           "(+$(awk -v a="${RSS0[$target]}" -v b="${RSS1[$target]}" -v n="$IDLE_CLIENTS" 'BEGIN { printf "%.1f KB/client", (b - a) / n }'));" \
           "${IDLE_NOTE[$target]}, ${CONN_RATE[$target]} connects/s (SCRAM)"
    else
      echo "- idle clients, $target: ${IDLE_NOTE[$target]:-not measured}"
    fi
  done
  notes=0
  for idx in "${!SCENARIOS[@]}" dl; do
    if [[ $idx == dl ]]; then
      targets=(direct shardline routed); label=$DL_LABEL
    else
      targets=("${TARGETS[@]}"); label=${SCENARIOS[$idx]}
      [[ $idx == "$ROUTED_IDX" ]] && targets+=(routed)
    fi
    for target in "${targets[@]}"; do
      key="$idx,$target"
      if [[ ${STATUS[$key]:-} != ok ]]; then
        (( notes++ == 0 )) && echo
        echo "- \`$label\` $target: ${STATUS[$key]:-error}: ${NOTE[$key]:-}"
      fi
    done
  done

  echo
  echo "## Routed through 2 shards"
  echo
  echo "A second \`shardline demo --shards 2\` (two more PostgreSQL servers on this machine) and a second proxy," \
       "\`shardline serve\`, sharding pgbench_accounts/history by aid, branches by bid, tellers by tid" \
       "(1024 logical shards, s0 owns 0-511, s1 512-1023; pool size ${ROUTED_POOL:-?} per shard). Scale $SCALE loaded through that proxy" \
       "in ${LOAD_SECS} s (COPY split by key): s0 holds ${ROUTED_ROWS[0]} accounts, s1 ${ROUTED_ROWS[1]}." \
       "Transactions its shard primaries served (SHOW STATS, whole run): ${ROUTED_XACTS:-not available}." \
       "*pass-through* is the proxy of the main table: 1 shard, pgbench tables unsharded (no key to find), same run." \
       "The distinct-literal script sends \`SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND :r = :r\` with" \
       "\`\\set r random(1, 1000000000)\`, so (almost) every statement text is new and misses the proxy's template cache."
  echo
  echo "| scenario | what | shards | tps | vs pass-through | vs direct | p50/p99 ms | proxy CPU us/txn |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  routed_row() {  # idx label target what shards
    local k="$1,$3" vs_pass="-" vs_direct="-" cpu="-"
    if [[ $3 != direct ]]; then
      vs_direct=$(ratio "$(ok_tps "$k")" "$(ok_tps "$1,direct")")
      [[ ${STATUS[$k]:-} == ok ]] && cpu=${CPU[$k]}
    fi
    [[ $3 == routed ]] && vs_pass=$(ratio "$(ok_tps "$k")" "$(ok_tps "$1,shardline")")
    # shellcheck disable=SC2016  # the backquotes are Markdown
    printf '| `%s` | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$4" "$5" "$(fmt_tps "$k")" "$vs_pass" \
      "$vs_direct" "$(lat "$k")" "$cpu"
  }
  routed_row "$ROUTED_IDX" "${SCENARIOS[$ROUTED_IDX]}" direct "direct PostgreSQL" 1
  routed_row "$ROUTED_IDX" "${SCENARIOS[$ROUTED_IDX]}" shardline "shardline pass-through" 1
  routed_row "$ROUTED_IDX" "${SCENARIOS[$ROUTED_IDX]}" routed "shardline routed by aid" 2
  routed_row dl "$DL_LABEL" direct "direct PostgreSQL" 1
  routed_row dl "$DL_LABEL" shardline "shardline pass-through" 1
  routed_row dl "$DL_LABEL" routed "shardline routed by aid" 2
  echo
  echo "Scatter reads (\`-M extended -c 4 -j 2\`): the routed proxy runs the statement on both shards in parallel and" \
       "merges the answers (count summed; ORDER BY ... LIMIT 10 pushed to each shard as LIMIT 10 and k-way merged);" \
       "pass-through runs it on the one database that holds every row. *latency vs 1 shard*: routed average latency" \
       "over pass-through average latency (goal <= 2.2x)."
  echo
  echo "| scatter statement | what | shards | tps | avg latency ms | latency vs 1 shard | p50/p99 ms | proxy CPU us/txn |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for sc in "${SC_NAMES[@]}"; do
    for target in direct shardline routed; do
      k="sc$sc,$target"; vs="-"; avg="-"; cpu="-"
      [[ ${STATUS[$k]:-} == ok ]] && avg=$(awk -v a="${AVG[$k]}" 'BEGIN { printf "%.3f", a / 1000 }')
      [[ $target != direct && ${STATUS[$k]:-} == ok ]] && cpu=${CPU[$k]}
      [[ $target == routed && ${STATUS[$k]:-} == ok && ${STATUS[sc$sc,shardline]:-} == ok ]] && vs=$(ratio "${AVG[$k]}" "${AVG[sc$sc,shardline]}")
      case $target in direct) what="direct PostgreSQL"; n=1 ;; shardline) what="shardline pass-through"; n=1 ;; *) what="shardline scatter"; n=2 ;; esac
      # shellcheck disable=SC2016  # the backquotes are Markdown
      printf '| `%s` | %s | %s | %s | %s | %s | %s | %s |\n' "${SC_LABEL[$sc]}" "$what" "$n" "$(fmt_tps "$k")" "$avg" "$vs" "$(lat "$k")" "$cpu"
      [[ ${STATUS[$k]:-} == ok ]] || echo "| | ${STATUS[$k]:-error}: ${NOTE[$k]:-} | | | | | | |"
    done
  done

  echo
  echo "## Replica reads (1 shard + 1 streaming replica)"
  echo
  # shellcheck disable=SC2028  # bash's echo prints the backslashes of \if and \else as they are
  echo "A third \`shardline demo --shards 1 --replicas 1\` (a primary and its asynchronous streaming replica, both on this" \
       "machine, so the replica adds no CPU: 2 CPUs serve both servers, pgbench and the proxy) loaded with \`pgbench -i -s $SCALE\`;" \
       "one \`shardline serve\` per config on those two servers, all with the replica listed and the demo's lag limits" \
       "(\`${REP_LIMITS:-?}\`). Script: \`\\set aid random(1, 100000 * :scale)\`, \`\\set r random(1, 10)\`," \
       "\`\\if :r = 1\` UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid \`\\else\`" \
       "SELECT abalance FROM pgbench_accounts WHERE aid = :aid \`\\endif\` (each a one-statement autocommit transaction)," \
       "\`-M extended -c 16 -j 2\`. *writes*: UPDATEs, counted by the growth of sum(abalance); *reads*: transactions minus writes;" \
       "*by replica*: growth of \`reads_served\` in that proxy's \`SHOW REPLICAS\` over the run; *replica share* = by replica / reads." \
       "Session consistency sends a read to the replica only once the lag monitor has seen it replay that client's last write."
  echo
  echo "| default_consistency | routing | tps | vs strong | p50/p99 ms | proxy CPU us/txn | reads | writes | reads by replica | replica share | replica after run |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for t in rep_session rep_strong rep_eventual; do
    k="rh,$t"
    case $t in
      rep_session) what="(a) replica routing, session" ;;
      rep_strong) what="(b) primary only" ;;
      rep_eventual) what="(c) replica routing, eventual" ;;
    esac
    share="-" vs_strong="-"
    [[ $t == rep_strong ]] || vs_strong=$(ratio "$(ok_tps "$k")" "$(ok_tps rh,rep_strong)")
    if [[ -n ${RH_REPLICA[$k]:-} && -n ${RH_READS[$k]:-} ]] && (( RH_READS[$k] > 0 )); then
      share=$(awk -v a="${RH_REPLICA[$k]}" -v b="${RH_READS[$k]}" 'BEGIN { printf "%.1f%%", 100 * a / b }')
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${REP_CONSISTENCY[$t]}" "$what" "$(fmt_tps "$k")" \
      "$vs_strong" "$(lat "$k")" \
      "$( [[ ${STATUS[$k]:-} == ok ]] && echo "${CPU[$k]}" || echo -)" "${RH_READS[$k]:--}" "${RH_WRITES[$k]:--}" \
      "${RH_REPLICA[$k]:--}" "$share" "${RH_STATE[$k]:--}"
  done
  for t in rep_session rep_strong rep_eventual; do
    k="rh,$t"
    [[ ${STATUS[$k]:-} == ok ]] || echo "- $t: ${STATUS[$k]:-error}: ${NOTE[$k]:-}"
    [[ -z ${RH_NOTE[$k]:-} ]] || echo "- $t: ${RH_NOTE[$k]}"
  done

  echo
  echo "## Commit-LSN tracking cost (write-only)"
  echo
  echo "\`pgbench $WO_SCEN -j 2\` (BEGIN; UPDATE accounts; SELECT; UPDATE tellers; INSERT history; END: one commit, so one" \
       "commit-LSN probe per transaction when on) through two proxies on the replica demo's servers whose configs differ only in" \
       "\`replicas.track_commit_lsn\`: on (\`SELECT pg_current_wal_insert_lsn()\` pipelined behind each commit, version cookie sent)" \
       "vs off (no probe; reads of that shard wait for the next primary sample). Runs alternated on, off, on, off; *mean* = the mean of" \
       "the rounds' tps and of their CPU us/txn."
  echo
  ab_rounds track_commit_lsn tracking wo WO_ROUNDS REP_TRACK rep_session rep_notrack ""
  echo
  echo "## Two-phase commit (\`cross_shard_transactions: 2pc\`, 2 shards)"
  echo
  echo "\`pgbench $TX_OPTS -j 2\`: BEGIN; two INSERTs into pgbench_history; END. *one shard*: both rows on s0 (aid $TX_A0);" \
       "*two shards*: one on s0, one on s1 (aid $TX_A1), so COMMIT is PREPARE TRANSACTION on both, the decision written to" \
       "shardline.twopc_log, COMMIT PREPARED on both. Prepared transactions left on the shards after the runs: $TX_PREPARED."
  echo
  echo "| transaction | tps | p50/p99 ms | proxy CPU us/txn |"
  echo "|---|---:|---:|---:|"
  for tx in tx1 tx2; do
    k="$tx,routed2pc"
    printf '| %s | %s | %s | %s |\n' "$( [[ $tx == tx1 ]] && echo "one shard" || echo "two shards (2PC)")" "$(fmt_tps "$k")" \
      "$(lat "$k")" "$( [[ ${STATUS[$k]:-} == ok ]] && echo "${CPU[$k]}" || echo -)"
    [[ ${STATUS[$k]:-} == ok ]] || echo "- $tx: ${STATUS[$k]:-error}: ${NOTE[$k]:-}"
  done
  if [[ ${STATUS[tx1,routed2pc]:-} == ok && ${STATUS[tx2,routed2pc]:-} == ok ]]; then
    echo
    echo "- two-shard / one-shard transaction: mean latency $(ratio "${AVG[tx2,routed2pc]}" "${AVG[tx1,routed2pc]}")," \
         "tps $(ratio "${TPS[tx2,routed2pc]}" "${TPS[tx1,routed2pc]}")"
  fi
  echo
  echo "One-shard transaction (tx1 above) through two proxies on the same shards whose configs differ only in" \
       "\`cross_shard_transactions\`; alternated 2pc, deny, ...; goal: no measurable difference."
  echo
  ab_rounds cross_shard_transactions "2pc (one-shard transactions)" tp TP_ROUNDS TP_VALUE routed2pc routed "; goal: no difference"
  echo
  echo "## Metrics cost (single shard, \`pgbench $MET_SCEN -j 2\`)"
  echo
  echo "Two \`shardline serve\` on the first demo's server whose configs differ only in \`admin.metrics\` (on: every statement" \
       "counts into the registry: per-pool counter and latency histogram, per-tenant sketch, SQLSTATEs; off: none of it)." \
       "Runs alternated on, off, on, off, on, off; *mean* over the rounds. On a loaded machine the rounds of one config differ by more than 2%: BM_MetricsPerQuery* below is the steadier figure (ns per statement against this table's CPU us/txn)."
  echo
  ab_rounds admin.metrics metrics met MET_ROUNDS MET_VALUE met_on met_off "; target: under 2%"
  echo
  echo "## Proxy ceiling: null backend (bench/null_ceiling.sh)"
  echo
  grep -v '^GOAL ' <<<"$NULL_REPORT"
  echo
  echo "## Parser + router CPU per statement (micro_bench, bench/router_bench.cpp)"
  echo
  if [[ -n $MICRO_NOTE ]]; then
    echo "- $MICRO_NOTE"
  else
    echo "One thread, Google Benchmark, CPU time per operation; pgbench's statement texts, the routed proxy's sharding config."
    echo
    echo "| benchmark | what | us/op |"
    echo "|---|---|---:|"
    for name in "${MICRO_NAMES[@]}"; do
      case $name in
        BM_CacheHitExtended) what="cache hit: TemplateCache::get of pgbench -S's \$1 text + route with a Bind value" ;;
        BM_CacheHitSimple) what="cache hit: a repeated text with a literal key + route" ;;
        BM_CacheMissBuildAndRoute) what="cache miss: build_route_template of a new text (libpg_query parse) + route" ;;
        BM_CacheMissThroughCache) what="cache miss as the proxy pays it: TemplateCache::get (parse, insert, evict) + route" ;;
        BM_HashBigintText) what="logical_shard_of_text, bigint key" ;;
        BM_HashTextKey) what="logical_shard_of_text, text key" ;;
        BM_MetricsPerQuery) what="metrics per statement: QueryMeter routed + forwarded + ready (counter, histogram, tenant sketch; 100k tenants)" ;;
        BM_MetricsPerQueryNoTenant) what="metrics per statement without a tenant (e.g. pgbench tables unsharded)" ;;
        BM_MetricsPerQueryOff) what="the same with admin.metrics: false" ;;
        *) what="" ;;
      esac
      printf '| %s | %s | %s |\n' "$name" "$what" "${MICRO_US[$name]:-ERROR: ${MICRO_ERR[$name]:-}}"
    done
  fi

  echo
  echo "## Goals"
  echo
  goal() {  # verdict text
    echo "- **$1** $2"
  }
  # 1. issue 13: -S -M extended -c 16 >= 1.10x PgBouncer, -M simple >= 1.05x PgBouncer
  pgb_goal() {  # idx min
    local s b
    s=$(ok_tps "$1,shardline"); b=$(ok_tps "$1,pgbouncer")
    if [[ -n $s && -n $b ]]; then
      goal "$(awk -v s="$s" -v b="$b" -v m="$2" 'BEGIN { print (s >= m * b) ? "PASS" : "MISS" }')" \
        "\`${SCENARIOS[$1]}\`: shardline >= ${2}x PgBouncer: $(ratio "$s" "$b")"
    else goal MISS "\`${SCENARIOS[$1]}\`: shardline >= ${2}x PgBouncer: not measured"; fi
  }
  pgb_goal 1 1.10
  pgb_goal 0 1.05
  # 2. -M prepared: shardline >= 0.80x direct
  s=$(ok_tps "2,shardline"); d=$(ok_tps "2,direct")
  if [[ -n $s && -n $d ]]; then
    v=$(awk -v s="$s" -v d="$d" 'BEGIN { print (s >= 0.80 * d) ? "PASS" : "MISS" }')
    goal "$v" "\`-S -M prepared -c 16\`: shardline >= 0.80x direct: $(ratio "$s" "$d")"
  else goal MISS "\`-S -M prepared -c 16\`: shardline >= 0.80x direct: not measured"; fi
  # 3. -c 1: added average latency <= 20 us
  if [[ ${STATUS[3,shardline]:-} == ok && ${STATUS[3,direct]:-} == ok ]]; then
    add=$(awk -v s="${AVG[3,shardline]}" -v d="${AVG[3,direct]}" 'BEGIN { printf "%.1f", s - d }')
    v=$(awk -v a="$add" 'BEGIN { print (a <= 20) ? "PASS" : "MISS" }')
    add50=$(( P50[3,shardline] - P50[3,direct] ))
    goal "$v" "\`-S -M extended -c 1\`: added average latency <= 20 us: ${add} us (average: shardline ${AVG[3,shardline]} us, direct ${AVG[3,direct]} us$( [[ ${STATUS[3,pgbouncer]:-} == ok ]] && echo ", pgbouncer ${AVG[3,pgbouncer]} us"); added at p50: ${add50} us)"
  else goal MISS "\`-S -M extended -c 1\`: added average latency <= 20 us: not measured"; fi
  # 4. proxy CPU per transaction <= 15 us on -S -M extended -c 16 (the worst scenario reported too)
  worst=""; worst_scen=""; missing=0
  for idx in "${!SCENARIOS[@]}"; do
    if [[ ${STATUS[$idx,shardline]:-} != ok ]]; then missing=1; continue; fi
    if [[ -z $worst ]] || awk -v a="${CPU[$idx,shardline]}" -v b="$worst" 'BEGIN { exit !(a > b) }'; then
      worst=${CPU[$idx,shardline]}; worst_scen=${SCENARIOS[$idx]}
    fi
  done
  if [[ ${STATUS[1,shardline]:-} == ok ]]; then
    v=$(awk -v a="${CPU[1,shardline]}" 'BEGIN { print (a <= 15) ? "PASS" : "MISS" }')
    goal "$v" "shardline CPU per transaction <= 15 us on \`${SCENARIOS[1]}\`: ${CPU[1,shardline]} us (PgBouncer ${CPU[1,pgbouncer]:--} us); worst scenario ${worst} us (\`$worst_scen\`)$( (( missing )) && echo '; some scenarios failed')"
  else goal MISS "shardline CPU per transaction <= 15 us on \`${SCENARIOS[1]}\`: not measured"; fi
  # 5. 10,000 idle clients, RSS <= 64 MB
  if [[ -n ${RSS1[shardline]:-} ]]; then
    v=$(awk -v k="${RSS1[shardline]}" -v n="$IDLE_CLIENTS" 'BEGIN { print (k <= 32 * 1024 && n >= 10000) ? "PASS" : "MISS" }')
    goal "$v" "$IDLE_CLIENTS idle clients (goal: 10,000) with shardline RSS <= 32 MB: $(mb "${RSS1[shardline]}")"
  else goal MISS "10,000 idle clients with shardline RSS <= 32 MB: ${IDLE_NOTE[shardline]:-not measured}"; fi
  # 6./7. routed through 2 shards vs pass-through shardline (1 shard), same run
  routed_goal() {  # idx label min
    local r p
    r=$(ok_tps "$1,routed"); p=$(ok_tps "$1,shardline")
    if [[ -n $r && -n $p ]]; then
      goal "$(awk -v r="$r" -v p="$p" -v m="$3" 'BEGIN { print (r >= m * p) ? "PASS" : "MISS" }')" \
        "\`$2\`: routed (2 shards) >= ${3}x pass-through shardline (1 shard): $(ratio "$r" "$p") ($(printf '%.0f' "$r") vs $(printf '%.0f' "$p") tps)"
    else goal MISS "\`$2\`: routed (2 shards) >= ${3}x pass-through shardline (1 shard): not measured"; fi
  }
  routed_goal "$ROUTED_IDX" "${SCENARIOS[$ROUTED_IDX]}" 0.95
  routed_goal dl "$DL_LABEL" 0.7
  # 10. scatter latency on 2 shards <= 2.2x the same statement on 1 shard
  for sc in "${SC_NAMES[@]}"; do
    if [[ ${STATUS[sc$sc,routed]:-} == ok && ${STATUS[sc$sc,shardline]:-} == ok ]]; then
      goal "$(awk -v r="${AVG[sc$sc,routed]}" -v p="${AVG[sc$sc,shardline]}" 'BEGIN { print (r <= 2.2 * p) ? "PASS" : "MISS" }')" \
        "scatter \`${SC_LABEL[$sc]}\` on 2 shards: average latency <= 2.2x one shard's: $(ratio "${AVG[sc$sc,routed]}" "${AVG[sc$sc,shardline]}") (${AVG[sc$sc,routed]} vs ${AVG[sc$sc,shardline]} us)"
    else goal MISS "scatter \`${SC_LABEL[$sc]}\` on 2 shards: latency <= 2.2x one shard's: not measured (${NOTE[sc$sc,routed]:-${NOTE[sc$sc,shardline]:-}})"; fi
  done
  # 8. parser + router per statement on a cache hit <= 5 us
  if [[ -n ${MICRO_US[BM_CacheHitExtended]:-} ]]; then
    goal "$(awk -v u="${MICRO_US[BM_CacheHitExtended]}" 'BEGIN { print (u <= 5) ? "PASS" : "MISS" }')" \
      "parser+router per statement on a cache hit: ${MICRO_US[BM_CacheHitExtended]} us (goal <= 5 us; literal key: ${MICRO_US[BM_CacheHitSimple]:--} us; cache miss: ${MICRO_US[BM_CacheMissThroughCache]:--} us)"
  else goal MISS "parser+router per statement on a cache hit (goal <= 5 us): not measured ${MICRO_NOTE:-${MICRO_ERR[BM_CacheHitExtended]:-}}"; fi
  # 8b. a distinct statement (template cache miss) costs <= 20 us
  if [[ -n ${MICRO_US[BM_CacheMissThroughCache]:-} ]]; then
    goal "$(awk -v u="${MICRO_US[BM_CacheMissThroughCache]}" 'BEGIN { print (u <= 20) ? "PASS" : "MISS" }')" \
      "parse miss (a distinct statement through the template cache) <= 20 us: ${MICRO_US[BM_CacheMissThroughCache]} us"
  else goal MISS "parse miss <= 20 us: not measured"; fi
  # 9. commit-LSN tracking costs <= 2% TPS on a write-only run
  a=${AB_MEAN_TPS[wo,rep_session]:-}; b=${AB_MEAN_TPS[wo,rep_notrack]:-}
  if [[ -n $a && -n $b ]]; then
    goal "$(awk -v a="$a" -v b="$b" 'BEGIN { print (a >= 0.98 * b) ? "PASS" : "MISS" }')" \
      "\`$WO_SCEN\`: commit-LSN tracking costs <= 2% tps: $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f%% loss", 100 * (1 - a / b) }')" \
      "(track_commit_lsn true $(printf '%.0f' "$a") vs false $(printf '%.0f' "$b") tps, mean of ${#WO_ROUNDS[@]} alternated rounds each;" \
      "proxy CPU ${AB_MEAN_CPU[wo,rep_session]} vs ${AB_MEAN_CPU[wo,rep_notrack]} us/txn)"
  else goal MISS "\`$WO_SCEN\`: commit-LSN tracking costs <= 2% tps: not measured"; fi
  # 11. the proxy's own ceiling: tps per CPU core in front of the null backend, vs PgBouncer's
  null_goal=$(sed -n 's/^GOAL \(PASS\|MISS\) /\1\t/p' <<<"$NULL_REPORT")
  if [[ -n $null_goal ]]; then goal "${null_goal%%$'\t'*}" "${null_goal#*$'\t'}"
  else goal MISS "null backend: shardline tps per core >= PgBouncer's: not measured"; fi
  goal MISS "null backend: 2 threads >= 1.8x one thread: not measured (the data plane runs one thread; no \`threads:\` setting yet)"
  echo
  echo "Latency: p50/p99 from pgbench per-transaction logs (--log); averages from the same logs." \
       "CPU: utime+stime of the proxy process from /proc/PID/stat over the run / transactions." \
       "PgBouncer $PGB_VERSION$( (( PGB_HAS_PREPARED )) || echo ' has no prepared statement support, so -M prepared through it is n/a, not a failure'). Total run time $(( $(date +%s) - T_START )) s."
} >"$REPORT"

# Reshard scenario (its own 2-shard demo): appended to the report.
echo "bench: reshard scenario (bench/reshard_bench.sh)"
if ! bash "$HERE/reshard_bench.sh" "$BUILD" >>"$REPORT" 2>"$TMP/reshard_bench.err"; then
  { echo; echo "## Reshard"; echo; echo "not measured: $(tail -n 3 "$TMP/reshard_bench.err" | tr '\n' ' ')"; } >>"$REPORT"
fi

echo
cat "$REPORT"
cp "$REPORT" "$BUILD/bench-results.md"
echo
echo "bench: written to $BUILD/bench-results.md"
