#!/usr/bin/env bash
# Installs the npm MCP servers the tests run (the official reference servers) into .cache/npm at the repository root,
# which git ignores. Idempotent: does nothing when the pinned versions are already there. Used by ./test.sh and, when
# the package is missing, by the tests themselves.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
prefix="$root/.cache/npm"
packages=("@modelcontextprotocol/server-filesystem@2026.8.31")

missing=()
for spec in "${packages[@]}"; do
  name="${spec%@*}"
  version="${spec##*@}"
  manifest="$prefix/node_modules/$name/package.json"
  if [[ ! -f "$manifest" ]] || ! grep -q "\"version\": \"$version\"" "$manifest"; then
    missing+=("$spec")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

mkdir -p "$prefix"
# One install at a time: two test processes (or test.sh and a test) may ask at once.
exec 9>"$prefix/.install.lock"
flock 9
npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "${missing[@]}" >&2
