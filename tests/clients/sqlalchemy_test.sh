#!/usr/bin/env bash
# SQLAlchemy ORM (Debian's python3-sqlalchemy, psycopg2 dialect), unmodified, against PostgreSQL
# directly and through the proxy with one shard and with two shards (sa_accounts and sa_notes
# sharded by tenant_id): create_all, a unit of work per tenant, relationships with selectinload,
# rollback checked from another session, savepoints (begin_nested), repeatable read, tenant-less
# aggregates. The checks, and the KNOWN_FAILURES list of proxy bugs, are in sqlalchemy_client.py.
# Usage: bash tests/clients/sqlalchemy_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

# Debian's interpreter: a python3 earlier in PATH (pyenv, venv) may lack the library.
PY=/usr/bin/python3
if ! "$PY" -c 'import sqlalchemy, psycopg2' 2>/dev/null; then
  echo "sqlalchemy: $PY cannot import sqlalchemy; install python3-sqlalchemy (scripts/install-deps.sh)" >&2
  exit 2
fi

start_driver_cluster '{sa_accounts: {}, sa_notes: {}}'
run_targets sqlalchemy_client.py "$PY" "$SL_CLIENTS/sqlalchemy_client.py"
finish
