#!/usr/bin/env bash
# A long model-based run: >= 1,000,000 random operations against a real server, every reply
# compared with tests/model.py. Prints ops, seed and duration; exits non-zero on a divergence.
#   scripts/model_long.sh [OPS] [SEED] [MAX_SECONDS]
# Env: REDIS_SERVER, CACHE_MODULE (see tests/harness/server.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-1000000}
SEED=${2:-$(python3 -c 'import random; print(random.SystemRandom().randrange(1 << 32))')}
MAX_SECONDS=${3:-3600}
[ -f "${CACHE_MODULE:-target/release/librediscache.so}" ] || cargo build --release
start=$(date +%s)
python3 tests/test_model.py --ops "$OPS" --seed "$SEED" --max-seconds "$MAX_SECONDS"
echo "model_long: ops=$OPS seed=$SEED wall=$(( $(date +%s) - start ))s"
