#!/usr/bin/env bash
# docker/ checked without a Docker engine: the Dockerfile with a Dockerfile linter
# (dockerfile-utils, pinned in tests/docker/package.json), the compose file with Debian's
# docker-compose (`config` validates it against the Compose schema offline), pg-node.sh with
# bash -n, and the fleet's shardline config with `shardline check`. It also checks that the
# pieces agree: the image builds with scripts/install-deps.sh, every shard host in the config is
# a compose service, each replica follows its own shard's primary.
# Usage: bash tests/docker/docker_files_test.sh <build_dir>
set -uo pipefail
build=${1:?usage: docker_files_test.sh <build_dir>}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
bad() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'; }
check() { local what=$1; shift; local out; if out=$("$@" 2>&1); then ok "$what"; else bad "$what" "$out"; fi; }

lint=$here/node_modules/.bin/dockerfile-utils
if [ ! -x "$lint" ]; then
  echo "docker_files_test: $lint is missing: run scripts/install-deps.sh" >&2
  exit 2
fi
if ! command -v docker-compose >/dev/null; then
  echo "docker_files_test: docker-compose is missing: run scripts/install-deps.sh" >&2
  exit 2
fi

# The linter must catch a broken Dockerfile, or its silence on ours means nothing.
broken=$(mktemp)
trap 'rm -f "$broken"' EXIT
printf 'FROM debian:12\nRUNN echo hi\n' >"$broken"
if "$lint" lint "$broken" >/dev/null 2>&1; then bad "the Dockerfile linter rejects an unknown instruction"
else ok "the Dockerfile linter rejects an unknown instruction"; fi
out=$("$lint" lint "$root/docker/Dockerfile" 2>&1)
if [ $? -eq 0 ] && [ -z "$out" ]; then ok "docker/Dockerfile: no lint diagnostics"; else bad "docker/Dockerfile: lint" "$out"; fi
check "docker/Dockerfile builds with scripts/install-deps.sh" grep -Eq '^RUN scripts/install-deps.sh' "$root/docker/Dockerfile"
check "docker/Dockerfile installs pg-node and the fleet config it copies" \
  grep -q 'docker/pg-node.sh /usr/local/bin/pg-node' "$root/docker/Dockerfile"

compose=$root/docker/compose.yaml
check "docker/compose.yaml is a valid Compose file" docker-compose -f "$compose" config -q
services=$(docker-compose -f "$compose" config --services 2>&1 | sort | tr '\n' ' ')
if [ "$services" == "proxy s0-primary s0-replica s1-primary s1-replica " ]; then
  ok "compose runs two shards (primary + replica each) and the proxy"
else
  bad "compose services" "$services"
fi
resolved=$(docker-compose -f "$compose" config 2>&1)
for s in 0 1; do
  if printf '%s\n' "$resolved" | grep -A8 "^  s$s-replica:" | grep -q -- "- s$s-primary$"; then
    ok "s$s-replica streams from s$s-primary"
  else
    bad "s$s-replica streams from s$s-primary" "$(printf '%s\n' "$resolved" | grep -A8 "^  s$s-replica:")"
  fi
done

check "docker/pg-node.sh parses" bash -n "$root/docker/pg-node.sh"
check "docker/shardline.yaml passes shardline check" "$build/shardline" check --config "$root/docker/shardline.yaml"
for host in $(grep -oE 'host: s[0-9]+-(primary|replica)' "$root/docker/shardline.yaml" | awk '{print $2}'); do
  if [[ " $services " == *" $host "* ]]; then ok "config host $host is a compose service"
  else bad "config host $host is a compose service" "$services"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
