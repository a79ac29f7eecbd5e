"""What a near cache (an in-process copy in each app server) is told: CACHE.GET WITHMETA, one
message per invalidation command on `__cache@<db>__:invalidate`, and explicit key signals that
CLIENT TRACKING turns into invalidation pushes exactly when an entry's value or freshness
changes."""

import socket
import time

import pytest

from cachelib import OK, Err, WRONGTYPE, must_set, settag, gom, stats, wait_until
from harness import RawClient

CHANNEL = b"__cache@0__:invalidate"


class Listener:
    """A RESP2 connection subscribed to the invalidation channel and to tracking invalidations
    (`__redis__:invalidate`, where CLIENT TRACKING ... REDIRECT sends them)."""

    def __init__(self, server, channels=(CHANNEL, b"__redis__:invalidate")):
        self.c = RawClient(server.port)
        self.id = self.c.cmd("CLIENT", "ID")
        self.c.send("SUBSCRIBE", *channels)
        for _ in channels:
            assert self.c.read()[0] == b"subscribe"

    def drain(self, quiet=0.3):
        """Every message that arrives until none has come for `quiet` seconds."""
        out = []
        self.c.sock.settimeout(quiet)
        try:
            while True:
                kind, channel, payload = self.c.read()
                assert kind == b"message", kind
                out.append((channel, payload))
        except (socket.timeout, TimeoutError):
            return out
        finally:
            self.c.sock.settimeout(10)

    def invalidated_keys(self, quiet=0.3):
        keys = []
        for channel, payload in self.drain(quiet):
            if channel == b"__redis__:invalidate":
                keys.extend(payload or [])
        return keys


def tracking_client(server, listener):
    c = RawClient(server.port)
    assert c.cmd("CLIENT", "TRACKING", "on", "REDIRECT", str(listener.id)) == OK
    return c


# --- CACHE.GET WITHMETA ---------------------------------------------------------------------

def test_withmeta_of_a_fresh_entry(r):
    must_set(r, "k", b"v\x00", "PX", "60000", "STALE", "5", tags=["b", "a\x00"])
    before = int(time.time() * 1000)
    value, state, fresh_until, expire_at, tags = r.cmd("CACHE.GET", "k", "WITHMETA")
    assert (value, state, tags) == (b"v\x00", b"HIT", [b"b", b"a\x00"])
    assert before - 2000 < fresh_until - 60000 <= before + 10
    assert expire_at - fresh_until == 5000
    pttl = r.cmd("PTTL", "k")
    assert abs((expire_at - int(time.time() * 1000)) - pttl) < 1000


def test_withmeta_of_an_entry_without_expiry(r):
    must_set(r, "k", "v")
    assert r.cmd("CACHE.GET", "k", "withmeta") == [b"v", b"HIT", -1, -1, []]


def test_withmeta_of_a_stale_entry(r):
    must_set(r, "k", "v", "EX", "100", tags=["t"])
    assert r.cmd("CACHE.INVALIDATETAG", "t", "SOFT") == 1
    value, state, fresh_until, expire_at, tags = r.cmd("CACHE.GET", "k", "WITHMETA")
    assert (value, state, tags) == (b"v", b"STALE", [b"t"])
    assert fresh_until <= int(time.time() * 1000) < expire_at


def test_withmeta_of_a_large_soft_invalidation_before_its_sweep(r):
    """Above 1,000 entries a soft tag invalidation is swept later; readers see it at once."""
    r.pipeline([["CACHE.SETTAGGED", f"k{i}", "v", "EX", "100", "TAGS", "big"]
                for i in range(1500)])
    assert r.cmd("CACHE.INVALIDATETAG", "big", "SOFT") == 1500
    value, state, fresh_until, _, _ = r.cmd("CACHE.GET", "k1499", "WITHMETA")
    assert (value, state) == (b"v", b"STALE")
    assert fresh_until <= int(time.time() * 1000)


def test_withmeta_misses_errors_and_counters(r):
    assert r.cmd("CACHE.GET", "nothing", "WITHMETA") is None
    r.cmd("SET", "plain", "x")
    assert r.cmd("CACHE.GET", "plain", "WITHMETA") == WRONGTYPE
    assert r.cmd("CACHE.GET", "plain", "META") == Err("ERR syntax error")
    assert r.cmd("CACHE.GET", "a", "WITHMETA", "x") == Err(
        "ERR wrong number of arguments for 'cache.get' command")
    must_set(r, "k", "v")
    r.cmd("CACHE.GET", "k", "WITHMETA")
    s = stats(r)
    assert (s["hits"], s["misses"]) == (1, 1)


def test_withmeta_is_tracked(server):
    listener = Listener(server)
    r = server.raw()
    must_set(r, "k", "v")
    c = tracking_client(server, listener)
    assert c.cmd("CACHE.GET", "k", "WITHMETA")[0] == b"v"
    must_set(r, "k", "v2")
    assert listener.invalidated_keys() == [b"k"]


# --- the invalidation channel ---------------------------------------------------------------

def test_one_message_per_command_with_the_argument_as_given(server):
    listener = Listener(server, channels=(CHANNEL,))
    r = server.raw()
    must_set(r, "user:1", "v", tags=["user:1", "users"])
    assert r.cmd("CACHE.INVALIDATETAG", "users") == 1
    assert r.cmd("CACHE.INVALIDATETAG", "nobody", "SOFT") == 0
    assert r.cmd("CACHE.INVALIDATE", "user:*") == 0
    assert r.cmd("CACHE.INVALIDATE", b"bin\x00ary[ab]", "soft") == 0
    assert r.cmd("CACHE.INVALIDATETAG", "us?rs*") == 0
    assert listener.drain() == [
        (CHANNEL, b"tag users"),
        (CHANNEL, b"softtag nobody"),
        (CHANNEL, b"pattern user:*"),
        (CHANNEL, b"softpattern bin\x00ary[ab]"),
        (CHANNEL, b"tag us?rs*"),
    ]


def test_channel_names_the_database(server):
    listener = Listener(server, channels=(b"__cache@3__:invalidate", CHANNEL))
    r = server.raw(db=3)
    r.cmd("CACHE.INVALIDATETAG", "t")
    assert listener.drain() == [(b"__cache@3__:invalidate", b"tag t")]


def test_failed_commands_publish_nothing(server):
    listener = Listener(server, channels=(CHANNEL,))
    r = server.raw()
    assert r.cmd("CACHE.INVALIDATETAG", "t", "HARD") == Err("ERR syntax error")
    assert isinstance(r.cmd("CACHE.INVALIDATE"), Err)
    assert listener.drain() == []


def test_a_large_tag_is_one_message_at_command_time(server):
    listener = Listener(server, channels=(CHANNEL,))
    r = server.raw()
    r.pipeline([["CACHE.SETTAGGED", f"k{i}", "v", "TAGS", "big"] for i in range(5000)])
    assert r.cmd("CACHE.INVALIDATETAG", "big") == 5000
    # One message, published with the command, however many keys the sweeper still reclaims.
    assert listener.drain() == [(CHANNEL, b"tag big")]


def test_subscribers_on_a_replica_get_each_message_once(make_server):
    p, rep = make_server("primary"), make_server("replica")
    rep.replicaof(p)
    rep.wait_sync(p)
    listener = Listener(rep, channels=(CHANNEL,))
    r = p.raw()
    must_set(r, "k", "v", tags=["t"])
    r.cmd("CACHE.INVALIDATETAG", "t", "SOFT")
    r.cmd("CACHE.INVALIDATE", "k")
    assert listener.drain(quiet=1.0) == [(CHANNEL, b"softtag t"), (CHANNEL, b"pattern k")]


def test_a_restricted_users_invalidation_on_a_replica(make_server):
    """A user limited to ~a:* invalidates only its keys, on the replica too (the replica gets
    per-key commands, which carry no user), and replica subscribers still get the message."""
    p, rep = make_server("primary"), make_server("replica")
    rep.replicaof(p)
    rep.wait_sync(p)
    r = p.raw()
    assert r.cmd("ACL", "SETUSER", "ta", "on", ">pw", "~a:*", "+@all") == OK
    for k in ("a:1", "a:2", "b:1"):
        must_set(r, k, "v", tags=["t"])
    listener = Listener(rep, channels=(CHANNEL,))
    u = p.raw()
    assert u.cmd("AUTH", "ta", "pw") == OK
    assert u.cmd("CACHE.INVALIDATETAG", "t", "SOFT") == 2
    assert u.cmd("CACHE.INVALIDATETAG", "t") == 2
    assert r.cmd("WAIT", 1, 5000) == 1
    got = listener.drain(quiet=1.0)
    # The per-key SOFT invalidations announce themselves there too (README: a limit).
    assert sorted(got[:2]) == [(CHANNEL, b"softpattern a:1"), (CHANNEL, b"softpattern a:2")], got
    assert got[2:] == [(CHANNEL, b"softtag t"), (CHANNEL, b"tag t")], got
    rr = rep.raw()
    assert rr.cmd("CACHE.GET", "b:1") == b"v", "another user's entry stays on the replica"
    assert rr.cmd("CACHE.GET", "a:1") is None and rr.cmd("CACHE.GET", "a:2") is None
    assert rr.cmd("CACHE.TAGSCAN", "t", 0) == [b"0", [b"b:1"]]


# --- key signals (CLIENT TRACKING) ------------------------------------------------------------

def test_signals_for_set_delete_and_soft_invalidation(server):
    listener = Listener(server, channels=(b"__redis__:invalidate",))
    r = server.raw()
    c = tracking_client(server, listener)
    for key in ("a", "b", "c"):
        must_set(r, key, "v", tags=["t"])
    for key in ("a", "b", "c"):
        c.cmd("CACHE.GET", key)
    assert r.cmd("CACHE.INVALIDATE", "a", "SOFT") == 1
    assert listener.invalidated_keys() == [b"a"]
    assert r.cmd("CACHE.INVALIDATE", "b") == 1
    assert listener.invalidated_keys() == [b"b"]
    must_set(r, "c", "v2")
    assert listener.invalidated_keys() == [b"c"]


def test_no_signal_for_a_refused_set_or_a_wrongtype_answer(server):
    listener = Listener(server, channels=(b"__redis__:invalidate",))
    r = server.raw()
    must_set(r, "k", "v")
    r.cmd("SET", "plain", "x")
    c = tracking_client(server, listener)
    c.cmd("CACHE.GET", "k")
    c.cmd("GET", "plain")
    token = gom(r, "missing")[2]
    r.cmd("CACHE.INVALIDATE", "missing")  # voids the token
    assert settag(r, "missing", "v", "LEASE", token) is None
    assert settag(r, "k", "v", "LEASE", "0123456789abcdef") is None
    assert settag(r, "plain", "v") == WRONGTYPE
    assert r.cmd("CACHE.GETORMARK", "k")[0] == b"HIT"
    assert listener.invalidated_keys() == []
    assert r.cmd("GET", "plain") == b"x"
    assert c.cmd("CACHE.GET", "k") == b"v"


@pytest.mark.parametrize("soft", [False, True])
def test_large_invalidations_signal_every_tracked_key_on_primary_and_replica(make_server, soft):
    p, rep = make_server("primary"), make_server("replica")
    rep.replicaof(p)
    rep.wait_sync(p)
    r = p.raw()
    r.pipeline([["CACHE.SETTAGGED", f"k{i}", "v", "EX", "100", "TAGS", "big"]
                for i in range(1500)])
    wait_until(lambda: rep.raw().cmd("DBSIZE") == 1500, what="replica has the entries")
    listeners, tracked = [], [b"k0", b"k777", b"k1499"]
    for node in (p, rep):
        listener = Listener(node, channels=(b"__redis__:invalidate",))
        c = tracking_client(node, listener)
        for key in tracked:
            assert c.cmd("CACHE.GET", key) == b"v"
        listeners.append((listener, c))
    args = ("CACHE.INVALIDATETAG", "big") + (("SOFT",) if soft else ())
    assert r.cmd(*args) == 1500
    for listener, c in listeners:
        seen = set()
        wait_until(lambda: seen.update(listener.invalidated_keys(quiet=0.2)) or
                   set(tracked) <= seen, timeout=20, what="every tracked key signalled")
        expected = b"v" if soft else None
        assert [c.cmd("CACHE.GET", k) for k in tracked] == [expected] * 3
