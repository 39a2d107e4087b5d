#!/usr/bin/env bash
# psycopg2 (Debian's python3-psycopg2), unmodified, doing tenant CRUD with bound parameters
# through a proxy that shards accounts and notes by tenant_id (bigint) over two shards, with plans
# as a reference table (SPEC sections 3-5): DDL to every shard, INSERT/SELECT/UPDATE/DELETE for
# 200 tenants, a transaction per tenant (commit and rollback), executemany, a cross-shard write in
# one transaction (0A000, nothing left), reference-table writes on both shards, the SET and
# comment tenant hints; then every tenant's rows are checked on the shards themselves. The checks
# are in psycopg_sharded_client.py.
# Usage: bash tests/clients/psycopg_sharded_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

# Debian's interpreter: a python3 earlier in PATH (pyenv, venv) may lack psycopg2.
PY=/usr/bin/python3
if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
  echo "psycopg_sharded: $PY cannot import psycopg2; install python3-psycopg2 (scripts/install-deps.sh)" >&2
  exit 2
fi

start_tenant_crud_cluster  # sets $directory

run_client psycopg_sharded_client.py "$PY" "$SL_CLIENTS/psycopg_sharded_client.py" 127.0.0.1 \
  "$SL_SHARDED_PORT" "$SL_USER" "$SL_PASSWORD" "$SL_DATABASE" "$directory" \
  "$SL_BASE_PORT" $((SL_BASE_PORT + 10))
finish
