"""``rediscache.Cache``: get-or-compute over a (sync) redis-py client."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

import redis

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


class Cache:
    """Cache-aside with the module's leases, over a ``redis.Redis`` client.

    ``get_or_compute(key, compute, ttl, tags)`` returns the cached value of ``key`` or computes
    it with ``compute()``; only one caller across all processes computes a missing key (it holds
    the lease), the others block in ``CACHE.GETORMARK ... WAIT`` until it is stored. A stale
    entry is served at once while one caller refreshes it off the request path (a background
    thread); an early-refresh hint (``HIT`` with a token) is honoured the same way.

    Fail-safe: when Redis is unreachable, ``compute()`` runs and its value is returned uncached
    (``Result.degraded``); when a refresh of a stale value raises, the stale value is what the
    caller gets (``Result.fail_safe`` with ``refresh="inline"``; a logged warning and
    ``on_refresh_error`` for background refreshes).

    The client's ``socket_timeout`` must exceed ``wait_ms`` (the server blocks the connection
    while waiting), or be ``None``.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        serializer: Serializer = _core.RAW,
        wait_ms: int = 2000,
        lease_ms: Optional[int] = None,
        retries: int = 3,
        backoff: float = 0.05,
        refresh: str = "background",
        refresh_workers: int = 4,
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
        self.refresh_workers = refresh_workers
        self.on_fail_safe = on_fail_safe
        self.on_refresh_error = on_refresh_error
        self.on_degraded = on_degraded
        self.max_waiting = _core.wait_limit(client, max_waiting)
        self._blocked = 0
        self._executor: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._last_degraded_log = 0.0
        #: Client-side counters: ``degraded`` (calls answered without Redis), ``fail_safe``
        #: (stale values served because compute raised), ``refreshes`` and
        #: ``refresh_errors`` (background refreshes run and failed), ``gave_up`` (computed
        #: uncached after repeated PENDING).
        self.counters = {
            "degraded": 0,
            "fail_safe": 0,
            "refreshes": 0,
            "refresh_errors": 0,
            "gave_up": 0,
        }

    # -- get or compute -------------------------------------------------------------------

    def get_or_compute(
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
        """The cached value of ``key``, computed with ``compute()`` when needed.

        ``ttl``: fresh lifetime in seconds (``None``: never stale); ``tags``: tags of the entry;
        ``stale``: seconds after that during which the old value is served while one caller
        refreshes it; ``wait_ms``: how long to block while another caller computes;
        ``retries``: how many more lookups after a ``PENDING`` before computing uncached.
        """
        return self.fetch(key, compute, ttl, tags, stale, wait_ms, lease_ms, retries).value

    def fetch(
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
        """Like ``get_or_compute``, but returns a ``Result`` that says what happened."""
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
                with self._lock:
                    blocking = self._blocked < self.max_waiting
                    self._blocked += blocking
            try:
                reply = self.client.execute_command(*(args if blocking else nowait_args))
            except POOL_FULL:
                # every connection of the pool is busy: back off, within the wait's time
                res.trace.append("pool-full")
                now = time.monotonic()
                polling_since = now if polling_since is None else polling_since
                if now - polling_since >= max(wait, 1000) / 1000:
                    polling_since = None
                    attempts -= 1
                time.sleep(min(delay, 0.1))
                delay = min(delay * 2, 1.0)
                continue
            except UNAVAILABLE as e:
                return self._degraded(res, compute, e)
            finally:
                if blocking:
                    with self._lock:
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
                    return res  # someone else is refreshing it
                if self.refresh == "background":
                    res.refreshing = True
                    res.trace.append("refresh")
                    self._background(key, compute, ttl, tags, stale, token)
                    return res
                try:
                    value = self._compute_and_store(res, key, compute, ttl, tags, stale, token)
                except Exception as e:
                    return self._fail_safe(res, key, e)
                res.value = value
                res.stale = False
                return res
            if state == MISS:
                res.value = self._compute_and_store(res, key, compute, ttl, tags, stale, token)
                return res
            # PENDING: someone else computes and WAIT ran out. Back off, ask again.
            if not blocking and wait:
                # we could not block: poll until the wait would have ended
                now = time.monotonic()
                polling_since = now if polling_since is None else polling_since
                if now - polling_since < wait / 1000:
                    time.sleep(min(delay, 0.1))
                    delay = min(delay * 2, 1.0)
                    continue
            polling_since = None
            attempts -= 1
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.counters["gave_up"] += 1
        res.trace.append("gave-up")
        res.computed = True
        res.value = compute()
        return res

    def _compute_and_store(
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
        value = compute()
        res.computed = True
        cost_ms = int((time.monotonic() - started) * 1000) + 1
        data = self.serializer.dumps(value)
        cmd = _core.set_args(key, data, ttl, tags, stale, cost_ms, token)
        try:
            for i in range(6):
                try:
                    ok = self.client.execute_command(*cmd)
                    break
                except POOL_FULL:
                    if i == 5:
                        raise
                    time.sleep(0.01 * 2**i)
        except UNAVAILABLE as e:
            self._note_degraded(e)
            res.degraded = True
            res.trace.append("not-stored")
            return value
        res.stored = ok is not None
        res.trace.append("stored" if res.stored else "not-stored")
        return value

    def _fail_safe(self, res: Result, key: KeyT, e: BaseException) -> Result:
        self.counters["fail_safe"] += 1
        res.fail_safe = True
        res.error = e
        res.trace.append("fail-safe")
        log.warning("rediscache: computing %r failed (%r); serving its stale value", key, e)
        if self.on_fail_safe is not None:
            self.on_fail_safe(key, e)
        return res

    def _degraded(self, res: Result, compute: Callable[[], Any], e: BaseException) -> Result:
        self._note_degraded(e)
        res.degraded = True
        res.state = None
        res.trace.append("degraded")
        res.computed = True
        res.value = compute()
        return res

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
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.refresh_workers, thread_name_prefix="rediscache-refresh"
                )
            executor = self._executor
        executor.submit(self._refresh, key, compute, ttl, tags, stale, token)

    def _refresh(
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
            self._compute_and_store(Result(), key, compute, ttl, tags, stale, token)
        except Exception as e:
            self.counters["refresh_errors"] += 1
            log.warning(
                "rediscache: refreshing %r failed (%r); the stale value stays served", key, e
            )
            if self.on_refresh_error is not None:
                try:
                    self.on_refresh_error(key, e)
                except Exception:  # a hook must not kill the worker
                    log.exception("rediscache: on_refresh_error hook raised")

    def wait_refreshes(self) -> None:
        """Block until every background refresh started so far has finished (tests, shutdown)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def close(self) -> None:
        """Finish background refreshes; the redis client is the caller's to close."""
        self.wait_refreshes()

    # -- plain operations -----------------------------------------------------------------

    def get(self, key: KeyT, default: Any = None) -> Any:
        """The value of a fresh or stale entry (``CACHE.GET``), or ``default``."""
        raw = self.client.execute_command("CACHE.GET", key)
        return default if raw is None else self.serializer.loads(raw)

    def set(
        self,
        key: KeyT,
        value: Any,
        ttl: Optional[float],
        tags: TagsT = (),
        stale: Optional[float] = 0,
    ) -> bool:
        """Store ``value`` as an entry with ``tags`` (``CACHE.SETTAGGED``)."""
        args = _core.set_args(key, self.serializer.dumps(value), ttl, _core.tags_list(tags), stale)
        return self.client.execute_command(*args) is not None

    def delete(self, *keys: KeyT) -> int:
        return int(self.client.delete(*keys)) if keys else 0

    def tags(self, key: KeyT) -> list:
        return list(self.client.execute_command("CACHE.TAGS", key))

    def invalidate_tags(self, tags: TagsT, soft: bool = False) -> int:
        """Invalidate every entry carrying any of ``tags`` (``SOFT``: turn them stale).
        Returns the number of entries invalidated."""
        tags = _core.tags_list(tags)
        if not tags:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for t in tags:
            pipe.execute_command("CACHE.INVALIDATETAG", t, *(["SOFT"] if soft else []))
        return sum(int(n) for n in pipe.execute())

    def invalidate_tags_soft(self, tags: TagsT) -> int:
        return self.invalidate_tags(tags, soft=True)

    def invalidate(self, pattern: KeyT, soft: bool = False) -> int:
        """Invalidate the entries whose key matches ``pattern`` (KEYS syntax)."""
        args = ["CACHE.INVALIDATE", pattern, *(["SOFT"] if soft else [])]
        return int(self.client.execute_command(*args))

    def invalidate_soft(self, pattern: KeyT) -> int:
        return self.invalidate(pattern, soft=True)

    def stats(self, namespace: Optional[str] = None) -> dict:
        """``CACHE.STATS`` (of one namespace) as a dict of numbers."""
        args = ["CACHE.STATS", *(["NAMESPACE", namespace] if namespace is not None else [])]
        return _core.parse_stats(self.client.execute_command(*args))

    def reset_stats(self) -> None:
        self.client.execute_command("CACHE.STATS", "RESET")
