"""rediscache.Cache (sync) against a real redis-server with the module."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis
from conftest import dead_client

import rediscache


def cache_on(r: redis.Redis, **kw) -> rediscache.Cache:
    return rediscache.Cache(r, **kw)


def test_miss_then_hit_with_tags(r):
    c = cache_on(r)
    calls = []
    res = c.fetch(
        "product:1", lambda: calls.append(1) or "Lamp", 60, tags=["product:1", "products"]
    )
    assert (res.value, res.state, res.computed, res.stored) == ("Lamp", "MISS", True, True)
    assert res.trace == ["MISS", "stored"]
    assert sorted(c.tags("product:1")) == [b"product:1", b"products"]
    res = c.fetch("product:1", lambda: calls.append(1) or "other", 60)
    assert (res.value, res.state, res.computed) == (b"Lamp", "HIT", False)
    assert calls == [1]
    assert r.pttl("product:1") > 59_000


def test_herd_200_threads_one_computation(server):
    """200 concurrent callers of one missing key whose computation takes 200 ms: 1 computation."""
    client = redis.Redis(port=server.port, socket_timeout=30, max_connections=300)
    client.flushdb()
    client.execute_command("CACHE.STATS", "RESET")
    c = rediscache.Cache(client, wait_ms=10_000)
    calls = []
    lock = threading.Lock()

    def compute():
        with lock:
            calls.append(1)
        time.sleep(0.2)
        return "report"

    n = 200
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def caller(i):
        try:
            barrier.wait(timeout=60)
            results[i] = c.fetch("report:daily", compute, 60, tags=["reports"])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(calls) == 1
    assert all(res.value in ("report", b"report") for res in results)
    states = sorted(res.trace[0] for res in results)
    assert states.count("MISS") == 1
    assert states.count("HIT") == n - 1
    assert c.stats()["sets"] == 1
    client.close()


def test_stale_served_while_refreshing_off_the_callers_path(r):
    c = cache_on(r)
    c.set("page:1", "v1", 60, tags=["pages"], stale=30)
    assert c.invalidate_tags("pages", soft=True) == 1
    started = threading.Event()
    release = threading.Event()

    def slow_compute():
        started.set()
        release.wait(10)
        return "v2"

    t0 = time.monotonic()
    res = c.fetch("page:1", slow_compute, 60, tags=["pages"], stale=30)
    elapsed = time.monotonic() - t0
    assert (res.value, res.state, res.stale, res.refreshing) == (b"v1", "STALE", True, True)
    assert res.computed is False
    assert started.wait(5)  # the refresh runs in the background ...
    assert elapsed < 5  # ... and the caller did not wait for it (it is still blocked)
    # another caller meanwhile: stale value, no lease (someone is refreshing)
    res2 = c.fetch("page:1", lambda: "never", 60, tags=["pages"], stale=30)
    assert (res2.value, res2.state, res2.refreshing) == (b"v1", "STALE", False)
    release.set()
    c.wait_refreshes()
    assert c.fetch("page:1", lambda: "never", 60).trace == ["HIT"]
    assert c.get("page:1") == b"v2"
    assert c.tags("page:1") == [b"pages"]


def test_early_refresh_is_honoured(r):
    c = cache_on(r)
    for _ in range(10):  # the choice is random, but near-certain with these numbers
        r.execute_command(
            "CACHE.SETTAGGED",
            "chart:1",
            "old",
            "PX",
            2000,
            "STALE",
            10,
            "COST",
            600000,
            "TAGS",
            "charts",
        )
        res = c.fetch("chart:1", lambda: "new", 60, tags=["charts"])
        if res.refreshing:
            break
    assert (res.value, res.state, res.refreshing) == (b"old", "HIT", True)
    assert res.trace == ["HIT", "early-refresh"]
    c.wait_refreshes()
    assert c.get("chart:1") == b"new"
    assert r.pttl("chart:1") > 50_000


def test_pending_bounded_retries_then_compute_uncached(r):
    c = cache_on(r)
    other = redis.Redis(port=r.connection_pool.connection_kwargs["port"])
    state, _, _ = other.execute_command("CACHE.GETORMARK", "slow", "LEASE", 10000)
    assert state == b"MISS"
    res = c.fetch("slow", lambda: "mine", 60, wait_ms=50, retries=2)
    assert res.trace == ["PENDING", "PENDING", "PENDING", "gave-up"]
    assert (res.value, res.computed, res.stored) == ("mine", True, False)
    assert c.counters["gave_up"] == 1
    assert c.get("slow") is None
    other.close()


def test_write_during_compute_voids_the_lease(r):
    c = cache_on(r)

    def compute():
        r.execute_command("CACHE.INVALIDATETAG", "product:2")
        return "old data"

    res = c.fetch("product:2", compute, 60, tags=["product:2"])
    assert (res.value, res.stored, res.trace) == ("old data", False, ["MISS", "not-stored"])
    assert c.get("product:2") is None


def test_wait_wakes_on_set_from_another_client(r):
    c = cache_on(r, wait_ms=5000)
    other = redis.Redis(port=r.connection_pool.connection_kwargs["port"])
    _, _, token = other.execute_command("CACHE.GETORMARK", "weekly")

    def finish():
        time.sleep(0.3)
        other.execute_command("CACHE.SETTAGGED", "weekly", "w-1", "EX", 60, "LEASE", token)

    t = threading.Thread(target=finish)
    t.start()
    res = c.fetch("weekly", lambda: "never", 60)
    t.join()
    assert (res.value, res.trace) == (b"w-1", ["HIT"])
    other.close()


def test_fail_safe_inline_serves_stale_when_compute_raises(r, caplog):
    seen = []
    c = cache_on(r, refresh="inline", on_fail_safe=lambda k, e: seen.append((k, str(e))))
    c.set("dash:1", "good", 60, tags=["dash"], stale=60)
    c.invalidate_tags(["dash"], soft=True)

    def broken():
        raise RuntimeError("database down")

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        res = c.fetch("dash:1", broken, 60, tags=["dash"], stale=60)
    assert (res.value, res.stale, res.fail_safe) == (b"good", True, True)
    assert isinstance(res.error, RuntimeError)
    assert res.trace == ["STALE", "fail-safe"]
    assert seen == [("dash:1", "database down")]
    assert "serving its stale value" in caplog.text
    assert c.counters["fail_safe"] == 1
    # the stale entry is still there for the next caller
    assert c.get("dash:1") == b"good"


def test_fail_safe_inline_refreshes_when_compute_works(r):
    c = cache_on(r, refresh="inline")
    c.set("dash:2", "old", 60, stale=60, tags=["dash"])
    c.invalidate("dash:*", soft=True)
    res = c.fetch("dash:2", lambda: "new", 60, stale=60, tags=["dash"])
    assert (res.value, res.stale, res.stored, res.trace) == (
        "new",
        False,
        True,
        ["STALE", "stored"],
    )


def test_fail_safe_background_refresh_error_keeps_stale(r, caplog):
    errors = []
    c = cache_on(r, on_refresh_error=lambda k, e: errors.append(k))
    c.set("dash:3", "good", 60, stale=60)
    c.invalidate("dash:3", soft=True)

    def broken():
        raise RuntimeError("backend 500")

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        res = c.fetch("dash:3", broken, 60, stale=60)
        c.wait_refreshes()
    assert (res.value, res.stale, res.refreshing) == (b"good", True, True)
    assert errors == ["dash:3"]
    assert c.counters["refresh_errors"] == 1
    assert "the stale value stays served" in caplog.text
    assert c.fetch("dash:3", broken, 60, stale=60, lease_ms=1).value == b"good"


def test_compute_error_without_stale_value_propagates(r):
    c = cache_on(r)

    def broken():
        raise KeyError("nope")

    with pytest.raises(KeyError):
        c.fetch("nothing", broken, 60)


def test_redis_unreachable_computes_without_caching(caplog):
    degraded = []
    c = rediscache.Cache(dead_client(), on_degraded=degraded.append)
    with caplog.at_level(logging.WARNING, logger="rediscache"):
        res = c.fetch("k", lambda: "computed", 60, tags=["t"])
        value = c.get_or_compute("k", lambda: "again", 60)
    assert (res.value, res.degraded, res.state, res.stored) == ("computed", True, None, False)
    assert value == "again"
    assert len(degraded) == 2 and isinstance(degraded[0], redis.ConnectionError)
    assert c.counters["degraded"] == 2
    assert "Redis unreachable" in caplog.text


def test_invalidate_tags_patterns_and_soft(r):
    c = cache_on(r)
    for i in range(3):
        c.set(f"item:{i}", f"v{i}", 60, tags=["items", f"item:{i}"], stale=30)
    c.set("other:1", "o", 60, tags=["other"])
    assert c.invalidate_tags(["item:0", "item:1"]) == 2
    assert c.get("item:0") is None
    assert c.invalidate_tags("items", soft=True) == 1
    state, value, token = r.execute_command("CACHE.GETORMARK", "item:2")
    assert (state, value, token is not None) == (b"STALE", b"v2", True)
    assert c.invalidate("other:*") == 1
    assert c.get("other:1") is None
    assert c.invalidate_soft("nomatch:*") == 0
    assert c.invalidate_tags_soft([]) == 0


def test_stats(r):
    c = cache_on(r)
    for _ in range(3):
        c.get_or_compute("stats:demo", lambda: "x", 60, tags=["demo"], stale=30)
    c.invalidate_tags("demo", soft=True)
    c.get_or_compute("stats:demo", lambda: "y", 60, tags=["demo"], stale=30)
    c.wait_refreshes()
    s = c.stats()
    assert {
        k: s[k]
        for k in (
            "hits",
            "stale_hits",
            "misses",
            "sets",
            "leases_granted",
            "invalidations",
            "invalidated",
            "entries",
            "tags",
        )
    } == {
        "hits": 2,
        "stale_hits": 1,
        "misses": 1,
        "sets": 2,
        "leases_granted": 2,
        "invalidations": 1,
        "invalidated": 1,
        "entries": 1,
        "tags": 1,
    }
    assert s["hit_ratio"] == 0.75
    assert c.stats("stats")["hits"] == 2
    c.reset_stats()
    assert c.stats()["hits"] == 0


def test_resp3_client(server):
    client = redis.Redis(port=server.port, protocol=3, decode_responses=True)
    client.flushdb()
    c = rediscache.Cache(client)
    assert c.get_or_compute("r3", lambda: "v", 60, tags=["t"]) == "v"
    assert c.get_or_compute("r3", lambda: "w", 60) == "v"
    assert c.stats()["hits"] >= 1
    client.close()


@pytest.mark.parametrize("ser", [rediscache.JSON, rediscache.PICKLE])
def test_serializers_round_trip(r, ser):
    c = cache_on(r, serializer=ser)
    value = {"a": [1, 2, 3], "b": "x"}
    assert c.get_or_compute("ser", lambda: value, 60) == value
    assert c.get_or_compute("ser", lambda: None, 60) == value


def test_fractional_and_persistent_lifetimes(r):
    c = cache_on(r)
    c.set("short", "s", 0.5)
    assert 0 < r.pttl("short") <= 500
    c.set("forever", "f", None)
    assert r.pttl("forever") == -1
    with pytest.raises(ValueError):
        c.set("zero", "z", 0)
