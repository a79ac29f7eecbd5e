"""When the entries go, the module's index memory goes back to where it started: no tag set
that only grows (the leak Laravel and Symfony users report with tag sets)."""

from cachelib import wait_until


def index_bytes(r):
    info = r.cmd("INFO", "cache").decode()
    for line in info.splitlines():
        if line.startswith("cache_index_bytes:"):
            return int(line.split(":")[1])
    raise AssertionError("no cache_index_bytes in INFO cache")


def used_memory(r):
    r.cmd("MEMORY", "PURGE")
    for line in r.cmd("INFO", "memory").decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise AssertionError("no used_memory")


def load(r, n, prefix="e"):
    batch = [["CACHE.SETTAGGED", f"{prefix}:{i}", "x" * 100, "EX", "3600",
              "TAGS", f"t{i % 100}", f"u{i % 7}", "all"] for i in range(n)]
    for at in range(0, n, 2000):
        r.pipeline(batch[at:at + 2000])


def test_index_memory_returns_to_baseline(r):
    assert index_bytes(r) == 0
    baseline = used_memory(r)
    # Gone by DEL, by expiry, by small tag invalidations, and by a large (swept) one.
    load(r, 3000, "d")
    r.pipeline([["DEL", f"d:{i}"] for i in range(3000)])
    load(r, 500, "x")
    r.pipeline([["PEXPIRE", f"x:{i}", "1"] for i in range(500)])
    load(r, 5000, "s")
    assert r.cmd("CACHE.INVALIDATETAG", "t*") >= 5000
    load(r, 5000, "b")
    assert r.cmd("CACHE.INVALIDATETAG", "all") == 5000
    wait_until(lambda: r.cmd("DBSIZE") == 0, timeout=20, what="expiry and sweep")
    assert index_bytes(r) == 0
    # Redis's own dictionaries keep some of their grown tables; the module keeps nothing.
    assert used_memory(r) - baseline < 512 * 1024
