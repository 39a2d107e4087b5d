#!/usr/bin/env bash
# psql, unmodified, through the proxy: multi-statement strings, \copy both ways, ROLLBACK, an
# error and recovery, \gset, and the admin console with -c. Every output is compared exactly.
# Usage: bash tests/clients/psql_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

start_demo 2 0
T="$SL_WORK"

# ---- multi-statement strings ----------------------------------------------------------------
# One simple Query message holding several statements; -q hides the command tags, so only the
# SELECT's row is printed.
out=$(psql_proxy -At -c "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
INSERT INTO items SELECT g, 'item-' || g, g % 7 FROM generate_series(1, 1000) g;
UPDATE items SET qty = qty + 100 WHERE id <= 10; SELECT count(*), sum(qty) FROM items" 2>&1)
check_eq "multi-statement -c string returns the last result" "1000|4003" "$out"

# The same statements fed as a script: every result and command tag, in order.
out=$(psql_proxy -A -t -e 2>&1 <<'EOF'
SELECT 1 AS a; SELECT 'two' AS b;
SELECT name FROM items WHERE id IN (3, 5) ORDER BY id;
WITH d AS (DELETE FROM items WHERE id > 995 RETURNING id) SELECT count(*) FROM d;
EOF
)
check_eq "multi-statement script echoes and returns each result" "SELECT 1 AS a;
1
SELECT 'two' AS b;
two
SELECT name FROM items WHERE id IN (3, 5) ORDER BY id;
item-3
item-5
WITH d AS (DELETE FROM items WHERE id > 995 RETURNING id) SELECT count(*) FROM d;
5" "$out"

# Without -q, psql (15+) prints the command tag of every statement of a multi-statement string.
out=$(psql_proxy -v QUIET=off -c "BEGIN; INSERT INTO items VALUES (2001, 'x', 1), (2002, 'y', 2); UPDATE items SET qty = 0 WHERE id > 2000; COMMIT" 2>&1)
check_eq "multi-statement -c string returns every command tag" "BEGIN
INSERT 0 2
UPDATE 2
COMMIT" "$out"
out=$(psql_proxy -Atc "SELECT string_agg(id || ':' || qty, ',' ORDER BY id) FROM items WHERE id > 2000")
check_eq "the committed multi-statement transaction is visible" "2001:0,2002:0" "$out"

# Notices raised by the server reach psql (stderr), then the statement's result.
out=$(psql_proxy -At -c "DO \$\$BEGIN RAISE NOTICE 'hello %', 42; END\$\$; SELECT 'after notice'" 2>&1)
check_eq "a server NOTICE reaches psql before the result" "NOTICE:  hello 42
after notice" "$out"

# ---- \copy in and out -------------------------------------------------------------------------
seq 1 5000 | awk '{ printf "%d\tname %d\t%d\n", $1, $1, $1 % 13 }' >"$T/in.tsv"
psql_proxy -c "CREATE TABLE copied (id int PRIMARY KEY, name text, qty int)" >/dev/null 2>&1
out=$(psql_proxy -v QUIET=off -c "\\copy copied FROM '$T/in.tsv'" 2>&1)
check_eq "\\copy FROM a file reports the row count" "COPY 5000" "$out"
out=$(psql_proxy -Atc "SELECT count(*), sum(id), sum(qty), max(name) FROM copied" 2>&1)
check_eq "\\copy FROM stored every row" "5000|12502500|29988|name 999" "$out"
out=$(psql_proxy -v QUIET=off -c "\\copy (SELECT * FROM copied ORDER BY id) TO '$T/out.tsv'" 2>&1)
check_eq "\\copy TO a file reports the row count" "COPY 5000" "$out"
if cmp -s "$T/in.tsv" "$T/out.tsv"; then
  pass "\\copy TO wrote back exactly the file \\copy FROM read"
else
  fail "\\copy TO wrote back exactly the file \\copy FROM read" "$(diff "$T/in.tsv" "$T/out.tsv" | head -5)"
fi

# CSV with a header, quotes, an embedded comma and newline, and NULL, through stdin/stdout.
printf 'id,name,qty\n1,"a, b",1\n2,"line1\nline2",\n3,"say ""hi""",3\n' >"$T/in.csv"
psql_proxy -c "CREATE TABLE csvt (id int, name text, qty int)" >/dev/null 2>&1
out=$(psql_proxy -v QUIET=off -c "\\copy csvt FROM STDIN WITH (FORMAT csv, HEADER true)" <"$T/in.csv" 2>&1)
check_eq "\\copy FROM STDIN (csv) reports the row count" "COPY 3" "$out"
out=$(psql_proxy -Atc "SELECT string_agg(format('%s=%s/%s', id, name, coalesce(qty::text, 'NULL')), ';' ORDER BY id) FROM csvt")
check_eq "\\copy csv stored quotes, commas, newlines and NULL" "1=a, b/1;2=line1
line2/NULL;3=say \"hi\"/3" "$out"
psql_proxy -c "\\copy (SELECT * FROM csvt ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true)" >"$T/out.csv" 2>&1
if cmp -s "$T/in.csv" "$T/out.csv"; then
  pass "\\copy TO STDOUT (csv) reproduces the input byte for byte"
else
  fail "\\copy TO STDOUT (csv) reproduces the input byte for byte" "$(diff "$T/in.csv" "$T/out.csv" | head -8)"
fi

# A \copy with a bad row fails and nothing of it is stored; the session then keeps working.
printf '1\tok\t1\nnot-a-number\tbad\t2\n' >"$T/bad.tsv"
out=$(psql_proxy -c "CREATE TABLE copybad (id int, name text, qty int)" -c "\\copy copybad FROM '$T/bad.tsv'" 2>&1)
check_match "\\copy with a bad row fails with the server's error" 'invalid input syntax for type integer: "not-a-number"' "$out"
out=$(psql_proxy -Atc "SELECT count(*) FROM copybad" 2>&1)
check_eq "the failed \\copy stored nothing" "0" "$out"

# ---- a transaction with ROLLBACK ------------------------------------------------------------
out=$(psql_proxy -At 2>&1 <<'EOF'
BEGIN;
INSERT INTO items VALUES (3001, 'tx', 5);
UPDATE items SET qty = -1 WHERE id = 1;
SELECT count(*) FROM items WHERE id = 3001;
SELECT qty FROM items WHERE id = 1;
ROLLBACK;
SELECT count(*) FROM items WHERE id = 3001;
SELECT qty FROM items WHERE id = 1;
EOF
)
check_eq "a transaction sees its writes and ROLLBACK undoes them" "1
-1
0
101" "$out"

# Savepoints inside a transaction, then COMMIT.
out=$(psql_proxy -At 2>&1 <<'EOF'
BEGIN;
INSERT INTO items VALUES (3002, 'kept', 1);
SAVEPOINT s1;
INSERT INTO items VALUES (3003, 'dropped', 1);
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT string_agg(name, ',' ORDER BY id) FROM items WHERE id IN (3002, 3003);
EOF
)
check_eq "ROLLBACK TO SAVEPOINT keeps only the earlier insert" "kept" "$out"

# ---- an error, then recovery ----------------------------------------------------------------
# No ON_ERROR_STOP: psql carries on after each error, on the same connection.
out=$(PGPASSWORD="$SL_PASSWORD" psql -X -q -At -h 127.0.0.1 -p "$SL_APP_PORT" -U "$SL_USER" -d "$SL_DATABASE" \
  2>"$T/err.txt" <<'EOF'
SELECT 1/0;
\echo :LAST_ERROR_SQLSTATE
SELECT 'after error';
BEGIN;
SELECT no_such_column FROM items;
\echo :LAST_ERROR_SQLSTATE
SELECT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT 'recovered', count(*) FROM items WHERE id = 1;
INSERT INTO items VALUES (1, 'dup', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT pg_backend_pid() > 0;
EOF
)
check_eq "errors are reported with their SQLSTATE and the session recovers" "22012
after error
42703
25P02
recovered|1
23505
t" "$out"
check_eq "psql printed the server's error messages" 'ERROR:  division by zero
ERROR:  column "no_such_column" does not exist
LINE 1: SELECT no_such_column FROM items;
               ^
ERROR:  current transaction is aborted, commands ignored until end of transaction block
ERROR:  duplicate key value violates unique constraint "items_pkey"
DETAIL:  Key (id)=(1) already exists.' "$(sed 's/^psql:<stdin>:[0-9]*: //' "$T/err.txt")"

# ---- \gset ----------------------------------------------------------------------------------
out=$(psql_proxy -At 2>&1 <<'EOF'
SELECT count(*) AS n, max(id) AS top, min(name) AS first FROM items WHERE id <= 100 \gset
\echo n=:n top=:top first=:first
SELECT name FROM items WHERE id = :top;
SELECT 7 AS a, 'seven' AS b \gset pre_
\echo :pre_a :pre_b
SELECT :'first' = 'item-1' AS same;
EOF
)
check_eq "\\gset stores columns in variables used by later queries" "n=100 top=100 first=item-1
item-100
7 seven
t" "$out"

# ---- admin console with -c ------------------------------------------------------------------
# SHOW POOLS: one row per (shard, role), the demo's pool settings.
out=$(psql_admin -A -F'|' -c "SHOW POOLS" 2>&1 | awk -F'|' '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  /^\(/   { next }
  { print $col["shard"] "|" $col["role"] "|" $col["host"] "|" $col["port"] "|" $col["pool_mode"] "|" $col["pool_size"] }')
check_eq "admin SHOW POOLS lists both primaries with the demo pool settings" \
  "s0|primary|127.0.0.1|$SL_BASE_PORT|transaction|20
s1|primary|127.0.0.1|$((SL_BASE_PORT + 10))|transaction|20" "$out"

# SHOW CLIENTS sees a concurrent application client with its application_name.
PGAPPNAME=psql-sleeper psql_proxy -c "SELECT pg_sleep(3)" >/dev/null 2>&1 &
sleeper=$!
seen=""
for _ in $(seq 1 40); do
  seen=$(psql_admin -A -F'|' -c "SHOW CLIENTS" 2>&1 | awk -F'|' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["application_name"] == "psql-sleeper" { print $col["user"] "|" $col["database"] }')
  [ -n "$seen" ] && break
  sleep 0.1
done
wait "$sleeper"
check_eq "admin SHOW CLIENTS lists a connected application client" "app|app" "$seen"

# SHOW STATS counts the queries this test sent to the first shard's primary.
out=$(psql_admin -A -F'|' -c "SHOW STATS" 2>&1 | awk -F'|' '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  $col["shard"] == "s0" && $col["role"] == "primary" { print ($col["total_query_count"] >= 30 ? "ok" : "low: " $col["total_query_count"]) }')
check_eq "admin SHOW STATS counts queries on s0's primary" "ok" "$out"

# Unknown admin commands are an error with a SQLSTATE, and -c sends several commands in turn.
out=$(psql_admin -c "SHOW NONSENSE" 2>&1)
check_match "admin console rejects an unknown command" 'ERROR: .*unknown admin command' "$out"
out=$(psql_admin -At -c "SHOW CONFIG" 2>&1 | grep -E '^(listen|shards|home_shard)\|')
check_eq "admin SHOW CONFIG shows the demo's listen address and shards" "listen|127.0.0.1:$SL_PORT
shards|2
home_shard|s0" "$out"

finish
