"""Checks of the test harness itself, with no module loaded (they run even before the module builds)."""

from harness import S, Err, Map


def test_start_restart_and_raw_types(make_server):
    s = make_server("plain", load_module=False)
    assert s.port != 6379
    r = s.raw()
    assert r.cmd("SET", "k", b"a\x00b") == S("OK")
    assert r.cmd("GET", "k") == b"a\x00b"
    assert r.cmd("GET", "missing") is None
    assert r.cmd("NOSUCHCMD") == Err("ERR unknown command 'NOSUCHCMD', with args beginning with: ")
    assert r.cmd("GET") == Err("ERR wrong number of arguments for 'get' command")
    s.restart(save=True)
    assert s.raw().cmd("GET", "k") == b"a\x00b"
    s.restart(save=False)
    assert s.raw().cmd("GET", "k") == b"a\x00b"  # the RDB from the previous SAVE
    r3 = s.raw(protocol=3)
    assert isinstance(r3.cmd("HELLO", "3"), Map)
    s.kill9()
    assert not s.alive()
    s.start()
    assert s.client().get("k") == b"a\x00b"


def test_replication_helpers(make_server):
    p = make_server("primary", load_module=False)
    rep = make_server("replica", load_module=False)
    p.client().set("a", "1")
    rep.replicaof(p)
    rep.wait_sync(p)
    assert rep.client().get("a") == b"1"
    p.client().set("b", "2")
    rep.wait_sync(p)
    assert rep.client().get("b") == b"2"
