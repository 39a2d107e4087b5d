#!/usr/bin/env bash
# The compose fleet without Docker: docker/pg-node.sh starts two primaries and a streaming
# replica of each on loopback ports (as the containers run it, with PGPORT/PRIMARY_PORT/
# LISTEN_ADDRESSES/SOCKET_DIR instead of one host each), and `shardline serve` runs with
# docker/shardline.yaml, its service host names replaced by 127.0.0.1 and those ports. A table
# created through the proxy gets rows for 200 tenants: both primaries must hold some, and each
# replica must replay its primary's rows.
# Usage: bash tests/docker/pg_node_test.sh <build_dir>
. "$(dirname "$0")/../clients/lib.sh" "$1"
root=$(cd "$(dirname "$0")/../.." && pwd)
node=$root/docker/pg-node.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/shardline-pg-node.XXXXXX") || exit 2
chmod 755 "$work"
pids=()
proxy_pid=""
stop_all() {
  local rc=$?
  [ -n "$proxy_pid" ] && kill -TERM "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$rc" -eq 0 ]; then rm -rf "$work"; else echo "# logs kept in $work" >&2; fi
  exit "$rc"
}
trap stop_all EXIT
pick_ports 2 1 || exit 2
http=$((SL_PORT + 1))
port_free "$http" || { echo "pg_node_test: port $http is taken" >&2; exit 2; }

start_node() {  # NAME PORT ROLE [PRIMARY_PORT]
  PGDATA=$work/$1 PGPORT=$2 PRIMARY_PORT=${4:-$2} LISTEN_ADDRESSES=127.0.0.1 SOCKET_DIR=$work/sock \
    bash "$node" "$3" 127.0.0.1 >"$work/$1.log" 2>&1 &
  pids+=("$!")
}
s0=$SL_BASE_PORT s1=$((SL_BASE_PORT + 10))
start_node s0-primary "$s0" primary
start_node s1-primary "$s1" primary
start_node s0-replica $((s0 + 1)) replica "$s0"
start_node s1-replica $((s1 + 1)) replica "$s1"
for port in "$s0" "$s1" $((s0 + 1)) $((s1 + 1)); do
  deadline=$((SECONDS + 120))
  until pg_isready -q -h 127.0.0.1 -p "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "the server on port $port accepts connections" "$(tail -n 20 "$work"/*.log)"
      finish
    fi
    sleep 0.3
  done
done
pass "pg-node.sh started two primaries and a replica of each"

sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $SL_PORT}/" \
    -e "s/http_port: 9930/http_port: $http/" \
    -e "s/host: s0-primary, port: 5432/host: 127.0.0.1, port: $s0/" \
    -e "s/host: s0-replica, port: 5432/host: 127.0.0.1, port: $((s0 + 1))/" \
    -e "s/host: s1-primary, port: 5432/host: 127.0.0.1, port: $s1/" \
    -e "s/host: s1-replica, port: 5432/host: 127.0.0.1, port: $((s1 + 1))/" \
    "$root/docker/shardline.yaml" >"$work/shardline.yaml"
check_eq "every service host of docker/shardline.yaml was mapped to a local server" "" \
  "$(grep -E 'host: s[0-9]-' "$work/shardline.yaml")"
"$SL_BIN" serve --config "$work/shardline.yaml" >"$work/proxy.log" 2>&1 </dev/null &
proxy_pid=$!
deadline=$((SECONDS + 60))
until [ "$(PGPASSWORD=secret psql -X -At -h 127.0.0.1 -p "$SL_PORT" -U app -d app -c 'SELECT 1' 2>/dev/null)" == "1" ]; do
  if ! kill -0 "$proxy_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    fail "the proxy answers with the fleet config" "$(tail -n 20 "$work/proxy.log")"
    finish
  fi
  sleep 0.2
done
pass "the proxy serves the fleet config"

values=$(seq 1 200 | awk '{ printf "%s(%d, 1)", NR == 1 ? "" : ", ", $1 }')
out=$(PGPASSWORD=secret psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SL_PORT" -U app -d app \
  -c "CREATE TABLE fleet_items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id))" \
  -c "INSERT INTO fleet_items VALUES $values" 2>&1)
check_eq "a table with tenant_id created and filled through the proxy (auto_tables)" "" "$out"
direct() { PGPASSWORD=secret psql -X -At -h 127.0.0.1 -p "$1" -U app -d app -c "$2" 2>&1; }
n0=$(direct "$s0" "SELECT count(*) FROM fleet_items")
n1=$(direct "$s1" "SELECT count(*) FROM fleet_items")
check_match "s0's primary holds some of the rows ($n0)" '^[1-9][0-9]*$' "$n0"
check_match "s1's primary holds some of the rows ($n1)" '^[1-9][0-9]*$' "$n1"
check_eq "no row lost or doubled" "200" "$((n0 + n1))"
for pair in "$s0:$n0" "$s1:$n1"; do
  primary=${pair%%:*} want=${pair##*:} got=""
  deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    got=$(direct $((primary + 1)) "SELECT count(*) FROM fleet_items")
    [ "$got" == "$want" ] && break
    sleep 0.2
  done
  check_eq "the replica on port $((primary + 1)) replays its primary's rows" "$want" "$got"
  check_eq "the server on port $((primary + 1)) is a standby" "t" "$(direct $((primary + 1)) 'SELECT pg_is_in_recovery()')"
done
replicas=$(PGPASSWORD=secret psql -X -At -h 127.0.0.1 -p "$SL_PORT" -U app -d shardline -c 'SHOW REPLICAS' 2>&1 | wc -l)
check_eq "SHOW REPLICAS lists both replicas" "2" "$replicas"
finish
