"""rediscache.django.RedisCache beyond Django's own suite: tags, scoped clear(), leases in
get_or_set, tagged cache_page, graceful degradation."""

from __future__ import annotations

import threading
import time

import pytest
import redis

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        SECRET_KEY="rediscache-tests",
        ALLOWED_HOSTS=["testserver"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        USE_TZ=True,
    )
    django.setup()

from conftest import dead_client  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from rediscache.django import RedisCache, cache_page  # noqa: E402


def backend(server, **params) -> RedisCache:
    params.setdefault("TIMEOUT", 60)
    return RedisCache(f"{server.url}/0", params)


@pytest.fixture
def dj(server, r):
    return backend(server, KEY_PREFIX="shop")


def test_entries_are_module_entries_with_tags(dj, r):
    dj.set("product:1", {"name": "Lamp"}, tags=["product:1", "products"])
    key = dj.make_key("product:1")
    assert key == "shop:1:product:1"
    assert sorted(dj.tags_of("product:1")) == ["django.cache:shop", "product:1", "products"]
    assert dj.stats()["entries"] == 1
    assert 59_000 < r.pttl(key) <= 60_000
    dj.set("product:2", "Desk", tags=["products"])
    dj.set("other", "x", tags=["other"])
    assert dj.invalidate_tags(["products"]) == 2
    assert dj.get("product:1") is None and dj.get("other") == "x"


def test_soft_invalidation_serves_stale_then_get_or_set_refreshes(server, r):
    dj = backend(server, KEY_PREFIX="soft", OPTIONS={"stale": 60})
    dj.get_or_set("page", lambda: "v1", tags=["pages"])
    assert dj.invalidate_tags(["pages"], soft=True) == 1
    assert dj.get("page") == "v1"  # still there, as stale
    assert dj.get_or_set("page", lambda: "v2", tags=["pages"]) == "v1"  # served stale ...
    dj.cache.wait_refreshes()  # ... refreshed in the background
    assert dj.get("page") == "v2"


def test_clear_removes_only_this_caches_entries(server, r):
    a = backend(server, KEY_PREFIX="a")
    b = backend(server, KEY_PREFIX="b")
    a.set_many({"x": 1, "y": 2})
    b.set("x", 3)
    r.set("foreign", "not a cache entry")
    assert a.clear() is True
    assert a.get_many(["x", "y"]) == {}
    assert b.get("x") == 3
    assert r.get("foreign") == b"not a cache entry"


def test_invalidate_pattern_goes_through_the_key_function(dj):
    dj.set("views.decorators.cache.cache_page.x", "page")
    dj.set("views.decorators.cache.cache_header.x", "hdr")
    dj.set("keep", "k")
    assert dj.invalidate("views.decorators.cache.*") == 2
    assert dj.get("keep") == "k"


def test_get_or_set_herd_200_threads_one_computation(server, r):
    dj = backend(server, KEY_PREFIX="herd", OPTIONS={"wait_ms": 10_000})
    calls = []
    lock = threading.Lock()

    def compute():
        with lock:
            calls.append(1)
        time.sleep(0.2)
        return {"report": 42}

    barrier = threading.Barrier(200)
    out: list = []

    def caller():
        barrier.wait(60)
        out.append(dj.get_or_set("report", compute, 60, tags=["reports"]))

    threads = [threading.Thread(target=caller) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(calls) == 1
    assert out == [{"report": 42}] * 200


def test_ignore_exceptions_degrades_gracefully():
    port = dead_client().connection_pool.connection_kwargs["port"]
    dj = RedisCache(
        f"redis://127.0.0.1:{port}/0",
        {"OPTIONS": {"IGNORE_EXCEPTIONS": True, "socket_connect_timeout": 0.2}},
    )
    assert dj.get("k", "default") == "default"
    dj.set("k", "v")
    assert dj.add("k", "v") is False
    assert dj.get_many(["a", "b"]) == {}
    assert dj.delete("k") is False
    assert dj.get_or_set("k", lambda: "computed") == "computed"
    strict = RedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    with pytest.raises(redis.ConnectionError):
        strict.get("k")
    # get_or_set computes without the cache even without ignore_exceptions (fail-safe)
    assert strict.get_or_set("k", lambda: "computed") == "computed"


def test_pool_options_and_wait_clamped_to_socket_timeout(server):
    dj = RedisCache(
        server.url, {"OPTIONS": {"db": 5, "socket_timeout": 0.5, "retry_on_timeout": True}}
    )
    pool = dj._get_connection_pool(write=False)
    assert pool.connection_kwargs["db"] == 5
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    assert dj._wait_ms == 450
    dj.set("in-db-5", 1)
    assert redis.Redis(port=server.port, db=5).execute_command("CACHE.GET", ":1:in-db-5") == b"1"


def test_cache_page_tags_pages_and_invalidate_tags_drops_them(server, r):
    location = f"{server.url}/0"
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "rediscache.django.RedisCache",
                "LOCATION": location,
                "KEY_PREFIX": "site",
            }
        }
    ):
        calls = []

        @cache_page(60, tags=lambda request, pk: ["students", f"student:{pk}"])
        def student(request, pk):
            calls.append(pk)
            return HttpResponse(f"student {pk} v{len(calls)}")

        rf = RequestFactory()
        assert student(rf.get("/students/1/"), pk=1).content == b"student 1 v1"
        assert student(rf.get("/students/1/"), pk=1).content == b"student 1 v1"
        assert student(rf.get("/students/2/"), pk=2).content == b"student 2 v2"
        assert calls == [1, 2]
        cache = caches["default"]
        assert cache.invalidate_tags(["student:1"]) == 2  # the page and its header list
        assert student(rf.get("/students/1/"), pk=1).content == b"student 1 v3"
        assert student(rf.get("/students/2/"), pk=2).content == b"student 2 v2"
        assert cache.invalidate_tags(["students"]) >= 2
        assert student(rf.get("/students/2/"), pk=2).content == b"student 2 v4"


def test_stats_count_what_the_backend_did(dj, r):
    dj.set("a", 1)
    dj.get("a")
    dj.get("missing")
    s = dj.stats()
    assert (s["sets"], s["hits"], s["misses"]) == (1, 1, 1)
    assert dj.stats("shop")["hits"] == 1
