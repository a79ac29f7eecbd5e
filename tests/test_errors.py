"""Exact error replies, and a failing command changes nothing."""

import pytest

from cachelib import (OK, S, Err, settag, must_set, gom, snapshot, WRONGTYPE, SYNTAX,
                      NOT_INT, BAD_EXPIRE, arity, tagscan_all)

BAD_LEASE = Err("ERR invalid lease time")
BAD_WAIT = Err("ERR invalid wait time")
BAD_CURSOR = Err("ERR invalid cursor")


@pytest.fixture
def seeded(server):
    r = server.raw()
    must_set(r, "e", "old", "EX", "1000", tags=["t1", "t2"])
    must_set(r, "e2", "v", tags=["t2"])
    r.cmd("SET", "plain", "p")
    r.cmd("RPUSH", "list", "x")
    gom(r, "e")
    r.cmd("CACHE.GET", "nope")
    return r


ARITY_CASES = [
    ["CACHE.SETTAGGED"], ["CACHE.SETTAGGED", "k"],
    ["CACHE.GETORMARK"],
    ["CACHE.GET"], ["CACHE.GET", "a", "b", "c"],
    ["CACHE.INVALIDATE"],
    ["CACHE.INVALIDATETAG"],
    ["CACHE.TAGS"], ["CACHE.TAGS", "a", "b"],
    ["CACHE.TAGSCAN"], ["CACHE.TAGSCAN", "t"],
]


@pytest.mark.parametrize("args", ARITY_CASES, ids=lambda a: " ".join(a))
def test_arity(seeded, args):
    r = seeded
    before = snapshot(r)
    assert r.cmd(*args) == arity(args[0])
    assert snapshot(r) == before


SETTAGGED_CASES = [
    # (arguments after key value, error)
    (["FOO"], SYNTAX),
    (["EX"], SYNTAX),
    (["PX"], SYNTAX),
    (["STALE"], SYNTAX),
    (["COST"], SYNTAX),
    (["LEASE"], SYNTAX),
    (["EX", "10", "PX", "100"], SYNTAX),
    (["PX", "100", "EX", "10"], SYNTAX),
    (["EX", "10", "EX", "10"], SYNTAX),
    (["STALE", "1", "STALE", "1"], SYNTAX),
    (["COST", "1", "COST", "1"], SYNTAX),
    (["LEASE", "a", "LEASE", "a"], SYNTAX),
    (["EX", "10", "BOGUS", "1"], SYNTAX),
    (["EX", "abc"], NOT_INT),
    (["EX", "1.5"], NOT_INT),
    (["EX", ""], NOT_INT),
    (["PX", "10x"], NOT_INT),
    (["STALE", "x"], NOT_INT),
    (["COST", "x"], NOT_INT),
    (["COST", "-1"], NOT_INT),
    (["EX", "99999999999999999999"], NOT_INT),
    (["EX", "0"], BAD_EXPIRE),
    (["EX", "-1"], BAD_EXPIRE),
    (["PX", "0"], BAD_EXPIRE),
    (["PX", "-100"], BAD_EXPIRE),
    (["STALE", "-1"], BAD_EXPIRE),
    (["EX", "10", "STALE", "-5"], BAD_EXPIRE),
    (["TAGS"] + [f"t{i}" for i in range(65)], Err("ERR too many tags (max 64)")),
    (["EX", "10", "TAGS"] + [f"t{i}" for i in range(10000)], Err("ERR too many tags (max 64)")),
]


@pytest.mark.parametrize("opts,err", SETTAGGED_CASES, ids=lambda x: " ".join(map(str, x))[:40] if isinstance(x, list) else "")
@pytest.mark.parametrize("key", ["new", "e"])
def test_settagged_errors_change_nothing(seeded, opts, err, key):
    r = seeded
    before = snapshot(r)
    assert r.cmd("CACHE.SETTAGGED", key, "value", *opts) == err
    assert snapshot(r) == before


def test_wrongtype_on_settagged_getormark_get(seeded):
    r = seeded
    before = snapshot(r)
    for key in ("plain", "list"):
        assert settag(r, key, "v", tags=["t1"]) == WRONGTYPE
        assert settag(r, key, "v", "LEASE", "x") == WRONGTYPE
        assert gom(r, key) == WRONGTYPE
        assert gom(r, key, "WAIT", "100") == WRONGTYPE
        assert r.cmd("CACHE.GET", key) == WRONGTYPE
    assert snapshot(r) == before


def test_wrongtype_beats_bad_option_or_not(seeded):
    # Either error is acceptable when both apply; nothing changes either way.
    r = seeded
    before = snapshot(r)
    reply = settag(r, "plain", "v", "EX", "0")
    assert reply in (WRONGTYPE, BAD_EXPIRE)
    assert snapshot(r) == before


def test_stale_zero_and_cost_zero_allowed(r):
    assert settag(r, "k", "v", "EX", "10", "STALE", "0", "COST", "0") == OK
    assert settag(r, "k", "v", "STALE", "0") == OK


def test_too_many_tags_follows_config(r):
    assert r.cmd("CONFIG", "SET", "cache.max-tags", "2") == OK
    assert settag(r, "k", "v", tags=["a", "b", "c"]) == Err("ERR too many tags (max 2)")
    assert r.cmd("EXISTS", "k") == 0


GETORMARK_CASES = [
    (["LEASE", "0"], BAD_LEASE),
    (["LEASE", "-1"], BAD_LEASE),
    (["LEASE", "abc"], NOT_INT),
    (["LEASE"], SYNTAX),
    (["WAIT", "-1"], BAD_WAIT),
    (["WAIT", "x"], NOT_INT),
    (["WAIT"], SYNTAX),
    (["FOO"], SYNTAX),
    (["LEASE", "100", "LEASE", "100"], SYNTAX),
    (["WAIT", "1", "WAIT", "1"], SYNTAX),
    (["LEASE", "100", "EXTRA"], SYNTAX),
]


@pytest.mark.parametrize("opts,err", GETORMARK_CASES, ids=lambda x: " ".join(map(str, x)) if isinstance(x, list) else "")
@pytest.mark.parametrize("key", ["fresh-key", "e"])
def test_getormark_errors_change_nothing(seeded, opts, err, key):
    r = seeded
    before = snapshot(r)
    assert gom(r, key, *opts) == err
    assert snapshot(r) == before
    if key == "fresh-key":
        # No lease was granted by the failed call.
        assert gom(r, key)[0] == b"MISS"


@pytest.mark.parametrize("cmd", ["CACHE.INVALIDATE", "CACHE.INVALIDATETAG"])
@pytest.mark.parametrize("opts", [["FOO"], ["SOFT", "SOFT"], ["SOFT", "x"], ["HARD"]])
def test_invalidate_errors(seeded, cmd, opts):
    r = seeded
    target = "e" if cmd == "CACHE.INVALIDATE" else "t1"
    before = snapshot(r)
    reply = r.cmd(cmd, target, *opts)
    if len(opts) == 1:
        assert reply == SYNTAX
    else:
        # Too many arguments: the contract is silent; syntax or arity error are both Redis-like.
        assert reply in (SYNTAX, arity(cmd)), reply
    assert snapshot(r) == before
    assert r.cmd("CACHE.GET", "e") == b"old"


TAGSCAN_CASES = [
    (["abc"], BAD_CURSOR),
    (["-1"], BAD_CURSOR),
    (["1.5"], BAD_CURSOR),
    (["0", "COUNT", "0"], SYNTAX),
    (["0", "COUNT", "-1"], SYNTAX),
    (["0", "COUNT", "x"], NOT_INT),
    (["0", "COUNT"], SYNTAX),
    (["0", "MATCH"], SYNTAX),
    (["0", "FOO", "1"], SYNTAX),
    (["0", "EXTRA"], SYNTAX),
]


@pytest.mark.parametrize("opts,err", TAGSCAN_CASES, ids=lambda x: " ".join(map(str, x)) if isinstance(x, list) else "")
def test_tagscan_errors(seeded, opts, err):
    assert seeded.cmd("CACHE.TAGSCAN", "t2", *opts) == err


def test_tagscan_huge_count_ok(seeded):
    assert tagscan_all(seeded, "t2", count=2**62) == {b"e", b"e2"}


@pytest.mark.parametrize("opts", [["FOO"], ["NAMESPACE"], ["RESET", "x"], ["NAMESPACES", "x"],
                                  ["NAMESPACE", "a", "b"]])
def test_stats_errors(seeded, opts):
    r = seeded
    before = snapshot(r)
    assert r.cmd("CACHE.STATS", *opts) == SYNTAX
    assert snapshot(r) == before


def test_unknown_subcommand_like_command(r):
    reply = r.cmd("CACHE.NOSUCH", "x")
    assert isinstance(reply, Err) and reply.msg.startswith("ERR unknown command")


def test_huge_and_odd_inputs_do_not_crash(server):
    r = server.raw()
    big = b"\xff" * (2 * 1024 * 1024)
    assert settag(r, big, big, tags=[big]) == OK
    assert r.cmd("CACHE.GET", big) == big
    assert r.cmd("CACHE.INVALIDATETAG", big) == 1
    assert isinstance(r.cmd("CACHE.INVALIDATE", b"[" * 10000), int)
    assert isinstance(r.cmd("CACHE.INVALIDATE", b"*" * 10000 + b"x"), int)
    assert isinstance(r.cmd("CACHE.INVALIDATETAG", b"\\" * 9999), int)
    assert isinstance(settag(r, "k", "v", "PX", str(2**63 - 1)), Err)
    assert isinstance(settag(r, "k", "v", "EX", str(2**62)), Err)
    assert isinstance(gom(r, "k", "LEASE", str(2**63 - 1)), (list, Err))
    assert isinstance(gom(r, "k2", "WAIT", str(2**63 - 1), "LEASE", "10"), (list, Err))
    reply = r.cmd("CACHE.TAGSCAN", "t", "99999999999999999999999")
    assert reply == BAD_CURSOR
    assert r.cmd("PING") == S("PONG")


def test_acl_key_permissions(server):
    admin = server.raw()
    assert admin.cmd("ACL", "SETUSER", "tenant", "on", ">pw", "~tenantA:*", "+@all") == OK
    must_set(admin, "tenantA:1", "a", tags=["shared"])
    must_set(admin, "tenantB:1", "b", tags=["shared"])
    u = server.raw()
    assert u.cmd("AUTH", "tenant", "pw") == OK
    assert u.cmd("CACHE.GET", "tenantA:1") == b"a"
    err = u.cmd("CACHE.GET", "tenantB:1")
    assert isinstance(err, Err) and err.msg.startswith("NOPERM"), err
    err = settag(u, "tenantB:2", "x")
    assert isinstance(err, Err) and err.msg.startswith("NOPERM"), err
    assert admin.cmd("EXISTS", "tenantB:2") == 0
    # Listing and invalidation never reach tenantB's keys.
    scan = u.cmd("CACHE.TAGSCAN", "shared", "0", "COUNT", "1000")
    if not isinstance(scan, Err):
        assert b"tenantB:1" not in scan[1]
    n = u.cmd("CACHE.INVALIDATE", "*")
    assert n == 1 or (isinstance(n, Err) and n.msg.startswith("NOPERM")), n
    n = u.cmd("CACHE.INVALIDATETAG", "shared")
    assert n in (0, 1) or (isinstance(n, Err) and n.msg.startswith("NOPERM")), n
    assert admin.cmd("CACHE.GET", "tenantB:1") == b"b"
