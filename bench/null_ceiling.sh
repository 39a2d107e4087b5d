#!/usr/bin/env bash
# The proxies' own ceiling: shardline and PgBouncer in front of bench/null_backend.cpp (a server
# that answers every statement at once with a fixed one-row result), so PostgreSQL's work is out
# of the measurement. Run by bench/run.sh; prints a Markdown section on stdout.
#
#   bench/null_ceiling.sh BUILD_DIR DEMO_CONFIG PGB_USERLIST NULL_PORT SL_PORT PGB_PORT TMPDIR SECS
#
# DEMO_CONFIG: the first demo's shardline.yaml. Its first shard stays (it holds the catalog the
# proxy needs at start); a shard `nb` on the null backend is added and made the home shard, so
# the pgbench statements (no sharded table) all go there. PgBouncer gets the same user list as in
# run.sh (SCRAM from the clients) and the null backend as its database; both pools have size 20.
# *tps per core*: transactions over the proxy process's CPU seconds (utime+stime), so that the
# figure does not depend on how much of the 2 shared CPUs the proxy got.
set -euo pipefail

BUILD=$1 DEMO_CONFIG=$2 USERLIST=$3 NULL_PORT=$4 SL_PORT=$5 PGB_PORT=$6 WORK=$7 SECS=$8
DB_USER=app DB_PASSWORD=secret DB_NAME=app POOL=20
PGBOUNCER=/usr/sbin/pgbouncer
mkdir -p "$WORK"
NB_PID="" SL_PID="" PGB_PID=""
cleanup() {
  set +e
  local p
  for p in "$PGB_PID" "$SL_PID" "$NB_PID"; do
    [[ -n $p ]] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  return 0
}
trap cleanup EXIT

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
wait_port() {  # port: until SELECT 1 answers through it (30 s)
  for _ in $(seq 1 300); do
    PGPASSWORD=$DB_PASSWORD psql -X -q -h 127.0.0.1 -p "$1" -U "$DB_USER" -d "$DB_NAME" -Atc 'SELECT 1' \
      >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

"$BUILD/null_backend" --port "$NULL_PORT" >"$WORK/null_backend.log" 2>&1 &
NB_PID=$!
sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $SL_PORT}/" \
    -e 's/^sharding: {\(.*\)}$/sharding: {\1, home_shard: nb}/' \
    -e "/^  s0: /a\\  nb: {primary: {host: 127.0.0.1, port: $NULL_PORT}, replicas: []}" \
    "$DEMO_CONFIG" >"$WORK/shardline.yaml"
grep -q 'home_shard: nb' "$WORK/shardline.yaml" || { echo "- null backend: cannot make nb the home shard in $DEMO_CONFIG"; exit 0; }
"$BUILD/shardline" serve --config "$WORK/shardline.yaml" >"$WORK/shardline.log" 2>&1 </dev/null &
SL_PID=$!
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
$DB_NAME = host=127.0.0.1 port=$NULL_PORT dbname=$DB_NAME
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $USERLIST
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = 1000
logfile = $WORK/pgbouncer.log
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
EOF
if [[ $(id -u) -eq 0 ]]; then
  chown -R postgres: "$WORK"
  "$PGBOUNCER" -u postgres "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.out" 2>&1 &
else
  "$PGBOUNCER" "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.out" 2>&1 &
fi
PGB_PID=$!
declare -A PORT=([shardline]=$SL_PORT [pgbouncer]=$PGB_PORT) PID=([shardline]=$SL_PID [pgbouncer]=$PGB_PID)
for t in shardline pgbouncer; do
  if ! wait_port "${PORT[$t]}" || ! kill -0 "${PID[$t]}" 2>/dev/null; then
    echo "- null backend: $t on port ${PORT[$t]} does not answer SELECT 1 (logs in $WORK)"
    exit 0
  fi
done

# A custom script: pgbench's built-in ones first read the pgbench tables' sizes and partitions.
printf '%s\n' '\set aid random(1, 1000000)' 'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;' >"$WORK/select.sql"
MODES=(simple extended prepared)
declare -A TPS CPU PERCORE NOTE
# PgBouncer before 1.21 has no prepared statements in transaction mode (run.sh reports n/a too).
PGB_VERSION=$("$PGBOUNCER" --version | awk 'NR == 1 { print $2 }')
PGB_PREPARED=$(awk -v v="$PGB_VERSION" 'BEGIN { split(v, p, "."); print (p[1] > 1 || (p[1] == 1 && p[2] >= 21)) ? 1 : 0 }')
for mode in "${MODES[@]}"; do
  for t in pgbouncer shardline; do
    k="$mode,$t" out="$WORK/$mode.$t.txt"
    if [[ $t == pgbouncer && $mode == prepared && $PGB_PREPARED == 0 ]]; then
      NOTE[$k]="n/a: PgBouncer $PGB_VERSION has no prepared statement support in transaction mode"
      continue
    fi
    c0=$(cpu_ticks "${PID[$t]}")
    PGPASSWORD=$DB_PASSWORD timeout $(( SECS + 60 )) pgbench -n -h 127.0.0.1 -p "${PORT[$t]}" -U "$DB_USER" \
      -f "$WORK/select.sql" -M "$mode" -c 16 -j 2 -T "$SECS" "$DB_NAME" >"$out" 2>&1 || true
    c1=$(cpu_ticks "${PID[$t]}")
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    if [[ -z $txns || $txns -eq 0 || ${failed:-0} -ne 0 ]]; then
      NOTE[$k]=$(grep -m1 -E 'ERROR|FATAL|error|aborted' "$out" || tail -n 1 "$out")
      continue
    fi
    TPS[$k]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n 1)
    read -r "CPU[$k]" "PERCORE[$k]" < <(awk -v d=$(( c1 - c0 )) -v hz="$(getconf CLK_TCK)" -v n="$txns" \
      'BEGIN { if (d == 0) d = 1; printf "%.1f %.0f\n", d * 1e6 / hz / n, n * hz / d }')
  done
done

cell() {
  if [[ -n ${TPS[$1]:-} ]]; then printf '%.0f | %s | %s' "${TPS[$1]}" "${CPU[$1]}" "${PERCORE[$1]}"
  elif [[ ${NOTE[$1]:-} == n/a* ]]; then printf 'n/a | - | -'
  else printf 'ERROR | - | -'; fi
}
echo "PgBouncer $PGB_VERSION and shardline in front of \`null_backend\` (bench/null_backend.cpp: trust auth, every statement answered at once" \
     "with one row), pool size $POOL, transaction mode, SCRAM from the clients; \`pgbench -f select.sql -c 16 -j 2\`" \
     "(the -S statement as a custom script), ${SECS} s per run. *tps per core*: transactions / proxy CPU seconds."
echo
echo "| -M | pgbouncer tps | pgbouncer CPU us/txn | pgbouncer tps per core | shardline tps | shardline CPU us/txn | shardline tps per core | shardline/pgbouncer per core |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for mode in "${MODES[@]}"; do
  r="-"
  [[ -n ${PERCORE[$mode,shardline]:-} && -n ${PERCORE[$mode,pgbouncer]:-} ]] &&
    r=$(awk -v a="${PERCORE[$mode,shardline]}" -v b="${PERCORE[$mode,pgbouncer]}" 'BEGIN { printf "%.2fx", a / b }')
  echo "| $mode | $(cell "$mode,pgbouncer") | $(cell "$mode,shardline") | $r |"
done
for k in "${!NOTE[@]}"; do echo "- $k: ${NOTE[$k]}"; done
# The goal line run.sh's Goals section takes over (extended protocol, as the issue's other goals).
if [[ -n ${PERCORE[extended,shardline]:-} && -n ${PERCORE[extended,pgbouncer]:-} ]]; then
  v=$(awk -v a="${PERCORE[extended,shardline]}" -v b="${PERCORE[extended,pgbouncer]}" 'BEGIN { print (a >= b) ? "PASS" : "MISS" }')
  echo
  echo "GOAL $v null backend, \`-M extended -c 16\`: shardline tps per core >= PgBouncer's: ${PERCORE[extended,shardline]} vs ${PERCORE[extended,pgbouncer]}"
else
  echo
  echo "GOAL MISS null backend, \`-M extended -c 16\`: shardline tps per core >= PgBouncer's: not measured"
fi
