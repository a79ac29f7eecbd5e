#!/usr/bin/env python3
"""get-or-compute with the rediscache module, from Python (redis-py).

Copy `Cache.get_or_compute` into your application. The rest of this file is a
scripted scenario that checks every reply the module can give, so it doubles
as an integration test:

    REDIS_PORT=6379 python3 cache_example.py            # RESP2
    REDIS_PORT=6379 RESP=3 python3 cache_example.py     # RESP3 (or --resp3)

Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (15), RESP (2).
WARNING: the scenario empties database REDIS_DB (FLUSHDB). Use a scratch server.
Exit status 0 when every check passed, 1 otherwise.
"""
import os
import sys
import threading
import time

import redis


class Cache:
    """Cache-aside on top of CACHE.GETORMARK / CACHE.SETTAGGED.

    Only one client at a time computes a missing or stale value (it holds the
    lease); the others block in GETORMARK ... WAIT until it is stored, or are
    served the stale value meanwhile.
    """

    def __init__(self, r, run_refresh=None):
        self.r = r
        # How to run a refresh that must not delay the caller (STALE with a
        # token, or HIT with a token = early refresh). Inline here so the demo
        # is deterministic; in a web app, hand it to a thread pool or a task
        # queue so the response goes out first.
        self.run_refresh = run_refresh or (lambda fn: fn())
        self.trace = []  # what the last call did, for the demo's checks

    def get_or_compute(self, key, ttl, tags, compute, stale=0, wait_ms=2000,
                       lease_ms=None, retries=3):
        """Return the cached value of `key`, computing it with `compute()` if needed.

        ttl: fresh lifetime (s); stale: how long after that a stale value may
        still be served (s); wait_ms: how long to block while another client
        computes; retries: how many more times to ask after a PENDING.
        """
        self.trace = []
        args = ["CACHE.GETORMARK", key]
        if lease_ms:
            args += ["LEASE", lease_ms]
        if wait_ms:
            args += ["WAIT", wait_ms]
        backoff = 0.05
        for _ in range(retries + 1):
            state, value, token = self.r.execute_command(*args)
            self.trace.append(state)
            if state == "HIT":
                if token is not None:  # chosen to refresh early: serve, then refresh
                    self.trace.append("early-refresh")
                    self.run_refresh(lambda: self._store(key, ttl, tags, compute, stale, token))
                return value
            if state == "STALE":
                if token is not None:  # we hold the lease: serve stale, refresh
                    self.trace.append("refresh")
                    self.run_refresh(lambda: self._store(key, ttl, tags, compute, stale, token))
                return value  # without a token another client is refreshing it
            if state == "MISS":  # we hold the lease: compute and store
                return self._store(key, ttl, tags, compute, stale, token)
            # PENDING: another client is computing and WAIT ran out. Back off, ask again.
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        # Still nobody stored it: compute ourselves rather than fail, but don't
        # cache (the lease holder will).
        self.trace.append("gave-up")
        return compute()

    def _store(self, key, ttl, tags, compute, stale, token):
        started = time.monotonic()
        value = compute()
        cost_ms = max(1, int((time.monotonic() - started) * 1000))
        cmd = ["CACHE.SETTAGGED", key, value, "EX", ttl]
        if stale:
            cmd += ["STALE", stale]
        cmd += ["COST", cost_ms, "LEASE", token]
        if tags:
            cmd += ["TAGS", *tags]
        if self.r.execute_command(*cmd) is None:
            # The lease was voided: the data changed (an invalidation) while we
            # computed. Our value may predate that change, so don't cache it;
            # still answer this request with it.
            self.trace.append("not-stored")
        else:
            self.trace.append("stored")
        return value


def cache_stats(r, namespace=None):
    """CACHE.STATS as a dict: RESP3 replies with a map, RESP2 with a flat field/value list."""
    reply = r.execute_command("CACHE.STATS", *(["NAMESPACE", namespace] if namespace else []))
    if isinstance(reply, list):
        reply = dict(zip(reply[0::2], reply[1::2]))
    return reply


# --------------------------------------------------------------------------
# The scenario: a tiny shop whose "database" is a dict, and its cache.
# --------------------------------------------------------------------------

FAILURES = []


def check(what, got, expected):
    ok = got == expected
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: {got!r}" + ("" if ok else f" (expected {expected!r})"))
    if not ok:
        FAILURES.append(what)


def main():
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    db = int(os.environ.get("REDIS_DB", "15"))
    resp = 3 if os.environ.get("RESP") == "3" or "--resp3" in sys.argv else 2

    def connect():
        return redis.Redis(host=host, port=port, db=db, protocol=resp, decode_responses=True)

    r = connect()          # this application server
    other = connect()      # another application server sharing the cache
    cache = Cache(r)
    print(f"python redis-py {redis.__version__}: {host}:{port} db {db}, RESP{r.execute_command('HELLO')['proto'] if resp == 3 else 2}")
    r.flushdb()
    r.execute_command("CACHE.STATS", "RESET")

    products = {1: "Lamp v1", 2: "Desk v1", 3: "Chair v1"}
    backend_calls = []

    def load_product(pid):
        def compute():
            backend_calls.append(pid)
            return f"{products[pid]}"
        return compute

    def load_page():
        backend_calls.append("page")
        return ",".join(products[p] for p in sorted(products))

    def update_product(pid, name):
        """Write path: change the database, then drop what showed the old data."""
        products[pid] = name
        return (r.execute_command("CACHE.INVALIDATETAG", f"product:{pid}"),
                r.execute_command("CACHE.INVALIDATETAG", "products"))

    print("1. first read computes (MISS), second is served from cache (HIT)")
    v = cache.get_or_compute("product:1", 60, ["product:1", "products"], load_product(1), stale=30)
    check("MISS value", v, "Lamp v1")
    check("MISS trace", cache.trace, ["MISS", "stored"])
    v = cache.get_or_compute("product:1", 60, ["product:1", "products"], load_product(1), stale=30)
    check("HIT value", v, "Lamp v1")
    check("HIT trace", cache.trace, ["HIT"])
    check("backend calls", backend_calls, [1])
    v = cache.get_or_compute("products:page:1", 60, ["products"], load_page, stale=30)
    check("list page", v, "Lamp v1,Desk v1,Chair v1")

    print("2. a write invalidates by tag: the product and the list page")
    check("INVALIDATETAG product:1, products", update_product(1, "Lamp v2"), (1, 1))
    v = cache.get_or_compute("product:1", 60, ["product:1", "products"], load_product(1), stale=30)
    check("re-read after write", (v, cache.trace), ("Lamp v2", ["MISS", "stored"]))
    v = cache.get_or_compute("products:page:1", 60, ["products"], load_page, stale=30)
    check("list page after write", (v, cache.trace), ("Lamp v2,Desk v1,Chair v1", ["MISS", "stored"]))

    print("3. soft invalidation after a batch import: serve STALE once, refresh behind it")
    products[2] = "Desk v2"
    check("INVALIDATETAG products SOFT", r.execute_command("CACHE.INVALIDATETAG", "products", "SOFT"), 2)
    v = cache.get_or_compute("products:page:1", 60, ["products"], load_page, stale=30)
    check("stale page served", v, "Lamp v2,Desk v1,Chair v1")
    check("STALE trace", cache.trace, ["STALE", "refresh", "stored"])
    v = cache.get_or_compute("products:page:1", 60, ["products"], load_page, stale=30)
    check("refreshed page", (v, cache.trace), ("Lamp v2,Desk v2,Chair v1", ["HIT"]))

    print("4. STALE without a token: another server is refreshing, we just serve the stale value")
    state, value, token = other.execute_command("CACHE.GETORMARK", "product:1")
    check("other server takes the refresh lease", (state, value, token is not None), ("STALE", "Lamp v2", True))
    calls = len(backend_calls)
    v = cache.get_or_compute("product:1", 60, ["product:1", "products"], load_product(1), stale=30)
    check("stale served, no lease", (v, cache.trace), ("Lamp v2", ["STALE"]))
    check("no backend call", len(backend_calls), calls)
    check("other server stores with its lease",
          other.execute_command("CACHE.SETTAGGED", "product:1", "Lamp v2", "EX", 60, "STALE", 30,
                                "LEASE", token, "TAGS", "product:1", "products"), "OK")
    v = cache.get_or_compute("product:1", 60, ["product:1", "products"], load_product(1), stale=30)
    check("fresh again", (v, cache.trace), ("Lamp v2", ["HIT"]))

    print("5. a write during a computation voids the lease: the old value is not cached")
    def slow_load_desk():
        value = load_product(2)()
        products[2] = "Desk v3"  # meanwhile, someone updates the desk ...
        other.execute_command("CACHE.INVALIDATETAG", "product:2")  # ... and invalidates it
        return value
    # LEASE 300: keep a lease close to what the computation takes, so a client
    # that dies holding it delays the others little. (This module also frees the
    # key at once when it refuses a set; WAIT covers either way.)
    v = cache.get_or_compute("product:2", 60, ["product:2", "products"], slow_load_desk, lease_ms=300)
    check("computed value still returned", (v, cache.trace), ("Desk v2", ["MISS", "not-stored"]))
    v = cache.get_or_compute("product:2", 60, ["product:2", "products"], load_product(2), wait_ms=5000)
    check("next read computes the new value", (v, cache.trace), ("Desk v3", ["MISS", "stored"]))

    print("6. WAIT: many readers, one computation; the others block until it is stored")
    state, _, token = other.execute_command("CACHE.GETORMARK", "report:sales:daily")
    check("other server computes the report", (state, token is not None), ("MISS", True))

    def other_finishes_report():
        time.sleep(0.3)
        other.execute_command("CACHE.SETTAGGED", "report:sales:daily", "report-42", "EX", 20,
                              "COST", 300, "LEASE", token, "TAGS", "reports")
    t = threading.Thread(target=other_finishes_report)
    t.start()
    started = time.monotonic()
    never = lambda: FAILURES.append("computed a report someone else was computing") or "wrong"
    v = cache.get_or_compute("report:sales:daily", 20, ["reports"], never, wait_ms=5000)
    waited = time.monotonic() - started
    t.join()
    check("woken by the set", (v, cache.trace), ("report-42", ["HIT"]))
    check("blocked until then (0.2s..3s)", 0.2 <= waited < 3, True)

    print("7. WAIT: the computing server dies; its lease lapses and a waiter takes over")
    state, _, dead_token = other.execute_command("CACHE.GETORMARK", "report:sales:weekly", "LEASE", 300)
    check("other server takes a 300 ms lease", state, "MISS")
    started = time.monotonic()
    v = cache.get_or_compute("report:sales:weekly", 20, ["reports"], lambda: "weekly-7", wait_ms=5000)
    waited = time.monotonic() - started
    check("handed the lease, computed", (v, cache.trace), ("weekly-7", ["MISS", "stored"]))
    check("after the lapse (0.2s..3s)", 0.2 <= waited < 3, True)
    check("the late server's set is refused",
          other.execute_command("CACHE.SETTAGGED", "report:sales:weekly", "stale", "EX", 20,
                                "LEASE", dead_token), None)

    print("8. PENDING: bounded retries with backoff, then compute without caching")
    state, _, _ = other.execute_command("CACHE.GETORMARK", "report:sales:monthly", "LEASE", 10000)
    check("other server holds a 10 s lease", state, "MISS")
    v = cache.get_or_compute("report:sales:monthly", 20, ["reports"], lambda: "monthly-1",
                             wait_ms=100, retries=2)
    check("gave up after 3 PENDING", (v, cache.trace), ("monthly-1", ["PENDING"] * 3 + ["gave-up"]))

    print("9. early refresh: a HIT with a token means 'serve this, and refresh it now'")
    # An entry that took long to compute (COST) and expires soon is refreshed
    # early by one reader (XFetch), so it never goes cold. Seeded by hand here.
    products[3] = "Chair v2"
    for _ in range(5):  # the choice is random, but near-certain with these numbers
        r.execute_command("CACHE.SETTAGGED", "product:3", "Chair v1", "PX", 2000, "STALE", 10,
                          "COST", 600000, "TAGS", "product:3", "products")
        v = cache.get_or_compute("product:3", 60, ["product:3", "products"], load_product(3))
        if cache.trace != ["HIT"]:
            break
    check("served the current value", v, "Chair v1")
    check("early refresh trace", cache.trace, ["HIT", "early-refresh", "stored"])
    v = cache.get_or_compute("product:3", 60, ["product:3", "products"], load_product(3))
    check("refreshed value", (v, cache.trace), ("Chair v2", ["HIT"]))

    print("10. CACHE.STATS: the server counts what it answered")
    r.flushdb()
    r.execute_command("CACHE.STATS", "RESET")
    for _ in range(3):
        cache.get_or_compute("stats:demo", 60, ["stats", "demo"], lambda: "x", stale=30)  # MISS, HIT, HIT
    check("CACHE.GET of a missing key", r.execute_command("CACHE.GET", "stats:none"), None)
    check("soft invalidation", r.execute_command("CACHE.INVALIDATETAG", "demo", "SOFT"), 1)
    cache.get_or_compute("stats:demo", 60, ["stats", "demo"], lambda: "y", stale=30)  # STALE + refresh
    stats = cache_stats(r)
    print(f"  CACHE.STATS ({type(stats).__name__} in RESP{resp}): {stats}")
    expected = {"hits": 2, "stale_hits": 1, "misses": 2, "pending": 0, "sets": 2, "sets_refused": 0,
                "leases_granted": 2, "invalidations": 1, "invalidated": 1, "entries": 1, "tags": 2}
    check("counters", {f: stats.get(f) for f in expected}, expected)
    check("hit_ratio (3 of 5 lookups)", round(float(stats["hit_ratio"]), 6), 0.6)
    check("per namespace", cache_stats(r, "stats").get("hits"), 2)

    r.close()
    other.close()
    if FAILURES:
        print(f"python RESP{resp}: {len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print(f"python RESP{resp}: all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except redis.RedisError as e:
        print(f"python: redis error: {type(e).__name__}: {e}")
        sys.exit(1)
