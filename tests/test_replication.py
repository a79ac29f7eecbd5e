"""Replicas get entries and tags by full sync, and follow writes, invalidations and expiry."""

import time

from cachelib import OK, settag, must_set, gom, stats, tagscan_all, check_index, wait_until


def pair(make_server):
    p = make_server("primary")
    rep = make_server("replica")
    return p, rep


def same_state(p, rep, extra_tags=()):
    pr, rr = p.raw(), rep.raw()
    a = check_index(pr, extra_tags)
    b = check_index(rr, extra_tags)
    assert a == b
    for k in a:
        assert pr.cmd("CACHE.GET", k) == rr.cmd("CACHE.GET", k), k
    return a


def test_full_sync(make_server):
    p, rep = pair(make_server)
    r = p.raw()
    for i in range(300):
        must_set(r, f"k:{i}", b"\x00v%d" % i, tags=["all", f"t{i % 10}"])
    must_set(r, "ttl", "v", "PX", "60000", "STALE", "30")
    must_set(r, "soft", "s", tags=["s"])
    r.cmd("CACHE.INVALIDATE", "soft", "SOFT")
    r.cmd("SELECT", "2")
    must_set(r, "db2", "v", tags=["x"])
    r.cmd("SELECT", "0")
    # The replica had entries of its own: full sync must drop them and their tags.
    rr = rep.raw()
    must_set(rr, "mine", "v", tags=["old"])
    rep.replicaof(p)
    rep.wait_sync(p)
    rr = rep.raw()
    assert rr.cmd("EXISTS", "mine") == 0
    assert tagscan_all(rr, "old") == set()
    same_state(p, rep, extra_tags=["old"])
    assert tagscan_all(rr, "all") == {f"k:{i}".encode() for i in range(300)}
    assert abs(rr.cmd("PTTL", "ttl") - p.raw().cmd("PTTL", "ttl")) < 2000
    assert rr.cmd("CACHE.GET", "soft") == b"s"
    rr.cmd("SELECT", "2")
    assert rr.cmd("CACHE.TAGS", "db2") == [b"x"]
    assert stats(rr)["entries"] == 1


def test_ongoing_writes_and_invalidations(make_server):
    p, rep = pair(make_server)
    rep.replicaof(p)
    rep.wait_sync(p)
    r, rr = p.raw(), rep.raw()
    for i in range(50):
        must_set(r, f"u:{i}", "v", tags=[f"g{i % 5}", "u"])
    must_set(r, "x:1", "x", tags=["u"])
    rep.wait_sync(p)
    same_state(p, rep)
    # Lease set on the primary arrives as a plain store.
    t = gom(r, "lease:1")[2]
    assert settag(r, "lease:1", "computed", "LEASE", t, "TAGS", "g0") == OK
    assert settag(r, "lease:2", "refused", "LEASE", "bogus") is None
    assert r.cmd("CACHE.INVALIDATE", "u:1?") == 10
    assert r.cmd("CACHE.INVALIDATETAG", "g2") == 8  # u:2, u:22, ... minus u:12 (already gone)
    assert r.cmd("CACHE.INVALIDATE", "x:1", "SOFT") == 1
    r.cmd("DEL", "u:0")
    r.cmd("UNLINK", "u:5")
    rep.wait_sync(p)
    assert rr.cmd("CACHE.GET", "lease:1") == b"computed"
    assert rr.cmd("EXISTS", "lease:2") == 0
    for k in ("u:10", "u:15", "u:19", "u:2", "u:32", "u:0", "u:5"):
        assert rr.cmd("CACHE.GET", k) is None, k
    assert rr.cmd("CACHE.GET", "x:1") == b"x"
    wait_until(lambda: rr.cmd("DBSIZE") == r.cmd("DBSIZE") == 50 - 10 - 8 - 2 + 2, what="sweep on both")
    rep.wait_sync(p)
    same_state(p, rep, extra_tags=["g2"])
    # After failover the soft-invalidated entry is still stale.
    rep_r = rep.raw()
    rep_r.cmd("REPLICAOF", "NO", "ONE")
    assert gom(rep_r, "x:1")[:2] == [b"STALE", b"x"]


def test_big_tag_sweep_reaches_replica(make_server):
    p, rep = pair(make_server)
    rep.replicaof(p)
    rep.wait_sync(p)
    r, rr = p.raw(), rep.raw()
    r.pipeline([["CACHE.SETTAGGED", f"e{i}", "v", "TAGS", "big"] for i in range(5000)])
    must_set(r, "keep", "v", tags=["small"])
    rep.wait_sync(p)
    assert rr.cmd("DBSIZE") == 5001
    assert r.cmd("CACHE.INVALIDATETAG", "big") == 5000
    rep.wait_sync(p)
    # Once the primary's reply is out, the replica must not serve them either.
    assert rr.cmd("CACHE.GET", "e0") is None
    assert rr.cmd("CACHE.GET", "e4999") is None
    wait_until(lambda: rr.cmd("DBSIZE") == 1, timeout=30, what="replica swept")
    same_state(p, rep, extra_tags=["big"])


def test_expiry_reaches_replica(make_server):
    p, rep = pair(make_server)
    rep.replicaof(p)
    rep.wait_sync(p)
    r, rr = p.raw(), rep.raw()
    # Long enough that a busy machine still syncs before it expires.
    must_set(r, "short", "v", "PX", "1500", tags=["t"])
    must_set(r, "long", "v", tags=["t"])
    rep.wait_sync(p)
    assert tagscan_all(rr, "t") == {b"short", b"long"}
    time.sleep(1.6)
    wait_until(lambda: r.cmd("DBSIZE") == 1, what="active expiry on primary")
    rep.wait_sync(p)
    wait_until(lambda: rr.cmd("DBSIZE") == 1, what="DEL reached replica")
    assert tagscan_all(rr, "t") == {b"long"}
    same_state(p, rep)


def test_replica_absolute_ttl(make_server):
    p, rep = pair(make_server)
    rep.replicaof(p)
    rep.wait_sync(p)
    r, rr = p.raw(), rep.raw()
    must_set(r, "k", "v", "PX", "4000", "STALE", "2")
    rep.wait_sync(p)
    assert abs(rr.cmd("PTTL", "k") - r.cmd("PTTL", "k")) < 500
    assert 3000 < rr.cmd("PTTL", "k") <= 6000  # fresh 4 s + stale 2 s, minus sync time


def test_replica_reads(make_server):
    p, rep = pair(make_server)
    rep.replicaof(p)
    rep.wait_sync(p)
    r, rr = p.raw(), rep.raw()
    must_set(r, "k", "v", tags=["t"])
    rep.wait_sync(p)
    assert rr.cmd("CACHE.GET", "k") == b"v"
    assert rr.cmd("CACHE.TAGS", "k") == [b"t"]
    assert rr.cmd("CACHE.TAGSCAN", "t", "0") == [b"0", [b"k"]]
    # Writes are refused on a read-only replica.
    reply = settag(rr, "k2", "v")
    assert str(getattr(reply, "msg", "")).startswith("READONLY"), reply


def test_replica_promoted_mid_sweep_reclaims_what_it_kept(make_server):
    """A large tag invalidation is swept by the primary, which sends DELs. If the primary dies
    before they all arrive, the promoted replica deletes the rest itself (they are never
    served in between)."""
    p, rep = pair(make_server)
    rep.replicaof(p)
    rep.wait_sync(p)
    r, rr = p.raw(), rep.raw()
    r.pipeline([["CACHE.SETTAGGED", f"e{i}", "v", "TAGS", "big"] for i in range(20000)])
    must_set(r, "keep", "v", tags=["other"])
    rep.wait_sync(p)
    assert r.cmd("CACHE.INVALIDATETAG", "big") == 20000
    p.kill9()
    assert rr.cmd("DBSIZE") > 1, "some DELs must still be missing for this test to mean anything"
    assert rr.cmd("CACHE.GET", "e19999") is None
    assert rr.cmd("REPLICAOF", "NO", "ONE") == OK
    wait_until(lambda: rr.cmd("DBSIZE") == 1, timeout=20, what="promoted replica swept")
    assert rr.cmd("CACHE.GET", "keep") == b"v"
    assert stats(rr)["entries"] == 1
