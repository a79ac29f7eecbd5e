#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (run as root) to build and test the module.
# Idempotent: every step checks first and skips work already done.
# Network: only Debian's apt mirrors, PyPI and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential libclang-dev redis-server redis-tools
  php-cli php-redis php-psr-simple-cache php-symfony-cache php-nrk-predis phpunit
  php-cache-integration-tests)

missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
  # Installing redis-server may start Debian's own service on 6379. The tests never use that
  # port (they pick free ports), so it is left alone.
else
  echo "setup: Debian packages present: ${APT_PKGS[*]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: WARNING: cargo not found on PATH; install a Rust toolchain (rustup) to build" >&2
fi

# Python lives in a virtual environment under the repo (.venv, ignored by git), never in the
# system Python. The Makefile puts .venv/bin first on PATH, so every `python3` of the build,
# the tests and the scripts is this one.
VENV=.venv
if [ ! -x "$VENV/bin/python3" ]; then
  echo "setup: creating the virtual environment $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python3"
stamp="$VENV/.requirements-installed"
if [ ! -f "$stamp" ] || [ tests/requirements.txt -nt "$stamp" ]; then
  echo "setup: installing Python test requirements into $VENV"
  "$PY" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
  touch "$stamp"
else
  echo "setup: Python test requirements present in $VENV"
fi

# Each client package installs what its own tests need (clients/<lang>/setup.sh).
for hook in clients/*/setup.sh; do
  [ -f "$hook" ] || continue
  echo "setup: $hook"
  PYTHON="$PWD/$PY" bash "$hook"
done
echo "setup: done"
