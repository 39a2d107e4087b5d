# Shared helpers for tests/clients/*_test.sh; source it as `. "$(dirname "$0")/lib.sh" "$1"`.
#
# Each test script starts its own throw-away cluster with `shardline demo` (primaries on free
# ports, the proxy on a free port), drives one real client against the proxy, and counts
# assertions. An EXIT trap stops the demo with SIGINT (the proxy then stops every PostgreSQL
# server it started) and, should the proxy not exit, stops any server still running itself, so a
# failing or interrupted test never leaves a server behind.
#
# Variables set for the test: SL_BUILD, SL_BIN, SL_CLIENTS (this folder), SL_WORK (temp dir),
# SL_PORT (proxy), SL_APP_PORT (where application clients connect: the proxy, or the first
# primary when SL_DIRECT=1 is set to check an expectation against PostgreSQL itself),
# SL_BASE_PORT (first primary), SL_USER, SL_PASSWORD, SL_DATABASE.
# SL_KEEP=1 keeps the work dir and prints the demo log at the end.

set -uo pipefail

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: bash $0 <build_dir>   (the directory holding the shardline binary)" >&2
  exit 2
fi
SL_BUILD=$(cd "$1" && pwd)
SL_BIN="$SL_BUILD/shardline"
SL_CLIENTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SL_NAME=$(basename "$0" _test.sh)
SL_USER=app
SL_PASSWORD=secret
SL_DATABASE=app
SL_PASSED=0
SL_FAILED=0
SL_XFAILED=0
SL_WORK=""
SL_DEMO_PID=""
SL_PORT=""
SL_APP_PORT=""
export PGCONNECT_TIMEOUT=10

if [ ! -x "$SL_BIN" ]; then
  echo "$SL_NAME: $SL_BIN is missing or not executable; build the target shardline first" >&2
  exit 2
fi

# ---- assertions ---------------------------------------------------------------------------

pass() {
  SL_PASSED=$((SL_PASSED + 1))
  echo "ok   - $1"
}

fail() {
  SL_FAILED=$((SL_FAILED + 1))
  echo "FAIL - $1" >&2
  if [ $# -gt 1 ]; then printf '%s\n' "$2" | sed 's/^/       /' >&2; fi
}

# check_eq NAME EXPECTED ACTUAL: exact string comparison, shows both on failure.
check_eq() {
  if [ "$2" == "$3" ]; then
    pass "$1"
  else
    fail "$1" "expected: $(printf '%q' "$2")
actual:   $(printf '%q' "$3")"
  fi
}

# check_match NAME REGEX ACTUAL: extended regular expression match (for text with timings).
check_match() {
  if [[ "$3" =~ $2 ]]; then
    pass "$1"
  else
    fail "$1" "expected to match: $2
actual: $3"
  fi
}

# finish: the summary line every script ends with; the exit code says whether all passed.
finish() {
  if [ "$SL_XFAILED" -ne 0 ]; then
    echo "$SL_NAME: $SL_PASSED passed, $SL_FAILED failed, $SL_XFAILED expected failures (KNOWN_FAILURES)"
  else
    echo "$SL_NAME: $SL_PASSED passed, $SL_FAILED failed"
  fi
  if [ "$SL_FAILED" -ne 0 ] || [ "$SL_PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}

# ---- ports --------------------------------------------------------------------------------

# port_free PORT: nothing listens on 127.0.0.1:PORT and a listener could bind it now.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()
EOF
    return $?
  fi
  return 0
}

# pick_ports SHARDS REPLICAS: sets SL_BASE_PORT (shard i's servers use base+10*i .. +REPLICAS)
# and SL_PORT (the proxy), all free now. Random starting points keep parallel runs apart.
pick_ports() {
  local shards=$1 replicas=$2 attempt base ok i j
  for attempt in $(seq 1 50); do
    # Below the ephemeral range (32768+), where outgoing connections would take ports.
    base=$((20000 + (RANDOM % 1200) * 10))
    ok=1
    for ((i = 0; i < shards && ok; i++)); do
      for ((j = 0; j <= replicas; j++)); do
        if ! port_free $((base + 10 * i + j)); then ok=0; break; fi
      done
    done
    [ "$ok" -eq 1 ] || continue
    SL_BASE_PORT=$base
    SL_PORT=$((base + 10 * shards + 5))
    if port_free "$SL_PORT"; then return 0; fi
  done
  echo "$SL_NAME: no free port range found after 50 attempts" >&2
  return 1
}

# ---- the demo cluster ---------------------------------------------------------------------

# Stops every PostgreSQL server still running under the work dir (used only when the proxy did
# not stop them itself, e.g. it was killed).
stop_leftover_servers() {
  local pidfile datadir pg_ctl
  pg_ctl=$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1)
  [ -n "$SL_WORK" ] && [ -d "$SL_WORK" ] || return 0
  while IFS= read -r pidfile; do
    datadir=$(dirname "$pidfile")
    echo "$SL_NAME: stopping leftover server in $datadir" >&2
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$pg_ctl" stop -D "$datadir" -m immediate -w >/dev/null 2>&1
    else
      "$pg_ctl" stop -D "$datadir" -m immediate -w >/dev/null 2>&1
    fi
  done < <(find "$SL_WORK" -name postmaster.pid 2>/dev/null)
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [ -n "$SL_DEMO_PID" ] && kill -0 "$SL_DEMO_PID" 2>/dev/null; then
    kill -INT "$SL_DEMO_PID" 2>/dev/null
    for i in $(seq 1 300); do
      kill -0 "$SL_DEMO_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SL_DEMO_PID" 2>/dev/null; then
      echo "$SL_NAME: demo (pid $SL_DEMO_PID) ignored SIGINT for 30 s; sending SIGTERM" >&2
      kill -TERM "$SL_DEMO_PID" 2>/dev/null
      for i in $(seq 1 100); do
        kill -0 "$SL_DEMO_PID" 2>/dev/null || break
        sleep 0.1
      done
    fi
    if kill -0 "$SL_DEMO_PID" 2>/dev/null; then
      echo "$SL_NAME: demo (pid $SL_DEMO_PID) still running; sending SIGKILL" >&2
      kill -KILL "$SL_DEMO_PID" 2>/dev/null
    fi
    wait "$SL_DEMO_PID" 2>/dev/null
  fi
  stop_leftover_servers
  if [ -n "$SL_WORK" ] && [ -d "$SL_WORK" ]; then
    if [ "$rc" -ne 0 ] || [ -n "${SL_KEEP:-}" ]; then
      echo "$SL_NAME: demo log (work dir $SL_WORK):" >&2
      tail -n 40 "$SL_WORK/demo.log" >&2
    fi
    if [ -n "${SL_KEEP:-}" ]; then
      echo "$SL_NAME: keeping $SL_WORK (SL_KEEP is set)" >&2
    else
      rm -rf "$SL_WORK"
    fi
  fi
  exit "$rc"
}

# start_demo [SHARDS] [REPLICAS]: starts `shardline demo` in the background and waits (120 s at
# most) until the proxy answers a query. Exits the test on failure, printing the demo log.
start_demo() {
  local shards=${1:-2} replicas=${2:-0} deadline
  SL_WORK=$(mktemp -d "${TMPDIR:-/tmp}/shardline-$SL_NAME.XXXXXX") || exit 2
  # The servers run as the postgres OS user, which must be able to reach the cluster dir.
  chmod 755 "$SL_WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  pick_ports "$shards" "$replicas" || exit 2
  echo "# $SL_NAME: shardline demo --shards $shards --replicas $replicas --port $SL_PORT --base-port $SL_BASE_PORT (dir $SL_WORK/cluster)"
  "$SL_BIN" demo --dir "$SL_WORK/cluster" --shards "$shards" --replicas "$replicas" \
    --port "$SL_PORT" --base-port "$SL_BASE_PORT" --no-sample --http-port 0 >"$SL_WORK/demo.log" 2>&1 </dev/null &
  SL_DEMO_PID=$!
  deadline=$((SECONDS + 120))
  until (exec 3<>"/dev/tcp/127.0.0.1/$SL_PORT") 2>/dev/null; do
    if ! kill -0 "$SL_DEMO_PID" 2>/dev/null; then
      wait "$SL_DEMO_PID"
      echo "$SL_NAME: shardline demo exited (status $?) before the proxy listened; log:" >&2
      cat "$SL_WORK/demo.log" >&2
      SL_DEMO_PID=""
      exit 2
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$SL_NAME: the proxy did not accept on port $SL_PORT within 120 s; log:" >&2
      cat "$SL_WORK/demo.log" >&2
      exit 2
    fi
    sleep 0.2
  done
  until [ "$(PGPASSWORD="$SL_PASSWORD" timeout 10 psql -X -At -h 127.0.0.1 -p "$SL_PORT" -U "$SL_USER" \
    -d "$SL_DATABASE" -c 'SELECT 1' 2>/dev/null)" == "1" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$SL_NAME: the proxy listens but does not answer SELECT 1 within 120 s; log:" >&2
      cat "$SL_WORK/demo.log" >&2
      exit 2
    fi
    sleep 0.2
  done
  echo "# $SL_NAME: proxy ready on 127.0.0.1:$SL_PORT after ${SECONDS}s"
  SL_APP_PORT=$SL_PORT
  if [ -n "${SL_DIRECT:-}" ]; then
    # Debugging aid: run the client against the first primary itself, to tell a proxy bug from
    # a wrong expectation. Admin console checks then still go to the proxy.
    SL_APP_PORT=$SL_BASE_PORT
    echo "# $SL_NAME: SL_DIRECT is set: application clients connect to 127.0.0.1:$SL_APP_PORT directly"
  fi
}

# ---- psql ---------------------------------------------------------------------------------

# psql_proxy ARGS...: psql to the application database through the proxy (no psqlrc, stop on
# the first error, quiet).
psql_proxy() {
  PGPASSWORD="$SL_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${SL_APP_PORT:-$SL_PORT}" \
    -U "$SL_USER" -d "$SL_DATABASE" "$@"
}

# psql_admin ARGS...: psql to the proxy's admin console (database shardline).
psql_admin() {
  PGPASSWORD="$SL_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SL_PORT" \
    -U "$SL_USER" -d shardline "$@"
}

# psql_direct SHARD ARGS...: psql straight to shard SHARD's primary, bypassing the proxy (to
# check what landed where, or to compare with the proxy's answer).
psql_direct() {
  local shard=$1
  shift
  PGPASSWORD="$SL_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
    -p $((SL_BASE_PORT + 10 * shard)) -U "$SL_USER" -d "$SL_DATABASE" "$@"
}

# proxy_url [DATABASE]: a libpq/node-style URL for the proxy.
proxy_url() {
  echo "postgresql://$SL_USER:$SL_PASSWORD@127.0.0.1:${SL_APP_PORT:-$SL_PORT}/${1:-$SL_DATABASE}"
}

# ---- driver programs ------------------------------------------------------------------------

# run_client LABEL CMD...: runs a driver program (bounded to 100 s) that prints `ok - ...` /
# `FAIL - ...` lines and ends with `result: N passed, M failed` (optionally followed by
# `, K expected failures`: checks of scenarios in the program's KNOWN_FAILURES list); adds its
# counts to this script's. A program that dies, hangs or prints no result line counts as one
# more failure.
run_client() {
  local label=$1 out rc line p f x re
  shift
  out=$(timeout -k 5 100 "$@" 2>&1)
  rc=$?
  re='^result: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) expected failures)?$'
  printf '%s\n' "$out" | grep -v '^result: '
  line=$(printf '%s\n' "$out" | grep -E "$re" | tail -1)
  if [ -z "$line" ]; then
    fail "$label exited with status $rc without a result line"
    return
  fi
  [[ "$line" =~ $re ]]
  p=${BASH_REMATCH[1]}
  f=${BASH_REMATCH[2]}
  x=${BASH_REMATCH[4]:-0}
  SL_PASSED=$((SL_PASSED + p))
  SL_FAILED=$((SL_FAILED + f))
  SL_XFAILED=$((SL_XFAILED + x))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    fail "$label exited with status $rc although it reported no failure"
  fi
}

# ---- more proxies on the demo's servers ---------------------------------------------------

SL_PROXY_PIDS=()
SL_SHARDED_PID=""
SL_SHARDED_PORT=""
SL_STARTED_PORT=""

# stop_proxies: stops every proxy start_proxy started (SIGTERM, then SIGKILL after 10 s);
# harmless when none runs.
stop_proxies() {
  local pid i
  for pid in "${SL_PROXY_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$SL_NAME: the proxy (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  SL_PROXY_PIDS=()
  SL_SHARDED_PID=""
}

# Kept for callers of the single sharding proxy.
stop_sharded_proxy() { stop_proxies; }

# start_proxy NAME SHARDS SHARDING_YAML [DATABASE]: after start_demo, runs `shardline serve` on the demo's
# servers with the demo config's one-line `sharding:` replaced by SHARDING_YAML (complete lines,
# starting with `sharding:`), using only the demo's first SHARDS shards (the logical shards
# split evenly over them; `all`: the demo's shards and directory as they are), serving DATABASE
# (default: the demo's) to its users and on the shards, listening on a free port above the demo proxy's. SL_PROXY_LOG_LEVEL
# (e.g. debug) sets its log_level. Its config and log are $SL_WORK/NAME.yaml and NAME.log. Waits
# (60 s at most) until it answers SELECT 1; sets SL_STARTED_PORT; stops it on exit before lib.sh's
# cleanup. Exits the test, printing the proxy's log, when it does not come up.
start_proxy() {
  local name=$1 shards=$2 demo_config="$SL_WORK/cluster/shardline.yaml" p port="" deadline pid
  for ((p = SL_PORT + 1; p <= SL_PORT + 4; p++)); do
    if port_free "$p"; then port=$p; break; fi
  done
  if [ -z "$port" ]; then
    echo "$SL_NAME: no free port next to $SL_PORT for the proxy $name" >&2
    exit 2
  fi
  if ! grep -q '^sharding: ' "$demo_config" || ! grep -q '^listen: ' "$demo_config"; then
    echo "$SL_NAME: the demo config $demo_config has no one-line 'listen:' and 'sharding:' to replace:" >&2
    cat "$demo_config" >&2
    exit 2
  fi
  SL_SHARDING_YAML="$3" awk -v port="$port" -v shards="$shards" -v level="${SL_PROXY_LOG_LEVEL:-}" \
    -v db="${4:-}" '
    /^listen: / { print "listen: {host: 127.0.0.1, port: " port "}"; next }
    db != "" && (/^backend: / || /^  - {name: /) { sub(/database: [^,}]*/, "database: " db) }
    /^sharding: / { print ENVIRON["SL_SHARDING_YAML"]; next }
    shards == "all" { if (/^  /) { print; next } }
    shards != "all" && /^directory:/ {
      print
      for (i = 0; i < shards; i++)
        printf "  - {logical: %d-%d, shard: s%d}\n", i * 1024 / shards, (i + 1) * 1024 / shards - 1, i
      section = "directory"; next
    }
    /^shards:/ { print; section = "shards"; next }
    /^[^ ]/ { section = "" }
    section == "directory" { next }
    section == "shards" { n = $1; sub(/^s/, "", n); sub(/:$/, "", n); if (n + 0 >= shards) next }
    { print }
    END { if (level != "") print "log_level: " level }' "$demo_config" >"$SL_WORK/$name.yaml"
  # lib.sh's cleanup reads the exit status first: hand it over unchanged.
  trap 'rc=$?; stop_proxies; (exit $rc); cleanup' EXIT
  "$SL_BIN" serve --config "$SL_WORK/$name.yaml" >"$SL_WORK/$name.log" 2>&1 </dev/null &
  pid=$!
  SL_PROXY_PIDS+=("$pid")
  deadline=$((SECONDS + 60))
  until [ "$(PGPASSWORD="$SL_PASSWORD" timeout 10 psql -X -At -h 127.0.0.1 -p "$port" \
    -U "$SL_USER" -d "${4:-$SL_DATABASE}" -c 'SELECT 1' 2>/dev/null)" == "1" ]; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$SL_NAME: the proxy $name did not answer on port $port; config and log:" >&2
      cat "$SL_WORK/$name.yaml" "$SL_WORK/$name.log" >&2
      exit 2
    fi
    sleep 0.2
  done
  SL_STARTED_PORT=$port
  echo "# $SL_NAME: proxy $name ($shards shard(s)) ready on 127.0.0.1:$port (config $SL_WORK/$name.yaml)"
}

# start_sharded_proxy SHARDING_YAML: start_proxy on all the demo's shards; sets SL_SHARDED_PORT
# and SL_SHARDED_PID. The demo proxy itself shards no table, so tests of sharded tables need it.
start_sharded_proxy() {
  start_proxy sharded all "$1"
  SL_SHARDED_PORT=$SL_STARTED_PORT
  SL_SHARDED_PID=${SL_PROXY_PIDS[-1]}
}

# The tenant-CRUD driver tests' setup: a 2-shard demo and a second proxy sharding accounts and
# notes by tenant_id (plans is a reference table). Sets `directory` to the sharding proxy's live
# map ("first-last=shard,..."), which the clients use as their placement oracle.
start_tenant_crud_cluster() {
  start_demo 2 0
  start_sharded_proxy 'sharding:
  logical_shards: 1024
  key: tenant_id
  tables: {accounts: {}, notes: {}}
  reference_tables: [plans]'
  directory=$(PGPASSWORD="$SL_PASSWORD" psql -X -q -At -F' ' -h 127.0.0.1 -p "$SL_SHARDED_PORT" \
    -U "$SL_USER" -d shardline -c 'SHOW DIRECTORY' 2>&1 | awk '{ printf "%s%s-%s=%s", sep, $1, $2, $3; sep = "," }')
  check_match "SHOW DIRECTORY on the sharding proxy lists the ranges of s0 and s1" \
    '^0-[0-9]+=s[01](,[0-9]+-[0-9]+=s[01])+$' "$directory"
}

# ---- the driver matrix: direct, one shard, two shards ----------------------------------------

# start_driver_cluster SHARDED_TABLES: the driver tests' setup. A 2-shard demo; a database
# SL_ONE_DATABASE (app_one) on shard s0 with a proxy using only s0 (SL_ONE_PORT: the catalog of
# a proxy lives in its backend database, so a one-shard directory needs its own); and a proxy
# sharding SHARDED_TABLES (a YAML flow map such as `{a_items: {}, a_log: {}}`) by tenant_id over
# both shards (SL_SHARDED_PORT). The clients' target list is then:
#   direct        s0's primary, database app_one (PostgreSQL itself: every check must pass;
#                 not database app, whose tables must stay alike on both shards)
#   proxy-1shard  127.0.0.1:SL_ONE_PORT, database app_one
#   proxy-2shard  127.0.0.1:SL_SHARDED_PORT, database app (cross_shard_transactions: 2pc, so
#                 a driver's transaction may span the shards)
start_driver_cluster() {
  local out
  start_demo 2 0
  SL_ONE_DATABASE=app_one
  out=$(psql_superuser 0 -c "CREATE DATABASE $SL_ONE_DATABASE OWNER $SL_USER" 2>&1) || {
    echo "$SL_NAME: creating database $SL_ONE_DATABASE on s0 failed: $out" >&2
    exit 2
  }
  start_proxy one-shard 1 "sharding: {logical_shards: 1024, key: tenant_id}" "$SL_ONE_DATABASE"
  SL_ONE_PORT=$SL_STARTED_PORT
  start_sharded_proxy "sharding:
  logical_shards: 1024
  key: tenant_id
  cross_shard_transactions: 2pc
  tables: $1"
}

# psql_superuser SHARD ARGS...: psql as the servers' superuser over the cluster's Unix socket.
psql_superuser() {
  local shard=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$SL_WORK/cluster/sock" \
      -p $((SL_BASE_PORT + 10 * shard)) -U postgres -d postgres "$@"
  else
    psql -X -q -v ON_ERROR_STOP=1 -h "$SL_WORK/cluster/sock" -p $((SL_BASE_PORT + 10 * shard)) \
      -U postgres -d postgres "$@"
  fi
}

# target_port TARGET / target_database TARGET: where a client of TARGET connects.
target_port() {
  case $1 in
    direct) echo "$SL_BASE_PORT" ;;
    proxy-1shard) echo "$SL_ONE_PORT" ;;
    proxy-2shard) echo "$SL_SHARDED_PORT" ;;
  esac
}
target_database() {
  case $1 in
    direct | proxy-1shard) echo "$SL_ONE_DATABASE" ;;
    *) echo "$SL_DATABASE" ;;
  esac
}

# run_targets LABEL CMD...: run_client CMD... TARGET HOST PORT USER PASSWORD DATABASE S0_PORT
# S1_PORT for each target in turn (SL_TARGETS, default all three, picks a subset).
run_targets() {
  local label=$1 target
  shift
  for target in ${SL_TARGETS:-direct proxy-1shard proxy-2shard}; do
    echo "# $SL_NAME: $label against $target"
    run_client "$label ($target)" "$@" "$target" 127.0.0.1 "$(target_port "$target")" "$SL_USER" \
      "$SL_PASSWORD" "$(target_database "$target")" "$SL_BASE_PORT" $((SL_BASE_PORT + 10))
  done
}

# ---- known failures in shell tests ------------------------------------------------------------

# A script may declare, before its checks, `declare -A KNOWN_FAILURES=([SCENARIO]="bug" ...)`
# (SCENARIO, or TARGET:SCENARIO for one target only) for proxy bugs that are not fixed yet.
# check_known TARGET SCENARIO NAME EXPECTED ACTUAL: check_eq, except that for a listed scenario
# (never for TARGET direct) a mismatch counts as an expected failure and a match as a failure
# ("remove it from KNOWN_FAILURES"), so the list only shrinks.
check_known() {
  local target=$1 scenario=$2 name="[$1] $2: $3" bug=""
  if [ "$target" != direct ] && declare -p KNOWN_FAILURES >/dev/null 2>&1; then
    bug=${KNOWN_FAILURES["$target:$scenario"]:-${KNOWN_FAILURES["$scenario"]:-}}
  fi
  if [ -z "$bug" ]; then
    check_eq "$name" "$4" "$5"
  elif [ "$4" == "$5" ]; then
    fail "$name: passed, but KNOWN_FAILURES lists it ($bug); remove it from the list"
  else
    SL_XFAILED=$((SL_XFAILED + 1))
    echo "xfail - $name (expected failure: $bug)"
    diff <(printf '%s\n' "$4") <(printf '%s\n' "$5") | head -20 | sed 's/^/       /'
  fi
}
