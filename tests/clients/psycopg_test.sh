#!/usr/bin/env bash
# psycopg2 (Debian's python3-psycopg2), unmodified, through the proxy: CRUD with bound
# parameters, executemany, transactions, server errors, COPY both ways, named server-side
# cursors, and a wrong password (SQLSTATE 28P01). The checks are in psycopg_client.py.
# Usage: bash tests/clients/psycopg_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

# Debian's interpreter: a python3 earlier in PATH (pyenv, venv) may lack psycopg2.
PY=/usr/bin/python3
if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
  echo "psycopg: $PY cannot import psycopg2; install python3-psycopg2 (scripts/install-deps.sh)" >&2
  exit 2
fi

start_demo 2 0
run_client psycopg_client.py "$PY" "$SL_CLIENTS/psycopg_client.py" 127.0.0.1 "$SL_APP_PORT" \
  "$SL_USER" "$SL_PASSWORD" "$SL_DATABASE"

# The client's last table, checked from outside the proxy: the rows are on the first shard.
out=$(psql_direct 0 -At -c "SELECT count(*), sum(id) FROM py_copy" 2>&1)
check_eq "py_copy's 2001 rows landed on shard s0's primary" "2001|2003001" "$out"
finish
