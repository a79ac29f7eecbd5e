"""Helpers shared by the integration tests (talk to the module through a harness RawClient)."""

import os
import re
import threading
import time

from harness import OK, S, Err, Map, pairs, wait_until

PLAIN_TYPES = {"string", "list", "set", "zset", "hash", "stream", "none"}
WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")
SYNTAX = Err("ERR syntax error")
NOT_INT = Err("ERR value is not an integer or out of range")
BAD_EXPIRE = Err("ERR invalid expire time in 'cache.settagged' command")


def stat_fields(r):
    """The counter names, in order, as the module reports them (CACHE.STATS): the one list
    lives in src/stats.rs; tests read it from the module instead of repeating it."""
    return [k.decode() if isinstance(k, bytes) else str(k) for k, _ in pairs(r.cmd("CACHE.STATS"))]


def documented_stat_fields():
    """The field order README.md promises for CACHE.STATS ("fields in this order: ...")."""
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
    text = open(readme).read()
    start = text.index("fields in\nthis order:") if "fields in\nthis order:" in text \
        else text.index("fields in this order:")
    paragraph = text[start:text.index("`NAMESPACE name`", start)]
    return re.findall(r"`([a-z_]+)`", paragraph)


def arity(cmd):
    return Err(f"ERR wrong number of arguments for '{cmd.lower()}' command")


def settag(r, key, value, *opts, tags=None):
    args = ["CACHE.SETTAGGED", key, value, *opts]
    if tags is not None:
        args += ["TAGS", *tags]
    return r.cmd(*args)


def must_set(r, key, value, *opts, tags=None):
    reply = settag(r, key, value, *opts, tags=tags)
    assert reply == OK, (key, reply)


def gom(r, key, *opts):
    return r.cmd("CACHE.GETORMARK", key, *opts)


def stats(r, *args):
    """CACHE.STATS as {field(str): int | str(hit_ratio)}; asserts the reply's shape."""
    reply = r.cmd("CACHE.STATS", *args)
    assert not isinstance(reply, Err), reply
    return decode_fields(reply)


def decode_fields(reply):
    out = {}
    for k, v in pairs(reply):
        assert isinstance(k, (bytes, S)), (k, reply)
        name = k.decode() if isinstance(k, bytes) else str(k)
        if isinstance(v, bytes):
            v = v.decode()
        out[name] = v
    return out


def tagscan_all(r, tag, match=None, count=None, max_calls=100000):
    keys = set()
    cursor = b"0"
    for _ in range(max_calls):
        args = ["CACHE.TAGSCAN", tag, cursor]
        if match is not None:
            args += ["MATCH", match]
        if count is not None:
            args += ["COUNT", count]
        reply = r.cmd(*args)
        assert isinstance(reply, list) and len(reply) == 2, reply
        cursor, batch = reply
        assert isinstance(cursor, bytes), reply
        assert isinstance(batch, list), reply
        keys.update(batch)
        if cursor == b"0":
            return keys
    raise AssertionError(f"TAGSCAN {tag!r} did not end after {max_calls} calls")


def key_type(r, key):
    t = r.cmd("TYPE", key)
    return str(t)


def all_keys(r):
    return set(r.cmd("KEYS", "*"))


def entry_keys(r):
    return {k for k in all_keys(r) if key_type(r, k) not in PLAIN_TYPES}


def check_index(r, extra_tags=()):
    """The tag index and counters agree with the keyspace of the selected db.

    For each entry: CACHE.TAGS; then each tag's TAGSCAN must be exactly the entries carrying it,
    every tag in extra_tags not carried by an entry must scan empty, and STATS entries/tags must
    equal the counts. Returns {entry key: [tags]}.
    """
    entries = {k: r.cmd("CACHE.TAGS", k) for k in entry_keys(r)}
    by_tag = {}
    for k, ts in entries.items():
        assert isinstance(ts, list), (k, ts)
        for t in ts:
            by_tag.setdefault(t, set()).add(k)
    for t, ks in by_tag.items():
        assert tagscan_all(r, t) == ks, f"TAGSCAN {t!r}"
    for t in extra_tags:
        t = t.encode() if isinstance(t, str) else t
        if t not in by_tag:
            assert tagscan_all(r, t) == set(), f"TAGSCAN {t!r} should be empty"
    st = stats(r)
    assert st["entries"] == len(entries), (st, len(entries))
    assert st["tags"] == len(by_tag), (st, sorted(by_tag))
    return entries


def snapshot(r):
    """State that a failing command must not change: keys, their values/tags/ttls, and counters."""
    state = {}
    for k in sorted(all_keys(r)):
        t = key_type(r, k)
        if t in PLAIN_TYPES:
            v = r.cmd("DUMP", k)
        else:
            v = (r.cmd("CACHE.TAGS", k), r.cmd("DUMP", k))
        state[k] = (t, v, r.cmd("PTTL", k) > 0)
    return state, stats(r)


def token_of(reply, state):
    """The token of a GETORMARK reply in `state` (asserting both)."""
    assert isinstance(reply, list) and len(reply) == 3, reply
    assert reply[0] == state.encode(), reply
    tok = reply[2]
    assert isinstance(tok, bytes) and tok, reply
    return tok


def wait_in_thread(server, *args):
    """Runs CACHE.GETORMARK *args on a new connection in a thread; returns (thread, out) where
    out gets "reply" and "elapsed"."""
    c = server.raw()
    out = {}

    def run():
        t0 = time.monotonic()
        out["reply"] = c.cmd("CACHE.GETORMARK", *args)
        out["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def wait_blocked(server, n=1):
    """Waits (up to 5 s) until at least `n` clients are blocked."""
    def blocked():
        info = server.info("clients")
        return int(info.get("blocked_clients", "0")) >= n
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not blocked():
        time.sleep(0.01)
    assert blocked(), "client did not block"


__all__ = [
    "token_of", "wait_in_thread", "wait_blocked",
    "OK", "S", "Err", "Map", "stat_fields", "documented_stat_fields", "WRONGTYPE", "SYNTAX", "NOT_INT", "BAD_EXPIRE", "arity",
    "settag", "must_set", "gom", "stats", "decode_fields", "tagscan_all", "key_type", "all_keys",
    "entry_keys", "check_index", "wait_until", "snapshot", "pairs",
]
