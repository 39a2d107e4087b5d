#!/usr/bin/env bash
# Installs every Debian 12 package shardline's build, tests, demo and benchmark need.
# Idempotent and non-interactive. With --if-missing it does nothing when all are present.
# With --fuzz it installs only what `make fuzz` needs on top (clang and its libFuzzer runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libpq-dev libpqxx-dev libboost1.81-dev libyaml-cpp-dev libpg-query-dev libprotobuf-c-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev
  postgresql-15 postgresql-client-15 pgbouncer openssl procps util-linux
  python3 python3-psycopg2 python3-psycopg python3-asyncpg python3-sqlalchemy ruby ruby-pg
  python3-prometheus-client chromium
  default-jdk-headless libpostgresql-jdbc-java nodejs npm
  docker-compose
)

if [ "${1:-}" = "--fuzz" ]; then packages=(clang libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# A JDK from elsewhere (or node from elsewhere) is fine: only ask apt for what has no stand-in.
if command -v javac >/dev/null 2>&1; then missing=("${missing[@]/default-jdk-headless}"); fi
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q </dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
  # Debian starts a default cluster on 5432; shardline's clusters use their own ports, so
  # leave it alone (stopping it is not ours to do), but never depend on it.
fi

# node-postgres and postgres.js for the client tests, from the npm registry, pinned by package.json.
if [ -f tests/clients/node/package.json ] && { [ ! -d tests/clients/node/node_modules/pg ] || [ ! -d tests/clients/node/node_modules/postgres ]; }; then
  (cd tests/clients/node && npm install --no-audit --no-fund --loglevel=error </dev/null)
fi

# The Dockerfile linter for tests/docker (dockerfile-utils, pinned by its package.json).
if [ -f tests/docker/package.json ] && [ ! -x tests/docker/node_modules/.bin/dockerfile-utils ]; then
  (cd tests/docker && npm install --no-audit --no-fund --loglevel=error </dev/null)
fi
