"""``rediscache.asyncio.Cache``: the same as ``rediscache.Cache`` over ``redis.asyncio``.

``compute`` may be a coroutine function or a plain function (its result is awaited when it is
awaitable). Refreshes of stale entries and early refreshes run as background tasks.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable, Optional, Set

import redis.asyncio

from . import _core
from ._core import (
    HIT,
    MISS,
    POOL_FULL,
    STALE,
    UNAVAILABLE,
    FailSafeHook,
    KeyT,
    Result,
    Serializer,
    TagsT,
    log,
)

__all__ = ["Cache", "Result"]


async def _call(compute: Callable[[], Any]) -> Any:
    value = compute()
    if inspect.isawaitable(value):
        value = await value
    return value


class Cache:
    """Cache-aside with the module's leases, over a ``redis.asyncio.Redis`` client.
    See ``rediscache.Cache`` for the semantics; every method here is a coroutine."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        serializer: Serializer = _core.RAW,
        wait_ms: int = 2000,
        lease_ms: Optional[int] = None,
        retries: int = 3,
        backoff: float = 0.05,
        refresh: str = "background",
        on_fail_safe: Optional[FailSafeHook] = None,
        on_refresh_error: Optional[FailSafeHook] = None,
        on_degraded: Optional[Callable[[BaseException], None]] = None,
        max_waiting: Optional[int] = None,
    ) -> None:
        if refresh not in ("background", "inline"):
            raise ValueError("refresh must be 'background' or 'inline'")
        self.client = client
        self.serializer = serializer
        self.wait_ms = wait_ms
        self.lease_ms = lease_ms
        self.retries = retries
        self.backoff = backoff
        self.refresh = refresh
        self.on_fail_safe = on_fail_safe
        self.on_refresh_error = on_refresh_error
        self.on_degraded = on_degraded
        self.max_waiting = _core.wait_limit(client, max_waiting)
        self._blocked = 0
        self._tasks: Set[asyncio.Task] = set()
        self._last_degraded_log = 0.0
        self.counters = {
            "degraded": 0,
            "fail_safe": 0,
            "refreshes": 0,
            "refresh_errors": 0,
            "gave_up": 0,
        }

    async def get_or_compute(
        self,
        key: KeyT,
        compute: Callable[[], Any],
        ttl: Optional[float],
        tags: TagsT = (),
        stale: Optional[float] = 0,
        wait_ms: Optional[int] = None,
        lease_ms: Optional[int] = None,
        retries: Optional[int] = None,
    ) -> Any:
        res = await self.fetch(key, compute, ttl, tags, stale, wait_ms, lease_ms, retries)
        return res.value

    async def fetch(
        self,
        key: KeyT,
        compute: Callable[[], Any],
        ttl: Optional[float],
        tags: TagsT = (),
        stale: Optional[float] = 0,
        wait_ms: Optional[int] = None,
        lease_ms: Optional[int] = None,
        retries: Optional[int] = None,
    ) -> Result:
        tags = _core.tags_list(tags)
        res = Result()
        lease = self.lease_ms if lease_ms is None else lease_ms
        wait = self.wait_ms if wait_ms is None else wait_ms
        args = _core.getormark_args(key, lease, wait)
        nowait_args = _core.getormark_args(key, lease, 0)
        delay = self.backoff
        attempts = (self.retries if retries is None else retries) + 1
        polling_since: Optional[float] = None
        while attempts > 0:
            # Each caller blocked in WAIT holds a connection: past max_waiting, poll instead,
            # so the pool keeps connections for the lease holder's SETTAGGED.
            blocking = bool(wait)
            if blocking:
                blocking = self._blocked < self.max_waiting
            if blocking:
                self._blocked += 1
            try:
                reply = await self.client.execute_command(*(args if blocking else nowait_args))
            except POOL_FULL:
                # every connection of the pool is busy: back off, within the wait's time
                res.trace.append("pool-full")
                now = time.monotonic()
                polling_since = now if polling_since is None else polling_since
                if now - polling_since >= max(wait, 1000) / 1000:
                    polling_since = None
                    attempts -= 1
                await asyncio.sleep(min(delay, 0.1))
                delay = min(delay * 2, 1.0)
                continue
            except UNAVAILABLE as e:
                self._note_degraded(e)
                res.degraded = True
                res.trace.append("degraded")
                res.computed = True
                res.value = await _call(compute)
                return res
            finally:
                if blocking:
                    self._blocked -= 1
            state, raw, token = _core.state_of(reply)
            res.state = state
            res.trace.append(state)
            if state == HIT:
                res.value = self.serializer.loads(raw)
                if token is not None:
                    res.refreshing = True
                    res.trace.append("early-refresh")
                    self._background(key, compute, ttl, tags, stale, token)
                return res
            if state == STALE:
                res.value = self.serializer.loads(raw)
                res.stale = True
                if token is None:
                    return res
                if self.refresh == "background":
                    res.refreshing = True
                    res.trace.append("refresh")
                    self._background(key, compute, ttl, tags, stale, token)
                    return res
                try:
                    value = await self._compute_and_store(
                        res, key, compute, ttl, tags, stale, token
                    )
                except Exception as e:
                    self.counters["fail_safe"] += 1
                    res.fail_safe = True
                    res.error = e
                    res.trace.append("fail-safe")
                    log.warning(
                        "rediscache: computing %r failed (%r); serving its stale value", key, e
                    )
                    if self.on_fail_safe is not None:
                        self.on_fail_safe(key, e)
                    return res
                res.value = value
                res.stale = False
                return res
            if state == MISS:
                res.value = await self._compute_and_store(
                    res, key, compute, ttl, tags, stale, token
                )
                return res
            if not blocking and wait:
                # we could not block: poll until the wait would have ended
                now = time.monotonic()
                polling_since = now if polling_since is None else polling_since
                if now - polling_since < wait / 1000:
                    await asyncio.sleep(min(delay, 0.1))
                    delay = min(delay * 2, 1.0)
                    continue
            polling_since = None
            attempts -= 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.counters["gave_up"] += 1
        res.trace.append("gave-up")
        res.computed = True
        res.value = await _call(compute)
        return res

    async def _compute_and_store(
        self,
        res: Result,
        key: KeyT,
        compute: Callable[[], Any],
        ttl: Optional[float],
        tags: list,
        stale: Optional[float],
        token: Any,
    ) -> Any:
        started = time.monotonic()
        value = await _call(compute)
        res.computed = True
        cost_ms = int((time.monotonic() - started) * 1000) + 1
        data = self.serializer.dumps(value)
        cmd = _core.set_args(key, data, ttl, tags, stale, cost_ms, token)
        try:
            for i in range(6):
                try:
                    ok = await self.client.execute_command(*cmd)
                    break
                except POOL_FULL:
                    if i == 5:
                        raise
                    await asyncio.sleep(0.01 * 2**i)
        except UNAVAILABLE as e:
            self._note_degraded(e)
            res.degraded = True
            res.trace.append("not-stored")
            return value
        res.stored = ok is not None
        res.trace.append("stored" if res.stored else "not-stored")
        return value

    def _note_degraded(self, e: BaseException) -> None:
        self.counters["degraded"] += 1
        now = time.monotonic()
        if now - self._last_degraded_log > 10:
            self._last_degraded_log = now
            log.warning("rediscache: Redis unreachable (%r); computing without the cache", e)
        if self.on_degraded is not None:
            self.on_degraded(e)

    def _background(
        self,
        key: KeyT,
        compute: Callable[[], Any],
        ttl: Optional[float],
        tags: list,
        stale: Optional[float],
        token: Any,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._refresh(key, compute, ttl, tags, stale, token)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(
        self,
        key: KeyT,
        compute: Callable[[], Any],
        ttl: Optional[float],
        tags: list,
        stale: Optional[float],
        token: Any,
    ) -> None:
        self.counters["refreshes"] += 1
        try:
            await self._compute_and_store(Result(), key, compute, ttl, tags, stale, token)
        except Exception as e:
            self.counters["refresh_errors"] += 1
            log.warning(
                "rediscache: refreshing %r failed (%r); the stale value stays served", key, e
            )
            if self.on_refresh_error is not None:
                try:
                    self.on_refresh_error(key, e)
                except Exception:
                    log.exception("rediscache: on_refresh_error hook raised")

    async def wait_refreshes(self) -> None:
        """Wait for every background refresh started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.wait_refreshes()

    async def get(self, key: KeyT, default: Any = None) -> Any:
        raw = await self.client.execute_command("CACHE.GET", key)
        return default if raw is None else self.serializer.loads(raw)

    async def set(
        self,
        key: KeyT,
        value: Any,
        ttl: Optional[float],
        tags: TagsT = (),
        stale: Optional[float] = 0,
    ) -> bool:
        args = _core.set_args(key, self.serializer.dumps(value), ttl, _core.tags_list(tags), stale)
        return (await self.client.execute_command(*args)) is not None

    async def delete(self, *keys: KeyT) -> int:
        return int(await self.client.delete(*keys)) if keys else 0

    async def tags(self, key: KeyT) -> list:
        return list(await self.client.execute_command("CACHE.TAGS", key))

    async def invalidate_tags(self, tags: TagsT, soft: bool = False) -> int:
        total = 0
        for t in _core.tags_list(tags):
            total += int(
                await self.client.execute_command(
                    "CACHE.INVALIDATETAG", t, *(["SOFT"] if soft else [])
                )
            )
        return total

    async def invalidate_tags_soft(self, tags: TagsT) -> int:
        return await self.invalidate_tags(tags, soft=True)

    async def invalidate(self, pattern: KeyT, soft: bool = False) -> int:
        args = ["CACHE.INVALIDATE", pattern, *(["SOFT"] if soft else [])]
        return int(await self.client.execute_command(*args))

    async def invalidate_soft(self, pattern: KeyT) -> int:
        return await self.invalidate(pattern, soft=True)

    async def stats(self, namespace: Optional[str] = None) -> dict:
        args = ["CACHE.STATS", *(["NAMESPACE", namespace] if namespace is not None else [])]
        return _core.parse_stats(await self.client.execute_command(*args))

    async def reset_stats(self) -> None:
        await self.client.execute_command("CACHE.STATS", "RESET")
