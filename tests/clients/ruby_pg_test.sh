#!/usr/bin/env bash
# ruby-pg (Debian's ruby-pg), unmodified, against PostgreSQL directly and through the proxy with
# one shard and with two shards (rb_items sharded by tenant_id): exec_params, prepare /
# exec_prepared / DEALLOCATE, transactions with rollback (checked from another connection) and a
# savepoint, repeatable read, COPY both ways, single-row mode, pipeline mode with an error at a
# sync point. The checks, and the KNOWN_FAILURES list of proxy bugs, are in ruby_pg_client.rb.
# Usage: bash tests/clients/ruby_pg_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

if ! ruby -e 'require "pg"' 2>/dev/null; then
  echo "ruby_pg: needs ruby with the pg gem; install ruby-pg (scripts/install-deps.sh)" >&2
  exit 2
fi

start_driver_cluster '{rb_items: {}}'
run_targets ruby_pg_client.rb ruby "$SL_CLIENTS/ruby_pg_client.rb"
finish
