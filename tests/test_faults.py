"""Fault tests: kill -9 under AOF, failover to a replica, eviction, and corrupted persistence
(truncated / corrupted RDB files, corrupted DUMP payloads with a valid CRC64 given to RESTORE).
The server may refuse bad data, with a log line or an error reply, but must never crash."""

import os
import random
import shutil
import signal
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import OK, Err, RawClient, S, Server, ServerDied, ServerNotReady, fields  # noqa: E402

CRASH_MARKERS = ("crashed by signal", "REDIS BUG REPORT", "Segmentation fault", "panicked")


def tags_for(i):
    return [b"user:%d" % (i % 13), b"report:%d" % (i % 5), b"all"]


def write_load(srv, stop, acked, rewrite=False):
    """SETTAGGED in a loop; records every key the server acknowledged."""
    c = RawClient(srv.port, timeout=5)
    i = 0
    try:
        while not stop.is_set():
            key = b"k:%d" % i
            args = [b"CACHE.SETTAGGED", key, b"value-%d" % i]
            args += [b"PX", 86_400_000, b"STALE", 60] if i % 2 else [b"PERSIST"]
            rep = c.cmd(*args, b"TAGS", *tags_for(i))
            if rep == OK:
                acked.append(i)
            if rewrite and i == 300:
                c.cmd(b"BGREWRITEAOF")
            i += 1
    except (ConnectionError, OSError):
        pass  # the kill
    finally:
        c.close()


def check_entries(c, indices):
    for i in indices:
        key = b"k:%d" % i
        assert c.cmd(b"CACHE.GET", key) == b"value-%d" % i, key
        assert c.cmd(b"CACHE.TAGS", key) == tags_for(i), key


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_kill9_with_aof_always_keeps_every_acknowledged_set(preamble):
    args = ["--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", preamble]
    srv = Server(extra_args=args).start()
    try:
        stop, acked = threading.Event(), []
        t = threading.Thread(target=write_load, args=(srv, stop, acked, True))
        t.start()
        time.sleep(1.5)
        srv.kill(signal.SIGKILL)
        stop.set()
        t.join(10)
        assert len(acked) > 300, "the load did not run"
        srv.start()  # same dir, same config: replays the AOF
        c = RawClient(srv.port)
        check_entries(c, acked)
        assert fields(c.cmd(b"CACHE.STATS"))["entries"] == c.cmd(b"DBSIZE") >= len(acked)
        # The tag index was rebuilt: a tag invalidation reaches every entry carrying it.
        n = sum(1 for i in range(max(acked) + 2) if i % 13 == 3)
        got = c.cmd(b"CACHE.INVALIDATETAG", b"user:3")
        assert n - 1 <= got <= n  # the last, unacknowledged set may or may not be there
        c.close()
    finally:
        srv.cleanup()


def _wait(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_replica_promoted_after_primary_killed():
    primary = Server().start()
    replica = Server(extra_args=["--replicaof", "127.0.0.1", primary.port]).start()
    try:
        p, r = RawClient(primary.port), RawClient(replica.port)
        assert _wait(lambda: b"master_link_status:up" in r.cmd(b"INFO", b"replication"))
        indices = list(range(500))
        for i in indices:
            p.send(b"CACHE.SETTAGGED", b"k:%d" % i, b"value-%d" % i, b"PX", 86_400_000,
                   b"TAGS", *tags_for(i))
        assert all(p.read() == OK for _ in indices)
        assert p.cmd(b"WAIT", 1, 5000) == 1
        assert isinstance(r.cmd(b"CACHE.GETORMARK", b"k:1"), Err)  # read-only replica
        primary.kill(signal.SIGKILL)
        assert r.cmd(b"REPLICAOF", b"NO", b"ONE") == OK
        check_entries(r, indices)
        assert r.cmd(b"CACHE.GETORMARK", b"k:1")[0] == b"HIT"
        assert r.cmd(b"CACHE.INVALIDATETAG", b"report:2") == 100
        assert r.cmd(b"CACHE.GET", b"k:2") is None
        assert fields(r.cmd(b"CACHE.STATS"))["entries"] == 400
        p.close()
        r.close()
    finally:
        replica.cleanup()
        primary.cleanup()


def test_eviction_keeps_the_index_exact():
    with Server(extra_args=["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"]) as srv:
        c = RawClient(srv.port)
        for i in range(6000):
            c.send(b"CACHE.SETTAGGED", b"k:%d" % i, b"x" * 1000, b"TAGS", *tags_for(i))
        for _ in range(6000):
            rep = c.read()
            assert rep == OK or (isinstance(rep, Err) and rep.startswith("OOM")), rep
        assert int(c.cmd(b"INFO", b"stats").split(b"evicted_keys:")[1].split(b"\r")[0]) > 0
        # Every command evicts first while memory is over the limit: lift it to compare.
        assert c.cmd(b"CONFIG", b"SET", b"maxmemory", b"0") == OK
        assert fields(c.cmd(b"CACHE.STATS"))["entries"] == c.cmd(b"DBSIZE")
        for tag in (b"all", b"user:4"):
            listed, cursor = set(), b"0"
            while True:
                cursor, keys = c.cmd(b"CACHE.TAGSCAN", tag, cursor, b"COUNT", 500)
                listed.update(keys)
                if cursor == b"0":
                    break
            present = {k for k in c.cmd(b"KEYS", b"*") if tag in tags_for(int(k[2:]))}
            assert listed == present, tag
        c.close()


# -- corrupted persistence ---------------------------------------------------------------------

def make_rdb(dirname, rdbchecksum="yes", n=200):
    with Server(dir=dirname, extra_args=["--rdbchecksum", rdbchecksum]) as srv:
        c = RawClient(srv.port)
        for i in range(n):
            c.send(b"CACHE.SETTAGGED", b"k:%d" % i, b"value-%d" % i, b"PX", 86_400_000,
                   b"TAGS", *tags_for(i))
        for _ in range(n):
            assert c.read() == OK
        assert c.cmd(b"SAVE") == OK
        c.close()
    with open(os.path.join(dirname, "dump.rdb"), "rb") as f:
        return f.read()


HUNG_IN_CHECK = []


def entry_payloads(rdb):
    """(start, end) byte ranges of the module payloads in an RDB written by make_rdb: after
    each key name up to the next key's expiry opcode (9 bytes), type and length bytes."""
    import re
    keys = [m for m in re.finditer(rb"k:\d+", rdb)]
    out = []
    for m, nxt in zip(keys, keys[1:] + [None]):
        end = nxt.start() - 11 if nxt else len(rdb) - 9 - 1
        if end > m.end() + 4:
            out.append((m.end() + 1, end))
    return out


def boot(tmp, data, name):
    """Starts a server on an RDB file; returns (loaded?, exit code or None, log)."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    with open(os.path.join(d, "dump.rdb"), "wb") as f:
        f.write(data)
    srv = Server(dir=d, start_timeout=6)
    srv.start(wait=False)
    try:
        srv.wait_ready()
        c = RawClient(srv.port)
        assert c.cmd(b"PING") == S("PONG")
        # Whatever loaded is consistent: the index counts exactly the keys.
        assert fields(c.cmd(b"CACHE.STATS"))["entries"] == c.cmd(b"DBSIZE")
        c.close()
        return True, None, srv.log()
    except ServerDied:
        code = srv.proc.wait(timeout=30)
        return False, code, srv.log()
    except ServerNotReady:
        # redis-server 7.0 bug, not the module's: after refusing the file ("Short read ...")
        # its automatic redis-check-rdb loops forever on a truncated module value
        # (rdbLoadCheckModuleValue, fixed upstream by redis/redis#15034). Accept only that.
        log = srv.log()
        assert "Short read or OOM loading DB" in log or "Internal error in RDB" in log, \
            f"{name}: stalled without refusing\n{log[-3000:]}"
        HUNG_IN_CHECK.append(name)
        srv.kill()
        return False, 1, log
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("rdbchecksum", ["yes", "no"])
def test_truncated_or_corrupted_rdb_is_refused_not_crashed(tmp_path, rdbchecksum):
    tmp = str(tmp_path)
    good = make_rdb(os.path.join(tmp, "src"), rdbchecksum)
    rng = random.Random(1234)
    start = good.index(b"k:")  # truncations anywhere in the keyspace
    variants = [("truncated-%d" % cut, good[:cut])
                for cut in sorted(rng.sample(range(start, len(good) - 1), 12))]
    # Corruption inside entries' payloads only: a damaged key name is Redis's own business
    # (a duplicated key makes redis-server 7.0 panic by design, module or not).
    regions = entry_payloads(good)
    for i in range(24):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            lo, hi = rng.choice(regions)
            at = rng.randrange(lo, hi)
            data[at] = rng.choice([0x00, 0xff, 0x7f, 0x80, 0xc0, data[at] ^ 1])
        variants.append(("corrupt-%d" % i, bytes(data)))
    refused = 0
    for name, data in variants:
        loaded, code, log = boot(tmp, data, name)
        assert not any(m in log for m in CRASH_MARKERS), f"{name}: crash\n{log[-3000:]}"
        if not loaded:
            refused += 1
            # Exit 1, or the status of Redis's automatic redis-check-rdb run: never a signal.
            assert code is not None and code >= 0, f"{name}: exit code {code} (signal)"
            tail = log[-2000:]
            assert ("Short read" in tail or "Internal error in RDB" in tail
                    or "corrupt" in tail.lower() or "checksum" in tail
                    or "cache:" in tail or "Bad" in tail or "failed" in tail), \
                f"{name}: refused without an explanation\n{tail}"
    assert refused >= 12, "every truncated file must be refused"
    print(f"rdbchecksum {rdbchecksum}: {len(variants)} damaged files, {refused} refused, "
          f"{len(HUNG_IN_CHECK)} left redis-check-rdb spinning (redis/redis#15034)")


# Redis's crc64 (Jones polynomial, reflected, init 0): what DUMP payloads end with.
def _crc64_table():
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 reflected
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64(data, crc=0):
    for b in data:
        crc = _CRC64[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def test_crc64_matches_redis():
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA


def with_crc(body):
    return body + crc64(body).to_bytes(8, "little")


def test_restore_of_corrupted_payload_with_valid_crc_is_refused_not_crashed():
    rng = random.Random(99)
    with Server() as srv:
        c = RawClient(srv.port)
        assert c.cmd(b"CACHE.SETTAGGED", b"src", b"value", b"PX", 86_400_000, b"STALE", 5,
                      b"COST", 10, b"TAGS", b"t1", b"t2", b"\x00t3") == OK
        dump = c.cmd(b"DUMP", b"src")
        assert dump[-8:] == crc64(dump[:-8]).to_bytes(8, "little"), "our crc64 is Redis's"
        body = dump[:-8]
        assert c.cmd(b"RESTORE", b"copy", 0, with_crc(body)) == OK
        assert c.cmd(b"CACHE.TAGS", b"copy") == [b"t1", b"t2", b"\x00t3"]
        outcomes = {"refused": 0, "accepted": 0}
        for i in range(400):
            data = bytearray(body[:-2])  # keep the 2-byte RDB version trailer intact
            kind = rng.random()
            if kind < 0.3:
                data = data[:rng.randrange(1, len(data))]
            elif kind < 0.8:
                for _ in range(rng.randint(1, 4)):
                    at = rng.randrange(1, len(data))
                    data[at] = rng.choice([0, 0xff, 0x80, 0x7f, 0xc0, 0xc3, rng.randrange(256)])
            else:
                at = rng.randrange(1, len(data))
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            payload = with_crc(bytes(data) + body[-2:])
            key = b"r:%d" % i
            rep = c.cmd(b"RESTORE", key, 0, payload, b"REPLACE")
            assert c.cmd(b"PING") == S("PONG"), f"variant {i}: server gone"
            assert srv.alive()
            if isinstance(rep, Err):
                outcomes["refused"] += 1
                assert c.cmd(b"EXISTS", key) == 0
            else:
                outcomes["accepted"] += 1
                c.cmd(b"CACHE.TAGS", key)
                c.cmd(b"CACHE.GETORMARK", key)
                c.cmd(b"DEL", key)
        assert fields(c.cmd(b"CACHE.STATS"))["entries"] == c.cmd(b"DBSIZE")
        assert outcomes["refused"] > 100, outcomes
        log = srv.log()
        assert not any(m in log for m in CRASH_MARKERS), log[-3000:]
        c.close()
    print("corrupted RESTORE payloads:", outcomes)


# -- memory growth -----------------------------------------------------------------------------

def used_memory(c):
    return int(c.cmd(b"INFO", b"memory").split(b"used_memory:")[1].split(b"\r")[0])


def test_wait_timeouts_do_not_leak():
    with Server() as srv:
        c, w = RawClient(srv.port), RawClient(srv.port)
        c.cmd(b"CACHE.GETORMARK", b"p")  # p is now PENDING for everyone else
        before = used_memory(c)
        for _ in range(500):
            assert w.cmd(b"CACHE.GETORMARK", b"p", b"WAIT", b"1")[0] == b"PENDING"
        time.sleep(0.5)
        grown = used_memory(c) - before
        assert grown < 1_000_000, f"{grown} bytes after 500 timed-out waits"


def test_config_get_does_not_leak():
    with Server() as srv:
        c = RawClient(srv.port)
        before = used_memory(c)
        for _ in range(20_000):
            c.cmd(b"CONFIG", b"GET", b"cache.early-beta")
        grown = used_memory(c) - before
        assert grown < 200_000, f"{grown} bytes after 20,000 CONFIG GETs"
