"""Command flags, as COMMAND INFO shows them: what replicas, OOM, ACL and cluster routing go by.
`fast` only where the command is O(1) in the data size; `deny-oom` where it grows memory."""

import pytest

from cachelib import S

FLAGS = {
    "cache.settagged": {"write", "denyoom", "module"},
    "cache.getormark": {"write", "fast", "module"},
    "cache.get": {"readonly", "fast", "module"},
    "cache.invalidate": {"write", "module"},
    "cache.invalidatetag": {"write", "module"},
    "cache.stats": {"readonly", "module"},
    "cache.tags": {"readonly", "fast", "module"},
    "cache.tagscan": {"readonly", "module"},
}

KEYS = {  # first key, last key, step
    "cache.settagged": (1, 1, 1),
    "cache.getormark": (1, 1, 1),
    "cache.get": (1, 1, 1),
    "cache.invalidate": (0, 0, 0),
    "cache.invalidatetag": (0, 0, 0),
    "cache.stats": (0, 0, 0),
    "cache.tags": (1, 1, 1),
    "cache.tagscan": (0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_flags_and_key_positions(r, name):
    [info] = r.cmd("COMMAND", "INFO", name)
    assert info[0] == name.encode()
    flags = {f.decode() if isinstance(f, bytes) else str(f) for f in info[2]}
    assert flags == FLAGS[name]
    assert tuple(info[3:6]) == KEYS[name]


def test_deny_oom_refuses_sets_but_not_reads(r):
    assert r.cmd("CACHE.SETTAGGED", "k", "v") == S("OK")
    r.cmd("CONFIG", "SET", "maxmemory", "1")
    r.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
    try:
        reply = r.cmd("CACHE.SETTAGGED", "k2", "v")
        assert reply.msg.startswith("OOM"), reply
        assert r.cmd("CACHE.GET", "k") == b"v"
        assert r.cmd("CACHE.GETORMARK", "k")[0] == b"HIT"
    finally:
        r.cmd("CONFIG", "SET", "maxmemory", "0")


def test_acl_category_where_the_server_has_module_categories(r):
    """Valkey and Redis 7.2+ let modules add ACL categories: `+@cache` then grants every
    command. Redis 7.0 has no such API, and the category does not exist there."""
    reply = r.cmd("ACL", "CAT", "cache")
    version = r.cmd("INFO", "server").decode()
    if "redis_version:7.0." in version and "valkey" not in version:
        assert reply.msg.startswith("ERR Unknown category"), reply
    else:
        assert sorted(reply) == sorted(name.encode() for name in FLAGS)
