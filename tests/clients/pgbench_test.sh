#!/usr/bin/env bash
# pgbench, unmodified, through the proxy: initialisation (client-side COPY, VACUUM, keys), the
# select-only (-S) and simple-update (-N) scripts in every query mode (simple, extended,
# prepared), then 40 clients against a pool of 20 server connections per shard, which only
# transaction pooling can serve. Each run must process every transaction with none failed, and
# the data must add up afterwards.
# Usage: bash tests/clients/pgbench_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

start_demo 2 0
T="$SL_WORK"
export PGPASSWORD="$SL_PASSWORD"

# Each run is bounded: a pooler that stops handing out server connections must fail the test,
# not hang it.
pgb() {
  timeout -k 5 60 pgbench -h 127.0.0.1 -p "$SL_APP_PORT" -U "$SL_USER" "$@" "$SL_DATABASE"
}

# run_bench NAME EXPECTED_TXNS ARGS...: runs pgbench, then checks its exit status, the processed
# count and the failed count it prints.
run_bench() {
  local name=$1 expected=$2 log rc processed failed
  shift 2
  log="$T/pgbench-${name// /_}.log"
  pgb "$@" >"$log" 2>&1
  rc=$?
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\/[0-9]*\)$/\1/p' "$log")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\) .*/\1/p' "$log")
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "pgbench $name: still running after 60 s (killed); processed '${processed}' (want $expected/$expected)" \
      "$(grep -v '^progress' "$log" | tail -15)"
  elif [ "$rc" -eq 0 ] && [ "$processed" == "$expected/$expected" ] && [ "$failed" == "0" ]; then
    pass "pgbench $name: $processed processed, $failed failed, $(grep -o 'tps = [0-9.]*' "$log" | head -1)"
  else
    fail "pgbench $name: exit $rc, processed '${processed}' (want $expected/$expected), failed '${failed}' (want 0)" \
      "$(grep -v '^progress' "$log" | tail -15)"
  fi
}

# ---- initialisation -------------------------------------------------------------------------
pgb -i -s 1 -q >"$T/init.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^done in' "$T/init.log"; then
  pass "pgbench -i -s 1 completed"
else
  fail "pgbench -i -s 1 completed (exit $rc)" "$(tail -15 "$T/init.log")"
fi
out=$(psql_proxy -At -c "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_tellers),
  (SELECT count(*) FROM pgbench_branches), (SELECT count(*) FROM pgbench_history),
  (SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'pgbench_%' AND indexname LIKE '%_pkey')" 2>&1)
check_eq "pgbench -i loaded 100000 accounts, 10 tellers, 1 branch and 3 primary keys" "100000|10|1|0|3" "$out"

# ---- select-only and simple-update, in every query mode --------------------------------------
total_n=0
for mode in simple extended prepared; do
  run_bench "-S -M $mode" 4000 -S -M "$mode" -c 8 -j 2 -t 500 -n
  run_bench "-N -M $mode" 4000 -N -M "$mode" -c 8 -j 2 -t 500 -n
  total_n=$((total_n + 4000))
done

# ---- 40 clients, 20 server connections per pool: transaction pooling -------------------------
# Session pooling would leave 20 of these clients waiting for a server until the others
# disconnect; with transaction pooling all 40 make progress concurrently.
pool_size=$(psql_admin -A -F'|' -c "SHOW POOLS" 2>/dev/null | awk -F'|' '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  $col["shard"] == "s0" && $col["role"] == "primary" { print $col["pool_mode"] "/" $col["pool_size"] }')
check_eq "the demo pool of s0's primary is transaction mode, size 20" "transaction/20" "$pool_size"

# Sample the pool while 40 clients run, to see that they share at most 20 server connections.
max_servers=0
max_clients=0
(
  while :; do
    psql_admin -A -F'|' -c "SHOW POOLS" 2>/dev/null | awk -F'|' '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      $col["shard"] == "s0" && $col["role"] == "primary" { print $col["sv_total"] }'
    psql_admin -At -c "SHOW CLIENTS" 2>/dev/null | wc -l | sed 's/^/clients /'
    sleep 0.2
  done
) >"$T/pool-samples.txt" 2>&1 &
sampler=$!
# Not -N -M prepared here: pgbench (15) prepares each command with a blocking PQprepare, so one
# of its threads can wait for a server connection that only its own clients, stuck in their open
# BEGIN ... END blocks, would free. That deadlocks behind any transaction pooler (PgBouncer too).
# -S is one autocommit statement per transaction, which the proxy finishes without pgbench.
run_bench "-N -M simple -c 40 (pool size 20)" 4000 -N -M simple -c 40 -j 2 -t 100 -n
run_bench "-N -M extended -c 40 (pool size 20)" 4000 -N -M extended -c 40 -j 2 -t 100 -n
run_bench "-S -M prepared -c 40 (pool size 20)" 4000 -S -M prepared -c 40 -j 2 -t 100 -n
total_n=$((total_n + 8000))
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
max_servers=$(grep -E '^[0-9]+$' "$T/pool-samples.txt" | sort -n | tail -1)
max_clients=$(sed -n 's/^clients //p' "$T/pool-samples.txt" | sort -n | tail -1)
if [ -n "$max_servers" ] && [ "$max_servers" -ge 1 ] && [ "$max_servers" -le 20 ]; then
  pass "s0's primary never had more than 20 server connections (max seen $max_servers)"
else
  fail "s0's primary never had more than 20 server connections" "max sv_total seen: '${max_servers}'"
fi
# SHOW CLIENTS lists the sampler's own admin session too, so 40 pgbench clients show as > 20.
if [ -n "$max_clients" ] && [ "$max_clients" -gt 20 ]; then
  pass "more than 20 clients were connected at once (max seen $max_clients)"
else
  fail "more than 20 clients were connected at once" "max clients seen: '${max_clients}'"
fi

# ---- the data adds up ---------------------------------------------------------------------
# Every -N transaction inserted one history row and added its delta to one account.
out=$(psql_proxy -At -c "SELECT (SELECT count(*) FROM pgbench_history),
  (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)" 2>&1)
check_eq "history has one row per -N transaction and balances match the deltas" "$total_n|t" "$out"

finish
