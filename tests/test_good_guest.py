"""The module is a good guest: keys that arrive (RENAME, MOVE, COPY, RESTORE, RDB load) are
indexed without being touched, so LRU idle times, LFU counters and keyspace_hits/misses stay
exactly as without the module, for native keys and entries alike (API.md, Guarantees)."""

import time

from cachelib import OK, must_set, check_index, tagscan_all, wait_until

TAGS = ["t", "u", "w"]


def idle(r, key):
    return r.cmd("OBJECT", "IDLETIME", key)


def freq(r, key):
    return r.cmd("OBJECT", "FREQ", key)


def make_keys(r):
    """An entry and a native key, both restored with a known idle time / counter later."""
    must_set(r, "e", "ve", tags=["t", "u"])
    assert r.cmd("SET", "n", "vn") == OK


def restore_as(r, src, dst, *opts):
    payload = r.cmd("DUMP", src)
    assert isinstance(payload, bytes), payload
    assert r.cmd("RESTORE", dst, "0", payload, "REPLACE", *opts) == OK


def keyspace_counts(server):
    info = server.info("stats")
    return int(info["keyspace_hits"]), int(info["keyspace_misses"])


def test_restore_idletime_is_kept(make_server):
    s = make_server()
    r = s.raw()
    make_keys(r)
    for key in ("e", "n"):
        restore_as(r, key, key, "IDLETIME", "1000")
        assert 1000 <= idle(r, key) <= 1060, key
    check_index(r, TAGS)


def test_rename_move_copy_touch_entries_as_native_keys(make_server):
    """RENAME, MOVE and COPY look their source up themselves (a touch, with or without the
    module): an entry must come out with the idle time a native key does, not a newer one."""
    s = make_server()
    r = s.raw()
    make_keys(r)
    for key in ("e", "n"):
        restore_as(r, key, key, "IDLETIME", "1000")
    for op in (["RENAME", "{}", "{}2"], ["MOVE", "{}2", "1"], ["SELECT", "1"],
               ["COPY", "{}2", "{}3"], ["COPY", "{}2", "{}4", "DB", "0"]):
        got = {}
        for key in ("e", "n"):
            reply = r.cmd(*[a.format(key) for a in op])
            assert reply in (OK, 1), (op, reply)
            got[key] = [idle(r, k.format(key)) for k in ("{}2", "{}3") if r.cmd("EXISTS", k.format(key))]
        assert got["e"] == got["n"], (op, got)
    entries = check_index(r, TAGS)
    assert set(entries) == {b"e2", b"e3"}
    assert tagscan_all(r, "t") == {b"e2", b"e3"}
    r.cmd("SELECT", "0")
    assert set(check_index(r, TAGS)) == {b"e4"}


def test_reload_keeps_lru_idle_time(make_server):
    s = make_server(extra_args=["--maxmemory-policy", "allkeys-lru"])
    r = s.raw()
    make_keys(r)
    for key in ("e", "n"):
        restore_as(r, key, key, "IDLETIME", "1000")
    assert r.cmd("DEBUG", "RELOAD") == OK
    for key in ("e", "n"):
        assert 1000 <= idle(r, key) <= 1060, key
    assert tagscan_all(r, "t") == {b"e"}
    check_index(r, TAGS)


def test_lfu_counters_not_bumped(make_server):
    """An LFU counter of 0 is bumped to 1 by any touch, with certainty (LFULogIncr). RESTORE
    and loading keep it; RENAME/MOVE/COPY touch their source themselves, so an entry must end
    with the counter a native key has."""
    s = make_server(extra_args=["--maxmemory-policy", "allkeys-lfu"])
    r = s.raw()
    make_keys(r)
    for key in ("e", "n"):
        restore_as(r, key, key, "FREQ", "0")
        assert freq(r, key) == 0, ("RESTORE", key)
    assert r.cmd("DEBUG", "RELOAD") == OK
    for key in ("e", "n"):
        assert freq(r, key) == 0, ("DEBUG RELOAD", key)
    for op in (["RENAME", "{}", "{}2"], ["MOVE", "{}2", "1"], ["SELECT", "1"],
               ["COPY", "{}2", "{}3"]):
        got = {}
        for key in ("e", "n"):
            reply = r.cmd(*[a.format(key) for a in op])
            assert reply in (OK, 1), (op, reply)
            got[key] = [freq(r, k.format(key)) for k in ("{}2", "{}3") if r.cmd("EXISTS", k.format(key))]
        assert got["e"] == got["n"], (op, got)
    assert set(check_index(r, TAGS)) == {b"e2", b"e3"}


def keyspace_ops(r, entry):
    """The same sequence on an entry or a native key; returns INFO's hit/miss delta for it."""
    if entry:
        must_set(r, "k", "v", tags=["t"])
    else:
        assert r.cmd("SET", "k", "v") == OK
    payload = r.cmd("DUMP", "k")
    return [
        ["RENAME", "k", "k2"],
        ["MOVE", "k2", "1"],
        ["SELECT", "1"],
        ["COPY", "k2", "k3"],
        ["COPY", "k2", "k4", "DB", "0"],
        ["RESTORE", "k5", "0", payload],
        ["RESTORE", "k5", "0", payload, "REPLACE"],
        ["DEBUG", "RELOAD"],
        ["SELECT", "0"],
    ]


def measure(server, entry):
    r = server.raw()
    ops = keyspace_ops(r, entry)
    before = keyspace_counts(server)
    for op in ops:
        reply = r.cmd(*op)
        assert reply in (OK, 1), (op, reply)
    after = keyspace_counts(server)
    return (after[0] - before[0], after[1] - before[1]), r


def test_keyspace_hits_unchanged_by_arrivals(make_server):
    plain = make_server("plain", load_module=False)
    expected, _ = measure(plain, entry=False)
    s = make_server("with-module")
    for entry in (False, True):
        s.raw().cmd("FLUSHALL")
        got, r = measure(s, entry)
        assert got == expected, ("entry" if entry else "native", got, expected)
    r.cmd("SELECT", "1")
    assert set(check_index(r, TAGS)) == {b"k2", b"k3", b"k5"}
    r.cmd("SELECT", "0")
    assert set(check_index(r, TAGS)) == {b"k4"}
    assert tagscan_all(r, "t") == {b"k4"}


def test_tagscan_lists_without_touching(make_server, server_info):
    """TAGSCAN lists keys as SCAN does: no LRU touch; on 7.2+ and Valkey no keyspace hit
    either (7.0 has no open flag to skip that count)."""
    s = make_server()
    r = s.raw()
    must_set(r, "e", "v", tags=["t"])
    restore_as(r, "e", "e", "IDLETIME", "1000")
    before = keyspace_counts(s)
    assert tagscan_all(r, "t") == {b"e"}
    if server_info["valkey"] or server_info["version"] >= (7, 2, 0):
        assert keyspace_counts(s) == before
    assert 1000 <= idle(r, "e") <= 1060


def test_start_log_has_no_crate_noise(make_server):
    s = make_server()
    log = s.log()
    assert "Skip register defrag" not in log
    assert "Module 'cache' loaded" in log


# --- a replica with `repl-diskless-load swapdb` ---------------------------------------------

def async_loading(server):
    return server.info("persistence").get("async_loading") == "1"


def fill(r, prefix, n, tag, start=0):
    r.pipeline([["CACHE.SETTAGGED", f"{prefix}:{i}", "v", "TAGS", tag, f"{prefix}-all"]
                for i in range(start, start + n)])


def force_full_sync(primary, *writes):
    """A full sync with the same replication id (so the replica loads asynchronously, serving
    the old data): drop the replica link and overflow a small backlog (as Redis's own test).
    `writes` run after the link is dropped: the replica gets them only through the sync."""
    r = primary.raw()
    r.pipeline([["MULTI"], ["CLIENT", "KILL", "TYPE", "replica"],
                ["CONFIG", "SET", "repl-backlog-size", "16384"],
                *[["SET", f"fill:{i}", "A" * 16384] for i in range(10)], *writes, ["EXEC"]])


def swapdb_pair(make_server):
    primary = make_server("primary", extra_args=["--repl-diskless-sync", "yes"])
    replica = make_server("replica", extra_args=[
        "--repl-diskless-load", "swapdb",
        # Serve clients between every KB read while loading, not only every 2 MB.
        "--loading-process-events-interval-bytes", "1024"])
    return primary, replica


def test_swapdb_full_sync_serves_old_index_then_new(make_server):
    primary, replica = swapdb_pair(make_server)
    p = primary.raw()
    fill(p, "old", 40, "gen1")
    replica.replicaof(primary)
    replica.wait_sync(primary)
    q = replica.raw()
    assert tagscan_all(q, "gen1") == {f"old:{i}".encode() for i in range(40)}
    # New data on the primary: half the old entries go, new ones come, and enough native keys
    # that the slowed load below takes seconds.
    p.cmd("DEL", *[f"old:{i}" for i in range(20)])
    fill(p, "new", 30, "gen2")
    assert p.cmd("DEBUG", "POPULATE", "3000", "native", "100") == OK
    assert q.cmd("CONFIG", "SET", "key-load-delay", "1000") == OK  # 1 ms per key loaded
    force_full_sync(primary)
    wait_until(lambda: async_loading(replica), timeout=30, what="replica async_loading")
    # During the load: the old data, with its tags, and nothing of the new.
    assert tagscan_all(q, "gen1") == {f"old:{i}".encode() for i in range(40)}
    assert tagscan_all(q, "gen2") == set()
    assert q.cmd("CACHE.GET", "old:0") == b"v"
    assert q.cmd("CACHE.GET", "new:0") is None
    check_index(q, ["gen1", "gen2"])
    assert async_loading(replica), "the checks above ran during the async load"
    assert q.cmd("CONFIG", "SET", "key-load-delay", "0") == OK
    wait_until(lambda: not async_loading(replica), timeout=60, what="async load finished")
    replica.wait_sync(primary)
    assert tagscan_all(q, "gen1") == {f"old:{i}".encode() for i in range(20, 40)}
    assert tagscan_all(q, "gen2") == {f"new:{i}".encode() for i in range(30)}
    assert q.cmd("CACHE.GET", "old:0") is None and q.cmd("CACHE.GET", "new:0") == b"v"
    check_index(q, ["gen1", "gen2"])
    log = replica.log()
    assert "Skipping diskless-load" not in log
    assert "Swapping active DB with loaded DB" in log


def test_swapdb_aborted_sync_keeps_old_index(make_server):
    primary, replica = swapdb_pair(make_server)
    p = primary.raw()
    fill(p, "old", 40, "gen1")
    replica.replicaof(primary)
    replica.wait_sync(primary)
    q = replica.raw()
    fill(p, "new", 30, "gen2")
    p.cmd("DEL", "old:0")
    replica.wait_sync(primary)
    assert p.cmd("DEBUG", "POPULATE", "3000", "native", "100") == OK
    # The primary writes its RDB slowly (1 ms per key) and is killed mid-transfer, when the
    # replica has loaded about half of it: some of the 300 gen3 entries, which only the sync
    # carries, are then in the staging index, and must not reach the live one.
    assert p.cmd("CONFIG", "SET", "rdb-key-save-delay", "1000") == OK
    force_full_sync(primary, *[["CACHE.SETTAGGED", f"part:{i}", "v", "TAGS", "gen3"]
                               for i in range(300)])
    wait_until(lambda: async_loading(replica), timeout=30, what="replica async_loading")
    time.sleep(1.5)
    assert async_loading(replica), "still loading when the primary is killed"
    primary.kill9()
    wait_until(lambda: not async_loading(replica), timeout=60, what="async load aborted")
    assert "Discarding temporary DB" in replica.log() or "Failed trying to load" in replica.log()
    assert tagscan_all(q, "gen1") == {f"old:{i}".encode() for i in range(1, 40)}
    assert tagscan_all(q, "gen2") == {f"new:{i}".encode() for i in range(30)}
    assert tagscan_all(q, "gen3") == set()
    assert q.cmd("EXISTS", "part:0") == 0
    check_index(q, ["gen1", "gen2", "gen3"])
    assert "Skipping diskless-load" not in replica.log()
