#!/usr/bin/env bash
# Reshard scenario (SPEC.md section 8, issue 11): a 2-shard `shardline demo` and a proxy that
# shards `items`; bench/reshard_load.py measures write latency of the moved logical shard and of
# the others (baseline vs during RESHARD MOVE) and copy throughput vs a plain COPY pipe. Prints a
# Markdown section. bench/run.sh appends it to its report; alone: bench/reshard_bench.sh [BUILD_DIR].
# BENCH_SECONDS (default 10): the baseline's length; BENCH_RESHARD_ROWS (default 200000).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
BIN=$BUILD/shardline
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECS=${BENCH_SECONDS:-10}
ROWS=${BENCH_RESHARD_ROWS:-200000}
TMP=$(mktemp -d /tmp/shardline-reshard-bench-XXXXXX)
chmod 755 "$TMP"
DEMO_PID=
SERVE_PID=
cleanup() {
  [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
  [[ -n $DEMO_PID ]] && kill -INT "$DEMO_PID" 2>/dev/null && wait "$DEMO_PID" 2>/dev/null || true
  [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DEMO_PORT=$(free_port); PROXY_PORT=$(free_port)
BASE=$(( 20000 + RANDOM % 20000 ))
"$BIN" demo --dir "$TMP/cluster" --shards 2 --replicas 0 --port "$DEMO_PORT" --base-port "$BASE" --no-sample \
  --http-port 0 >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 180); do
  [[ -f $TMP/cluster/shardline.yaml ]] && grep -q 'psql' "$TMP/demo.log" && break
  kill -0 "$DEMO_PID" 2>/dev/null || { cat "$TMP/demo.log" >&2; exit 1; }
  sleep 1
done
CONFIG=$TMP/cluster/shardline.yaml
sed -e "s/^listen: .*/listen: {host: 127.0.0.1, port: $PROXY_PORT}/" \
    -e 's/^sharding: .*/sharding: {logical_shards: 1024, key: tenant_id, tables: {items: {}}}/' "$CONFIG" >"$TMP/reshard.yaml"
"$BIN" serve --config "$TMP/reshard.yaml" >"$TMP/serve.log" 2>&1 </dev/null &
SERVE_PID=$!
for _ in $(seq 1 60); do
  psql -X -q "host=127.0.0.1 port=$PROXY_PORT user=app password=secret dbname=app" -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.5
done
shard_port() { sed -n "s/^  s$1: {primary: {host: [^,]*, port: \([0-9]*\)}.*/\1/p" "$CONFIG"; }
su_conn() { echo "host=127.0.0.1 port=$(shard_port "$1") user=shardline_control password=secret dbname=app"; }
/usr/bin/python3 "$HERE/reshard_load.py" --proxy "host=127.0.0.1 port=$PROXY_PORT user=app password=secret dbname=app" \
  --admin "host=127.0.0.1 port=$PROXY_PORT user=app password=secret dbname=shardline" \
  --shard "$(su_conn 0)" --shard "$(su_conn 1)" --seconds "$SECS" --rows "$ROWS" || {
  tail -n 40 "$TMP/serve.log" >&2
  exit 1
}
