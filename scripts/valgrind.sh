#!/usr/bin/env bash
# Runs the model driver, the live fuzzer and the pattern tests against redis-server under
# valgrind memcheck, then reports invalid reads/writes and definitely-lost blocks whose stack
# goes through the module (librediscache). Debian's redis-server allocates with the shared
# libjemalloc, so memcheck is told to intercept it (--soname-synonyms).
#   scripts/valgrind.sh [MODEL_OPS=1500] [FUZZ_SECONDS=20]
# Exit 0: nothing attributable to the module. Logs stay in $OUT (printed).
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-1500}
FUZZ=${2:-20}
OUT=${VALGRIND_OUT:-$(mktemp -d /tmp/cache-valgrind-XXXX)}
[ -f "${CACHE_MODULE:-target/release/librediscache.so}" ] || cargo build --release
python3 - "$OPS" "$FUZZ" "$OUT" <<'PY'
import sys, time, random
sys.path.insert(0, "tests")
from harness import RawClient, Server, memcheck
import test_model, test_fuzz_live

ops, fuzz_s, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
seed = random.SystemRandom().randrange(1 << 32)
print(f"valgrind run: model {ops} ops seed {seed}, fuzz {fuzz_s}s; logs in {out}", flush=True)
t0 = time.time()
srv = Server(extra_args=test_model.SERVER_ARGS, wrapper=memcheck(out), start_timeout=120)
srv.start()
try:
    c = RawClient(srv.port, timeout=120)
    drv = test_model.Driver(c, seed)
    # Valgrind slows the server ~30x: wider margins keep time-dependent outcomes exact.
    test_model.MARGIN, test_model.GUARD = 200, 60
    drv.model.margin = 200
    drv.run(ops)
    print(f"model: {drv.ops} ops, no divergence", flush=True)
    c.cmd("FLUSHALL")
    c.cmd("DEBUG", "RELOAD")
    c.close()
    f = test_fuzz_live.fuzz(srv, fuzz_s, seed)
    # The restricted-user paths (per-key ACL checks) too.
    c = RawClient(srv.port, timeout=120)
    c.cmd("ACL", "SETUSER", "tenant", "on", "nopass", "~k:1*", "+@all")
    c.cmd("AUTH", "tenant", "x")
    for cmd in (["CACHE.INVALIDATE", "*"], ["CACHE.INVALIDATETAG", "all"],
                ["CACHE.TAGSCAN", "all", "0", "COUNT", "1000"], ["CACHE.STATS"]):
        c.cmd(*cmd)
    c.close()
finally:
    code = srv.stop(timeout=600)
    srv.cleanup()  # its temporary dir (the valgrind logs are in $OUT)
    print(f"server exit code {code} after {time.time() - t0:.0f}s", flush=True)
PY
python3 - "$OUT" <<'PY'
import glob, re, sys
out = sys.argv[1]
bad = 0
for path in glob.glob(f"{out}/valgrind-*.log"):
    text = open(path, errors="replace").read()
    blocks = re.split(r"\n==\d+== \n", text)
    invalid = [b for b in blocks if re.search(r"Invalid (read|write|free)|uninitialised|Mismatched", b)]
    lost = [b for b in blocks if "definitely lost" in b and "loss record" in b]
    ours = lambda b: "librediscache" in b or "rediscache::" in b
    mod_invalid = [b for b in invalid if ours(b)]
    mod_lost = [b for b in lost if ours(b)]
    summary = re.findall(r"(ERROR SUMMARY: .*|definitely lost: .*|indirectly lost: .*)", text)
    print(f"{path}:")
    for s in summary:
        print("   ", s)
    print(f"    invalid accesses: {len(invalid)} total, {len(mod_invalid)} through librediscache")
    print(f"    definitely-lost records: {len(lost)} total, {len(mod_lost)} through librediscache")
    for b in (mod_invalid + mod_lost)[:5]:
        frames = [l.split("== ", 1)[-1].strip() for l in b.splitlines()]
        print("    ---\n    " + "\n    ".join(f for f in frames[:12] if f))
    bad += len(mod_invalid) + len(mod_lost)
print("VALGRIND: " + ("clean for the module" if bad == 0 else f"{bad} problems in the module"))
sys.exit(1 if bad else 0)
PY
