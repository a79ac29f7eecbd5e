"""CACHE.INVALIDATE (key / pattern) and CACHE.INVALIDATETAG (tag / tag pattern), hard and SOFT."""

import time

from cachelib import (OK, settag, must_set, gom, stats, tagscan_all, check_index, wait_until,
                      entry_keys)


def token(reply, state):
    assert reply[0] == state.encode() and isinstance(reply[2], bytes), reply
    return reply[2]


def test_invalidate_single_key(r):
    must_set(r, "k", "v", tags=["t"])
    must_set(r, "k2", "v", tags=["t"])
    r.cmd("SET", "plain", "x")
    assert r.cmd("CACHE.INVALIDATE", "k") == 1
    assert r.cmd("EXISTS", "k") == 0
    assert r.cmd("CACHE.INVALIDATE", "k") == 0
    assert r.cmd("CACHE.INVALIDATE", "plain") == 0
    assert r.cmd("GET", "plain") == b"x"
    assert tagscan_all(r, "t") == {b"k2"}
    token(gom(r, "k"), "MISS")
    st = stats(r)
    assert st["invalidations"] == 3 and st["invalidated"] == 1
    assert st["entries"] == 1


def test_invalidate_pattern(r):
    for i in range(20):
        must_set(r, f"user:{i}", "v", tags=[f"u{i}"])
    must_set(r, "order:1", "v")
    r.cmd("SET", "user:plain", "x")
    r.cmd("RPUSH", "user:list", "x")
    assert r.cmd("CACHE.INVALIDATE", "user:*") == 20
    assert sorted(r.cmd("KEYS", "*")) == [b"order:1", b"user:list", b"user:plain"]
    assert r.cmd("CACHE.INVALIDATE", "user:1?") == 0
    st = stats(r)
    assert st["entries"] == 1 and st["tags"] == 0
    assert st["invalidations"] == 2 and st["invalidated"] == 20


def test_invalidate_star_everything(r):
    for i in range(30):
        must_set(r, f"k{i}", "v", tags=["t"])
    r.cmd("SET", "plain", "x")
    assert r.cmd("CACHE.INVALIDATE", "*") == 30
    assert r.cmd("KEYS", "*") == [b"plain"]
    check_index(r, extra_tags=["t"])


def test_invalidate_soft(server):
    a, b = server.raw(), server.raw()
    must_set(a, "p:1", "v1", "EX", "100", tags=["t"])
    must_set(a, "p:2", "v2", tags=["t"])
    must_set(a, "q:1", "w")
    assert a.cmd("CACHE.INVALIDATE", "p:*", "SOFT") == 2
    t = token(gom(a, "p:1"), "STALE")
    assert gom(b, "p:1") == [b"STALE", b"v1", None]
    assert b.cmd("CACHE.GET", "p:1") == b"v1"
    assert gom(b, "p:2")[0:2] == [b"STALE", b"v2"]
    assert gom(b, "q:1") == [b"HIT", b"w", None]
    assert 90 < a.cmd("TTL", "p:1") <= 100  # the key keeps its expiry
    assert a.cmd("CACHE.TAGS", "p:1") == [b"t"]
    assert settag(a, "p:1", "fresh", "EX", "100", "LEASE", t, "TAGS", "t") == OK
    assert gom(b, "p:1") == [b"HIT", b"fresh", None]
    assert stats(a)["invalidated"] == 2


def test_invalidate_soft_lowercase(r):
    must_set(r, "k", "v")
    assert r.cmd("cache.invalidate", "k", "soft") == 1
    assert gom(r, "k")[0] == b"STALE"


def test_invalidate_voids_lease_without_entry(r):
    t = token(gom(r, "k"), "MISS")
    assert r.cmd("CACHE.INVALIDATE", "k") == 0
    assert settag(r, "k", "v", "LEASE", t) is None
    assert r.cmd("EXISTS", "k") == 0


def test_invalidate_pattern_voids_lease(r):
    t1 = token(gom(r, "user:1"), "MISS")
    t2 = token(gom(r, "order:1"), "MISS")
    assert r.cmd("CACHE.INVALIDATE", "user:*") == 0
    assert settag(r, "user:1", "v", "LEASE", t1) is None
    assert settag(r, "order:1", "v", "LEASE", t2) == OK


def test_stale_set_race_prevented(server):
    """The slow client read before an invalidation: its set must be refused."""
    slow, writer = server.raw(), server.raw()
    must_set(writer, "k", "v0", "PX", "50", "STALE", "60")
    time.sleep(0.1)
    t = token(gom(slow, "k"), "STALE")
    assert writer.cmd("CACHE.INVALIDATE", "k") == 1
    assert settag(slow, "k", "old-data", "LEASE", t) is None
    token(gom(writer, "k"), "MISS")


def test_invalidatetag(r):
    must_set(r, "a", "v", tags=["x", "y"])
    must_set(r, "b", "v", tags=["x"])
    must_set(r, "c", "v", tags=["y"])
    must_set(r, "d", "v")
    assert r.cmd("CACHE.INVALIDATETAG", "x") == 2
    assert r.cmd("CACHE.GET", "a") is None
    assert r.cmd("CACHE.GET", "b") is None
    assert r.cmd("CACHE.GET", "c") == b"v"
    token(gom(r, "a"), "MISS")
    assert tagscan_all(r, "x") == set()
    assert tagscan_all(r, "y") == {b"c"}
    assert r.cmd("CACHE.INVALIDATETAG", "x") == 0
    assert r.cmd("CACHE.INVALIDATETAG", "nosuch") == 0
    wait_until(lambda: r.cmd("DBSIZE") == 2, what="swept keys gone")
    check_index(r, extra_tags=["x"])
    st = stats(r)
    assert st["invalidations"] == 3 and st["invalidated"] == 2


def test_invalidatetag_soft(server):
    a, b = server.raw(), server.raw()
    must_set(a, "a", "va", tags=["x"])
    must_set(a, "b", "vb", tags=["y"])
    assert a.cmd("CACHE.INVALIDATETAG", "x", "SOFT") == 1
    t = token(gom(a, "a"), "STALE")
    assert gom(b, "a") == [b"STALE", b"va", None]
    assert gom(b, "b") == [b"HIT", b"vb", None]
    assert settag(a, "a", "new", "LEASE", t, "TAGS", "x") == OK
    assert gom(b, "a") == [b"HIT", b"new", None]


def test_invalidatetag_pattern(r):
    must_set(r, "k1", "v", tags=["user:1"])
    must_set(r, "k2", "v", tags=["user:2", "user:1"])
    must_set(r, "k3", "v", tags=["report"])
    must_set(r, "k4", "v", tags=["user:**"])
    # An entry under two matching tags counts once.
    assert r.cmd("CACHE.INVALIDATETAG", "user:?") == 2
    assert r.cmd("CACHE.GET", "k3") == b"v"
    assert r.cmd("CACHE.GET", "k4") == b"v"
    # A pattern whose only special characters are escaped names one tag.
    assert r.cmd("CACHE.INVALIDATETAG", "user:\\*\\*") == 1
    assert r.cmd("CACHE.GET", "k4") is None
    assert r.cmd("CACHE.INVALIDATETAG", "[a-z]eport") == 1
    assert r.cmd("DBSIZE") in (0, 1, 2, 3, 4)
    wait_until(lambda: r.cmd("DBSIZE") == 0, what="sweep")


def test_invalidatetag_voids_lease_whose_set_carries_tag(r):
    t1 = token(gom(r, "k1"), "MISS")
    t2 = token(gom(r, "k2"), "MISS")
    assert r.cmd("CACHE.INVALIDATETAG", "a") == 0
    assert settag(r, "k1", "v", "LEASE", t1, "TAGS", "b", "a") is None
    assert r.cmd("EXISTS", "k1") == 0
    # A set that does not carry the invalidated tag is fine.
    assert settag(r, "k2", "v", "LEASE", t2, "TAGS", "b") == OK
    assert stats(r)["sets_refused"] == 1


def test_invalidatetag_pattern_voids_lease(r):
    t1 = token(gom(r, "k1"), "MISS")
    assert r.cmd("CACHE.INVALIDATETAG", "user:*") == 0
    assert settag(r, "k1", "v", "LEASE", t1, "TAGS", "user:7") is None


def test_invalidatetag_before_token_does_not_void_it(r):
    assert r.cmd("CACHE.INVALIDATETAG", "a") == 0
    t = token(gom(r, "k"), "MISS")
    assert settag(r, "k", "v", "LEASE", t, "TAGS", "a") == OK


def test_new_entries_after_invalidatetag_visible(r):
    must_set(r, "k", "old", tags=["a"])
    assert r.cmd("CACHE.INVALIDATETAG", "a") == 1
    must_set(r, "k", "new", tags=["a"])
    must_set(r, "k2", "v2", tags=["a"])
    assert r.cmd("CACHE.GET", "k") == b"new"
    assert gom(r, "k2") == [b"HIT", b"v2", None]
    assert tagscan_all(r, "a") == {b"k", b"k2"}
    time.sleep(0.3)  # let any sweep run: it must not take the new entries
    assert r.cmd("CACHE.GET", "k") == b"new"
    assert r.cmd("CACHE.INVALIDATETAG", "a") == 2


def test_big_tag_invalidation_is_fast_and_swept(server):
    r = server.raw()
    n = 20000
    batch = []
    for i in range(n):
        batch.append(["CACHE.SETTAGGED", f"e:{i}", "x" * 20, "TAGS", "big", f"t{i % 7}"])
        if len(batch) == 2000:
            assert set(map(str, r.pipeline(batch))) == {"OK"}
            batch = []
    must_set(r, "other", "v", tags=["small"])
    r.cmd("SET", "plain", "x")
    t0 = time.monotonic()
    assert r.cmd("CACHE.INVALIDATETAG", "big") == n
    elapsed = time.monotonic() - t0
    assert elapsed < 0.5, f"INVALIDATETAG of {n} entries took {elapsed:.3f}s"
    # Readers see them gone at once.
    for i in (0, 1, n // 2, n - 1):
        assert r.cmd("CACHE.GET", f"e:{i}") is None
    # Re-set some during the sweep: the sweep must leave them.
    for i in range(0, 50):
        must_set(r, f"e:{i}", "again", tags=["big"])
    wait_until(lambda: r.cmd("DBSIZE") == 52, timeout=30, what="sweep to finish")
    for i in range(0, 50):
        assert r.cmd("CACHE.GET", f"e:{i}") == b"again"
    assert r.cmd("GET", "plain") == b"x"
    check_index(r, extra_tags=["t0", "t3", "small"])


def test_invalidate_leaves_other_db(server):
    r0, r1 = server.raw(), server.raw(db=1)
    must_set(r0, "k", "v0", tags=["t"])
    must_set(r1, "k", "v1", tags=["t"])
    assert r0.cmd("CACHE.INVALIDATE", "k") == 1
    assert r1.cmd("CACHE.GET", "k") == b"v1"
    assert r0.cmd("CACHE.INVALIDATETAG", "t") == 0
    assert r1.cmd("CACHE.INVALIDATETAG", "t") == 1
    assert set(entry_keys(r0)) == set()


def test_large_pattern_invalidation_counts_everything(r):
    """The reply is the number of entries invalidated, even when the removal is finished later."""
    n = 3000
    r.pipeline([["CACHE.SETTAGGED", f"k:{i}", "v"] for i in range(n)])
    r.pipeline([["CACHE.SETTAGGED", f"z{i}:needle", "v"] for i in range(5)])
    assert r.cmd("CACHE.INVALIDATE", "k:*") == n
    assert r.cmd("CACHE.GET", f"k:{n - 1}") is None
    # No literal prefix: the whole ordered index may have to be walked.
    assert r.cmd("CACHE.INVALIDATE", "*:needle") == 5
    wait_until(lambda: r.cmd("DBSIZE") == 0, timeout=20, what="sweep")
    st = stats(r)
    assert st["invalidated"] == n + 5 and st["entries"] == 0
