"""Flask-Caching's own test fixtures, with the ``app`` fixture switched to our backend.

test.sh copies the ``tests/`` folder of Flask-Caching's source distribution next to this file,
its conftest.py renamed to _fc_conftest.py, and runs pytest there. Every fixture of theirs is
used as is, except ``app``: its CACHE_TYPE is ``rediscache.flask.RedisCache`` on a throwaway
redis-server with the module (theirs is SimpleCache).
"""

from __future__ import annotations

import os
import sys

import flask
import pytest

sys.path.insert(0, os.environ["REDISCACHE_TESTS_DIR"])

from _fc_conftest import *  # noqa: E402,F401,F403
from _server import Server  # noqa: E402

from rediscache.flask import RedisCache  # noqa: E402


@pytest.fixture(scope="session")
def rediscache_server():
    with Server() as s:
        yield s


@pytest.fixture
def app(request, rediscache_server):
    app = flask.Flask(request.module.__name__, template_folder=os.path.dirname(__file__))
    app.testing = True
    app.config["CACHE_TYPE"] = "rediscache.flask.RedisCache"
    app.config["CACHE_REDIS_URL"] = rediscache_server.url + "/0"
    yield app
    import redis

    redis.Redis(port=rediscache_server.port).flushdb()


# Tests of Flask-Caching's suite that cannot hold for a Redis-backed cache, with the reason.
SKIP_REASONS = {
    "test_cachelib.py::test_backend_uses_cachelib_serializer": (
        "asserts the SimpleCache backend's SimpleSerializer (the app fixture's backend is ours, "
        "which keeps cachelib's RedisSerializer, the format of Flask-Caching's Redis backend)"
    ),
    "test_serializer.py::test_default_keeps_the_cachelib_serializer": (
        "asserts the SimpleCache backend's SimpleSerializer (ours keeps cachelib's RedisSerializer)"
    ),
    "test_serializer.py::test_values_are_stored_in_the_configured_format": (
        "reads SimpleCache's internal dict (cache.cache._cache); the same check on our backend "
        "is in rediscache's own tests (test_flask.py)"
    ),
    "test_init.py::test_init_nullcache[MemcachedCache]": (
        "initialises Flask-Caching's Memcached backend, which needs a memcache client library "
        "(not ours, not installed)"
    ),
}
CLOCK_REASON = (
    "uses Flask-Caching's fake `clock` fixture, which moves time only for cachelib's "
    "SimpleCache/FileSystemCache; a Redis server expires keys on real time"
)
# Tests of Flask-Caching's own Redis/Memcached backends: they use servers of their own on fixed
# ports (6360, 11212; started through pytest-xprocess, and a failure, not a skip, when CI=true).
# Not about our backend, and a fixed port is not a good guest on a shared machine: not run.
NOT_OURS = (
    "test_backend_cache.py::TestRedisCache::",
    "test_backend_cache.py::TestMemcachedCache::",
)


def pytest_collection_modifyitems(config, items):
    kept = []
    for item in items:
        nodeid = item.nodeid.rsplit("/", 1)[-1]
        names = set(getattr(item, "fixturenames", ()))
        if nodeid.startswith(NOT_OURS) or names & {"redis_server", "memcache_server"}:
            continue
        if nodeid in SKIP_REASONS:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASONS[nodeid]))
        elif {"clock", "app"} <= names:
            # app-level tests on our backend whose timing runs on the fake clock (backend
            # classes' own tests keep it: theirs use it, ours sleeps for real)
            item.add_marker(pytest.mark.skip(reason=CLOCK_REASON))
        kept.append(item)
    items[:] = kept


# Which tests ran on our backend (they constructed a rediscache.flask.RedisCache), so the
# summary says how much of the suite exercised it rather than Flask-Caching's other backends.
_TALLY = {"passed": 0, "failed": 0, "skipped": 0}
_BUILT = [0]
_original_init = RedisCache.__init__


def _counting_init(self, *args, **kwargs):
    _BUILT[0] += 1
    _original_init(self, *args, **kwargs)


RedisCache.__init__ = _counting_init  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = _BUILT[0]
    item._rediscache_reports = []
    yield
    reports = item._rediscache_reports
    if _BUILT[0] == before:
        return
    outcome = "passed"
    for rep in reports:
        if rep.outcome == "failed":
            outcome = "failed"
        elif rep.outcome == "skipped" and outcome == "passed":
            outcome = "skipped"
    _TALLY[outcome] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    item._rediscache_reports.append(outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    t = _TALLY
    terminalreporter.write_line(
        f"on rediscache.flask.RedisCache: {t['passed']} passed, {t['failed']} failed, "
        f"{t['skipped']} skipped"
    )
