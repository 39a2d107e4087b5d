#!/usr/bin/env bash
# postgres.js ("postgres", pinned in tests/clients/node/package.json), unmodified, against
# PostgreSQL directly and through the proxy with one shard and with two shards (pjs_items sharded
# by tenant_id): multi-row inserts, 300 concurrent queries on 5 connections, sql.begin with
# rollback (checked from another client), savepoints, isolation levels, cursors, COPY both ways,
# sql.unsafe with two statements, LISTEN/NOTIFY. The checks, and the KNOWN_FAILURES list of proxy
# bugs, are in tests/clients/node/postgresjs_client.js.
# Usage: bash tests/clients/postgresjs_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

if ! command -v node >/dev/null 2>&1; then
  echo "postgresjs: needs node (nodejs; scripts/install-deps.sh)" >&2
  exit 2
fi
if [ ! -f "$SL_CLIENTS/node/node_modules/postgres/package.json" ]; then
  echo "postgresjs: postgres.js is not installed; run: (cd tests/clients/node && npm ci) or scripts/install-deps.sh" >&2
  exit 2
fi

start_driver_cluster '{pjs_items: {}}'
run_targets postgresjs_client.js node "$SL_CLIENTS/node/postgresjs_client.js"
finish
