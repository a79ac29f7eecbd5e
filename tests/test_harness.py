"""Checks of the test harness itself, with no module loaded (they run even before the module builds)."""

import pytest

from harness import OK, S, Err, Map, Server, ServerDied


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


def test_reply_types_compare_exactly():
    assert S("OK") == OK and S("OK") != "OK" and S("OK") != b"OK"
    e = Err(b"ERR syntax error")
    assert e == Err("ERR syntax error") and e != "ERR syntax error" and e != S("ERR syntax error")
    assert e.msg == "ERR syntax error" and type(e.msg) is str and e.startswith("ERR ")
    assert len({Err("ERR a"), Err("ERR a")}) == 1


def test_server_that_cannot_start_raises_with_its_output(make_server):
    s = make_server("bad", load_module=False, extra_args=["--no-such-directive", "1"], start=False)
    with pytest.raises(ServerDied) as e:
        s.start()
    assert "no-such-directive" in str(e.value), str(e.value)
    assert not s.alive()


def test_crashed_server_is_detected_with_its_crash_report():
    with Server(load_module=False, name="crashy") as s:
        r = s.raw()
        with pytest.raises((ConnectionError, OSError)):
            r.cmd("DEBUG", "SEGFAULT")
        s.proc.wait(timeout=30)
        assert s.died_unexpectedly()
        with pytest.raises(ServerDied) as e:
            s.check()
        assert "crashed by signal" in e.value.tail, e.value.tail
        assert "CRASHED" in s.crash_summary() and "DEBUG" in s.crash_summary()  # argv[0]
    assert not s.dir.exists()  # a temporary dir is removed by cleanup()
