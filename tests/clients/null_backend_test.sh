#!/usr/bin/env bash
# bench/null_backend.cpp (the do-nothing server of the proxy-only benchmark) against real libpq
# clients: psql (simple protocol: one row, command tags, multi-statement queries), psycopg2
# (transaction status as ReadyForQuery reports it, a server-side error for an unknown prepared
# statement), pgbench (libpq's extended and prepared protocol); then shardline with the null
# backend as its home shard, which is how bench/null_ceiling.sh measures the proxy, in every
# query mode.
# Usage: bash tests/clients/null_backend_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

NB_BIN="$SL_BUILD/null_backend"
PY=/usr/bin/python3
if [ ! -x "$NB_BIN" ]; then
  echo "null_backend: $NB_BIN is missing; build the target null_backend first" >&2
  exit 2
fi
start_demo 1 0
T="$SL_WORK"
export PGPASSWORD="$SL_PASSWORD"
NB_PID="" NSL_PID=""
stop_extra() {
  local p
  for p in "$NSL_PID" "$NB_PID"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  NSL_PID="" NB_PID=""
}
trap 'stop_extra; cleanup' EXIT

free_port() {  # a free port below the ephemeral range
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  return 1
}
NB_PORT=$(free_port)
"$NB_BIN" --port "$NB_PORT" >"$T/null_backend.log" 2>&1 &
NB_PID=$!
for _ in $(seq 1 50); do grep -q listening "$T/null_backend.log" && break; sleep 0.1; done
check_eq "null_backend says it listens" "null_backend listening on 127.0.0.1:$NB_PORT" "$(cat "$T/null_backend.log")"

nb_psql() { psql -X -At -h 127.0.0.1 -p "$NB_PORT" -U anyone -d anydb "$@" 2>&1; }
check_eq "psql: SELECT answers one row, 1" "1" "$(nb_psql -c 'SELECT abalance FROM pgbench_accounts WHERE aid = 7')"
check_eq "psql: command tags of BEGIN, UPDATE, INSERT, COMMIT" "BEGIN
UPDATE 1
INSERT 0 1
COMMIT" "$(psql -X -h 127.0.0.1 -p "$NB_PORT" -U u -d d -c BEGIN -c 'UPDATE t SET a = 1' -c 'INSERT INTO t VALUES (1)' -c COMMIT 2>&1)"
check_eq "psql: a multi-statement query answers each statement" "SET
1
1" \
  "$(nb_psql -c "SET x = 'a;b'; SELECT 1; SELECT 2")"
check_eq "psql: an empty query" "" "$(nb_psql -c ';')"

out=$("$PY" - "$NB_PORT" <<'EOF' 2>&1
import sys, psycopg2, psycopg2.extensions as ext
conn = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="u", dbname="d")
names = {ext.TRANSACTION_STATUS_IDLE: "idle", ext.TRANSACTION_STATUS_INTRANS: "intrans"}
cur = conn.cursor()
cur.execute("SELECT 1")  # psycopg2 sends BEGIN first (autocommit off)
print(cur.fetchall(), names.get(conn.get_transaction_status(), "other"))
conn.commit()
print(names.get(conn.get_transaction_status(), "other"))
conn.autocommit = True
cur.execute("SELECT 1")
print(names.get(conn.get_transaction_status(), "other"))
EOF
)
check_eq "psycopg2: rows and the transaction status from ReadyForQuery" "[(1,)] intrans
idle
idle" "$out"

# libpq's extended protocol: PQprepare of a name, then a Bind of an unknown name fails (26000)
# and the connection is usable after the Sync.
out=$("$PY" - "$NB_PORT" <<'EOF' 2>&1
import ctypes, ctypes.util, sys
pq = ctypes.CDLL(ctypes.util.find_library("pq"))
pq.PQconnectdb.restype = ctypes.c_void_p
pq.PQprepare.restype = pq.PQexecPrepared.restype = ctypes.c_void_p
pq.PQresultErrorField.restype = ctypes.c_char_p
pq.PQgetvalue.restype = ctypes.c_void_p
for f in (pq.PQstatus, pq.PQfinish, pq.PQclear, pq.PQresultStatus, pq.PQntuples):
    f.argtypes = [ctypes.c_void_p]
pq.PQprepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
pq.PQexecPrepared.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_void_p, ctypes.c_int]
pq.PQresultErrorField.argtypes = [ctypes.c_void_p, ctypes.c_int]
pq.PQgetvalue.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
conn = pq.PQconnectdb(f"host=127.0.0.1 port={sys.argv[1]} user=u dbname=d".encode())
assert pq.PQstatus(conn) == 0, "connection failed"
PGRES_COMMAND_OK, PGRES_TUPLES_OK, PG_DIAG_SQLSTATE = 1, 2, ord("C")
r = pq.PQprepare(conn, b"s1", b"SELECT $1::int", 0, None)
print("prepare", pq.PQresultStatus(r) == PGRES_COMMAND_OK); pq.PQclear(r)
r = pq.PQexecPrepared(conn, b"s1", 0, None, None, None, 0)
print("execute", pq.PQresultStatus(r) == PGRES_TUPLES_OK, pq.PQntuples(r), ctypes.string_at(pq.PQgetvalue(r, 0, 0)).decode())
pq.PQclear(r)
r = pq.PQexecPrepared(conn, b"nosuch", 0, None, None, None, 0)
print("unknown", pq.PQresultErrorField(r, PG_DIAG_SQLSTATE).decode()); pq.PQclear(r)
r = pq.PQexecPrepared(conn, b"s1", 0, None, None, None, 1)  # binary results
print("binary", pq.PQresultStatus(r) == PGRES_TUPLES_OK, ctypes.string_at(pq.PQgetvalue(r, 0, 0), 4).hex())
pq.PQclear(r); pq.PQfinish(conn)
EOF
)
check_eq "libpq: prepare, execute, 26000 for an unknown statement, binary results" "prepare True
execute True 1 1
unknown 26000
binary True 00000001" "$out"

printf '%s\n' '\set aid random(1, 100000)' 'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;' >"$T/select.sql"
printf '%s\n' 'BEGIN;' 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1;' \
  'SELECT abalance FROM pgbench_accounts WHERE aid = 1;' 'END;' >"$T/write.sql"
# pgbench_ok PORT LABEL ARGS...: 400 transactions, all processed, none failed.
pgbench_ok() {
  local port=$1 label=$2 out
  shift 2
  out=$(timeout -k 5 60 pgbench -n -h 127.0.0.1 -p "$port" -U "$SL_USER" -c 4 -j 2 -t 100 "$@" "$SL_DATABASE" 2>&1)
  if grep -q '^number of transactions actually processed: 400/400$' <<<"$out" &&
     grep -q '^number of failed transactions: 0 ' <<<"$out"; then
    pass "$label"
  else
    fail "$label" "$(tail -n 8 <<<"$out")"
  fi
}
for mode in simple extended prepared; do
  pgbench_ok "$NB_PORT" "pgbench -M $mode (select, and BEGIN/UPDATE/SELECT/END) directly" -M "$mode" \
    -f "$T/select.sql" -f "$T/write.sql"
done

# shardline with the null backend as its home shard (the demo's first shard s0 keeps the catalog).
NSL_PORT=$(free_port)
sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $NSL_PORT}/" \
    -e 's/^sharding: {\(.*\)}$/sharding: {\1, home_shard: nb}/' \
    -e "/^  s0: /a\\  nb: {primary: {host: 127.0.0.1, port: $NB_PORT}, replicas: []}" \
    "$T/cluster/shardline.yaml" >"$T/null.yaml"
"$SL_BIN" serve --config "$T/null.yaml" >"$T/null_proxy.log" 2>&1 </dev/null &
NSL_PID=$!
for _ in $(seq 1 100); do
  psql -X -At -h 127.0.0.1 -p "$NSL_PORT" -U "$SL_USER" -d "$SL_DATABASE" -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
check_eq "shardline in front of the null backend: SELECT answers 1" "1" \
  "$(psql -X -At -h 127.0.0.1 -p "$NSL_PORT" -U "$SL_USER" -d "$SL_DATABASE" -c 'SELECT abalance FROM x' 2>&1)"
for mode in simple extended prepared; do
  pgbench_ok "$NSL_PORT" "pgbench -M $mode through shardline to the null backend" -M "$mode" \
    -f "$T/select.sql" -f "$T/write.sql"
done
stop_extra
finish
