"""CACHE.GETORMARK: HIT / MISS / STALE / PENDING, leases and their tokens, WAIT, early refresh."""

import time

from cachelib import (OK, S, settag, must_set, gom, stats, WRONGTYPE, token_of,
                      wait_in_thread, wait_blocked)


def test_miss_pending_set_hit(server):
    a, b = server.raw(), server.raw()
    t = token_of(gom(a, "k"), "MISS")
    assert gom(a, "k")[1] is None
    assert gom(b, "k") == [b"PENDING", None, None]
    assert settag(a, "k", "v", "LEASE", t, "TAGS", "x") == OK
    assert gom(b, "k") == [b"HIT", b"v", None]
    assert a.cmd("CACHE.TAGS", "k") == [b"x"]


def test_miss_reply_exact_shape(r):
    reply = gom(r, "k")
    assert len(reply) == 3
    assert reply[0] == b"MISS" and reply[1] is None and isinstance(reply[2], bytes)


def test_tokens_are_distinct(r):
    toks = [token_of(gom(r, f"k{i}"), "MISS") for i in range(50)]
    assert len(set(toks)) == 50


def test_token_consumed_by_successful_set(r):
    t = token_of(gom(r, "k"), "MISS")
    assert settag(r, "k", "v1", "LEASE", t) == OK
    assert settag(r, "k", "v2", "LEASE", t) is None
    assert r.cmd("CACHE.GET", "k") == b"v1"
    st = stats(r)
    assert st["sets"] == 1 and st["sets_refused"] == 1


def test_unknown_token_refused_nothing_created(r):
    assert settag(r, "k", "v", "LEASE", "bogus", "TAGS", "t") is None
    assert r.cmd("EXISTS", "k") == 0
    assert r.cmd("CACHE.TAGSCAN", "t", "0") == [b"0", []]
    st = stats(r)
    assert st["sets_refused"] == 1 and st["sets"] == 0 and st["entries"] == 0 and st["tags"] == 0


def test_token_of_other_key_refused(r):
    ta = token_of(gom(r, "a"), "MISS")
    token_of(gom(r, "b"), "MISS")
    assert settag(r, "b", "v", "LEASE", ta) is None
    assert r.cmd("EXISTS", "b") == 0
    assert settag(r, "a", "v", "LEASE", ta) == OK


def test_refused_set_leaves_existing_entry(r):
    must_set(r, "k", "old", "EX", "100", tags=["t1"])
    assert settag(r, "k", "new", "LEASE", "nope", "TAGS", "t2") is None
    assert r.cmd("CACHE.GET", "k") == b"old"
    assert r.cmd("CACHE.TAGS", "k") == [b"t1"]
    assert r.cmd("TTL", "k") > 90


def test_lease_lapse_gives_new_token_and_voids_old(r):
    t1 = token_of(gom(r, "k", "LEASE", "100"), "MISS")
    assert gom(r, "k") == [b"PENDING", None, None]
    time.sleep(0.2)
    t2 = token_of(gom(r, "k"), "MISS")
    assert t2 != t1
    assert settag(r, "k", "v1", "LEASE", t1) is None
    assert settag(r, "k", "v2", "LEASE", t2) == OK
    assert r.cmd("CACHE.GET", "k") == b"v2"


def test_token_valid_past_lease_time_if_no_newer(r):
    t = token_of(gom(r, "k", "LEASE", "50"), "MISS")
    time.sleep(0.15)
    assert settag(r, "k", "v", "LEASE", t) == OK


def test_default_lease_from_config(r):
    assert r.cmd("CONFIG", "SET", "cache.lease-ms", "300") == OK
    t1 = token_of(gom(r, "k"), "MISS")
    time.sleep(0.1)
    assert gom(r, "k") == [b"PENDING", None, None]
    time.sleep(0.35)
    t2 = token_of(gom(r, "k"), "MISS")
    assert t1 != t2


def test_set_without_lease_voids_token(r):
    t = token_of(gom(r, "k"), "MISS")
    assert settag(r, "k", "direct") == OK
    assert settag(r, "k", "late", "LEASE", t) is None
    assert r.cmd("CACHE.GET", "k") == b"direct"
    # The lease ended: no PENDING now, the entry is there.
    assert gom(r, "k") == [b"HIT", b"direct", None]


def test_del_then_getormark_is_miss(r):
    must_set(r, "k", "v")
    r.cmd("DEL", "k")
    token_of(gom(r, "k"), "MISS")


def test_stale_flow(server):
    a, b = server.raw(), server.raw()
    must_set(a, "k", "v", "PX", "100", "STALE", "10", tags=["t"])
    time.sleep(0.2)
    ra = gom(a, "k")
    t = token_of(ra, "STALE")
    assert ra[1] == b"v"
    assert gom(b, "k") == [b"STALE", b"v", None]
    assert b.cmd("CACHE.GET", "k") == b"v"
    assert settag(a, "k", "v2", "EX", "10", "LEASE", t, "TAGS", "t") == OK
    assert gom(b, "k") == [b"HIT", b"v2", None]
    st = stats(a)
    assert st["stale_hits"] == 3 and st["hits"] == 1 and st["leases_granted"] == 1


def test_stale_lease_lapses(r):
    must_set(r, "k", "v", "PX", "50", "STALE", "10")
    time.sleep(0.1)
    t1 = token_of(gom(r, "k", "LEASE", "100"), "STALE")
    assert gom(r, "k") == [b"STALE", b"v", None]
    time.sleep(0.2)
    t2 = token_of(gom(r, "k"), "STALE")
    assert t1 != t2
    assert settag(r, "k", "x", "LEASE", t1) is None
    assert settag(r, "k", "y", "LEASE", t2) == OK


def test_wrongtype(r):
    r.cmd("SET", "plain", "x")
    assert gom(r, "plain") == WRONGTYPE
    assert r.cmd("GET", "plain") == b"x"
    assert stats(r)["misses"] == 0


def test_wait_woken_by_set(server):
    a = server.raw()
    t = token_of(gom(a, "k", "LEASE", "5000"), "MISS")
    th, out = wait_in_thread(server, "k", "WAIT", "3000")
    wait_blocked(server)
    assert settag(a, "k", "v", "LEASE", t) == OK
    th.join(5)
    assert out["reply"] == [b"HIT", b"v", None]
    assert out["elapsed"] < 2.0
    assert stats(a)["pending"] >= 1


def test_wait_several_clients_woken(server):
    a = server.raw()
    t = token_of(gom(a, "k", "LEASE", "5000"), "MISS")
    waiters = [wait_in_thread(server, "k", "WAIT", "3000") for _ in range(3)]
    wait_blocked(server, 3)
    assert settag(a, "k", "v", "LEASE", t) == OK
    for th, out in waiters:
        th.join(5)
        assert out["reply"] == [b"HIT", b"v", None]


def test_wait_timeout_gives_pending(server):
    a = server.raw()
    token_of(gom(a, "k", "LEASE", "5000"), "MISS")
    th, out = wait_in_thread(server, "k", "WAIT", "200")
    th.join(5)
    assert out["reply"] == [b"PENDING", None, None]
    assert 0.15 < out["elapsed"] < 2.0


def test_wait_lease_lapse_gives_miss(server):
    a = server.raw()
    t1 = token_of(gom(a, "k", "LEASE", "200"), "MISS")
    th, out = wait_in_thread(server, "k", "WAIT", "3000")
    th.join(5)
    t2 = token_of(out["reply"], "MISS")
    assert t2 != t1
    assert out["elapsed"] < 2.0
    assert settag(a, "k", "v", "LEASE", t1) is None
    assert settag(a, "k", "v", "LEASE", t2) == OK


def test_wait_zero_does_not_wait(r):
    token_of(gom(r, "k", "LEASE", "5000"), "MISS")
    t0 = time.monotonic()
    assert gom(r, "k", "WAIT", "0") == [b"PENDING", None, None]
    assert time.monotonic() - t0 < 0.5


def test_wait_on_hit_returns_at_once(r):
    must_set(r, "k", "v")
    assert gom(r, "k", "WAIT", "5000") == [b"HIT", b"v", None]


def test_wait_inside_multi_does_not_block(server):
    a, b = server.raw(), server.raw()
    token_of(gom(a, "k", "LEASE", "5000"), "MISS")
    assert b.cmd("MULTI") == OK
    assert b.cmd("CACHE.GETORMARK", "k", "WAIT", "2000") == S("QUEUED")
    t0 = time.monotonic()
    assert b.cmd("EXEC") == [[b"PENDING", None, None]]
    assert time.monotonic() - t0 < 1.0


def test_wait_client_disconnect_is_harmless(server):
    a = server.raw()
    t = token_of(gom(a, "k", "LEASE", "5000"), "MISS")
    c = server.raw()
    c.send("CACHE.GETORMARK", "k", "WAIT", "3000")
    wait_blocked(server)
    c.close()
    time.sleep(0.1)
    assert settag(a, "k", "v", "LEASE", t) == OK
    assert a.cmd("PING") == S("PONG")


def test_early_refresh_with_cost(r):
    # cost 10^7 ms and 2 s of freshness left: XFetch picks the caller with probability ~0.9998.
    must_set(r, "k", "v", "PX", "2000", "COST", "10000000")
    first = gom(r, "k")
    t = token_of(first, "HIT")
    assert first[1] == b"v"
    # While that lease is out, nobody else is chosen.
    for _ in range(5):
        assert gom(r, "k") == [b"HIT", b"v", None]
    assert settag(r, "k", "v2", "PX", "2000", "LEASE", t) == OK
    st = stats(r)
    assert st["hits"] == 6 and st["leases_granted"] == 1 and st["misses"] == 0


def test_no_early_refresh_without_cost(r):
    must_set(r, "k", "v", "PX", "1000")
    for _ in range(20):
        assert gom(r, "k") == [b"HIT", b"v", None]
    assert stats(r)["leases_granted"] == 0


def test_no_early_refresh_with_beta_zero(r):
    assert r.cmd("CONFIG", "SET", "cache.early-beta", "0") == OK
    must_set(r, "k", "v", "PX", "2000", "COST", "10000000")
    for _ in range(20):
        assert gom(r, "k") == [b"HIT", b"v", None]


def test_no_early_refresh_far_from_expiry(r):
    # cost 1 ms, 1000 s left: -ln(rand) would have to exceed 10^6.
    must_set(r, "k", "v", "EX", "1000", "COST", "1")
    for _ in range(50):
        assert gom(r, "k") == [b"HIT", b"v", None]


def test_lookup_counters(server):
    a, b = server.raw(), server.raw()
    t = token_of(gom(a, "k"), "MISS")          # misses 1, leases 1
    assert gom(b, "k")[0] == b"PENDING"     # pending 1
    assert b.cmd("CACHE.GET", "k") is None    # misses 2
    assert settag(a, "k", "v", "LEASE", t) == OK   # sets 1
    assert gom(b, "k")[0] == b"HIT"         # hits 1
    assert b.cmd("CACHE.GET", "k") == b"v"    # hits 2
    assert settag(a, "k", "v", "LEASE", t) is None  # refused 1
    st = stats(a)
    assert (st["hits"], st["stale_hits"], st["misses"], st["pending"]) == (2, 0, 2, 1)
    assert (st["sets"], st["sets_refused"], st["leases_granted"]) == (1, 1, 1)
    assert st["hit_ratio"] == "0.5"
