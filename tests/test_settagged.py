"""CACHE.SETTAGGED, CACHE.GET, CACHE.TAGS and CACHE.TAGSCAN: storing entries with tags and times."""

import time

from cachelib import (OK, S, Err, arity, settag, must_set, gom, stats, tagscan_all, check_index,
                      key_type, WRONGTYPE)


def test_set_and_get(r):
    assert settag(r, "k", "v") == OK
    assert r.cmd("CACHE.GET", "k") == b"v"
    assert r.cmd("CACHE.TAGS", "k") == []
    assert r.cmd("EXISTS", "k") == 1
    assert key_type(r, "k") != "string"  # a module type, not a string
    assert r.cmd("TTL", "k") == -1  # no EX/PX and default-ttl 0: no expiry
    assert r.cmd("CACHE.GET", "nokey") is None


def test_reply_is_simple_string_ok(r):
    # Exactly "+OK", not a bulk "OK".
    assert r.cmd("CACHE.SETTAGGED", "k", "v", "TAGS", "a") == S("OK")


def test_binary_safe_key_value_tags(r):
    key = b"bin\x00key\xff\r\n"
    val = b"\x00\x01\x02\x00\xff\xfe\r\n" * 100
    tags = [b"t\x00a", b"\xff", b"", b" spaced tag "]
    assert settag(r, key, val, tags=tags) == OK
    assert r.cmd("CACHE.GET", key) == val
    assert r.cmd("CACHE.TAGS", key) == tags
    for t in tags:
        assert tagscan_all(r, t) == {key}
    assert gom(r, key) == [b"HIT", val, None]
    assert r.cmd("CACHE.GET", b"bin") is None


def test_empty_value(r):
    assert settag(r, "k", b"") == OK
    assert r.cmd("CACHE.GET", "k") == b""
    assert gom(r, "k") == [b"HIT", b"", None]


def test_large_value(r):
    val = bytes(range(256)) * 4096  # 1 MiB
    assert settag(r, "big", val, tags=["t"]) == OK
    assert r.cmd("CACHE.GET", "big") == val


def test_tags_order_first_given_duplicates_removed(r):
    assert settag(r, "k", "v", tags=["b", "a", "b", "c", "a", "B"]) == OK
    assert r.cmd("CACHE.TAGS", "k") == [b"b", b"a", b"c", b"B"]
    assert stats(r)["tags"] == 4


def test_tags_takes_rest_of_arguments(r):
    # TAGS is last: what follows it, option words included, are tags.
    assert r.cmd("CACHE.SETTAGGED", "k", "v", "TAGS", "a", "EX", "10") == OK
    assert r.cmd("CACHE.TAGS", "k") == [b"a", b"EX", b"10"]
    assert r.cmd("TTL", "k") == -1


def test_tags_of_non_entry(r):
    assert r.cmd("CACHE.TAGS", "missing") == []
    r.cmd("SET", "plain", "x")
    assert r.cmd("CACHE.TAGS", "plain") == []
    r.cmd("RPUSH", "list", "x")
    assert r.cmd("CACHE.TAGS", "list") == []


def test_replace_entry_replaces_tags(r):
    must_set(r, "k", "v1", tags=["a", "b"])
    must_set(r, "k2", "v", tags=["b"])
    must_set(r, "k", "v2", tags=["c"])
    assert r.cmd("CACHE.GET", "k") == b"v2"
    assert r.cmd("CACHE.TAGS", "k") == [b"c"]
    assert tagscan_all(r, "a") == set()
    assert tagscan_all(r, "b") == {b"k2"}
    assert tagscan_all(r, "c") == {b"k"}
    st = stats(r)
    assert st["entries"] == 2 and st["tags"] == 2
    must_set(r, "k", "v3")  # no tags at all now
    assert r.cmd("CACHE.TAGS", "k") == []
    assert tagscan_all(r, "c") == set()
    check_index(r, extra_tags=["a", "b", "c"])


def test_case_insensitive_command_and_options(r):
    assert r.cmd("cache.settagged", "k", "v", "ex", "100", "stale", "5", "cost", "10", "tags", "T") == OK
    assert r.cmd("CaChE.gEt", "k") == b"v"
    assert r.cmd("CACHE.TAGS", "k") == [b"T"]  # tags keep their case
    assert 104000 < r.cmd("PTTL", "k") <= 105000


def test_ex_px_stale_set_key_ttl(r):
    must_set(r, "ex", "v", "EX", "100")
    assert 99000 < r.cmd("PTTL", "ex") <= 100000
    must_set(r, "px", "v", "PX", "5000")
    assert 4000 < r.cmd("PTTL", "px") <= 5000
    must_set(r, "st", "v", "EX", "100", "STALE", "50")
    assert 149000 < r.cmd("PTTL", "st") <= 150000
    must_set(r, "st0", "v", "PX", "5000", "STALE", "0")
    assert 4000 < r.cmd("PTTL", "st0") <= 5000
    # A later set without times drops the expiry.
    must_set(r, "ex", "v2")
    assert r.cmd("PTTL", "ex") == -1


def test_fresh_then_stale_then_gone(r):
    must_set(r, "k", "v", "PX", "150", "STALE", "1")
    assert gom(r, "k") == [b"HIT", b"v", None]
    time.sleep(0.25)
    st = gom(r, "k")
    assert st[0] == b"STALE" and st[1] == b"v" and isinstance(st[2], bytes)
    assert r.cmd("CACHE.GET", "k") == b"v"
    time.sleep(1.0)
    assert r.cmd("CACHE.GET", "k") is None
    assert r.cmd("EXISTS", "k") == 0


def test_px_without_stale_expires(r):
    must_set(r, "k", "v", "PX", "100", tags=["t"])
    time.sleep(0.25)
    assert r.cmd("CACHE.GET", "k") is None
    assert r.cmd("EXISTS", "k") == 0
    assert tagscan_all(r, "t") == set()
    check_index(r, extra_tags=["t"])


def test_max_tags(r):
    tags = [f"t{i}" for i in range(64)]
    assert settag(r, "k", "v", tags=tags) == OK
    assert len(r.cmd("CACHE.TAGS", "k")) == 64
    # 65 arguments but only 64 distinct: fine.
    assert settag(r, "k2", "v", tags=tags + ["t0"]) == OK
    assert settag(r, "k3", "v", tags=tags + ["t64"]) == Err("ERR too many tags (max 64)")
    assert r.cmd("EXISTS", "k3") == 0
    assert r.cmd("CONFIG", "SET", "cache.max-tags", "3") == OK
    assert settag(r, "k4", "v", tags=["a", "b", "c", "d"]) == Err("ERR too many tags (max 3)")
    assert settag(r, "k4", "v", tags=["a", "b", "c", "a"]) == OK
    assert r.cmd("EXISTS", "k3") == 0


def test_wrongtype_leaves_key_alone(r):
    r.cmd("SET", "plain", "x")
    assert settag(r, "plain", "v", tags=["t"]) == WRONGTYPE
    assert r.cmd("GET", "plain") == b"x"
    assert tagscan_all(r, "t") == set()
    assert r.cmd("CACHE.GET", "plain") == WRONGTYPE
    r.cmd("HSET", "h", "f", "v")
    assert settag(r, "h", "v") == WRONGTYPE
    st = stats(r)
    assert st["entries"] == 0 and st["tags"] == 0 and st["sets"] == 0


def test_plain_commands_on_entry_are_wrongtype(r):
    must_set(r, "k", "v")
    assert r.cmd("GET", "k") == WRONGTYPE
    assert r.cmd("APPEND", "k", "x") == WRONGTYPE


def test_tagscan_iterates_all(r):
    keys = {f"key:{i}".encode() for i in range(250)}
    r.pipeline([["CACHE.SETTAGGED", k, "v", "TAGS", "big", "other"] for k in keys])
    must_set(r, "lonely", "v", tags=["other"])
    assert tagscan_all(r, "big") == keys
    assert tagscan_all(r, "big", count=1000) == keys
    assert tagscan_all(r, "big", count=1) == keys
    assert tagscan_all(r, "other", count=7) == keys | {b"lonely"}
    assert tagscan_all(r, "big", match="key:1?") == {f"key:{i}".encode() for i in range(10, 20)}
    assert tagscan_all(r, "nosuchtag") == set()
    assert r.cmd("CACHE.TAGSCAN", "nosuchtag", "0") == [b"0", []]


def test_tagscan_reply_shape(r):
    must_set(r, "a", "v", tags=["t"])
    reply = r.cmd("CACHE.TAGSCAN", "t", "0")
    assert reply == [b"0", [b"a"]]
    reply = r.cmd("cache.tagscan", "t", "0", "count", "10", "match", "*")
    assert reply == [b"0", [b"a"]]


def test_default_count_is_ten(r):
    r.pipeline([["CACHE.SETTAGGED", f"k{i}", "v", "TAGS", "t"] for i in range(100)])
    cursor, batch = r.cmd("CACHE.TAGSCAN", "t", "0")
    assert cursor != b"0"
    assert 1 <= len(batch) <= 20  # about COUNT (10) per call, like SSCAN


def test_sets_counter_and_entries(r):
    for i in range(5):
        must_set(r, f"k{i}", "v", tags=["x", f"t{i}"])
    st = stats(r)
    assert st["sets"] == 5 and st["entries"] == 5 and st["tags"] == 6
    must_set(r, "k0", "again", tags=["x"])
    st = stats(r)
    assert st["sets"] == 6 and st["entries"] == 5 and st["tags"] == 5


def test_arity(r):
    assert r.cmd("CACHE.SETTAGGED", "k") == arity("cache.settagged")
    assert r.cmd("CACHE.SETTAGGED") == arity("cache.settagged")
    assert r.cmd("CACHE.GET") == arity("cache.get")
    assert r.cmd("CACHE.TAGS") == arity("cache.tags")
