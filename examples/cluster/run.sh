#!/usr/bin/env bash
# The cluster examples (Python redis-py RedisCluster, Node node-redis createCluster, PHP phpredis
# RedisCluster) against a local 3-primary cluster with the module, started here on free
# loopback ports (never 6379) and stopped on exit. Prints `N passed, N failed[, N skipped]`.
#
# Environment: REDIS_SERVER (default redis-server), CACHE_MODULE (default
# <repo>/target/release/librediscache.so). Node needs examples/node/node_modules (npm ci there,
# which examples/run.sh does); a client whose library is missing is skipped.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
CACHE_MODULE="${CACHE_MODULE:-$repo/target/release/librediscache.so}"
PY="${PYTHON:-python3}"
[ -x "$repo/.venv/bin/python" ] && PY="$repo/.venv/bin/python"
say() { printf '[cluster examples] %s\n' "$*"; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cache-cluster-examples.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r -a ports <<<"$("$PY" - <<'PYEOF'
import socket
out, socks = [], []
while len(out) < 6:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    socks.append(s)
    if p != 6379: out.append(p)
print(" ".join(map(str, out)))
PYEOF
)"
for i in 0 1 2; do
    port=${ports[$i]}; cport=${ports[$((i + 3))]}
    mkdir -p "$tmp/$port"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$tmp/$port" --save '' --appendonly no \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$cport" \
        --loadmodule "$CACHE_MODULE" --logfile "$tmp/$port/log" &
    pids+=($!)
done
"$PY" - "${ports[@]}" <<'PYEOF' || { say "could not form the cluster"; echo "0 passed, 1 failed"; exit 1; }
import sys, time, redis
ports = [int(p) for p in sys.argv[1:4]]; cports = [int(p) for p in sys.argv[4:7]]
deadline = time.time() + 60
def c(p):
    while True:
        try:
            r = redis.Redis(port=p); r.ping(); return r
        except redis.ConnectionError:
            if time.time() > deadline: raise
            time.sleep(0.1)
rs = [c(p) for p in ports]
for r, (lo, hi) in zip(rs, [(0, 5460), (5461, 10922), (10923, 16383)]):
    r.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
for r in rs[1:]:
    r.execute_command("CLUSTER", "MEET", "127.0.0.1", ports[0], cports[0])
while time.time() < deadline:
    try:
        if all(b"cluster_state:ok" in r.execute_command("CLUSTER", "INFO") for r in rs):
            for r in rs: r.execute_command("CACHE.STATS")  # every bus link answers
            sys.exit(0)
    except redis.ResponseError:
        pass
    time.sleep(0.2)
sys.exit(1)
PYEOF
say "$("$REDIS_SERVER" --version | cut -d' ' -f1-3): 3 primaries on ports ${ports[*]:0:3}"

passed=0; failed=0; skipped=0
run() {  # name, runnable?, command...
    local name="$1" ok="$2"; shift 2
    if [ "$ok" != yes ]; then say "SKIP $name ($ok)"; skipped=$((skipped + 1)); return; fi
    if CLUSTER_PORT="${ports[0]}" timeout 120 "$@"; then passed=$((passed + 1)); else
        say "FAIL $name"; failed=$((failed + 1)); fi
}
run python yes "$PY" "$here/cluster_example.py"
node_ok=yes; { command -v node >/dev/null && [ -d "$repo/examples/node/node_modules/redis" ]; } || node_ok="node-redis not installed"
run node "$node_ok" env NODE_PATH="$repo/examples/node/node_modules" node "$here/cluster_example.js"
php_ok=yes; { command -v php >/dev/null && grep -qx redis <<<"$(php -m 2>/dev/null)"; } || php_ok="php-redis not installed"
run php "$php_ok" php "$here/cluster_example.php"
if [ $skipped -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ $failed -eq 0 ]
