"""CACHE.GETORMARK WAIT under a herd: hand-over to exactly one waiter, invalidation while
waiting, the wait counters, a replica, and COST surviving persistence and replication."""

import time

from cachelib import (OK, settag, gom, stats, wait_until, token_of, wait_in_thread,
                      wait_blocked)


def test_lapse_hands_over_to_exactly_one(server):
    a = server.raw()
    token_of(gom(a, "k", "LEASE", "300"), "MISS")
    waiters = [wait_in_thread(server, "k", "WAIT", "3000", "LEASE", "5000") for _ in range(4)]
    wait_blocked(server, 4)
    # One waiter gets the lease when the first lapses; the rest wait for its value.
    wait_until(lambda: sum("reply" in out for _, out in waiters) == 1, timeout=3, what="hand-over")
    time.sleep(0.3)
    done = [out["reply"] for _, out in waiters if "reply" in out]
    assert len(done) == 1
    heir = token_of(done[0], "MISS")
    assert settag(a, "k", "computed", "LEASE", heir) == OK
    for th, out in waiters:
        th.join(5)
    replies = [out["reply"] for _, out in waiters]
    assert replies.count([b"HIT", b"computed", None]) == 3
    st = stats(a)
    assert (st["waits"], st["wait_handovers"], st["wait_woken_by_set"]) == (4, 1, 3)


def test_invalidation_while_waiting_keeps_waiters_waiting(server):
    a = server.raw()
    old = token_of(gom(a, "k", "LEASE", "5000"), "MISS")
    th, out = wait_in_thread(server, "k", "WAIT", "3000", "LEASE", "5000")
    wait_blocked(server)
    # The computation in flight read data that just changed: its token is void, and the
    # waiter is handed a fresh lease instead of ever seeing the stale value.
    assert a.cmd("CACHE.INVALIDATE", "k") == 0
    th.join(5)
    fresh = token_of(out["reply"], "MISS")
    assert settag(a, "k", "stale-data", "LEASE", old) is None
    assert settag(a, "k", "new-data", "LEASE", fresh) == OK
    assert a.cmd("CACHE.GET", "k") == b"new-data"


def test_wait_timeout_counted(server):
    a = server.raw()
    token_of(gom(a, "ns:k", "LEASE", "5000"), "MISS")
    th, out = wait_in_thread(server, "ns:k", "WAIT", "100")
    th.join(5)
    assert out["reply"] == [b"PENDING", None, None]
    st = stats(a)
    assert (st["waits"], st["wait_timeouts"]) == (1, 1)
    assert stats(a, "NAMESPACE", "ns")["wait_timeouts"] == 1


def test_cost_survives_restart_and_reaches_replica(make_server):
    primary = make_server()
    replica = make_server()
    p = primary.raw()
    replica.replicaof(primary)
    # With a huge beta and a cost near the lifetime every lookup is an early refresh.
    for s in (primary, replica):
        s.raw().cmd("CONFIG", "SET", "cache.early-beta", "100")
    assert settag(p, "k", "v", "EX", "100", "COST", "86400000") == OK
    replica.wait_sync(primary)
    r = replica.raw()
    assert r.cmd("CACHE.GET", "k") == b"v"
    p.cmd("SAVE")
    primary.restart()
    p = primary.raw()
    p.cmd("CONFIG", "SET", "cache.early-beta", "100")
    reply = gom(p, "k")
    assert reply[0] == b"HIT" and reply[1] == b"v" and reply[2] is not None
