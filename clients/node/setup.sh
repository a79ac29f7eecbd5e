#!/usr/bin/env bash
# Install what the Node package's tests need (called by scripts/setup.sh, and by test.sh):
# `npm ci` in clients/node when node_modules is missing or older than package-lock.json.
# Only the npm registry is used. Install scripts are not run (`--ignore-scripts`): the one
# dependency that has one (sqlite3, pulled in by @keyv/test-suite) is not used by our tests.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "clients/node/setup.sh: node and npm (Node >= 20) are needed; skipping (clients/node/test.sh will fail)" >&2
  exit 0
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "clients/node/setup.sh: Node >= 20 is needed, found $(node --version); skipping" >&2
  exit 0
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "clients/node/setup.sh: npm ci"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
else
  echo "clients/node/setup.sh: node_modules up to date"
fi
# The Node examples depend on this package (file:../../clients/node).
ex=../../examples/node
if [ -f "$ex/package-lock.json" ] && { [ ! -e "$ex/node_modules/rediscache" ] || [ "$ex/package-lock.json" -nt "$ex/node_modules/.package-lock.json" ]; }; then
  echo "clients/node/setup.sh: npm ci in examples/node"
  (cd "$ex" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
