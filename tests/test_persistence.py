"""Entries, tags, times and soft-invalidated state survive RDB, DEBUG RELOAD and AOF restarts."""

import time

import pytest

from cachelib import OK, settag, must_set, gom, tagscan_all, check_index, wait_until

VAL = b"\x00value\xff\r\n" * 10


def populate(r):
    must_set(r, "a:1", VAL, tags=["t1", "t2"])
    must_set(r, b"bin\x00key", b"\x00", "EX", "1000", tags=[b"t\x00bin", "t1"])
    must_set(r, "a:2", "v2", "EX", "1000", "STALE", "500", "COST", "5")
    must_set(r, "soft", "sv", tags=["t3"])
    assert r.cmd("CACHE.INVALIDATE", "soft", "SOFT") == 1
    r.cmd("SET", "plain", "x")
    for i in range(200):
        must_set(r, f"many:{i}", f"v{i}", tags=["many", f"m{i % 5}"])
    must_set(r, "db1?", "no")  # a key with a special character
    r1 = r  # same connection, other db
    r1.cmd("SELECT", "1")
    must_set(r1, "a:1", "db1", tags=["t9"])
    r1.cmd("SELECT", "0")


def verify(r, expect_soft=True):
    assert r.cmd("CACHE.GET", "a:1") == VAL
    assert r.cmd("CACHE.TAGS", "a:1") == [b"t1", b"t2"]
    assert r.cmd("CACHE.GET", b"bin\x00key") == b"\x00"
    assert r.cmd("CACHE.TAGS", b"bin\x00key") == [b"t\x00bin", b"t1"]
    assert 900 < r.cmd("TTL", b"bin\x00key") <= 1000
    assert 1400 < r.cmd("TTL", "a:2") <= 1500
    assert r.cmd("TTL", "a:1") == -1
    assert gom(r, "a:2") == [b"HIT", b"v2", None]
    if expect_soft:
        rep = gom(r, "soft")
        assert rep[:2] == [b"STALE", b"sv"], rep
    assert r.cmd("GET", "plain") == b"x"
    assert tagscan_all(r, "t1") == {b"a:1", b"bin\x00key"}
    assert tagscan_all(r, "many") == {f"many:{i}".encode() for i in range(200)}
    entries = check_index(r, extra_tags=["nosuch"])
    assert len(entries) == 205
    r.cmd("SELECT", "1")
    assert r.cmd("CACHE.GET", "a:1") == b"db1"
    assert tagscan_all(r, "t9") == {b"a:1"}
    check_index(r)
    r.cmd("SELECT", "0")
    # The rebuilt index works for invalidation.
    assert r.cmd("CACHE.INVALIDATETAG", "m0") == 40
    assert r.cmd("CACHE.INVALIDATE", "a:*") == 2
    wait_until(lambda: r.cmd("DBSIZE") == 205 - 42 + 1, what="sweep")
    check_index(r, extra_tags=["m0", "t2"])


def test_save_and_restart(server):
    r = server.raw()
    populate(r)
    assert r.cmd("SAVE") == OK
    server.restart(save=False)
    verify(server.raw())


def test_shutdown_save_and_restart(server):
    populate(server.raw())
    server.restart(save=True)
    verify(server.raw())


def test_debug_reload(server):
    r = server.raw()
    populate(r)
    assert r.cmd("DEBUG", "RELOAD") == OK
    verify(r)


def test_debug_reload_twice_keeps_index(server):
    r = server.raw()
    populate(r)
    assert r.cmd("DEBUG", "RELOAD") == OK
    assert r.cmd("DEBUG", "RELOAD") == OK
    verify(r)


def test_old_token_not_valid_after_restart(server):
    r = server.raw()
    t = gom(r, "k")[2]
    assert isinstance(t, bytes)
    server.restart(save=True)
    r = server.raw()
    assert settag(r, "k", "v", "LEASE", t) is None
    t2 = gom(r, "k")[2]
    assert isinstance(t2, bytes) and t2 != t
    assert settag(r, "k", "v", "LEASE", t2) == OK


def test_expiry_is_absolute_across_restart(server):
    r = server.raw()
    must_set(r, "k", "v", "PX", "3000")
    assert r.cmd("SAVE") == OK
    time.sleep(1.0)
    server.restart(save=False)
    assert server.raw().cmd("PTTL", "k") <= 2100


def wait_rewrite_done(server):
    def done():
        info = server.info("persistence")
        return (info.get("aof_rewrite_in_progress") == "0"
                and info.get("aof_rewrite_scheduled") == "0"
                and info.get("aof_last_bgrewrite_status") == "ok")
    wait_until(done, timeout=20, what="BGREWRITEAOF to finish")


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_aof_restart(make_server, preamble):
    server = make_server(extra_args=["--appendonly", "yes", "--aof-use-rdb-preamble", preamble,
                                     "--appendfsync", "always"])
    r = server.raw()
    populate(r)
    must_set(r, "ttl", "v", "PX", "4000")
    r.cmd("BGREWRITEAOF")
    wait_rewrite_done(server)
    # More writes after the rewrite, into the incremental AOF.
    must_set(r, "after:1", "x", tags=["late"])
    must_set(r, "after:2", "y", tags=["late", "t1"])
    t = gom(r, "after:3")[2]
    assert settag(r, "after:3", "z", "LEASE", t, "TAGS", "late") == OK
    assert settag(r, "after:4", "refused", "LEASE", "bogus") is None
    must_set(r, "gone", "g", tags=["late"])
    assert r.cmd("CACHE.INVALIDATE", "gone") == 1
    must_set(r, "soft2", "s2", tags=["softtag"])
    assert r.cmd("CACHE.INVALIDATETAG", "softtag", "SOFT") == 1
    time.sleep(1.0)
    server.restart(save=False)
    r = server.raw()
    assert r.cmd("PTTL", "ttl") <= 3100
    assert tagscan_all(r, "late") == {b"after:1", b"after:2", b"after:3"}
    assert r.cmd("CACHE.GET", "after:3") == b"z"
    assert r.cmd("EXISTS", "after:4") == 0
    assert r.cmd("EXISTS", "gone") == 0
    assert gom(r, "soft2")[:2] == [b"STALE", b"s2"]
    r.cmd("CACHE.INVALIDATE", "after:*")
    r.cmd("DEL", "soft2", "ttl")
    verify(r)
    # And once more with a rewrite of the loaded state.
    r.cmd("BGREWRITEAOF")
    wait_rewrite_done(server)
    before = check_index(r)
    server.restart(save=False)
    assert check_index(server.raw()) == before


def test_aof_survives_kill9(make_server):
    server = make_server(extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    r = server.raw()
    must_set(r, "k1", "v1", tags=["a"])
    must_set(r, "k2", "v2", "EX", "1000", tags=["a", "b"])
    server.kill9()
    server.start()
    r = server.raw()
    assert r.cmd("CACHE.GET", "k1") == b"v1"
    assert tagscan_all(r, "a") == {b"k1", b"k2"}
    assert 990 < r.cmd("TTL", "k2") <= 1000
    check_index(r)


def test_aof_big_tag_invalidation_replayed(make_server):
    server = make_server(extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    r = server.raw()
    r.pipeline([["CACHE.SETTAGGED", f"e{i}", "v", "TAGS", "big"] for i in range(3000)])
    must_set(r, "keep", "v", tags=["small"])
    assert r.cmd("CACHE.INVALIDATETAG", "big") == 3000
    server.restart(save=False)
    r = server.raw()
    assert r.cmd("CACHE.GET", "e0") is None
    assert r.cmd("CACHE.GET", "e2999") is None
    wait_until(lambda: r.cmd("DBSIZE") == 1, timeout=20, what="invalidated entries gone")
    check_index(r, extra_tags=["big"])
