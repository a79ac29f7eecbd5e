#!/usr/bin/env python3
"""Writes the persistence fixtures under tests/fixtures/ from a given module build:

  encoding-v1.rdb        an RDB file (entry encoding version 1)
  encoding-v1.aof        an AOF rewritten without the RDB preamble (plain commands)
  encoding-v1.json       what both hold (bytes as JSON strings, one code point per byte): per database, the commands an AOF rewrite emits for
                         every key (CACHE.SETTAGGED with its exact fields, PEXPIREAT, SET),
                         and the GETORMARK state of every entry

The fixtures are committed: every later build must load them exactly (tests/test_fixtures.py).
They were made from the main build of 2026-12-01 (module encoding version 1) with

  CACHE_MODULE=/work/main/target/release/librediscache.so python3 scripts/make_fixtures.py

Re-run it only to add a fixture for a new encoding version, never to replace an old one.
"""

import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import OK, RawClient, S, Server  # noqa: E402
import aofdump  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures")
# 2100-01-01: far enough that no fixture entry expires while the fixture is in use.
FAR = 4102444800000


def populate(c):
    ok = OK
    # db 0: the common shapes.
    assert c.cmd("SELECT", 0) == ok
    assert c.cmd("CACHE.SETTAGGED", "plain", "hello", "PERSIST") == ok
    assert c.cmd("CACHE.SETTAGGED", "tagged", "v1", "PXAT", FAR, "TAGS", "user:1", "team:7") == ok
    assert c.cmd("CACHE.SETTAGGED", "stalewin", "v2", "PXAT", FAR, "PSTALE", 60000,
                  "TAGS", "user:1") == ok
    assert c.cmd("CACHE.SETTAGGED", "costly", "v3", "PXAT", FAR, "PSTALE", 5000, "COST", 250,
                  "TAGS", "report") == ok
    assert c.cmd("CACHE.SETTAGGED", b"bin\x00key\xff", bytes(range(256)), "PXAT", FAR,
                  "TAGS", b"\x00\xfftag", b"t\r\nnl", b"") == ok
    # A soft-invalidated entry: stale since the invalidation, still served until it expires.
    assert c.cmd("CACHE.SETTAGGED", "softened", "old", "PXAT", FAR, "PSTALE", 3600000,
                  "TAGS", "soft-me") == ok
    assert c.cmd("CACHE.INVALIDATETAG", "soft-me", "SOFT") == 1
    assert c.cmd("SET", "not-an-entry", "plain string") == ok
    # db 1 and db 5: several databases.
    assert c.cmd("SELECT", 1) == ok
    assert c.cmd("CACHE.SETTAGGED", "plain", "db1 value", "PERSIST", "TAGS", "user:1") == ok
    assert c.cmd("CACHE.SETTAGGED", "empty", "", "PXAT", FAR) == ok
    assert c.cmd("SELECT", 5) == ok
    tags = [f"tag{i}" for i in range(40)]
    assert c.cmd("CACHE.SETTAGGED", "many-tags", "x" * 1000, "PXAT", FAR, "PSTALE", 1,
                  "TAGS", *tags) == ok
    assert c.cmd("SELECT", 0) == ok


def states(c, dbs):
    """GETORMARK state and value of every entry (tokens dropped: they are random)."""
    out = {}
    for db in dbs:
        c.cmd("SELECT", db)
        keys = sorted(c.cmd("KEYS", "*"))
        out[str(db)] = {}
        for k in keys:
            if c.cmd("TYPE", k) != S("cache-ent"):
                continue
            r = c.cmd("CACHE.GETORMARK", k)
            out[str(db)][aofdump.text(k)] = [r[0].decode(), aofdump.text(r[1])]
    c.cmd("SELECT", 0)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    with Server(extra_args=["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]) as srv:
        c = RawClient(srv.port)
        populate(c)
        assert c.cmd("SAVE") == OK
        shutil.copy(os.path.join(srv.dir, "dump.rdb"), os.path.join(OUT, "encoding-v1.rdb"))
        base = aofdump.rewrite(c, srv.dir)
        shutil.copy(base, os.path.join(OUT, "encoding-v1.aof"))
        commands = aofdump.by_db(aofdump.parse(open(base, "rb").read()))
        found = states(c, [0, 1, 5])
    expected = {
        "encoding_version": 1,
        "made_at_ms": int(time.time() * 1000),
        "commands": {db: [[aofdump.text(a) for a in cmd] for cmd in cmds]
                     for db, cmds in sorted(commands.items())},
        "states": found,
    }
    with open(os.path.join(OUT, "encoding-v1.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", os.path.abspath(OUT))


if __name__ == "__main__":
    main()
