"""pytest fixtures over the harness (tests/harness/): real redis-server (or valkey-server)
processes with the cache module loaded.

Environment:
  REDIS_SERVER   server binary (default `redis-server` on PATH)
  CACHE_MODULE   module path (default <repo>/target/release/librediscache.so)

`make_server` servers get `cache.lease-ms 500` unless a test gives module_args, run in the
test's tmp_path, and are always stopped at teardown; a server that died during the test fails
it, and a failing test's report carries each server's log tail.
"""

import pytest

from harness import REDIS_SERVER, Server, is_valkey, server_version

DEFAULT_MODULE_ARGS = ("cache.lease-ms", "500")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in getattr(item, "_cache_servers", []):
            rep.sections.append((f"{s.name} log tail ({s.binary}, port {s.port})", s.tail(40)))


@pytest.fixture
def make_server(request, tmp_path):
    """Factory: make_server(name=..., module_args=[...], extra_args=[...], start=True) -> Server."""
    servers = []
    request.node._cache_servers = servers

    def factory(name=None, start=True, module_args=None, **kw):
        name = name or f"s{len(servers)}"
        s = Server(tmp_path / name, name,
                   module_args=DEFAULT_MODULE_ARGS if module_args is None else module_args, **kw)
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory
    died = [s for s in servers if s.died_unexpectedly()]
    for s in reversed(servers):  # replicas (made later) first
        try:
            s.stop(save=False)
        except Exception:
            s.kill9()
    if died:
        pytest.fail("server(s) died during the test: " + ", ".join(
            f"{s.name} (exit {s.proc.returncode})\n{s.tail(40)}" for s in died), pytrace=False)


@pytest.fixture
def server(make_server):
    return make_server("main")


@pytest.fixture
def r(server):
    """A raw RESP2 client on the default server (exact reply types and error texts)."""
    return server.raw()


@pytest.fixture(scope="session")
def server_info():
    return {"binary": REDIS_SERVER, "version": server_version(REDIS_SERVER), "valkey": is_valkey(REDIS_SERVER)}
