#!/usr/bin/env bash
# psycopg 3 (Debian's python3-psycopg), unmodified, against PostgreSQL directly and through the
# proxy with one shard and with two shards (tables sharded by tenant_id): pipeline mode with an
# error at every other sync point (100 rounds), prepare=True, a prepared statement after ALTER
# TABLE, binary COPY both ways, server-side cursors, DEALLOCATE ALL after a rollback while other
# clients run the same prepared statements, set_config, client_encoding, LISTEN/NOTIFY. The checks,
# and the KNOWN_FAILURES list of proxy bugs, are in psycopg3_client.py.
# Usage: bash tests/clients/psycopg3_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

# Debian's interpreter: a python3 earlier in PATH (pyenv, venv) may lack the driver.
PY=/usr/bin/python3
if ! "$PY" -c 'import psycopg' 2>/dev/null; then
  echo "psycopg3: $PY cannot import psycopg (3); install python3-psycopg (scripts/install-deps.sh)" >&2
  exit 2
fi

start_driver_cluster '{pg3_items: {}, pg3_copy: {}, pg3_alter: {}}'
run_targets psycopg3_client.py "$PY" "$SL_CLIENTS/psycopg3_client.py"
finish
