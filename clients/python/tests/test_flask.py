"""rediscache.flask.RedisCache beyond Flask-Caching's suite: config by import path, entries
with tags, leases, scoped clear(), the configured serializer."""

from __future__ import annotations

import threading
import time

import pytest

flask = pytest.importorskip("flask")
flask_caching = pytest.importorskip("flask_caching")

from cachelib.serializers import JSONSerializer  # noqa: E402

from rediscache.flask import RedisCache  # noqa: E402


def make_app(server, **config):
    app = flask.Flask(__name__)
    app.config.update(
        CACHE_TYPE="rediscache.flask.RedisCache",
        CACHE_REDIS_URL=f"{server.url}/0",
        CACHE_DEFAULT_TIMEOUT=60,
        **config,
    )
    return app, flask_caching.Cache(app)


def test_cache_type_by_import_path_and_cached_view(server, r):
    app, cache = make_app(server, CACHE_KEY_PREFIX="forum:")
    calls = []

    @app.route("/files/<int:fid>")
    @cache.cached(timeout=60)
    def file_url(fid):
        calls.append(fid)
        return f"https://oss.example/{fid}?sig={len(calls)}"

    tc = app.test_client()
    assert tc.get("/files/1").data == tc.get("/files/1").data
    assert calls == [1]
    backend = app.extensions["cache"][cache]
    assert isinstance(backend, RedisCache)
    keys = [k for k in r.keys("forum:*")]
    assert keys and all(r.execute_command("CACHE.TAGS", k) == [b"flask.cache:forum:"] for k in keys)
    assert backend.clear() is True
    tc.get("/files/1")
    assert calls == [1, 1]


def test_tags_invalidation_and_scoped_clear(server, r):
    c = RedisCache(host="127.0.0.1", port=server.port, key_prefix="env1:")
    other = RedisCache(host="127.0.0.1", port=server.port, key_prefix="env2:")
    c.set("file_url:1", "u1", tags=["file:1"])
    c.set("file_url:2", "u2", tags=["file:2"])
    other.set("file_url:1", "x")
    assert c.invalidate_tags(["file:1"]) == 1
    assert (c.get("file_url:1"), c.get("file_url:2")) == (None, "u2")
    c.clear()
    assert c.get("file_url:2") is None and other.get("file_url:1") == "x"
    assert c.inc("counter") == 1 and c.inc("counter", 5) == 6 and c.dec("counter") == 5
    assert c.invalidate("file_*") == 0


def test_get_or_compute_herd_200_threads(server, r):
    c = RedisCache(host="127.0.0.1", port=server.port, key_prefix="h:", wait_ms=10_000)
    calls = []
    lock = threading.Lock()

    def sign():
        with lock:
            calls.append(1)
        time.sleep(0.2)
        return "https://signed"

    barrier = threading.Barrier(200)
    out = []

    def caller():
        barrier.wait(60)
        out.append(c.get_or_compute("file_url:9", sign, 2700, tags=["file:9"]))

    threads = [threading.Thread(target=caller) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(calls) == 1 and out == ["https://signed"] * 200
    assert c.stats()["sets"] == 1


def test_configured_serializer_is_used(server, r):
    app, cache = make_app(server, CACHE_SERIALIZER=JSONSerializer)
    with app.app_context():
        cache.set("hi", {"a": 1})
        assert r.execute_command("CACHE.GET", "flask_cache_hi") == b'{"a": 1}'
        assert cache.get("hi") == {"a": 1}
        backend = app.extensions["cache"][cache]
        assert backend.get_or_compute("lazy", lambda: {"b": 2}) == {"b": 2}
        assert r.execute_command("CACHE.GET", "flask_cache_lazy") == b'{"b": 2}'


def test_timeout_zero_never_expires(server, r):
    c = RedisCache(host="127.0.0.1", port=server.port)
    c.set("forever", 1, timeout=0)
    assert r.pttl("forever") == -1
    c.set("default", 1)
    assert 299_000 < r.pttl("default") <= 300_000
