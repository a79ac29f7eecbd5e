#!/usr/bin/env bash
# Install the rediscache Python package (editable, with its Django/Flask extras and test tools)
# into the repo's virtual environment, and fetch, once, the source distributions of Django and
# Flask-Caching whose own test suites test.sh runs. Called by scripts/setup.sh with $PYTHON set
# to the venv's python. Idempotent; network: PyPI only (pip).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-$here/../../.venv/bin/python3}"
cache="$here/.cache"
mkdir -p "$cache"

stamp="$cache/.installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ] \
    || ! "$PYTHON" -c 'import rediscache, django, flask_caching, ruff' 2>/dev/null; then
  echo "clients/python: pip install -e clients/python[test]"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e "$here[test]"
  touch "$stamp"
else
  echo "clients/python: rediscache and its test requirements present"
fi

# The sdists of the versions installed above: their tests/ folders hold the frameworks' suites.
fetch_sdist() {  # pip-name folder-prefix members-of-tests/...
  local name="$1" prefix="$2" ver m members=()
  shift 2
  ver="$("$PYTHON" -c "import importlib.metadata as m; print(m.version('$name'))")"
  if [ -d "$cache/$prefix-$ver/tests" ]; then
    echo "clients/python: $name $ver sources present"
    return
  fi
  echo "clients/python: fetching the $name $ver source distribution (for its tests)"
  rm -rf "$cache/dl-$prefix"
  "$PYTHON" -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
    "$name==$ver" -d "$cache/dl-$prefix"
  for m in "$@"; do members+=("$prefix-$ver/tests${m:+/$m}"); done
  tar -xzf "$cache/dl-$prefix"/*.tar.gz -C "$cache" "${members[@]}"
  rm -rf "$cache/dl-$prefix"
}
fetch_sdist django django cache runtests.py   # Django's cache tests (tests/cache)
fetch_sdist flask-caching flask_caching ""      # Flask-Caching's whole tests/ folder
