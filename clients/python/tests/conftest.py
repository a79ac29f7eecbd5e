from __future__ import annotations

import pytest
import redis
from _server import Server


@pytest.fixture(scope="session")
def server():
    with Server() as s:
        yield s


@pytest.fixture
def r(server):
    """A fresh database (FLUSHDB, stats reset) and a client on it."""
    client = redis.Redis(port=server.port, socket_timeout=30)
    client.flushdb()
    client.execute_command("CACHE.STATS", "RESET")
    yield client
    client.close()


def dead_client(**kw) -> redis.Redis:
    """A client whose server is not there (connection refused)."""
    from _server import free_port

    return redis.Redis(port=free_port(), socket_connect_timeout=0.2, **kw)
