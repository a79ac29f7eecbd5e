#!/usr/bin/env bash
# Run the client examples (Python, Node, PHP) against a real redis-server with the
# module loaded, in RESP2 and in RESP3, and report `N passed, N failed[, N skipped]`.
#
#   examples/run.sh                  # all three clients
#   examples/run.sh python node      # some of them
#
# Environment:
#   REDIS_SERVER   server binary (default: redis-server)
#   CACHE_MODULE   module to load (default: <repo>/target/release/librediscache.so;
#                  build it with `cargo build --release`)
#   EXAMPLE_TIMEOUT  seconds allowed per example run (default: 120)
#
# Installs only what is missing: php-cli + php-redis (apt), node_modules (npm ci),
# redis-py (pip). Starts its own server on a free loopback port in a temp dir
# (never 6379) and stops it on exit. Exit status is non-zero if any run failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
CACHE_MODULE="${CACHE_MODULE:-$repo/target/release/librediscache.so}"
EXAMPLE_TIMEOUT="${EXAMPLE_TIMEOUT:-120}"
clients=("$@")
[ ${#clients[@]} -eq 0 ] && clients=(python node php)
for c in "${clients[@]}"; do
    case "$c" in python|node|php) ;; *) echo "usage: $0 [python] [node] [php]" >&2; echo "0 passed, 1 failed"; exit 2 ;; esac
done

say() { printf '[examples] %s\n' "$*"; }
die() { say "error: $*"; echo "0 passed, 1 failed"; exit 1; }

# --- what is needed, installed only when missing ---------------------------------
want() { local c; for c in "${clients[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if want php && ! { command -v php >/dev/null && php -m 2>/dev/null | grep -qx redis; }; then
    say "installing php-cli php-redis (apt) ..."
    as_root apt-get update -qq >/dev/null && \
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq php-cli php-redis >/dev/null \
        || die "could not install php-cli php-redis"
fi
if want node; then
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the Node example"
    if [ ! -d "$here/node/node_modules/redis" ]; then
        say "installing node-redis (npm ci in examples/node) ..."
        (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    fi
fi
if want python; then
    command -v python3 >/dev/null || die "python3 is needed for the Python example"
    # redis-py 5+ is needed for RESP3 (protocol=3)
    if ! python3 -c 'import redis, sys; sys.exit(int(redis.__version__.split(".")[0]) < 5)' 2>/dev/null; then
        say "installing redis-py (pip) ..."
        python3 -m pip install --quiet 'redis>=5' || die "pip install redis failed"
    fi
fi

# --- a server of our own ---------------------------------------------------------
command -v "$REDIS_SERVER" >/dev/null || die "no server binary '$REDIS_SERVER' (set REDIS_SERVER)"
[ -f "$CACHE_MODULE" ] || die "no module at $CACHE_MODULE (run 'cargo build --release' or set CACHE_MODULE)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cache-examples.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # ask the kernel for a free loopback port, never 6379
    python3 - <<'EOF'
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if port != 6379:
        print(port)
        break
EOF
}

port=""
for attempt in 1 2 3; do
    port="$(free_port)" || die "could not find a free port"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no \
        --loadmodule "$CACHE_MODULE" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    up=""
    for _ in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        if python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),0.2); s.sendall(b'PING\r\n'); sys.exit(s.recv(7)!=b'+PONG\r\n')" 2>/dev/null; then
            up=1; break
        fi
        sleep 0.1
    done
    [ -n "$up" ] && break
    kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""
    say "server did not start on port $port (attempt $attempt):"; tail -5 "$tmp/server.log"
done
[ -n "$server_pid" ] || die "could not start $REDIS_SERVER with $CACHE_MODULE"
say "$("$REDIS_SERVER" --version | cut -d' ' -f1-3) with $(basename "$CACHE_MODULE") on 127.0.0.1:$port (pid $server_pid)"

# --- the runs ---------------------------------------------------------------------
passed=0; failed=0; skipped=0; results=()
run_one() {  # client resp
    local client="$1" resp="$2" cmd rc
    case "$client" in
        python) cmd=(python3 "$here/python/cache_example.py") ;;
        node)   cmd=(node "$here/node/cache_example.js") ;;
        php)    cmd=(php "$here/php/cache_example.php") ;;
    esac
    say "---- $client RESP$resp ----"
    REDIS_HOST=127.0.0.1 REDIS_PORT="$port" REDIS_DB=15 RESP="$resp" \
        timeout "$EXAMPLE_TIMEOUT" "${cmd[@]}"
    rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1)); results+=("PASS $client RESP$resp")
    elif [ $rc -eq 77 ]; then
        skipped=$((skipped + 1)); results+=("SKIP $client RESP$resp (client has no RESP3)")
    else
        failed=$((failed + 1)); results+=("FAIL $client RESP$resp (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))")
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        say "the server died during $client RESP$resp; its log ends:"; tail -20 "$tmp/server.log"
        failed=$((failed + 1)); results+=("FAIL server died")
        summary; exit 1
    fi
}
summary() {
    say "---- summary ----"
    local line; for line in "${results[@]}"; do say "$line"; done
    if [ $skipped -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"
    else echo "$passed passed, $failed failed"; fi
}

for client in "${clients[@]}"; do
    for resp in 2 3; do run_one "$client" "$resp"; done
done
summary
if [ $failed -ne 0 ]; then say "server log (last 15 lines):"; tail -15 "$tmp/server.log"; fi
[ $failed -eq 0 ]
