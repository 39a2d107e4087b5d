#!/usr/bin/env bash
# One PostgreSQL 15 server of the compose fleet, in the foreground as the postgres user.
#   pg-node primary            initdb (first start), the application role and database, then run
#   pg-node replica PRIMARY    pg_basebackup from PRIMARY (first start) as a streaming standby, then run
# Environment (defaults for the containers): APP_USER, APP_PASSWORD, APP_DB (what the proxy logs
# in with), PGDATA, PGPORT (5432), PRIMARY_PORT (5432), LISTEN_ADDRESSES ('*'), SOCKET_DIR
# (/var/run/postgresql). tests/docker/pg_node_test.sh runs it on loopback ports outside Docker.
set -euo pipefail
role=${1:?usage: pg-node primary | pg-node replica PRIMARY_HOST}
bin=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data}" "${APP_USER:=app}" "${APP_PASSWORD:=secret}" "${APP_DB:=app}"
: "${PGPORT:=5432}" "${PRIMARY_PORT:=5432}" "${LISTEN_ADDRESSES:=*}" "${SOCKET_DIR:=/var/run/postgresql}"
as_pg() { runuser -u postgres -- "$@"; }

install -d -o postgres -g postgres -m 0700 "$PGDATA"
install -d -o postgres -g postgres "$SOCKET_DIR"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  case "$role" in
    primary)
      as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C
      cat >>"$PGDATA/postgresql.conf" <<CONF
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_prepared_transactions = 100
hot_standby = on
wal_keep_size = '256MB'
CONF
      cat >"$PGDATA/pg_hba.conf" <<HBA
local all all trust
local replication all trust
host all all all scram-sha-256
host replication all all scram-sha-256
HBA
      # Set up over the Unix socket only, before anyone can connect over TCP.
      as_pg "$bin/pg_ctl" -D "$PGDATA" -w \
        -o "-c listen_addresses='' -p $PGPORT -c unix_socket_directories='$SOCKET_DIR'" start
      as_pg psql -X -q -h "$SOCKET_DIR" -p "$PGPORT" -v ON_ERROR_STOP=1 -v user="$APP_USER" \
        -v password="$APP_PASSWORD" -v db="$APP_DB" postgres <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE :"user" WITH LOGIN REPLICATION PASSWORD :'password';
GRANT pg_monitor TO :"user";
CREATE DATABASE :"db" OWNER :"user";
SQL
      as_pg "$bin/pg_ctl" -D "$PGDATA" -w stop
      ;;
    replica)
      primary=${2:?pg-node replica needs the primary host}
      until as_pg "$bin/pg_isready" -q -h "$primary" -p "$PRIMARY_PORT"; do sleep 1; done
      as_pg env PGPASSWORD="$APP_PASSWORD" "$bin/pg_basebackup" -D "$PGDATA" -R -X stream -c fast \
        -h "$primary" -p "$PRIMARY_PORT" -U "$APP_USER" -w
      ;;
    *) echo "pg-node: unknown role '$role' (primary or replica)" >&2; exit 1 ;;
  esac
fi
# setpriv execs (no parent process left): as PID 1, postgres itself gets the stop signal.
exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" -D "$PGDATA" -p "$PGPORT" \
  -c "listen_addresses=$LISTEN_ADDRESSES" -c "unix_socket_directories=$SOCKET_DIR"
