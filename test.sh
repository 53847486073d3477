#!/usr/bin/env bash
# Runs the whole test suite from a fresh checkout: restores, builds, and runs every test project.
# Long torture, chaos and fuzz runs scale with ORDO_TORTURE_SCALE (default 1; CI keeps the default).
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export ORDO_TORTURE_SCALE="${ORDO_TORTURE_SCALE:-1}"

echo "== build"
dotnet build Ordo.sln -c Release -nologo -v quiet

echo "== npm MCP servers (into .cache/npm)"
test/tools/install-npm-servers.sh

echo "== Chromium for the dashboard's browser tests (Debian's package, when missing)"
test/tools/install-chromium.sh

echo "== PostgreSQL for the store's tests (a throwaway cluster on a free loopback port; Debian's package when missing)"
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ordo-test-pg.XXXXXX")"
trap 'test/tools/postgres-cluster.sh stop "$PG_DIR"' EXIT
ORDO_TEST_POSTGRES="$(test/tools/postgres-cluster.sh start "$PG_DIR")"
export ORDO_TEST_POSTGRES

echo "== test"
dotnet test Ordo.sln -c Release --no-build -nologo --logger "console;verbosity=minimal" "$@"
