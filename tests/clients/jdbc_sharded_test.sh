#!/usr/bin/env bash
# pgJDBC (Debian's libpostgresql-jdbc-java, 42.5), unmodified, doing tenant CRUD with bound
# parameters through a proxy that shards accounts and notes by tenant_id (bigint) over two shards,
# with plans as a reference table (SPEC sections 3-5): DDL to every shard, INSERT/SELECT/UPDATE/
# DELETE for 200 tenants with PreparedStatements reused past prepareThreshold (named server
# statements) across tenants of both shards, autocommit on and off, a transaction per tenant
# (commit and rollback), batches (plain and reWriteBatchedInserts), a cross-shard write in one
# transaction (0A000, nothing left), reference-table writes on both shards, the SET and comment
# tenant hints; then every tenant's rows are checked on the shards themselves. The checks are in
# JdbcShardedClient.java.
# Usage: bash tests/clients/jdbc_sharded_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

JAR=/usr/share/java/postgresql.jar
if [ ! -r "$JAR" ] || ! command -v java >/dev/null 2>&1; then
  echo "jdbc_sharded: needs java (17+) and $JAR (libpostgresql-jdbc-java; scripts/install-deps.sh)" >&2
  exit 2
fi

start_tenant_crud_cluster  # sets $directory

# Single-file source launch (JEP 330): compiled in memory, nothing written to the tree.
run_client JdbcShardedClient.java java -cp "$JAR" "$SL_CLIENTS/JdbcShardedClient.java" 127.0.0.1 \
  "$SL_SHARDED_PORT" "$SL_USER" "$SL_PASSWORD" "$SL_DATABASE" "$directory" \
  "$SL_BASE_PORT" $((SL_BASE_PORT + 10))
finish
