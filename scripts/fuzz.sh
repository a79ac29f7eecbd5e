#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each (FUZZ_SECONDS, default 60) and
# exits non-zero if any of them crashed. Not part of `make test` (too slow): `make fuzz`.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh pattern args
#
# Built with debug assertions (integer overflow panics) and AddressSanitizer, cargo-fuzz's
# default. The corpus grows in fuzz/corpus/<target>; a crashing input is written to
# fuzz/artifacts/<target>/ and replayed with `cargo fuzz run <target> <file>`.
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-60}
ALL_TARGETS=(args pattern entry_decode memberset cluster_message)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked || { echo "could not install cargo-fuzz" >&2; exit 2; }
fi

# cargo-fuzz passes nightly-only flags to rustc: use a nightly toolchain when rustup has one,
# else let the stable compiler accept them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
fi

# Per-target libFuzzer options. entry_decode must not allocate more than its input justifies:
# any single allocation over 8 MB (a tag count or length trusted before being checked) fails.
extra_options() {
    case "$1" in
        entry_decode) echo "-malloc_limit_mb=8" ;;
        *) ;;
    esac
}

echo "== building ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
    "${FUZZ[@]}" build -a "$t" || { echo "build of $t failed" >&2; exit 2; }
done

mkdir -p fuzz/logs
failed=()
for t in "${TARGETS[@]}"; do
    log="fuzz/logs/$t.log"
    dict=()
    [ -f "fuzz/dicts/$t.dict" ] && dict=(-dict="fuzz/dicts/$t.dict")
    echo "== $t: fuzzing for ${SECONDS_EACH}s (log: $log)"
    # shellcheck disable=SC2046
    "${FUZZ[@]}" run -a "$t" -- -max_total_time="$SECONDS_EACH" -timeout=10 \
        -print_final_stats=1 "${dict[@]}" $(extra_options "$t") >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 15
        progress=$(grep -aE '^#[0-9]+' "$log" | tail -n 1)
        [ -n "$progress" ] && echo "   $t: $progress"
    done
    wait "$pid"
    status=$?
    runs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -aE '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+')
    if [ "$status" -eq 0 ]; then
        echo "== $t: ok, ${runs:-?} executions, ${cov:-no coverage line}"
    else
        echo "== $t: FAILED (exit $status) after ${runs:-?} executions"
        grep -aE 'panicked at|^thread|SUMMARY|ERROR: libFuzzer|malloc\(|Test unit written' "$log" | head -n 20 | sed 's/^/   /'
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== crashed: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)"
    exit 1
fi
echo "== all targets ran ${SECONDS_EACH}s without a crash"
