#!/usr/bin/env bash
# pgJDBC (Debian's libpostgresql-jdbc-java, 42.5), unmodified, through the proxy: a
# PreparedStatement past prepareThreshold (named server statements), the same statement after the
# proxy moved the connection to another server, several connections in parallel, batches, a
# transaction with rollback, metadata calls, errors and recovery. Checks are in JdbcClient.java.
# Usage: bash tests/clients/jdbc_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

JAR=/usr/share/java/postgresql.jar
if [ ! -r "$JAR" ] || ! command -v java >/dev/null 2>&1; then
  echo "jdbc: needs java (17+) and $JAR (libpostgresql-jdbc-java; scripts/install-deps.sh)" >&2
  exit 2
fi

start_demo 2 0
# Single-file source launch (JEP 330): compiled in memory, nothing written to the tree.
run_client JdbcClient.java java -cp "$JAR" "$SL_CLIENTS/JdbcClient.java" 127.0.0.1 "$SL_APP_PORT" \
  "$SL_USER" "$SL_PASSWORD" "$SL_DATABASE"

out=$(psql_direct 0 -At -c "SELECT count(*) FROM j_batch" 2>&1)
check_eq "j_batch's rows landed on shard s0's primary" "291" "$out"
finish
