"""rediscache.asyncio.Cache against a real redis-server with the module."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio
from _server import free_port

from rediscache.asyncio import Cache


async def client_on(server, **kw) -> redis.asyncio.Redis:
    client = redis.asyncio.Redis(port=server.port, socket_timeout=30, **kw)
    await client.flushdb()
    await client.execute_command("CACHE.STATS", "RESET")
    return client


async def _herd_200_tasks_one_computation(server):
    # every waiter holds a connection while blocked in WAIT: a pool larger than the herd
    client = await client_on(server, max_connections=300)
    c = Cache(client, wait_ms=10_000)
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.2)
        return "report"

    results = await asyncio.gather(
        *(c.fetch("report:daily", compute, 60, tags=["reports"]) for _ in range(200))
    )
    assert len(calls) == 1
    assert all(res.value in ("report", b"report") for res in results)
    firsts = [res.trace[0] for res in results]
    assert firsts.count("MISS") == 1 and firsts.count("HIT") == 199
    assert (await c.stats())["sets"] == 1
    await client.aclose()


async def _herd_with_the_default_pool_of_100_connections(server):
    """redis.asyncio pools hold 100 connections by default: the callers past what the pool
    can keep blocked poll instead, and the lease holder still gets a connection to store."""
    client = await client_on(server)
    c = Cache(client, wait_ms=10_000)
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.2)
        return "report"

    results = await asyncio.gather(*(c.fetch("herd", compute, 60) for _ in range(200)))
    assert len(calls) == 1
    assert [res.computed for res in results].count(True) == 1
    assert all(res.value in ("report", b"report") for res in results)
    assert c.counters["gave_up"] == 0 and c.counters["degraded"] == 0
    await client.aclose()


async def _miss_hit_sync_compute_and_tags(server):
    client = await client_on(server, decode_responses=True)
    c = Cache(client)
    assert await c.get_or_compute("p:1", lambda: "Lamp", 60, tags=["products"]) == "Lamp"
    res = await c.fetch("p:1", lambda: "never", 60)
    assert (res.value, res.state) == ("Lamp", "HIT")
    assert await c.tags("p:1") == ["products"]
    assert await c.invalidate_tags(["products"]) == 1
    assert await c.get("p:1") is None
    await client.aclose()


async def _stale_refresh_runs_as_a_background_task(server):
    client = await client_on(server)
    c = Cache(client)
    await c.set("page", "v1", 60, tags=["pages"], stale=30)
    assert await c.invalidate_tags_soft("pages") == 1
    release = asyncio.Event()

    async def slow():
        await release.wait()
        return "v2"

    res = await c.fetch("page", slow, 60, tags=["pages"], stale=30)
    assert (res.value, res.stale, res.refreshing, res.computed) == (b"v1", True, True, False)
    release.set()
    await c.wait_refreshes()
    assert await c.get("page") == b"v2"
    await client.aclose()


async def _fail_safe_inline_and_background(server, caplog):
    client = await client_on(server)
    seen = []
    c = Cache(client, refresh="inline", on_fail_safe=lambda k, e: seen.append(k))
    await c.set("d", "good", 60, stale=60)
    await c.invalidate("d", soft=True)

    async def broken():
        raise RuntimeError("down")

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        res = await c.fetch("d", broken, 60, stale=60, lease_ms=50)
    assert (res.value, res.fail_safe, res.stale) == (b"good", True, True)
    assert seen == ["d"] and "serving its stale value" in caplog.text

    await asyncio.sleep(0.1)  # the failed refresh's lease lapses
    errors = []
    bg = Cache(client, on_refresh_error=lambda k, e: errors.append(k))
    res = await bg.fetch("d", broken, 60, stale=60, lease_ms=1)
    await bg.wait_refreshes()
    assert (res.value, res.refreshing) == (b"good", True)
    assert errors == ["d"] and bg.counters["refresh_errors"] == 1
    await client.aclose()


async def _unreachable_redis_computes_uncached():
    client = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.2)
    c = Cache(client)
    res = await c.fetch("k", lambda: "v", 60)
    assert (res.value, res.degraded, res.stored) == ("v", True, False)
    await client.aclose()


async def _pending_retries_then_gives_up(server):
    client = await client_on(server)
    await client.execute_command("CACHE.GETORMARK", "busy", "LEASE", 10000)
    c = Cache(client)
    res = await c.fetch("busy", lambda: "mine", 60, wait_ms=50, retries=1)
    assert res.trace == ["PENDING", "PENDING", "gave-up"] and res.value == "mine"
    await client.aclose()


# Each test runs its coroutine in a fresh event loop (no pytest plugin needed).


def test_herd_200_tasks_one_computation(server):
    asyncio.run(_herd_200_tasks_one_computation(server))


def test_herd_with_the_default_pool_of_100_connections(server):
    asyncio.run(_herd_with_the_default_pool_of_100_connections(server))


def test_miss_hit_sync_compute_and_tags(server):
    asyncio.run(_miss_hit_sync_compute_and_tags(server))


def test_stale_refresh_runs_as_a_background_task(server):
    asyncio.run(_stale_refresh_runs_as_a_background_task(server))


def test_fail_safe_inline_and_background(server, caplog):
    asyncio.run(_fail_safe_inline_and_background(server, caplog))


def test_unreachable_redis_computes_uncached():
    asyncio.run(_unreachable_redis_computes_uncached())


def test_pending_retries_then_gives_up(server):
    asyncio.run(_pending_retries_then_gives_up(server))
