#!/usr/bin/env bash
# asyncpg (Debian's python3-asyncpg), unmodified, against PostgreSQL directly and through the
# proxy with one shard and with two shards (tables sharded by tenant_id): a pool of 5 running 500
# concurrent queries with the statement cache on, executemany, transactions with rollback (checked
# from a separate connection), savepoints, isolation levels as the server reports them, cursors,
# COPY both ways. The checks, and the KNOWN_FAILURES list of proxy bugs, are in asyncpg_client.py.
# Usage: bash tests/clients/asyncpg_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

# Debian's interpreter: a python3 earlier in PATH (pyenv, venv) may lack the driver.
PY=/usr/bin/python3
if ! "$PY" -c 'import asyncpg' 2>/dev/null; then
  echo "asyncpg: $PY cannot import asyncpg; install python3-asyncpg (scripts/install-deps.sh)" >&2
  exit 2
fi

start_driver_cluster '{apg_items: {}, apg_copy: {}, apg_fresh: {}, apg_alter: {}}'
run_targets asyncpg_client.py "$PY" "$SL_CLIENTS/asyncpg_client.py"
finish
