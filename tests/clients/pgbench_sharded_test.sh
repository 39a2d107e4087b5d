#!/usr/bin/env bash
# pgbench, unmodified, against a proxy that shards its tables (SPEC sections 3-5): accounts and
# history by aid, branches by bid, tellers by tid. Tables and primary keys are created through
# the proxy (DDL reaches both shards); the data is loaded with psql's \copy, which the proxy
# splits row by row (pgbench -i's own generation runs in one transaction, which cannot span
# shards). Then the select-only (-S) and simple-update (-N) scripts run in every query mode; each
# -N transaction touches one account and its history row, so it stays on one shard. Every run
# must finish with no failed transaction, and both shards must have served transactions.
# Usage: bash tests/clients/pgbench_sharded_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

start_demo 2 0
T="$SL_WORK"
export PGPASSWORD="$SL_PASSWORD"
ACCOUNTS=100000
TELLERS=10

# ---- a second proxy, sharding the pgbench tables, on the demo's servers ---------------------
SHARDED_PID=""
stop_sharded() {
  local i
  [ -n "$SHARDED_PID" ] || return 0
  kill -TERM "$SHARDED_PID" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$SHARDED_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SHARDED_PID" 2>/dev/null
  wait "$SHARDED_PID" 2>/dev/null
  SHARDED_PID=""
}
# lib.sh's cleanup reads the exit status first: hand it over unchanged.
trap 'rc=$?; stop_sharded; (exit $rc); cleanup' EXIT

SHARDED_PORT=""
for p in $((SL_PORT + 1)) $((SL_PORT + 2)) $((SL_PORT + 3)); do
  if port_free "$p"; then SHARDED_PORT=$p; break; fi
done
[ -n "$SHARDED_PORT" ] || { echo "$SL_NAME: no free port next to $SL_PORT" >&2; exit 2; }

demo_config="$SL_WORK/cluster/shardline.yaml"
if ! grep -q '^sharding: ' "$demo_config" || ! grep -q '^listen: ' "$demo_config"; then
  echo "$SL_NAME: the demo config $demo_config has no one-line 'listen:' and 'sharding:' to replace:" >&2
  cat "$demo_config" >&2
  exit 2
fi
sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $SHARDED_PORT}/" \
  -e 's/^sharding: .*/sharding:\
  logical_shards: 1024\
  key: tenant_id\
  tables:\
    pgbench_accounts: {key: aid}\
    pgbench_history: {key: aid}\
    pgbench_branches: {key: bid}\
    pgbench_tellers: {key: tid}/' "$demo_config" >"$T/sharded.yaml"

"$SL_BIN" serve --config "$T/sharded.yaml" >"$T/sharded.log" 2>&1 </dev/null &
SHARDED_PID=$!
deadline=$((SECONDS + 60))
until [ "$(timeout 10 psql -X -At -h 127.0.0.1 -p "$SHARDED_PORT" -U "$SL_USER" -d "$SL_DATABASE" \
  -c 'SELECT 1' 2>/dev/null)" == "1" ]; do
  if ! kill -0 "$SHARDED_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "$SL_NAME: the sharding proxy did not answer on port $SHARDED_PORT; its log:" >&2
    cat "$T/sharded.log" >&2
    exit 2
  fi
  sleep 0.2
done
echo "# $SL_NAME: sharding proxy ready on 127.0.0.1:$SHARDED_PORT"

psql_sharded() {
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SHARDED_PORT" -U "$SL_USER" -d "$SL_DATABASE" "$@"
}
admin_sharded() {
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SHARDED_PORT" -U "$SL_USER" -d shardline "$@"
}
pgb() {
  timeout -k 5 60 pgbench -h 127.0.0.1 -p "$SHARDED_PORT" -U "$SL_USER" "$@" "$SL_DATABASE"
}

# ---- tables through the proxy ----------------------------------------------------------------
pgb -i -I dt -s 1 >"$T/init-dt.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^done in' "$T/init-dt.log"; then
  pass "pgbench -i -I dt (drop and create tables) through the sharding proxy"
else
  fail "pgbench -i -I dt through the sharding proxy (exit $rc)" "$(tail -15 "$T/init-dt.log")"
fi
for shard in 0 1; do
  out=$(psql_direct "$shard" -At -c "SELECT count(*) FROM pg_tables WHERE tablename IN
    ('pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history')" 2>&1)
  check_eq "the four pgbench tables exist on shard s$shard" "4" "$out"
done

# ---- data through COPY, split by key ---------------------------------------------------------
cat >"$T/gen.sh" <<'EOF'
# gen.sh TABLE: pgbench's scale-1 rows for one table, tab-separated.
case "$1" in
  branches) printf '1\t0\n' ;;
  tellers) awk -v n="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "%d\t1\t0\n", i }' ;;
  accounts) awk -v n="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "%d\t1\t0\n", i }' ;;
esac
EOF
load() {
  local table=$1 columns=$2 rows=$3 out
  # Not quiet: psql prints the COPY command tag only without -q.
  out=$(psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SHARDED_PORT" -U "$SL_USER" -d "$SL_DATABASE" \
    -c "\\copy pgbench_$table ($columns) from program 'bash $T/gen.sh $table $rows'" 2>&1)
  check_eq "\\copy of $rows rows into pgbench_$table through the proxy" "COPY $rows" "$out"
}
load branches "bid, bbalance" 1
load tellers "tid, bid, tbalance" "$TELLERS"
load accounts "aid, bid, abalance" "$ACCOUNTS"

# Where each account must be: PostgreSQL's hash partition remainder (SPEC section 4) of aid for
# modulus 1024; s0 owns 0-511, s1 512-1023. The remainder is computed in SQL from hashint4extended
# with the partition seed (hash_combine64(0, h) = h + 0x49a0f4dd15e5a8e3, and mod 1024 keeps
# only the low 10 bits: + 227), and checked against satisfies_hash_partition for every row.
remainder="(((hashint4extended(aid, 8816678312871386365) & 1023) + 227) & 1023)::int"
total=0
for shard in 0 1; do
  lo=$((shard * 512))
  hi=$((lo + 511))
  out=$(psql_direct "$shard" -At -F'|' -c "
    CREATE TEMP TABLE pgbench_hash_oracle (aid int) PARTITION BY HASH (aid);
    SELECT count(*),
           count(*) FILTER (WHERE NOT satisfies_hash_partition('pgbench_hash_oracle'::regclass, 1024, $remainder, aid)),
           count(*) FILTER (WHERE $remainder NOT BETWEEN $lo AND $hi)
      FROM pgbench_accounts" 2>&1)
  n=${out%%|*}
  if [[ "$out" =~ ^[0-9]+\|0\|0$ ]] && [ "$n" -gt 0 ]; then
    pass "shard s$shard holds exactly its $n accounts (none of the other shard's)"
    total=$((total + n))
  else
    fail "shard s$shard holds only its own accounts" "rows|remainder mismatches|misplaced: $out"
  fi
done
check_eq "the accounts of both shards add up to $ACCOUNTS" "$ACCOUNTS" "$total"
out=$(psql_sharded -At -c "SELECT count(*) FROM pgbench_accounts" 2>&1)
check_eq "a tenant-less count(*) through the proxy merges both shards" "$ACCOUNTS" "$out"

# ---- primary keys through the proxy ------------------------------------------------------------
pgb -i -I p -s 1 >"$T/init-p.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^done in' "$T/init-p.log"; then
  pass "pgbench -i -I p (primary keys) through the sharding proxy"
else
  fail "pgbench -i -I p through the sharding proxy (exit $rc)" "$(tail -15 "$T/init-p.log")"
fi
for shard in 0 1; do
  out=$(psql_direct "$shard" -At -c "SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'pgbench_%'
    AND indexname LIKE '%_pkey'" 2>&1)
  check_eq "the three primary keys exist on shard s$shard" "3" "$out"
done

# ---- -S and -N in every query mode -------------------------------------------------------------
run_bench() {
  local name=$1 log rc processed failed
  shift
  log="$T/pgbench-${name// /_}.log"
  pgb "$@" >"$log" 2>&1
  rc=$?
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)$/\1/p' "$log")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\) .*/\1/p' "$log")
  if [ "$rc" -eq 0 ] && [ -n "$processed" ] && [ "$processed" -gt 0 ] && [ "$failed" == "0" ]; then
    pass "pgbench $name: $processed processed, $failed failed, $(grep -o 'tps = [0-9.]*' "$log" | head -1)"
  else
    fail "pgbench $name: exit $rc, processed '${processed}', failed '${failed}' (want > 0 and 0)" \
      "$(grep -v '^progress' "$log" | tail -15)"
  fi
}
for mode in simple extended prepared; do
  run_bench "-S -M $mode" -S -M "$mode" -c 8 -j 2 -T 5 -n
  run_bench "-N -M $mode" -N -M "$mode" -c 8 -j 2 -T 5 -n
done

# ---- both shards served transactions -----------------------------------------------------------
stats=$(admin_sharded -A -F'|' -c "SHOW STATS" 2>&1)
for shard in s0 s1; do
  xacts=$(printf '%s\n' "$stats" | awk -F'|' -v shard="$shard" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["shard"] == shard && $col["role"] == "primary" { print $col["total_xact_count"] }')
  if [[ "$xacts" =~ ^[0-9]+$ ]] && [ "$xacts" -gt 0 ]; then
    pass "SHOW STATS: $shard's primary served $xacts transactions"
  else
    fail "SHOW STATS: $shard's primary served transactions" "total_xact_count '$xacts'; SHOW STATS:
$stats"
  fi
done

# ---- the data adds up, per shard ---------------------------------------------------------------
# Every -N transaction added its delta to one account and wrote one history row with the same
# aid, on the same shard; the history rows of each shard belong to its accounts.
for shard in 0 1; do
  out=$(psql_direct "$shard" -At -F'|' -c "
    SELECT (SELECT count(*) > 0 FROM pgbench_history),
           (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
           (SELECT count(*) FROM pgbench_history h WHERE NOT EXISTS (SELECT 1 FROM pgbench_accounts a WHERE a.aid = h.aid))" 2>&1)
  check_eq "shard s$shard: history rows exist, balances match deltas, every history row's account is local" "t|t|0" "$out"
done

finish
