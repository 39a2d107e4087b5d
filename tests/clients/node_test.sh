#!/usr/bin/env bash
# node-postgres ("pg", pinned in tests/clients/node/package.json), unmodified, through the proxy:
# parameterized queries, named prepared statements on a Pool of 5 clients with 20 concurrent
# queries, a transaction, errors. Checks are in tests/clients/node/client.js.
# Usage: bash tests/clients/node_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

if ! command -v node >/dev/null 2>&1; then
  echo "node: needs node (nodejs; scripts/install-deps.sh)" >&2
  exit 2
fi
if [ ! -f "$SL_CLIENTS/node/node_modules/pg/package.json" ]; then
  echo "node: node-postgres is not installed; run: (cd tests/clients/node && npm ci) or scripts/install-deps.sh" >&2
  exit 2
fi

start_demo 2 0
run_client client.js node "$SL_CLIENTS/node/client.js" 127.0.0.1 "$SL_APP_PORT" \
  "$SL_USER" "$SL_PASSWORD" "$SL_DATABASE"

out=$(psql_direct 0 -At -c "SELECT count(*), max(name) FILTER (WHERE id = 602) FROM n_items" 2>&1)
check_eq "n_items' rows landed on shard s0's primary" "102|committed" "$out"
finish
