"""Persistence fixtures written by an earlier build (tests/fixtures/, made by
scripts/make_fixtures.py): this build must load every one exactly. An RDB file and an AOF
rewritten without the RDB preamble, with tags, stale windows, a soft-invalidated entry, binary
keys, values and tags, a plain string key and several databases.

"Exactly" is checked twice: every entry answers GETORMARK with the state and value it had, and
an AOF rewrite of the loaded data emits the same commands (CACHE.SETTAGGED carries every field
of an entry: value, absolute fresh-until, stale window via the key's PEXPIREAT, cost, tags)."""

import json
import os
import shutil

import pytest

import aofdump
from harness import OK, RawClient, S, Server

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
VERSIONS = sorted(int(f[len("encoding-v"):-len(".json")]) for f in os.listdir(FIXTURES)
                  if f.startswith("encoding-v") and f.endswith(".json"))


def expected(version):
    with open(os.path.join(FIXTURES, f"encoding-v{version}.json")) as f:
        return json.load(f)


def check(c, srv, want):
    for db, entries in want["states"].items():
        assert c.cmd("SELECT", int(db)) == OK
        keys = {aofdump.text(k) for k in c.cmd("KEYS", "*")
                if c.cmd("TYPE", k) == S("cache-ent")}
        assert keys == set(entries), f"db {db}"
        for key, (state, value) in entries.items():
            r = c.cmd("CACHE.GETORMARK", key.encode("latin-1"))
            assert [r[0].decode(), aofdump.text(r[1])] == [state, value], f"db {db} key {key!r}"
    assert c.cmd("SELECT", 0) == OK
    base = aofdump.rewrite(c, srv.dir)
    got = aofdump.by_db(aofdump.parse(open(base, "rb").read()))
    got = {db: [[aofdump.text(a) for a in cmd] for cmd in cmds] for db, cmds in got.items()}
    assert got == want["commands"]


def test_fixtures_cover_version_1():
    assert VERSIONS[0] == 1
    assert VERSIONS == list(range(1, len(VERSIONS) + 1))


@pytest.mark.parametrize("version", VERSIONS)
def test_rdb_fixture_loads_exactly(tmp_path, version):
    want = expected(version)
    shutil.copy(os.path.join(FIXTURES, f"encoding-v{version}.rdb"), tmp_path / "dump.rdb")
    with Server(tmp_path, extra_args=["--aof-use-rdb-preamble", "no"]) as srv:
        c = RawClient(srv.port)
        assert c.cmd("DBSIZE") > 0, srv.log()[-2000:]
        check(c, srv, want)


@pytest.mark.parametrize("version", VERSIONS)
def test_aof_fixture_loads_exactly(tmp_path, version):
    want = expected(version)
    # A single-file AOF in `dir` (the pre-7.0 layout): the server loads it and upgrades it.
    shutil.copy(os.path.join(FIXTURES, f"encoding-v{version}.aof"), tmp_path / "appendonly.aof")
    args = ["--appendonly", "yes", "--appendfilename", "appendonly.aof", "--aof-use-rdb-preamble", "no"]
    with Server(tmp_path, extra_args=args) as srv:
        c = RawClient(srv.port)
        assert c.cmd("DBSIZE") > 0, srv.log()[-2000:]
        check(c, srv, want)
