"""Near-cache figures, on a throwaway redis-server with the module:

1. staleness window: N local copies under one tag; INVALIDATETAG and INVALIDATE of a key
   pattern (hard and SOFT) from another
   connection; time from its reply to the near cache having applied the channel message (no
   copy served from then on), p50/p99 over ROUNDS rounds; and the time until every dead copy's
   memory was freed (hard);
2. read-heavy loop: 95% reads of HOT hot keys, 5% writes each followed by a tag invalidation,
   requests per second through NearCache.get_or_compute against plain Cache.get_or_compute.

    python bench/near_cache.py [--entries 100000] [--rounds 10] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import redis  # noqa: E402
from _server import Server  # noqa: E402

import rediscache  # noqa: E402


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_until(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.0005)


def wait_quiet(near, quiet=0.3):
    """Until the listener has had no message for `quiet` s (the last round's pushes, e.g. of
    the module's sweep, drained), so that each round measures its own message."""
    last, since = near.counters["messages"], time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.02)
        if near.counters["messages"] != last:
            last, since = near.counters["messages"], time.monotonic()


def window(server, n, rounds, soft, command):
    other = redis.Redis(port=server.port)
    near = rediscache.NearCache(redis.Redis(port=server.port), maxsize=n + 10)
    near.wait_ready()
    keys = [f"big:{i}" for i in range(n)]
    windows, freed = [], []
    for _ in range(rounds):
        other.flushdb()
        wait_until(lambda: len(near) == 0)
        pipe = other.pipeline(transaction=False)
        for k in keys:
            pipe.execute_command("CACHE.SETTAGGED", k, "v", "EX", 600, "STALE", 600, "TAGS", "big")
        pipe.execute()
        for at in range(0, n, 10_000):
            near.get_many(keys[at : at + 10_000])
        assert len(near) == n
        wait_quiet(near)
        seen = near.counters["channel_messages"]
        other.execute_command(*command, *(["SOFT"] if soft else []))
        replied = time.perf_counter()
        wait_until(lambda seen=seen: near.counters["channel_messages"] > seen)
        windows.append(max(0.0, near.last_channel_applied - replied) * 1000)
        if not soft:
            wait_until(lambda: len(near) == 0)
            freed.append((time.perf_counter() - replied) * 1000)
    near.close()
    other.close()
    return windows, freed


def loop(server, seconds, hot, use_near):
    client = redis.Redis(port=server.port)
    client.flushdb()
    cache = rediscache.NearCache(client) if use_near else rediscache.Cache(client)
    if use_near:
        cache.wait_ready()
    pipe = client.pipeline(transaction=False)
    for k in range(hot):  # warm: every hot key stored (and, for the near cache, held locally)
        pipe.execute_command("CACHE.SETTAGGED", f"hot:{k}", "v", "EX", 600, "TAGS", f"item:{k}")
    pipe.execute()
    if use_near:
        cache.get_many([f"hot:{k}" for k in range(hot)])
    rng = random.Random(7)
    ops = 0
    writes = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        k = rng.randrange(hot)
        if rng.random() < 0.05:
            cache.set(f"hot:{k}", f"v{ops}", 600, tags=[f"item:{k}"])
            cache.invalidate_tags([f"item:{k}"])
            writes += 1
        else:
            cache.get_or_compute(f"hot:{k}", lambda: "computed", 600, tags=[f"item:{k}"])
        ops += 1
    if use_near:
        cache.close()
    client.close()
    return ops / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--hot", type=int, default=10_000)
    a = ap.parse_args()
    with Server() as server:
        for soft, command in (
            (False, ["CACHE.INVALIDATETAG", "big"]),
            (True, ["CACHE.INVALIDATETAG", "big"]),
            (False, ["CACHE.INVALIDATE", "big:*"]),
            (True, ["CACHE.INVALIDATE", "big:*"]),
        ):
            w, f = window(server, a.entries, a.rounds, soft, command)
            line = (
                f"{' '.join(command)}{' SOFT' if soft else ''}, {a.entries} local copies, "
                f"{a.rounds} rounds: reply -> no copy served p50 {pct(w, 50):.2f} ms, "
                f"p99 {pct(w, 99):.2f} ms (max {max(w):.2f})"
            )
            if f:
                line += f"; all memory freed p50 {pct(f, 50):.0f} ms, p99 {pct(f, 99):.0f} ms"
            print(line, flush=True)
        plain = loop(server, a.seconds, a.hot, use_near=False)
        near = loop(server, a.seconds, a.hot, use_near=True)
        print(
            f"read-heavy loop (95% reads of {a.hot} hot keys, 5% writes + tag invalidation), "
            f"one thread: Cache {plain:,.0f} req/s, NearCache {near:,.0f} req/s "
            f"({near / plain:.1f}x)"
        )


if __name__ == "__main__":
    main()
