"""Every way a key leaves, moves or is replaced keeps the tag index and counters right."""

import time

import pytest

from cachelib import (OK, settag, must_set, gom, stats, tagscan_all, check_index, wait_until,
                      entry_keys, key_type, WRONGTYPE)


def seed(r):
    must_set(r, "a", "va", tags=["x", "y"])
    must_set(r, "b", "vb", tags=["y", "z"])
    must_set(r, "c", "vc", tags=["z"])
    r.cmd("SET", "plain", "p")


TAGS = ["x", "y", "z", "w"]


@pytest.mark.parametrize("cmd", ["DEL", "UNLINK"])
def test_del_unlink(r, cmd):
    seed(r)
    assert r.cmd(cmd, "a", "plain") == 2
    assert tagscan_all(r, "x") == set()
    assert tagscan_all(r, "y") == {b"b"}
    check_index(r, TAGS)
    assert r.cmd(cmd, "b", "c") == 2
    check_index(r, TAGS)
    assert stats(r)["tags"] == 0


def test_expire_and_persist(r):
    seed(r)
    assert r.cmd("PEXPIRE", "a", "100") == 1
    assert r.cmd("PERSIST", "b") == 0
    assert r.cmd("EXPIRE", "b", "1000") == 1
    assert r.cmd("PERSIST", "b") == 1
    assert r.cmd("TTL", "b") == -1
    time.sleep(0.2)
    assert r.cmd("CACHE.GET", "a") is None
    wait_until(lambda: r.cmd("DBSIZE") == 3, what="a expired")
    check_index(r, TAGS)


def test_active_expiry_many(r):
    r.pipeline([["CACHE.SETTAGGED", f"e{i}", "v", "PX", "50", "TAGS", "t", f"u{i}"] for i in range(500)])
    must_set(r, "keep", "v", tags=["t"])
    time.sleep(0.1)
    wait_until(lambda: r.cmd("DBSIZE") == 1, timeout=15, what="active expiry")
    assert tagscan_all(r, "t") == {b"keep"}
    check_index(r, ["u0", "u499"])


def test_eviction_keeps_index_right(make_server):
    s = make_server(extra_args=["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"])
    r = s.raw()
    val = b"x" * 1000
    batch = []
    for i in range(6000):
        batch.append(["CACHE.SETTAGGED", f"e:{i}", val, "TAGS", f"g{i % 13}", "all"])
        if i % 10 == 0:
            batch.append(["SET", f"plain:{i}", val])
        if len(batch) >= 200:
            replies = r.pipeline(batch)
            assert all(x == OK or x is True for x in replies), [x for x in replies if x != OK][:3]
            batch = []
    if batch:
        r.pipeline(batch)
    info = s.info("stats")
    assert int(info["evicted_keys"]) > 0
    # Stop evicting so that the checks below look at a still keyspace.
    assert r.cmd("CONFIG", "SET", "maxmemory", "0") == OK
    plain = len(r.cmd("KEYS", "plain:*"))
    st = stats(r)
    assert st["entries"] == r.cmd("DBSIZE") - plain
    alls = tagscan_all(r, "all")
    assert len(alls) == st["entries"]
    for k in alls:
        assert r.cmd("EXISTS", k) == 1, k
    check_index(r, [f"g{i}" for i in range(13)])


def test_overwrite_by_plain_set(r):
    seed(r)
    assert r.cmd("SET", "a", "plain now") == OK
    assert r.cmd("CACHE.TAGS", "a") == []
    assert tagscan_all(r, "x") == set()
    assert r.cmd("CACHE.GET", "a") == WRONGTYPE
    check_index(r, TAGS)
    assert stats(r)["entries"] == 2


def test_overwrite_by_other_type(r):
    seed(r)
    r.cmd("DEL", "a")
    must_set(r, "a", "v", tags=["x"])
    # SET with GET on an entry: Redis refuses (WRONGTYPE) and nothing changes.
    assert r.cmd("SET", "a", "s", "GET") == WRONGTYPE
    assert r.cmd("CACHE.GET", "a") == b"v"
    check_index(r, TAGS)


def test_rename(r):
    seed(r)
    assert r.cmd("RENAME", "a", "a2") == OK
    assert tagscan_all(r, "x") == {b"a2"}
    assert r.cmd("CACHE.TAGS", "a2") == [b"x", b"y"]
    assert r.cmd("CACHE.GET", "a2") == b"va"
    assert r.cmd("CACHE.GET", "a") is None
    check_index(r, TAGS)


def test_rename_onto_existing_entry(r):
    seed(r)
    assert r.cmd("RENAME", "a", "b") == OK
    assert r.cmd("CACHE.TAGS", "b") == [b"x", b"y"]
    assert r.cmd("CACHE.GET", "b") == b"va"
    assert tagscan_all(r, "z") == {b"c"}
    assert tagscan_all(r, "y") == {b"b"}
    check_index(r, TAGS)
    assert stats(r)["entries"] == 2


def test_rename_onto_plain_and_plain_onto_entry(r):
    seed(r)
    assert r.cmd("RENAME", "a", "plain") == OK
    assert r.cmd("CACHE.TAGS", "plain") == [b"x", b"y"]
    check_index(r, TAGS)
    r.cmd("SET", "p2", "s")
    assert r.cmd("RENAME", "p2", "b") == OK
    assert key_type(r, "b") == "string"
    assert tagscan_all(r, "y") == {b"plain"}
    check_index(r, TAGS)


def test_renamenx(r):
    seed(r)
    assert r.cmd("RENAMENX", "a", "b") == 0
    assert r.cmd("RENAMENX", "a", "new") == 1
    assert tagscan_all(r, "x") == {b"new"}
    check_index(r, TAGS)


def test_rename_then_invalidate_new_name(r):
    seed(r)
    r.cmd("RENAME", "a", "q:1")
    assert r.cmd("CACHE.INVALIDATE", "q:*") == 1
    assert r.cmd("CACHE.INVALIDATE", "a") == 0
    check_index(r, TAGS)


def test_move(server):
    r0, r1 = server.raw(), server.raw(db=1)
    seed(r0)
    must_set(r1, "other", "v", tags=["x"])
    assert r0.cmd("MOVE", "a", "1") == 1
    assert r0.cmd("CACHE.GET", "a") is None
    assert tagscan_all(r0, "x") == set()
    assert r1.cmd("CACHE.GET", "a") == b"va"
    assert tagscan_all(r1, "x") == {b"a", b"other"}
    check_index(r0, TAGS)
    check_index(r1, TAGS)
    assert r1.cmd("CACHE.INVALIDATETAG", "y") == 1
    assert r0.cmd("CACHE.GET", "b") == b"vb"


def test_copy(server):
    r0, r1 = server.raw(), server.raw(db=1)
    seed(r0)
    assert r0.cmd("COPY", "a", "a2") == 1
    assert r0.cmd("CACHE.GET", "a2") == b"va"
    assert r0.cmd("CACHE.TAGS", "a2") == [b"x", b"y"]
    assert tagscan_all(r0, "x") == {b"a", b"a2"}
    check_index(r0, TAGS)
    # The copy is independent: invalidating one leaves the other.
    assert r0.cmd("CACHE.INVALIDATE", "a") == 1
    assert r0.cmd("CACHE.GET", "a2") == b"va"
    assert r0.cmd("COPY", "a2", "a", "DB", "1") == 1
    assert r1.cmd("CACHE.TAGS", "a") == [b"x", b"y"]
    assert tagscan_all(r1, "y") == {b"a"}
    check_index(r0, TAGS)
    check_index(r1, TAGS)


def test_copy_replace_onto_entry(r):
    seed(r)
    assert r.cmd("COPY", "a", "b") == 0
    assert r.cmd("COPY", "a", "b", "REPLACE") == 1
    assert r.cmd("CACHE.TAGS", "b") == [b"x", b"y"]
    assert tagscan_all(r, "z") == {b"c"}
    assert tagscan_all(r, "x") == {b"a", b"b"}
    check_index(r, TAGS)


def test_swapdb(server):
    r0, r1 = server.raw(), server.raw(db=1)
    seed(r0)
    must_set(r1, "one", "v1", tags=["w"])
    assert r0.cmd("SWAPDB", "0", "1") == OK
    assert r0.cmd("CACHE.GET", "one") == b"v1"
    assert tagscan_all(r0, "w") == {b"one"}
    assert tagscan_all(r0, "x") == set()
    assert tagscan_all(r1, "x") == {b"a"}
    check_index(r0, TAGS)
    check_index(r1, TAGS)
    assert r1.cmd("CACHE.INVALIDATETAG", "z") == 2
    assert r0.cmd("CACHE.INVALIDATETAG", "w") == 1
    wait_until(lambda: r0.cmd("DBSIZE") == 0 and r1.cmd("DBSIZE") == 2, what="sweeps")
    check_index(r0, TAGS)
    check_index(r1, TAGS)


@pytest.mark.parametrize("how", [["FLUSHDB"], ["FLUSHDB", "ASYNC"], ["FLUSHDB", "SYNC"],
                                 ["FLUSHALL"], ["FLUSHALL", "ASYNC"]])
def test_flush(server, how):
    r0, r1 = server.raw(), server.raw(db=1)
    r0.pipeline([["CACHE.SETTAGGED", f"k{i}", "v", "TAGS", "x", f"t{i}"] for i in range(2000)])
    must_set(r1, "k", "v1", tags=["x"])
    assert r0.cmd(*how) == OK
    # Write the same keys again at once (an ASYNC free may still be running).
    for i in range(20):
        must_set(r0, f"k{i}", "again", tags=["x"])
    assert tagscan_all(r0, "x") == {f"k{i}".encode() for i in range(20)}
    check_index(r0, ["t0", "t1999"])
    if how[0] == "FLUSHALL":
        assert r1.cmd("DBSIZE") == 0
        assert tagscan_all(r1, "x") == set()
    else:
        assert tagscan_all(r1, "x") == {b"k"}
    check_index(r1, ["x"])
    time.sleep(0.2)
    check_index(r0, ["t0", "t1999"])


def test_dump_restore(r):
    seed(r)
    payload = r.cmd("DUMP", "a")
    assert isinstance(payload, bytes)
    assert r.cmd("RESTORE", "a3", "0", payload) == OK
    assert r.cmd("CACHE.GET", "a3") == b"va"
    assert r.cmd("CACHE.TAGS", "a3") == [b"x", b"y"]
    assert tagscan_all(r, "x") == {b"a", b"a3"}
    check_index(r, TAGS)
    assert r.cmd("RESTORE", "a4", "5000", payload) == OK
    assert 4000 < r.cmd("PTTL", "a4") <= 5000
    check_index(r, TAGS)


def test_restore_replace(r):
    seed(r)
    payload = r.cmd("DUMP", "a")
    assert str(getattr(r.cmd("RESTORE", "b", "0", payload), "msg", "")).startswith("BUSYKEY")
    assert r.cmd("RESTORE", "b", "0", payload, "REPLACE") == OK
    assert r.cmd("CACHE.TAGS", "b") == [b"x", b"y"]
    assert tagscan_all(r, "z") == {b"c"}
    check_index(r, TAGS)
    # Onto a plain key too.
    assert r.cmd("RESTORE", "plain", "0", payload, "REPLACE") == OK
    assert r.cmd("CACHE.GET", "plain") == b"va"
    check_index(r, TAGS)


def test_restore_in_other_server(make_server):
    s1, s2 = make_server("one"), make_server("two")
    r1, r2 = s1.raw(), s2.raw()
    must_set(r1, "k", b"\x00bin", "EX", "1000", tags=["t", b"\xff"])
    payload = r1.cmd("DUMP", "k")
    assert r2.cmd("RESTORE", "k", "0", payload) == OK
    assert r2.cmd("CACHE.GET", "k") == b"\x00bin"
    assert tagscan_all(r2, b"\xff") == {b"k"}
    check_index(r2)


def test_migrate(make_server):
    s1, s2 = make_server("one"), make_server("two")
    r1, r2 = s1.raw(), s2.raw()
    must_set(r1, "k", "v", tags=["t"])
    assert r1.cmd("MIGRATE", "127.0.0.1", s2.port, "k", "0", "5000") == OK
    assert r1.cmd("EXISTS", "k") == 0
    check_index(r1, ["t"])
    assert r2.cmd("CACHE.GET", "k") == b"v"
    assert tagscan_all(r2, "t") == {b"k"}
    check_index(r2)


def test_getdel_and_type_on_entry(r):
    seed(r)
    assert r.cmd("GETDEL", "a") == WRONGTYPE
    assert r.cmd("CACHE.GET", "a") == b"va"
    assert r.cmd("OBJECT", "ENCODING", "a") is not None
    assert isinstance(r.cmd("MEMORY", "USAGE", "a"), int)
    assert len(entry_keys(r)) == 3


def test_lease_survives_unrelated_ops(r):
    t = gom(r, "k")[2]
    must_set(r, "other", "v")
    r.cmd("DEL", "other")
    assert settag(r, "k", "v", "LEASE", t) == OK
