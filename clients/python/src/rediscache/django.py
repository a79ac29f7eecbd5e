"""A Django cache backend on the rediscache module: ``rediscache.django.RedisCache``.

Configured like Django's own ``django.core.cache.backends.redis.RedisCache``::

    CACHES = {
        "default": {
            "BACKEND": "rediscache.django.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": "shop",
            "TIMEOUT": 300,
        }
    }

Every entry is stored with ``CACHE.SETTAGGED`` and read with ``CACHE.GET``, so entries carry
tags (``cache.set(key, value, tags=[...])``, ``cache.invalidate_tags([...])``), ``get_or_set``
takes a lease (one computation per missing key across every process, the others wait for it),
and ``clear()`` removes only the entries this cache wrote (one tag), never ``FLUSHDB``.

OPTIONS: those of Django's backend (``db``, ``pool_class``, ``parser_class``, ``serializer``,
and any connection-pool keyword such as ``socket_timeout``), plus:

- ``stale`` (seconds, 0): how long after its timeout an entry may still be served as stale
  while one ``get_or_set`` caller refreshes it in the background (``get()`` returns it too).
- ``wait_ms`` (2000), ``lease_ms`` (server default): how long ``get_or_set`` waits for another
  process computing the value, and how long its own lease protects the key.
- ``clear_tag`` (``"django.cache:" + KEY_PREFIX``): the tag every entry carries, that
  ``clear()`` invalidates.
- ``ignore_exceptions`` (False; ``IGNORE_EXCEPTIONS`` is accepted too, as django-redis spells
  it): when Redis is unreachable, reads miss and writes are dropped instead of raising.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.redis import RedisSerializer
from django.middleware.cache import CacheMiddleware
from django.utils.decorators import decorator_from_middleware_with_args
from django.utils.functional import cached_property
from django.utils.module_loading import import_string

from . import _core
from ._sync import Cache

log = logging.getLogger("rediscache.django")

__all__ = ["RedisCache", "cache_page", "TaggedCacheMiddleware"]

_OUR_OPTIONS = ("stale", "wait_ms", "lease_ms", "clear_tag", "ignore_exceptions")

_UNAVAILABLE = _core.UNAVAILABLE


class RedisCache(BaseCache):
    """Django cache backend storing module entries (see the module docstring)."""

    def __init__(self, server: Union[str, Sequence[str]], params: dict) -> None:
        super().__init__(params)
        if isinstance(server, str):
            self._servers = [s for s in re.split("[;,]", server) if s]
        else:
            self._servers = list(server)
        options = dict(params.get("OPTIONS", {}))
        ours = {k: options.pop(k) for k in _OUR_OPTIONS if k in options}
        if "IGNORE_EXCEPTIONS" in options:
            ours.setdefault("ignore_exceptions", options.pop("IGNORE_EXCEPTIONS"))
        self._stale = float(ours.get("stale", 0) or 0)
        self._lease_ms = ours.get("lease_ms")
        self._ignore_exceptions = bool(ours.get("ignore_exceptions", False))
        self.clear_tag = str(ours.get("clear_tag", "django.cache:" + self.key_prefix))
        serializer = options.pop("serializer", None)
        if isinstance(serializer, str):
            serializer = import_string(serializer)
        if callable(serializer):
            serializer = serializer()
        self._serializer = serializer or RedisSerializer()
        pool_class = options.pop("pool_class", None)
        if isinstance(pool_class, str):
            pool_class = import_string(pool_class)
        parser_class = options.pop("parser_class", None)
        if isinstance(parser_class, str):
            parser_class = import_string(parser_class)
        self._pool_class_option = pool_class
        self._parser_class_option = parser_class
        self._pool_options = options
        self._pools: dict = {}
        wait_ms = int(ours.get("wait_ms", 2000))
        socket_timeout = options.get("socket_timeout")
        if socket_timeout:  # never block on the server longer than the socket waits
            wait_ms = max(0, min(wait_ms, int(float(socket_timeout) * 1000) - 50))
        self._wait_ms = wait_ms

    # -- connections ----------------------------------------------------------------------

    @cached_property
    def _lib(self) -> Any:
        import redis

        return redis

    def _get_connection_pool_index(self, write: bool) -> int:
        # Like Django's backend: write to the first server, read from the others if any.
        if write or len(self._servers) == 1:
            return 0
        return random.randint(1, len(self._servers) - 1)

    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        if index not in self._pools:
            pool_class = self._pool_class_option or self._lib.ConnectionPool
            parser_class = self._parser_class_option or self._lib.connection.DefaultParser
            self._pools[index] = pool_class.from_url(
                self._servers[index], parser_class=parser_class, **self._pool_options
            )
        return self._pools[index]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        return self._lib.Redis(connection_pool=self._get_connection_pool(write))

    @cached_property
    def _scripts(self) -> dict:
        client = self.get_client(write=True)
        return {
            "add": client.register_script(_core.LUA_ADD),
            "delete": client.register_script(_core.LUA_DELETE),
            "touch": client.register_script(_core.LUA_TOUCH),
        }

    @cached_property
    def cache(self) -> Cache:
        """The ``rediscache.Cache`` behind ``get_or_set`` (leases, WAIT, stale refresh)."""
        return Cache(
            self.get_client(write=True),
            serializer=self._serializer,
            wait_ms=self._wait_ms,
            lease_ms=self._lease_ms,
        )

    def _fail(self, e: BaseException, what: str, default: Any) -> Any:
        if not self._ignore_exceptions:
            raise e
        log.warning("rediscache: %s skipped, Redis unreachable: %r", what, e)
        return default

    # -- timeouts and tags ----------------------------------------------------------------

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> Optional[int]:
        if timeout == DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        # None: never expires; zero or negative: not stored (deleted).
        return None if timeout is None else max(0, int(timeout))

    def _tags(self, tags: Optional[Iterable[Any]]) -> list:
        return [self.clear_tag, *_core.tags_list(tags)]

    def _set_args(self, key: str, data: Any, timeout: Optional[int], tags: list) -> list:
        return _core.set_args(key, data, timeout, tags, self._stale)

    def _lifetime(self, timeout: Optional[int]) -> list:
        return _core.lifetime_args(timeout) + _core.stale_args(self._stale)

    # -- the BaseCache API ----------------------------------------------------------------

    def add(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        data = self._serializer.dumps(value)
        if timeout == 0:
            argv: list = ["0"]
        else:
            argv = ["1", data, *self._lifetime(timeout), "TAGS", *self._tags(tags)]
        try:
            return bool(self._scripts["add"](keys=[key], args=argv))
        except _UNAVAILABLE as e:
            return self._fail(e, "add", False)

    def get(self, key: Any, default: Any = None, version: Optional[int] = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        try:
            raw = self.get_client(key).execute_command("CACHE.GET", key)
        except _UNAVAILABLE as e:
            return self._fail(e, "get", default)
        return default if raw is None else self._serializer.loads(raw)

    def set(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        data = self._serializer.dumps(value)
        client = self.get_client(key, write=True)
        try:
            if timeout == 0:
                client.delete(key)
            else:
                client.execute_command(*self._set_args(key, data, timeout, self._tags(tags)))
        except _UNAVAILABLE as e:
            self._fail(e, "set", None)

    def touch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Optional[int] = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        argv = ["0"] if timeout == 0 else self._lifetime(timeout)
        try:
            return bool(self._scripts["touch"](keys=[key], args=argv))
        except _UNAVAILABLE as e:
            return self._fail(e, "touch", False)

    def delete(self, key: Any, version: Optional[int] = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        try:
            return bool(self._scripts["delete"](keys=[key]))
        except _UNAVAILABLE as e:
            return self._fail(e, "delete", False)

    def get_many(self, keys: Iterable[Any], version: Optional[int] = None) -> dict:
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not key_map:
            return {}
        pipe = self.get_client().pipeline(transaction=False)
        for k in key_map:
            pipe.execute_command("CACHE.GET", k)
        try:
            values = pipe.execute()
        except _UNAVAILABLE as e:
            return self._fail(e, "get_many", {})
        return {
            key_map[k]: self._serializer.loads(v) for k, v in zip(key_map, values) if v is not None
        }

    def has_key(self, key: Any, version: Optional[int] = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        try:
            return self.get_client(key).execute_command("CACHE.GET", key) is not None
        except _UNAVAILABLE as e:
            return self._fail(e, "has_key", False)

    def incr(self, key: Any, delta: int = 1, version: Optional[int] = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        return _core.incr_entry(
            self.get_client(key, write=True),
            key,
            delta,
            self._serializer,
            lambda: ValueError(f"Key '{key}' not found."),
        )

    def set_many(
        self,
        data: dict,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> list:
        if not data:
            return []
        timeout = self.get_backend_timeout(timeout)
        safe = {self.make_and_validate_key(k, version=version): v for k, v in data.items()}
        all_tags = self._tags(tags)
        pipe = self.get_client(write=True).pipeline(transaction=False)
        if timeout == 0:
            pipe.delete(*safe)
        else:
            for k, v in safe.items():
                pipe.execute_command(
                    *self._set_args(k, self._serializer.dumps(v), timeout, all_tags)
                )
        try:
            pipe.execute()
        except _UNAVAILABLE as e:
            return self._fail(e, "set_many", list(data))
        return []

    def delete_many(self, keys: Iterable[Any], version: Optional[int] = None) -> None:
        safe = [self.make_and_validate_key(key, version=version) for key in keys]
        if not safe:
            return
        try:
            self.get_client(write=True).delete(*safe)
        except _UNAVAILABLE as e:
            self._fail(e, "delete_many", None)

    def clear(self) -> bool:
        """Remove the entries this cache stored (those carrying ``clear_tag``); other data in
        the database, and other caches' entries, stay."""
        try:
            self.get_client(write=True).execute_command("CACHE.INVALIDATETAG", self.clear_tag)
        except _UNAVAILABLE as e:
            return self._fail(e, "clear", False)
        return True

    def get_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: Optional[int] = None,
        tags: Optional[Iterable[Any]] = None,
    ) -> Any:
        """The cached value of ``key``; when missing, exactly one caller (across processes)
        computes ``default()`` (or takes ``default``) and stores it, the others wait for it.
        A stale entry is served while one caller refreshes it in the background. When
        Redis is unreachable the value is computed and returned uncached."""
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)

        def compute() -> Any:
            return default() if callable(default) else default

        if timeout == 0:
            return compute()
        return self.cache.get_or_compute(key, compute, timeout, self._tags(tags), self._stale)

    def incr_version(self, key: Any, delta: int = 1, version: Optional[int] = None) -> int:
        """Move an entry to another version, keeping its tags and expiry."""
        if version is None:
            version = self.version
        old = self.make_and_validate_key(key, version=version)
        new = self.make_and_validate_key(key, version=version + delta)
        client = self.get_client(old, write=True)
        with client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(old, new)
                    raw = pipe.execute_command("CACHE.GET", old)
                    if raw is None:
                        raise ValueError(f"Key '{key}' not found.")
                    pttl = int(pipe.pttl(old))
                    tags = pipe.execute_command("CACHE.TAGS", old)
                    pipe.multi()
                    lifetime = ["PERSIST"] if pttl < 0 else ["PX", max(1, pttl)]
                    pipe.execute_command(
                        "CACHE.SETTAGGED", new, raw, *lifetime, *(["TAGS", *tags] if tags else [])
                    )
                    pipe.delete(old)
                    pipe.execute()
                    return version + delta
                except self._lib.WatchError:
                    continue

    def close(self, **kwargs: Any) -> None:
        # Called after every request (request_finished); connections stay pooled.
        pass

    # -- beyond BaseCache: tags, patterns, stats ------------------------------------------

    def invalidate_tags(self, tags: Iterable[Any], soft: bool = False) -> int:
        """Invalidate every entry carrying any of ``tags`` (``soft``: they turn stale and are
        refreshed by the next ``get_or_set``). Tags are given as stored (no key prefix)."""
        try:
            return self.cache.invalidate_tags(tags, soft=soft)
        except _UNAVAILABLE as e:
            return self._fail(e, "invalidate_tags", 0)

    def invalidate(self, pattern: str, version: Optional[int] = None, soft: bool = False) -> int:
        """Invalidate the entries whose Django key matches ``pattern`` (KEYS syntax, applied
        after the key function: ``invalidate("views.decorators.cache.cache_page*")``)."""
        try:
            return self.cache.invalidate(self.make_key(pattern, version=version), soft=soft)
        except _UNAVAILABLE as e:
            return self._fail(e, "invalidate", 0)

    def tags_of(self, key: Any, version: Optional[int] = None) -> list:
        """The tags of an entry, ``clear_tag`` included."""
        key = self.make_and_validate_key(key, version=version)
        out = self.get_client(key).execute_command("CACHE.TAGS", key)
        return [t.decode() if isinstance(t, bytes) else t for t in out]

    def stats(self, namespace: Optional[str] = None) -> dict:
        """``CACHE.STATS`` of the database (or of one namespace: the part of the key before
        its first ``:``, i.e. ``KEY_PREFIX`` with Django's default key function)."""
        return self.cache.stats(namespace)


# -- cache_page with tags ---------------------------------------------------------------------

TagsArg = Union[Iterable[str], Callable[..., Iterable[str]]]
_page_tags: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "rediscache_page_tags", default=None
)


class _TaggingCache:
    """The view of a cache that ``TaggedCacheMiddleware`` stores pages through: every ``set``
    gets the page's tags."""

    def __init__(self, cache: Any, tags: list) -> None:
        self._cache = cache
        self._tags = tags

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None):
        if isinstance(self._cache, RedisCache):
            return self._cache.set(key, value, timeout, version, tags=self._tags)
        return self._cache.set(key, value, timeout, version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)


class TaggedCacheMiddleware(CacheMiddleware):
    """Django's ``CacheMiddleware`` whose stored pages (and header lists) carry tags."""

    def __init__(self, get_response: Any, tags: TagsArg = (), **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self.page_tags = tags

    @property  # type: ignore[override]
    def cache(self) -> Any:
        base = caches[self.cache_alias]
        tags = _page_tags.get()
        return base if tags is None else _TaggingCache(base, tags)

    @cache.setter
    def cache(self, value: Any) -> None:
        # Django 4.2's __init__ assigns self.cache; the alias is what this class reads.
        pass

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any):
        tags = self.page_tags
        if callable(tags):
            tags = tags(request, *view_args, **view_kwargs)
        request._rediscache_page_tags = list(tags or ())
        return None

    def process_response(self, request: Any, response: Any) -> Any:
        token = _page_tags.set(list(getattr(request, "_rediscache_page_tags", ())))
        try:
            return super().process_response(request, response)
        finally:
            _page_tags.reset(token)


def cache_page(
    timeout: Optional[float],
    *,
    cache: Optional[str] = None,
    key_prefix: Optional[str] = None,
    tags: TagsArg = (),
) -> Callable:
    """Django's ``cache_page`` whose pages carry ``tags`` (a list, or a callable
    ``tags(request, *view_args, **view_kwargs)``), so a write can drop exactly the pages that
    showed what it changed: ``caches[alias].invalidate_tags(["students"])``."""
    return decorator_from_middleware_with_args(TaggedCacheMiddleware)(
        page_timeout=timeout, cache_alias=cache, key_prefix=key_prefix, tags=tags
    )
