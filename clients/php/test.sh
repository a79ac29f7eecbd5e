#!/usr/bin/env bash
# clients/php's tests (run by `make test-clients`): php -l on every PHP file of the package and
# of examples/php, then PHPUnit (Debian's phpunit) against a redis-server with the module that
# the suite starts itself on a free loopback port (tests/TestServer.php).
#
# Environment: CACHE_MODULE (default <repo>/target/release/librediscache.so), REDIS_SERVER
# (redis-server), PYTHON (for the seed flow's Python job; default <repo>/.venv/bin/python3).
# Prints PHPUnit's summary; exits non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export CACHE_MODULE="${CACHE_MODULE:-$repo/target/release/librediscache.so}"
if [ -z "${PYTHON:-}" ] && [ -x "$repo/.venv/bin/python3" ]; then
  export PYTHON="$repo/.venv/bin/python3"
fi

say() { printf '[clients/php] %s\n' "$*"; }
command -v php >/dev/null || { say "php is not installed (clients/php/setup.sh installs it)"; exit 1; }
command -v phpunit >/dev/null || { say "phpunit is not installed (clients/php/setup.sh installs it)"; exit 1; }
[ -f "$CACHE_MODULE" ] || { say "no module at $CACHE_MODULE (cargo build --release)"; exit 1; }

lint_failed=0; linted=0
while IFS= read -r -d '' f; do
  linted=$((linted + 1))
  out="$(php -l "$f" 2>&1)" || { echo "$out"; lint_failed=$((lint_failed + 1)); }
done < <(find "$here" "$repo/examples/php" -name '*.php' -not -path '*/vendor/*' -print0)
say "php -l: $linted files, $lint_failed with errors"

say "phpunit $(phpunit --version | awk '{print $2}'), php $(php -r 'echo PHP_VERSION;'), phpredis $(php -r 'echo phpversion("redis") ?: "none";'), module $CACHE_MODULE"
# zend.assertions=1 (development mode): Symfony checks PSR-6 keys with assert() (Psr6ViaSymfony...).
timeout "${PHP_TEST_TIMEOUT:-600}" php -d zend.assertions=1 "$(command -v phpunit)" -c "$here/phpunit.xml"
status=$?
[ $status -eq 124 ] && say "phpunit timed out"
[ $lint_failed -eq 0 ] && [ $status -eq 0 ]
