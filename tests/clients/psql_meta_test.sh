#!/usr/bin/env bash
# psql's meta-commands (\d, \dt, \d+ table, \df, \dn, \dT, \sf, \l ...) through the proxy, with one
# shard and with two shards (meta_items sharded by tenant_id), compared byte for byte with the
# same commands run against the first shard's primary directly. psql builds every listing from
# catalog queries (simple protocol), so any difference is the proxy changing an answer. Only
# commands whose output does not depend on the host or port are used (no \conninfo).
# Usage: bash tests/clients/psql_meta_test.sh <build_dir>
. "$(dirname "$0")/lib.sh" "$1"

# Scenario (a meta-command, or TARGET:meta-command) -> the proxy bug that breaks it.
declare -A KNOWN_FAILURES=(
)

start_driver_cluster '{meta_items: {}}'

schema_sql='CREATE SCHEMA meta_s;
CREATE TYPE meta_s.mood AS ENUM ('"'"'sad'"'"', '"'"'ok'"'"', '"'"'happy'"'"');
CREATE DOMAIN meta_s.positive AS numeric(10,2) CHECK (VALUE >= 0);
CREATE TABLE meta_items (tenant_id bigint NOT NULL, id int NOT NULL, name text NOT NULL DEFAULT '"'"'x'"'"',
  price numeric(10,2) CHECK (price >= 0), created timestamptz DEFAULT now(), tags text[],
  PRIMARY KEY (tenant_id, id));
CREATE INDEX meta_items_name ON meta_items (tenant_id, lower(name));
COMMENT ON TABLE meta_items IS '"'"'items per tenant'"'"';
COMMENT ON COLUMN meta_items.price IS '"'"'in euros'"'"';
CREATE TABLE meta_s.plain (id serial PRIMARY KEY, mood meta_s.mood, amount meta_s.positive,
  parent int REFERENCES meta_s.plain (id) ON DELETE CASCADE, UNIQUE (mood, amount));
CREATE SEQUENCE meta_s.counter START 100 INCREMENT 5;
CREATE VIEW meta_s.moods AS SELECT mood, count(*) AS n FROM meta_s.plain GROUP BY mood;
CREATE FUNCTION meta_s.add_tax(p numeric, rate numeric DEFAULT 0.2) RETURNS numeric
  LANGUAGE sql IMMUTABLE AS '"'"'SELECT round(p * (1 + rate), 2)'"'"';
CREATE FUNCTION meta_s.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.id := NEW.id; RETURN NEW; END$$;
CREATE TRIGGER plain_touch BEFORE UPDATE ON meta_s.plain FOR EACH ROW EXECUTE FUNCTION meta_s.touch();'

meta_commands=(
  '\d' '\dt' '\dt+ meta_s.*' '\d meta_items' '\d+ meta_items' '\d meta_s.plain' '\d+ meta_s.plain'
  '\di meta_s.*' '\di meta_items*' '\ds meta_s.*' '\dv meta_s.*' '\d+ meta_s.moods' '\df meta_s.*'
  '\df+ meta_s.add_tax' '\dn' '\dT meta_s.*' '\dD meta_s.*' '\dp meta_s.*' '\dd meta_s.*'
  '\sf meta_s.add_tax' '\sv meta_s.moods' '\dx' '\du app' '\l' '\dconfig search_path'
  '\dy' '\dL' '\dRp' '\z meta_items'
)

for target in proxy-1shard proxy-2shard; do
  port=$(target_port "$target")
  db=$(target_database "$target")
  out=$(printf '%s\n' "$schema_sql" | PGPASSWORD="$SL_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
    -p "$port" -U "$SL_USER" -d "$db" 2>&1)
  check_eq "[$target] the schema was created through the proxy" "" "$out"
  for cmd in "${meta_commands[@]}"; do
    direct=$(PGPASSWORD="$SL_PASSWORD" psql -X -P pager=off -h 127.0.0.1 -p "$SL_BASE_PORT" -U "$SL_USER" \
      -d "$db" -c "$cmd" 2>&1)
    proxied=$(PGPASSWORD="$SL_PASSWORD" psql -X -P pager=off -h 127.0.0.1 -p "$port" -U "$SL_USER" \
      -d "$db" -c "$cmd" 2>&1)
    if [ -z "$direct" ] || [[ "$direct" == *ERROR:* ]] || [[ "$direct" == *"invalid command"* ]]; then
      fail "[$target] $cmd does not work against the primary directly" "$direct"
      continue
    fi
    check_known "$target" "$cmd" "$cmd prints byte for byte what the primary prints" "$direct" "$proxied"
  done
done
finish
