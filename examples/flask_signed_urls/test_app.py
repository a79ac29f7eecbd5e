"""The signed-URLs example against a real redis-server with the module."""
import os
import sys
import threading

import pytest
import redis

sys.path.insert(0, os.environ.get("REDISCACHE_TESTS_DIR",
                                  os.path.join(os.path.dirname(__file__), "..", "..", "clients",
                                               "python", "tests")))
from _server import Server  # noqa: E402

import app as forum  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with Server() as s:
        yield s


@pytest.fixture
def envs(server):
    for db in (0, 1):
        r = redis.Redis(port=server.port, db=db)
        r.flushdb()
        r.execute_command("CACHE.STATS", "RESET")
    forum.signings.clear()
    prod = forum.create_app(f"{server.url}/0", secret="prod").test_client()
    dev = forum.create_app(f"{server.url}/1", secret="dev").test_client()
    return prod, dev


def test_url_is_signed_once_and_cached(envs):
    prod, _ = envs
    first = prod.get("/files/7/url").json["url"]
    assert prod.get("/files/7/url").json["url"] == first
    assert forum.signings == [7]


def test_environments_are_separate_databases(envs):
    prod, dev = envs
    assert prod.get("/files/1/url").json["url"] != dev.get("/files/1/url").json["url"]
    assert forum.signings == [1, 1]
    prod.post("/admin/cache/clear", json={})
    dev.get("/files/1/url")
    assert forum.signings == [1, 1]  # dev's copy survived prod's clear
    prod.get("/files/1/url")
    assert forum.signings == [1, 1, 1]


def test_one_file_is_invalidated_by_tag(envs):
    prod, _ = envs
    prod.get("/files/1/url")
    prod.get("/files/2/url")
    assert prod.post("/admin/cache/clear", json={"file_id": 1}).json == {"invalidated": 1}
    prod.get("/files/1/url")
    prod.get("/files/2/url")
    assert forum.signings == [1, 2, 1]


def test_a_burst_of_requests_signs_once(envs):
    prod, _ = envs
    app = prod.application
    urls = []

    def request():
        with app.test_client() as c:
            urls.append(c.get("/files/99/url").json["url"])

    threads = [threading.Thread(target=request) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(urls) == 50 and len(set(urls)) == 1
    assert forum.signings == [99]


def test_stats_are_counted_by_the_server(envs):
    prod, _ = envs
    for _ in range(4):
        prod.get("/files/5/url")
    s = prod.get("/admin/cache/stats").json
    assert (s["hits"], s["misses"], s["hit_ratio"]) == (3, 1, 0.75)
