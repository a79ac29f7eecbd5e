"""Module configs: defaults, loadmodule arguments, redis.conf lines, CONFIG SET ranges, effects."""

import time
from pathlib import Path

import pytest

from cachelib import OK, Err, settag, must_set, gom

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "cache.default-ttl": b"0",
    "cache.default-stale": b"0",
    "cache.lease-ms": b"10000",
    "cache.max-tags": b"64",
    "cache.namespace-delimiter": b":",
    "cache.max-namespaces": b"1024",
    "cache.early-beta": b"1.0",
    "cache.cluster-timeout-ms": b"2000",
}
TEN_YEARS = 10 * 365 * 24 * 3600


def cfg(r, name):
    reply = r.cmd("CONFIG", "GET", name)
    assert isinstance(reply, list) and len(reply) == 2, reply
    return reply[1]


def all_cfg(r):
    reply = r.cmd("CONFIG", "GET", "cache.*")
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


def test_module_list_name(r):
    mods = r.cmd("MODULE", "LIST")
    names = []
    for m in mods:
        d = {m[i]: m[i + 1] for i in range(0, len(m), 2)}
        names.append(d[b"name"])
    assert b"cache" in names


def test_defaults(make_server):
    r = make_server(module_args=[]).raw()
    got = all_cfg(r)
    for k, v in DEFAULTS.items():
        assert got.get(k) == v, (k, got)


def test_loadmodule_args(make_server):
    r = make_server(module_args=["cache.lease-ms", "500", "cache.max-tags", "3",
                                 "cache.early-beta", "2.5", "cache.namespace-delimiter", "/"]).raw()
    assert cfg(r, "cache.lease-ms") == b"500"
    assert cfg(r, "cache.max-tags") == b"3"
    assert cfg(r, "cache.early-beta") == b"2.5"
    assert cfg(r, "cache.namespace-delimiter") == b"/"
    assert settag(r, "k", "v", tags=["a", "b", "c", "d"]) == Err("ERR too many tags (max 3)")


def test_config_lines_in_redis_conf(make_server):
    conf = "cache.max-tags 7\ncache.default-ttl 100\ncache.lease-ms 1234\n"
    r = make_server(module_args=[], conf_text=conf).raw()
    assert cfg(r, "cache.max-tags") == b"7"
    assert cfg(r, "cache.lease-ms") == b"1234"
    must_set(r, "k", "v")
    assert 95 < r.cmd("TTL", "k") <= 100


def test_redis_conf_example_loads(make_server):
    """The shipped example config, the way `make run` uses it (module on the command line)."""
    text = (REPO / "redis.conf.example").read_text()
    r = make_server(module_args=[], conf_text=text).raw()
    got = all_cfg(r)
    for k, v in DEFAULTS.items():
        assert got.get(k) == v, (k, got)
    assert settag(r, "k", "v") == OK


@pytest.mark.parametrize("args", [["cache.max-tags", "0"], ["cache.lease-ms", "0"],
                                  ["cache.namespace-delimiter", "ab"], ["cache.early-beta", "-1"]])
def test_bad_loadmodule_arg_refuses_to_start(make_server, args):
    s = make_server(module_args=args, start=False)
    with pytest.raises(RuntimeError):
        s.start()


VALID = [
    ("cache.max-tags", ["1", "10000", "64"]),
    ("cache.lease-ms", ["1", "86400000", "10000"]),
    ("cache.default-ttl", ["0", str(TEN_YEARS), "3600"]),
    ("cache.default-stale", ["0", str(TEN_YEARS), "60"]),
    ("cache.max-namespaces", ["1", "1000000", "1024"]),
    ("cache.namespace-delimiter", ["/", "|", ":", "\x00"]),
    ("cache.early-beta", ["0", "100", "0.5", "1.0", "2"]),
    ("cache.cluster-timeout-ms", ["1", "3600000", "2000"]),
]
INVALID = [
    ("cache.max-tags", ["0", "10001", "-1", "abc", ""]),
    ("cache.lease-ms", ["0", "86400001", "-5", "x"]),
    ("cache.default-ttl", ["-1", str(TEN_YEARS + 1), "1.5"]),
    ("cache.default-stale", ["-1", str(TEN_YEARS + 1)]),
    ("cache.max-namespaces", ["0", "1000001"]),
    ("cache.namespace-delimiter", ["", "ab", "::"]),
    ("cache.early-beta", ["-0.1", "100.1", "abc", "", "nan", "inf"]),
    ("cache.cluster-timeout-ms", ["0", "-1", "3600001", "x"]),
]


@pytest.mark.parametrize("name,values", VALID, ids=[v[0] for v in VALID])
def test_config_set_valid(r, name, values):
    for v in values:
        assert r.cmd("CONFIG", "SET", name, v) == OK, (name, v)
        assert cfg(r, name) == v.encode(), (name, v)


@pytest.mark.parametrize("name,values", INVALID, ids=[v[0] for v in INVALID])
def test_config_set_out_of_range_refused(r, name, values):
    before = cfg(r, name)
    for v in values:
        reply = r.cmd("CONFIG", "SET", name, v)
        assert isinstance(reply, Err) and reply.msg.startswith("ERR"), (name, v, reply)
        assert cfg(r, name) == before, (name, v)


def test_default_ttl_and_stale_effect(r):
    assert r.cmd("CONFIG", "SET", "cache.default-ttl", "100") == OK
    must_set(r, "a", "v")
    assert 99 <= r.cmd("TTL", "a") <= 100
    assert r.cmd("CONFIG", "SET", "cache.default-stale", "50") == OK
    must_set(r, "b", "v")
    assert 149 <= r.cmd("TTL", "b") <= 150
    must_set(r, "c", "v", "EX", "10")
    assert 59 <= r.cmd("TTL", "c") <= 60
    must_set(r, "d", "v", "EX", "10", "STALE", "0")
    assert 9 <= r.cmd("TTL", "d") <= 10
    assert r.cmd("CONFIG", "SET", "cache.default-ttl", "0") == OK
    assert r.cmd("CONFIG", "SET", "cache.default-stale", "0") == OK
    must_set(r, "e", "v")
    assert r.cmd("TTL", "e") == -1


def test_lease_ms_effect(r):
    assert r.cmd("CONFIG", "SET", "cache.lease-ms", "100") == OK
    t1 = gom(r, "k")[2]
    assert gom(r, "k")[0] == b"PENDING"
    time.sleep(0.2)
    rep = gom(r, "k")
    assert rep[0] == b"MISS" and rep[2] != t1


def test_max_tags_effect_on_existing_entries(r):
    must_set(r, "k", "v", tags=["a", "b", "c", "d"])
    assert r.cmd("CONFIG", "SET", "cache.max-tags", "2") == OK
    # Existing entries keep their tags; only new sets are bound.
    assert r.cmd("CACHE.TAGS", "k") == [b"a", b"b", b"c", b"d"]
    assert settag(r, "k2", "v", tags=["a", "b"]) == OK


def test_config_case_insensitive_name(r):
    assert r.cmd("CONFIG", "SET", "CACHE.MAX-TAGS", "5") == OK
    assert cfg(r, "cache.max-tags") == b"5"


def test_config_rewrite_keeps_module_configs(make_server):
    s = make_server(module_args=[], conf_text="")
    r = s.raw()
    assert r.cmd("CONFIG", "SET", "cache.max-tags", "9") == OK
    assert r.cmd("CONFIG", "REWRITE") == OK
    # The rewritten file now holds the loadmodule line and the config: start from it alone.
    s.stop()
    s.conf_text = (s.dir / "redis.conf").read_text()
    assert "loadmodule" in s.conf_text and "cache.max-tags 9" in s.conf_text, s.conf_text
    s.load_module = False
    s.start()
    assert cfg(s.raw(), "cache.max-tags") == b"9"
