"""Flask-Caching's generic backend tests (``GenericCacheTests`` of its test_backend_cache.py)
on rediscache.flask.RedisCache, as its own ``TestRedisCache`` runs them for its Redis backend."""

from __future__ import annotations

import pytest
from test_backend_cache import GenericCacheTests

from rediscache.flask import RedisCache


class TestRediscacheRedisCache(GenericCacheTests):
    _can_use_fast_sleep = False

    @pytest.fixture(params=("client", "host", "callable-prefix"))
    def make_cache(self, request, rediscache_server):
        import redis

        key_prefix = "werkzeug-test-case:"
        if request.param == "client":
            c = RedisCache(host=redis.Redis(port=rediscache_server.port), key_prefix=key_prefix)
        elif request.param == "host":
            c = RedisCache(host="127.0.0.1", port=rediscache_server.port, key_prefix=key_prefix)
        else:
            c = RedisCache(
                host="127.0.0.1", port=rediscache_server.port, key_prefix=lambda: key_prefix
            )
        yield lambda: c
        c.clear()

    def test_compat(self, c):
        # values stored in cachelib's format: an int is its digits, the rest "!" + pickle
        assert c.set("foo", 42)
        raw = c._write_client.execute_command("CACHE.GET", c._key("foo"))
        assert raw == b"42"
        assert c.set("foo", "Awesome")
        raw = c._write_client.execute_command("CACHE.GET", c._key("foo"))
        assert raw.startswith(b"!")

    def test_empty_host(self):
        with pytest.raises(ValueError) as exc_info:
            RedisCache(host=None)
        assert str(exc_info.value) == "RedisCache host parameter may not be None"
