"""rediscache.NearCache: local copies dropped at command time by the module's signals."""

from __future__ import annotations

import os
import time

import pytest
import redis

import rediscache
from rediscache.near import redis_glob


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture
def near(server, r):
    n = rediscache.NearCache(redis.Redis(port=server.port), maxsize=200_000)
    assert n.wait_ready()
    yield n
    n.close()


@pytest.fixture
def other(server):
    c = redis.Redis(port=server.port)
    yield c
    c.close()


def setk(c, key, value, *opts, tags=()):
    args = ["CACHE.SETTAGGED", key, value, *opts]
    if tags:
        args += ["TAGS", *tags]
    return c.execute_command(*args)


def test_redis_glob_matches_like_redis():
    cases = [
        (b"user:*", b"user:1", True),
        (b"user:*", b"users", False),
        (b"h?llo", b"hello", True),
        (b"h[ae]llo", b"hallo", True),
        (b"h[^e]llo", b"hello", False),
        (b"h[a-b]llo", b"hbllo", True),
        (b"a\\*b", b"a*b", True),
        (b"a\\*b", b"axb", False),
    ]
    for pattern, key, expected in cases:
        assert bool(redis_glob(pattern).match(key)) is expected, (pattern, key)


def test_local_hit_then_overwrite_drops_the_copy(near, other):
    setk(other, "k", "v1", "EX", 60)
    assert near.get("k") == b"v1"
    hits = near.counters["hits"]
    assert near.get("k") == b"v1"
    assert near.counters["hits"] == hits + 1
    setk(other, "k", "v2", "EX", 60)
    assert wait_until(lambda: len(near) == 0)
    assert near.get("k") == b"v2"


def test_tag_pattern_del_and_flushdb_drop_copies(near, other):
    for i in range(5):
        setk(other, f"user:{i}", f"u{i}", "EX", 60, tags=["users", f"user:{i}"])
    setk(other, "plain:1", "p", "EX", 60, tags=["misc"])
    assert len(near.get_many([f"user:{i}" for i in range(5)] + ["plain:1"])) == 6
    assert len(near) == 6
    assert other.execute_command("CACHE.INVALIDATETAG", "user:1") == 1
    assert wait_until(lambda: len(near) == 5)
    assert near.get("user:1") is None
    assert other.execute_command("CACHE.INVALIDATETAG", "us?rs") == 4
    assert wait_until(lambda: len(near) == 1)
    assert near.get_many(["user:0", "user:2"]) == {}
    near.get("plain:1")
    other.delete("plain:1")
    assert wait_until(lambda: len(near) == 0)
    setk(other, "a:1", "x", "EX", 60)
    setk(other, "a:2", "y", "EX", 60)
    near.get_many(["a:1", "a:2"])
    assert other.execute_command("CACHE.INVALIDATE", "a:*") == 2
    assert wait_until(lambda: len(near) == 0)
    setk(other, "f", "z", "EX", 60)
    near.get("f")
    other.flushdb()
    assert wait_until(lambda: len(near) == 0)
    assert near.get("f") is None


def test_soft_invalidation_marks_copies_stale_and_get_or_compute_refreshes(near, other):
    setk(other, "page", "old", "EX", 60, "STALE", 60, tags=["pages"])
    assert near.get_or_compute("page", lambda: "never", 60, tags=["pages"], stale=60) == b"old"
    assert other.execute_command("CACHE.INVALIDATETAG", "pages", "SOFT") == 1
    assert wait_until(lambda: near.counters["messages"] >= 1)
    # the stale copy is not served as fresh: get_or_compute asks the server, which hands out
    # the refresh lease (STALE): the stale value is served while it refreshes
    assert near.get_or_compute("page", lambda: "new", 60, tags=["pages"], stale=60) == b"old"
    near.cache.wait_refreshes()
    assert wait_until(lambda: near.get("page") == b"new")


def test_local_copy_ages_to_stale_and_expires(near, other):
    setk(other, "short", "v", "PX", 200, "PSTALE", 300)
    assert near.get("short") == b"v"
    time.sleep(0.25)
    assert near.get("short") == b"v"  # stale, still served by get()
    found, _ = near._local(b"short", fresh_only=True)
    assert found is False
    time.sleep(0.3)
    assert near.get("short") is None


def test_a_refused_set_sends_no_push(near, other):
    setk(other, "k", "v", "EX", 60)
    _, _, token = other.execute_command("CACHE.GETORMARK", "k", "LEASE", 5)  # HIT: no token
    assert near.get("k") == b"v"
    _, _, t1 = other.execute_command("CACHE.GETORMARK", "fresh-key")
    other.execute_command("CACHE.INVALIDATE", "fresh-key")  # voids t1
    assert setk(other, "fresh-key", "late", "EX", 60, "LEASE", t1) is None
    time.sleep(0.2)
    assert len(near) == 1 and near.get("k") == b"v"


def test_a_dropped_connection_drops_everything_and_recovers(near, other):
    setk(other, "k", "v", "EX", 60)
    near.get("k")
    assert len(near) == 1
    other.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert wait_until(lambda: len(near) == 0)
    assert near.wait_ready()
    assert near.get("k") == b"v"
    assert wait_until(lambda: near.get("k") == b"v" and len(near) == 1)
    setk(other, "k", "v2", "EX", 60)  # tracking was re-enabled towards the new listener
    assert wait_until(lambda: near.get("k") == b"v2")


def test_get_or_compute_keeps_a_tracked_copy(near, other):
    calls = []
    v = near.get_or_compute("c", lambda: calls.append(1) or "x", 60, tags=["t"])
    assert v == "x" and len(near) == 1
    assert near.get_or_compute("c", lambda: "y", 60) == b"x"
    assert calls == [1]
    other.execute_command("CACHE.INVALIDATETAG", "t")
    assert wait_until(lambda: len(near) == 0)


N = int(os.environ.get("NEAR_ENTRIES", "100000"))


@pytest.mark.parametrize(
    "soft,command",
    [
        (False, ["CACHE.INVALIDATETAG", "big"]),
        (True, ["CACHE.INVALIDATETAG", "big"]),
        (False, ["CACHE.INVALIDATE", "big:*"]),
        (True, ["CACHE.INVALIDATE", "big:*"]),
    ],
    ids=["tag", "softtag", "pattern", "softpattern"],
)
def test_100k_copies_under_one_tag(near, other, soft, command):
    """100,000 local copies under one tag: after INVALIDATETAG (from another connection)
    replies, the near cache drops (or marks stale) all of them on the one channel message,
    not key by key as the sweeper reclaims them."""
    pipe = other.pipeline(transaction=False)
    for i in range(N):
        pipe.execute_command(
            "CACHE.SETTAGGED", f"big:{i}", "v", "EX", 300, "STALE", 300, "TAGS", "big"
        )
    pipe.execute()
    keys = [f"big:{i}" for i in range(N)]
    for at in range(0, N, 10_000):
        near.get_many(keys[at : at + 10_000])
    assert len(near) == N
    seen = near.counters["channel_messages"]
    args = [*command, *(["SOFT"] if soft else [])]
    n = other.execute_command(*args)
    replied = time.perf_counter()
    # a key pattern over a range too large for the command's time budget counts the rest
    # as the sweep finds them (API.md); the invalidation itself is in force at once
    assert n == N if command[0] == "CACHE.INVALIDATETAG" else 0 < n <= N
    assert wait_until(lambda: near.counters["channel_messages"] > seen)
    window_ms = max(0.0, (near.last_channel_applied - replied) * 1000)
    # from the message on, no copy of the tag is served (as fresh, for SOFT)
    sample = [k.encode() for k in keys[:: max(1, N // 1000)]]
    assert not any(near._local(k, fresh_only=True)[0] for k in sample)
    if soft:
        assert all(near.get(k) in (None, b"v") for k in sample)  # stale copies, or dropped
    else:
        assert near.get_many(keys[:: max(1, N // 1000)]) == {}
        assert wait_until(lambda: len(near) == 0, timeout=60)  # memory reclaimed
    reclaimed_ms = (time.perf_counter() - replied) * 1000
    print(
        f"\n{' '.join(args)} of {N} local copies: none served "
        f"{window_ms:.2f} ms after the reply"
        + ("" if soft else f", all freed by {reclaimed_ms:.0f} ms")
    )


def test_through_a_replica(server):
    """A near cache reading from a replica is told by the replica, when it applies the
    primary's commands: the channel message and the tracking pushes."""
    from _server import Server

    primary = redis.Redis(port=server.port)
    primary.flushdb()
    primary.config_set("repl-diskless-sync-delay", 0)
    with Server(("--replicaof", "127.0.0.1", str(server.port))) as rep:
        rclient = redis.Redis(port=rep.port)
        assert wait_until(
            lambda: rclient.info("replication").get("master_link_status") == "up", timeout=30
        )
        near = rediscache.NearCache(rclient)
        assert near.wait_ready()
        for i in range(3):
            setk(primary, f"r:{i}", f"v{i}", "EX", 60, "STALE", 60, tags=["rt", f"r:{i}"])
        primary.execute_command("WAIT", 1, 5000)
        assert wait_until(lambda: len(near.get_many(["r:0", "r:1", "r:2"])) == 3)
        assert len(near) == 3
        assert primary.execute_command("CACHE.INVALIDATETAG", "r:0") == 1
        assert wait_until(lambda: near.get("r:0") is None)
        setk(primary, "r:1", "new", "EX", 60)
        assert wait_until(lambda: near.get("r:1") == b"new")
        assert primary.execute_command("CACHE.INVALIDATETAG", "rt", "SOFT") == 1
        assert wait_until(lambda: not near._local(b"r:2", fresh_only=True)[0])
        assert near.get("r:2") == b"v2"  # stale, still readable
        near.close()
        rclient.close()
    primary.close()
