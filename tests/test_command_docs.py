"""Command metadata of the cache module: COMMAND DOCS, COMMAND INFO, COMMAND GETKEYS.

Starts one server for the file through the harness (tests/harness/: CACHE_MODULE,
REDIS_SERVER).
"""

import pytest
import redis

from harness import Server


@pytest.fixture(scope="module")
def r():
    with Server() as srv:
        client = srv.client(protocol=2, decode=True)
        try:
            yield client
        finally:
            client.close()


def pairs(flat):
    """A RESP2 field/value list as a dict."""
    return dict(zip(flat[::2], flat[1::2]))


def docs(r, name):
    # "COMMAND DOCS" as one word keeps redis-py from applying its COMMAND reply parser.
    reply = r.execute_command("COMMAND DOCS", name)
    assert reply[0] == name
    return pairs(reply[1])


def info(r, name):
    [entry] = r.execute_command("COMMAND INFO", name)
    return entry


def tree(args):
    """Argument list as (name, type, token, flags, display, subtree) tuples; display is None
    where the server does not report it (Redis 7.0)."""
    out = []
    for a in args:
        a = pairs(a)
        out.append((
            a["name"], a["type"], a.get("token"), sorted(a.get("flags", [])),
            a.get("display_text"), tree(a.get("arguments", [])),
        ))
    return out


def arg(name, type_, token=None, flags=(), display=None, sub=()):
    return (name, type_, token, sorted(flags), display or name, list(sub))


OPT = ["optional"]

EXPECTED = {
    "cache.settagged": {
        "summary": "Stores a value as a cache entry with tags, a fresh lifetime and a stale window, "
                   "optionally only while a lease token is valid.",
        "complexity": "O(N) where N is the number of tags of the new entry and of the entry it replaces.",
        "arity": -3,
        "key_flags": ["RW", "update"],
        "args": [
            arg("key", "key"),
            arg("value", "string"),
            arg("expiration", "oneof", flags=OPT, sub=[
                arg("seconds", "integer", "EX"),
                arg("milliseconds", "integer", "PX"),
                arg("unix-time-seconds", "unix-time", "EXAT"),
                arg("unix-time-milliseconds", "unix-time", "PXAT"),
                arg("persist", "pure-token", "PERSIST"),
            ]),
            arg("stale", "oneof", flags=OPT, sub=[
                arg("stale-seconds", "integer", "STALE", display="seconds"),
                arg("stale-milliseconds", "integer", "PSTALE", display="milliseconds"),
            ]),
            arg("cost", "integer", "COST", OPT, display="milliseconds"),
            arg("lease", "string", "LEASE", OPT, display="token"),
            arg("keepttl", "pure-token", "KEEPTTL", OPT),
            arg("tag", "string", "TAGS", ["optional", "multiple"]),
        ],
    },
    "cache.getormark": {
        "summary": "Returns an entry's state, value and, when the caller should compute the value, "
                   "a lease token; optionally waits for another client's lease.",
        "complexity": "O(1)",
        "arity": -2,
        "key_flags": ["RO", "access"],
        "args": [
            arg("key", "key"),
            arg("lease", "integer", "LEASE", OPT, display="milliseconds"),
            arg("wait", "integer", "WAIT", OPT, display="milliseconds"),
        ],
    },
    "cache.get": {
        "summary": "Returns the value of a fresh or stale entry, without granting a lease; with "
                   "WITHMETA also its state, fresh-until and expiry times and tags.",
        "complexity": "O(1), O(T) with WITHMETA where T is the number of the entry's tags",
        "arity": -2,
        "key_flags": ["RO", "access"],
        "args": [arg("key", "key"), arg("withmeta", "pure-token", "WITHMETA", OPT)],
    },
    "cache.invalidate": {
        "summary": "Removes, or with SOFT marks stale, every entry whose key matches a "
                   "glob-style pattern.",
        "complexity": "O(1) for a pattern without wildcards, else O(N) where N is the number of "
                      "entries whose key starts with the pattern's literal prefix.",
        "arity": -2,
        "key_flags": None,
        "args": [arg("pattern", "pattern"), arg("soft", "pure-token", "SOFT", OPT),
                 arg("local", "pure-token", "LOCAL", OPT)],
    },
    "cache.invalidatetag": {
        "summary": "Removes, or with SOFT marks stale, every entry carrying a tag, or any tag "
                   "matching a glob-style pattern.",
        "complexity": "O(N) where N is the number of entries invalidated at once (large tags are "
                      "swept in the background); a pattern adds O(T), T being the number of tags.",
        "arity": -2,
        "key_flags": None,
        "args": [arg("tag", "pattern"), arg("soft", "pure-token", "SOFT", OPT),
                 arg("local", "pure-token", "LOCAL", OPT)],
    },
    "cache.stats": {
        "summary": "Returns the cache counters of the selected database, of one namespace or of "
                   "every namespace, or resets them.",
        "complexity": "O(1), or O(N) with NAMESPACES where N is the number of namespaces.",
        "arity": -1,
        "key_flags": None,
        "args": [
            arg("scope", "oneof", flags=OPT, sub=[
                arg("namespace", "string", "NAMESPACE", display="name"),
                arg("namespaces", "pure-token", "NAMESPACES"),
                arg("reset", "pure-token", "RESET"),
            ]),
            arg("local", "pure-token", "LOCAL", OPT),
        ],
    },
    "cache.tags": {
        "summary": "Returns the tags of an entry.",
        "complexity": "O(N) where N is the number of tags of the entry.",
        "arity": 2,
        "key_flags": ["RO", "access"],
        "args": [arg("key", "key")],
    },
    "cache.tagscan": {
        "summary": "Iterates the keys of the entries carrying a tag.",
        "complexity": "O(1) for every call. O(N) for a complete iteration, N being the number of "
                      "entries carrying the tag.",
        "arity": -3,
        "key_flags": None,
        "args": [
            arg("tag", "string"),
            arg("cursor", "integer"),
            arg("pattern", "pattern", "MATCH", OPT),
            arg("count", "integer", "COUNT", OPT),
            arg("local", "pure-token", "LOCAL", OPT),
        ],
    },
}


def as_reported(want, got):
    """`want` with display texts dropped where the server reports none: Redis 7.0 never reports
    display_text, Valkey not for ONEOF groups."""
    if len(want) != len(got):
        return want
    return [
        (n, ty, tok, fl, disp if g[4] is not None else None, as_reported(sub, g[5]))
        for (n, ty, tok, fl, disp, sub), g in zip(want, got)
    ]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_docs(r, name):
    want = EXPECTED[name]
    d = docs(r, name)
    assert d["summary"] == want["summary"]
    assert d["complexity"] == want["complexity"]
    assert d["since"] == "1.0.0"
    assert d["module"] == "cache"
    got = tree(d["arguments"])
    assert got == as_reported(want["args"], got)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_info(r, name):
    want = EXPECTED[name]
    entry = info(r, name)
    assert entry[0] == name
    assert entry[1] == want["arity"]
    specs = entry[8]
    if want["key_flags"] is None:
        assert specs == []
        assert entry[3:6] == [0, 0, 0]
    else:
        [spec] = specs
        spec = pairs(spec)
        assert sorted(spec["flags"]) == sorted(want["key_flags"])
        assert pairs(spec["begin_search"]) == {"type": "index", "spec": ["index", 1]}
        assert pairs(spec["find_keys"])["type"] == "range"
        assert entry[3:6] == [1, 1, 1]


def test_getkeys(r):
    assert r.execute_command("COMMAND GETKEYS", "cache.settagged", "k", "v", "TAGS", "a") == ["k"]
    assert r.execute_command("COMMAND GETKEYS", "cache.getormark", "k", "LEASE", "5") == ["k"]
    assert r.execute_command("COMMAND GETKEYS", "cache.tags", "k") == ["k"]
    with pytest.raises(redis.ResponseError):
        r.execute_command("COMMAND GETKEYS", "cache.invalidate", "k*")


def test_arity_is_enforced_by_the_server(r):
    for cmd in (["cache.get"], ["cache.settagged", "k"], ["cache.tags"]):
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            r.execute_command(*cmd)
    # The documented syntax still works.
    assert r.execute_command("cache.settagged", "k", "v", "EX", "10", "TAGS", "a", "b") == "OK"
    assert r.execute_command("cache.get", "k") == "v"
    assert sorted(r.execute_command("cache.tags", "k")) == ["a", "b"]
    assert r.execute_command("cache.stats", "NAMESPACES") is not None


def test_acl_selectors_follow_key_specs(r):
    """ACL read/write key permissions use the key-spec flags: SETTAGGED needs write permission
    only (it returns no data), the readers need read permission only."""
    port = r.connection_pool.connection_kwargs["port"]
    r.execute_command("ACL", "SETUSER", "docs-ro", "on", "nopass", "%R~acl:*", "+@all")
    r.execute_command("ACL", "SETUSER", "docs-wo", "on", "nopass", "%W~acl:*", "+@all")
    r.execute_command("cache.settagged", "acl:k", "v", "TAGS", "t")
    readers = (["cache.get", "acl:k"], ["cache.getormark", "acl:k"], ["cache.tags", "acl:k"])
    writer = ["cache.settagged", "acl:k", "v2"]
    for user, allowed, denied in (("docs-ro", readers, [writer]), ("docs-wo", [writer], readers)):
        c = redis.Redis(port=port, protocol=2, decode_responses=True, username=user, password="x")
        try:
            for cmd in allowed:
                c.execute_command(*cmd)
            for cmd in denied:
                with pytest.raises(redis.exceptions.NoPermissionError):
                    c.execute_command(*cmd)
        finally:
            c.close()


def test_readme_lists_every_registered_command(r):
    """README's command reference has one section per command the module registers (the
    command table in src/commands.rs), and no section for a command that does not exist."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    documented = {m.lower() for m in re.findall(r"^### (CACHE\.[A-Z]+)", readme, re.M)}
    registered = set(r.execute_command("COMMAND LIST", "FILTERBY", "MODULE", "cache"))
    assert registered and documented == registered
