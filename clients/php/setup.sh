#!/usr/bin/env bash
# What clients/php's tests need, from Debian (called by scripts/setup.sh; idempotent).
#   php-cli php-redis                phpredis, the client most PHP applications use
#   php-psr-simple-cache             PSR-16 interfaces (required by RedisCache\Cache)
#   php-symfony-cache                Symfony cache contracts (RedisCache\Symfony\TagAwareAdapter)
#   php-nrk-predis                   Predis, the other client supported
#   phpunit                          the test runner
#   php-cache-integration-tests      PSR-16's compliance suite (cache/integration-tests)
# Installs the missing ones with apt-get when run as root; otherwise says what is missing.
set -euo pipefail

PKGS=(php-cli php-redis php-psr-simple-cache php-symfony-cache php-nrk-predis phpunit php-cache-integration-tests)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "clients/php setup: Debian packages present: ${PKGS[*]}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "clients/php setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "clients/php setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends "${missing[@]}"
}
