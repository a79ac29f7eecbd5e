#!/usr/bin/env python3
"""Live-server fuzzing for a bounded time (see tests/test_fuzz_live.py).

    scripts/fuzz_live.py [--seconds 300] [--seed N]
Env: REDIS_SERVER, CACHE_MODULE. Exits non-zero if the server crashed, stalled or lost its index.
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from harness import Server  # noqa: E402
import test_fuzz_live  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=300)
ap.add_argument("--seed", type=int, default=None)
a = ap.parse_args()
seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 32)
print(f"fuzz_live: seed {seed}, {a.seconds}s", flush=True)
t0 = time.time()
with Server() as srv:
    test_fuzz_live.fuzz(srv, a.seconds, seed)
    ok = srv.alive()
test_fuzz_live.test_pattern_matches_like_keys()
test_fuzz_live.test_pathological_patterns_are_bounded()
print(f"fuzz_live: {'OK' if ok else 'SERVER DIED'} after {time.time() - t0:.0f}s, seed {seed}")
sys.exit(0 if ok else 1)
