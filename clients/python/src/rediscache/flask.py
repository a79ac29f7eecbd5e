"""A Flask-Caching backend on the rediscache module: ``rediscache.flask.RedisCache``.

    app.config.update(
        CACHE_TYPE="rediscache.flask.RedisCache",
        CACHE_REDIS_URL="redis://127.0.0.1:6379/0",
        CACHE_DEFAULT_TIMEOUT=300,
    )
    cache = Cache(app)

It reads the same config keys as Flask-Caching's ``RedisCache`` (``CACHE_REDIS_HOST``,
``CACHE_REDIS_PORT``, ``CACHE_REDIS_DB``, ``CACHE_REDIS_PASSWORD``, ``CACHE_REDIS_URL``,
``CACHE_KEY_PREFIX``, ``CACHE_OPTIONS``) and stores values in the same format (cachelib's
Redis serializer), as module entries: ``@cache.cached``/``@cache.memoize`` work unchanged, and
the backend (``cache.cache``) adds tags, leases and invalidation:

    cache.cache.get_or_compute("file_url:42", sign_url, 2700, tags=["file:42"])
    cache.cache.invalidate_tags(["file:42"])

Config keys of its own: ``CACHE_REDISCACHE_STALE`` (seconds an entry may be served stale while
refreshed), ``CACHE_REDISCACHE_WAIT_MS`` (2000), ``CACHE_REDISCACHE_CLEAR_TAG``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Union

import redis
from cachelib.serializers import RedisSerializer
from flask_caching.backends.base import BaseCache

from . import _core
from ._sync import Cache

__all__ = ["RedisCache"]


class _Delegate:
    """The backend's current serializer (Flask-Caching may replace it after __init__, from
    CACHE_SERIALIZER)."""

    def __init__(self, backend: RedisCache) -> None:
        self.backend = backend

    def dumps(self, value: Any) -> Any:
        return self.backend.serializer.dumps(value)

    def loads(self, data: Any) -> Any:
        return self.backend.serializer.loads(data)


class RedisCache(BaseCache):
    """Flask-Caching backend storing module entries.

    Timeouts follow Flask-Caching: ``None`` is the default timeout, ``0`` never expires.
    ``clear()`` removes only the entries this backend stored (one tag), never ``FLUSHDB``.
    """

    serializer = RedisSerializer()

    def __init__(
        self,
        host: Any = "localhost",
        port: int = 6379,
        password: Optional[str] = None,
        db: int = 0,
        default_timeout: int = 300,
        key_prefix: Union[str, Callable[[], str], None] = None,
        ignore_delete_many_errors: bool = False,
        stale: float = 0,
        wait_ms: int = 2000,
        lease_ms: Optional[int] = None,
        clear_tag: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            default_timeout=default_timeout,
            ignore_delete_many_errors=ignore_delete_many_errors,
        )
        if host is None:
            raise ValueError("RedisCache host parameter may not be None")
        if isinstance(host, str):
            client = redis.Redis(host=host, port=port, password=password, db=db, **kwargs)
        else:
            client = host
        self._read_client = self._write_client = client
        self.key_prefix = key_prefix or ""
        self.stale = stale
        prefix = self.key_prefix if isinstance(self.key_prefix, str) else ""
        self.clear_tag = clear_tag or "flask.cache:" + prefix
        self.cache = Cache(client, serializer=_Delegate(self), wait_ms=wait_ms, lease_ms=lease_ms)
        self._add = client.register_script(_core.LUA_ADD)
        self._delete = client.register_script(_core.LUA_DELETE)

    @classmethod
    def factory(cls, app: Any, config: dict, args: list, kwargs: dict) -> RedisCache:
        kwargs.update(
            dict(
                host=config.get("CACHE_REDIS_HOST", "localhost"),
                port=config.get("CACHE_REDIS_PORT", 6379),
                db=config.get("CACHE_REDIS_DB", 0),
            )
        )
        password = config.get("CACHE_REDIS_PASSWORD")
        if password:
            kwargs["password"] = password
        key_prefix = config.get("CACHE_KEY_PREFIX")
        if key_prefix:
            kwargs["key_prefix"] = key_prefix
        for name, arg in (
            ("CACHE_REDISCACHE_STALE", "stale"),
            ("CACHE_REDISCACHE_WAIT_MS", "wait_ms"),
            ("CACHE_REDISCACHE_LEASE_MS", "lease_ms"),
            ("CACHE_REDISCACHE_CLEAR_TAG", "clear_tag"),
        ):
            if config.get(name) is not None:
                kwargs[arg] = config[name]
        redis_url = config.get("CACHE_REDIS_URL")
        if redis_url:
            redis_kwargs = config.pop("CACHE_OPTIONS", None) or {}
            kwargs["host"] = redis.from_url(redis_url, db=kwargs.pop("db", None), **redis_kwargs)
        return cls(*args, **kwargs)

    # -- helpers --------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        prefix = self.key_prefix if isinstance(self.key_prefix, str) else self.key_prefix()
        return f"{prefix}{key}"

    def _lifetime(self, timeout: Optional[int]) -> Optional[int]:
        t = self._normalize_timeout(timeout)
        return None if t == 0 else t  # 0: never expires (PERSIST)

    def _tags(self, tags: Optional[Iterable[Any]]) -> list:
        return [self.clear_tag, *_core.tags_list(tags)]

    # -- the Flask-Caching / cachelib API -------------------------------------------------

    def get(self, key: str) -> Any:
        return self.serializer.loads(self._read_client.execute_command("CACHE.GET", self._key(key)))

    def get_many(self, *keys: str) -> list:
        pipe = self._read_client.pipeline(transaction=False)
        for k in keys:
            pipe.execute_command("CACHE.GET", self._key(k))
        return [self.serializer.loads(v) for v in pipe.execute()] if keys else []

    def set(
        self,
        key: str,
        value: Any,
        timeout: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> bool:
        args = _core.set_args(
            self._key(key),
            self.serializer.dumps(value),
            self._lifetime(timeout),
            self._tags(tags),
            self.stale,
        )
        return self._write_client.execute_command(*args) is not None

    def add(
        self,
        key: str,
        value: Any,
        timeout: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> bool:
        lifetime = _core.lifetime_args(self._lifetime(timeout)) + _core.stale_args(self.stale)
        argv = ["1", self.serializer.dumps(value), *lifetime, "TAGS", *self._tags(tags)]
        return bool(self._add(keys=[self._key(key)], args=argv))

    def set_many(
        self,
        mapping: dict,
        timeout: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> list:
        lifetime = self._lifetime(timeout)
        all_tags = self._tags(tags)
        pipe = self._write_client.pipeline(transaction=False)
        for k, v in mapping.items():
            pipe.execute_command(
                *_core.set_args(
                    self._key(k), self.serializer.dumps(v), lifetime, all_tags, self.stale
                )
            )
        results = pipe.execute() if mapping else []
        return [k for k, ok in zip(mapping, results) if ok is not None]

    def delete(self, key: str) -> bool:
        return bool(self._delete(keys=[self._key(key)]))

    def delete_many(self, *keys: str) -> list:
        if not keys:
            return []
        self._write_client.delete(*(self._key(k) for k in keys))
        deleted = [k for k in keys if not self.has(k)]
        if not self.ignore_delete_many_errors and len(deleted) != len(keys):
            raise RuntimeError(f"Failed to delete keys: {[k for k in keys if k not in deleted]}")
        return deleted

    def unlink(self, *keys: str) -> Any:
        if not keys:
            return None
        return self._write_client.unlink(*(self._key(k) for k in keys))

    def has(self, key: str) -> bool:
        return self._read_client.execute_command("CACHE.GET", self._key(key)) is not None

    def clear(self) -> bool:
        """Remove the entries this backend stored (those carrying ``clear_tag``)."""
        self._write_client.execute_command("CACHE.INVALIDATETAG", self.clear_tag)
        return True

    def inc(self, key: str, delta: int = 1) -> Any:
        """Add ``delta``; a missing key starts at 0 (as Redis's INCRBY does)."""
        k = self._key(key)
        try:
            return _core.incr_entry(self._write_client, k, delta, self.serializer, KeyError)
        except KeyError:
            if self.add(key, delta, timeout=None):
                return delta
            return _core.incr_entry(self._write_client, k, delta, self.serializer, KeyError)

    def dec(self, key: str, delta: int = 1) -> Any:
        return self.inc(key, -delta)

    # -- beyond Flask-Caching: leases, tags, stats ----------------------------------------

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Any],
        timeout: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
        stale: Optional[float] = None,
    ) -> Any:
        """The cached value, or ``compute()`` run by exactly one caller across processes
        while the others wait for it (leases); stale entries are served while refreshed."""
        return self.cache.get_or_compute(
            self._key(key),
            compute,
            self._lifetime(timeout),
            self._tags(tags),
            self.stale if stale is None else stale,
        )

    def invalidate_tags(self, tags: Iterable[Any], soft: bool = False) -> int:
        return self.cache.invalidate_tags(tags, soft=soft)

    def invalidate(self, pattern: str, soft: bool = False) -> int:
        """Invalidate the entries whose key (after ``key_prefix``) matches ``pattern``."""
        return self.cache.invalidate(self._key(pattern), soft=soft)

    def stats(self, namespace: Optional[str] = None) -> dict:
        return self.cache.stats(namespace)
