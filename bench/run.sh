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

# Stops, in order, what this script started: idle clients, PgBouncer, then the demo (SIGINT, so
# that it stops its PostgreSQL servers itself). A demo that died leaves its servers behind: they
# are stopped from their pid files.
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
  if [[ -n $DEMO_PID ]] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -INT "$DEMO_PID"
    for _ in $(seq 1 600); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DEMO_PID" 2>/dev/null; then
      echo "bench: shardline demo (pid $DEMO_PID) ignored SIGINT for 60 s; killing it" >&2
      kill -KILL "$DEMO_PID"
    fi
    wait "$DEMO_PID" 2>/dev/null
  fi
  local d
  for d in "$TMP"/cluster/s*; do
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
TAKEN_PORTS=" "
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    [[ $TAKEN_PORTS == *" $p "* ]] && continue
    if $PY - "$p" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()
EOF
    then TAKEN_PORTS+="$p "; echo "$p"; return 0; fi
  done
  die "no free port found on 127.0.0.1"
}
PG_PORT=$(pick_port)
SL_PORT=$(pick_port)
PGB_PORT=$(pick_port)

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
"$BIN" demo --dir "$TMP/cluster" --shards 1 --replicas 0 --port "$SL_PORT" --base-port "$PG_PORT" \
  >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 1800); do
  grep -q 'shardline demo is up' "$TMP/demo.log" 2>/dev/null && break
  kill -0 "$DEMO_PID" 2>/dev/null || { tail -n 30 "$TMP/demo.log" >&2; die "shardline demo exited during startup"; }
  sleep 0.1
done
grep -q 'shardline demo is up' "$TMP/demo.log" || { tail -n 30 "$TMP/demo.log" >&2; die "shardline demo did not come up in 180 s"; }
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

# ---- 3./4. pgbench scenarios -------------------------------------------------------------------
SCENARIOS=("-S -M simple -c 16" "-S -M extended -c 16" "-S -M prepared -c 16" "-S -M extended -c 1" "-N -M extended -c 16")
TARGETS=(direct pgbouncer shardline)
declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$PGB_PORT [shardline]=$SL_PORT)
declare -A PROXY_PID=([direct]="" [pgbouncer]=$PGB_PID [shardline]=$DEMO_PID)
declare -A TPS AVG P50 P99 CPU STATUS NOTE
SHARDLINE_DOWN=""

# Runs one pgbench and fills TPS/AVG/P50/P99/CPU/STATUS/NOTE[idx,target]. STATUS is ok, na
# (PgBouncer without prepared statement support) or error.
run_one() {
  local idx=$1 target=$2 scen=$3
  local key="$idx,$target" port=${PORT[$target]} pid=${PROXY_PID[$target]}
  local prefix="$TMP/logs/s$idx.$target" out="$TMP/out/s$idx.$target.txt"
  local clients threads rc c0=0 c1=0
  clients=$(awk '{ for (i = 1; i < NF; i++) if ($i == "-c") print $(i + 1) }' <<<"$scen")
  threads=$(( clients < 2 ? clients : 2 ))
  if [[ $target == shardline && -n $SHARDLINE_DOWN ]]; then
    STATUS[$key]=error; NOTE[$key]="not run: shardline exited during $SHARDLINE_DOWN"; return
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
      [[ $target == shardline ]] && SHARDLINE_DOWN="'$scen'"
      STATUS[$key]=error
      NOTE[$key]="$target process exited during the run: $(tail -n 3 "$TMP/demo.log" 2>/dev/null | tr '\n' ' ')"
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
for target in "${TARGETS[@]}"; do
  PGPASSWORD=$DB_PASSWORD pgbench -n -h 127.0.0.1 -p "${PORT[$target]}" -U "$DB_USER" -S -c 4 -j 2 -T 1 \
    "$DB_NAME" >"$TMP/out/warmup.$target.txt" 2>&1 || true
done

for idx in "${!SCENARIOS[@]}"; do
  for target in "${TARGETS[@]}"; do
    echo "bench: pgbench ${SCENARIOS[$idx]} -j 2 -T $SECS against $target"
    run_one "$idx" "$target" "${SCENARIOS[$idx]}"
  done
done

# ---- 5. idle clients: proxy RSS ---------------------------------------------------------------
declare -A RSS0 RSS1 CONN_RATE IDLE_NOTE
idle_test() {
  local target=$1 pid=${PROXY_PID[$1]} port=${PORT[$1]} out="$TMP/out/idle.$1.txt" line i
  if [[ $target == shardline && -n $SHARDLINE_DOWN ]]; then IDLE_NOTE[$target]="not run: shardline is down"; return; fi
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
  for idx in "${!SCENARIOS[@]}"; do
    for target in "${TARGETS[@]}"; do
      key="$idx,$target"
      if [[ ${STATUS[$key]:-} != ok ]]; then
        (( notes++ == 0 )) && echo
        echo "- \`${SCENARIOS[$idx]}\` $target: ${STATUS[$key]:-error}: ${NOTE[$key]:-}"
      fi
    done
  done

  echo
  echo "## Goals"
  echo
  goal() {  # verdict text
    echo "- **$1** $2"
  }
  # 1. -S -M extended -c 16: shardline >= 1.0x PgBouncer
  s=$(ok_tps "1,shardline"); b=$(ok_tps "1,pgbouncer")
  if [[ -n $s && -n $b ]]; then
    v=$(awk -v s="$s" -v b="$b" 'BEGIN { print (s >= b) ? "PASS" : "MISS" }')
    goal "$v" "\`-S -M extended -c 16\`: shardline >= 1.0x PgBouncer: $(ratio "$s" "$b")"
  else goal MISS "\`-S -M extended -c 16\`: shardline >= 1.0x PgBouncer: not measured"; fi
  # 2. -M prepared: shardline >= 0.75x direct
  s=$(ok_tps "2,shardline"); d=$(ok_tps "2,direct")
  if [[ -n $s && -n $d ]]; then
    v=$(awk -v s="$s" -v d="$d" 'BEGIN { print (s >= 0.75 * d) ? "PASS" : "MISS" }')
    goal "$v" "\`-S -M prepared -c 16\`: shardline >= 0.75x direct: $(ratio "$s" "$d")"
  else goal MISS "\`-S -M prepared -c 16\`: shardline >= 0.75x direct: not measured"; fi
  # 3. -c 1: added average latency <= 20 us
  if [[ ${STATUS[3,shardline]:-} == ok && ${STATUS[3,direct]:-} == ok ]]; then
    add=$(awk -v s="${AVG[3,shardline]}" -v d="${AVG[3,direct]}" 'BEGIN { printf "%.1f", s - d }')
    v=$(awk -v a="$add" 'BEGIN { print (a <= 20) ? "PASS" : "MISS" }')
    add50=$(( P50[3,shardline] - P50[3,direct] ))
    goal "$v" "\`-S -M extended -c 1\`: added average latency <= 20 us: ${add} us (average: shardline ${AVG[3,shardline]} us, direct ${AVG[3,direct]} us$( [[ ${STATUS[3,pgbouncer]:-} == ok ]] && echo ", pgbouncer ${AVG[3,pgbouncer]} us"); added at p50: ${add50} us)"
  else goal MISS "\`-S -M extended -c 1\`: added average latency <= 20 us: not measured"; fi
  # 4. proxy CPU per transaction <= 20 us, in every scenario (the worst one is reported)
  worst=""; worst_scen=""; missing=0
  for idx in "${!SCENARIOS[@]}"; do
    if [[ ${STATUS[$idx,shardline]:-} != ok ]]; then missing=1; continue; fi
    if [[ -z $worst ]] || awk -v a="${CPU[$idx,shardline]}" -v b="$worst" 'BEGIN { exit !(a > b) }'; then
      worst=${CPU[$idx,shardline]}; worst_scen=${SCENARIOS[$idx]}
    fi
  done
  if [[ -n $worst ]]; then
    v=$(awk -v a="$worst" -v m="$missing" 'BEGIN { print (a <= 20 && !m) ? "PASS" : "MISS" }')
    goal "$v" "shardline CPU per transaction <= 20 us in every scenario: worst ${worst} us (\`$worst_scen\`)$( (( missing )) && echo '; some scenarios failed')$( [[ ${STATUS[1,shardline]:-} == ok ]] && echo "; \`${SCENARIOS[1]}\`: ${CPU[1,shardline]} us (PgBouncer ${CPU[1,pgbouncer]:--} us)")"
  else goal MISS "shardline CPU per transaction <= 20 us: not measured"; fi
  # 5. 10,000 idle clients, RSS <= 64 MB
  if [[ -n ${RSS1[shardline]:-} ]]; then
    v=$(awk -v k="${RSS1[shardline]}" -v n="$IDLE_CLIENTS" 'BEGIN { print (k <= 64 * 1024 && n >= 10000) ? "PASS" : "MISS" }')
    goal "$v" "$IDLE_CLIENTS idle clients (goal: 10,000) with shardline RSS <= 64 MB: $(mb "${RSS1[shardline]}")"
  else goal MISS "10,000 idle clients with shardline RSS <= 64 MB: ${IDLE_NOTE[shardline]:-not measured}"; fi
  echo
  echo "Latency: p50/p99 from pgbench per-transaction logs (--log); averages from the same logs." \
       "CPU: utime+stime of the proxy process from /proc/PID/stat over the run / transactions." \
       "PgBouncer $PGB_VERSION$( (( PGB_HAS_PREPARED )) || echo ' has no prepared statement support, so -M prepared through it is n/a, not a failure'). Total run time $(( $(date +%s) - T_START )) s."
} >"$REPORT"

echo
cat "$REPORT"
cp "$REPORT" "$BUILD/bench-results.md"
echo
echo "bench: written to $BUILD/bench-results.md"
