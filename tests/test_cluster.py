"""Redis Cluster: INVALIDATE, INVALIDATETAG, STATS and TAGSCAN act on every shard in one call.

One cluster of 3 primaries and 3 replicas (free loopback ports, module loaded) is shared by the
tests of this file, which run in order: the destructive ones (SIGSTOP, failover, kill -9) come
last. Skipped, with the reason, on a server that cannot form a cluster.
"""

import os
import signal
import time

import pytest
from redis.crc import key_slot

from cachelib import OK, stats, wait_until
from harness import Err, pairs
from harness.cluster import TIMEOUT_MS, Cluster, ClusterUnsupported


def ok(reply):
    assert not isinstance(reply, Err), reply
    return reply


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
    except ClusterUnsupported as e:
        c.close()
        pytest.skip(str(e))
    except Exception:
        c.close()
        raise
    yield c
    died = [s.name for s in c.nodes if s.died_unexpectedly()]
    tails = {s.name: s.tail(30) for s in c.nodes if s.died_unexpectedly()}
    c.close()
    assert not died, f"nodes died: {died}\n{tails}"


def fill(cl, prefix, n, tags_of):
    keys = [f"{prefix}:{i}" for i in range(n)]
    for i, k in enumerate(keys):
        cl.set(k, f"v{i}", tags_of(i))
    return keys


def spread(cl, keys):
    """Which primary holds how many of keys (asserts every primary holds some)."""
    count = {}
    for k in keys:
        p, _ = cl.owner(k)
        count[p.name] = count.get(p.name, 0) + 1
    assert len(count) == 3, count
    return count


def test_invalidatetag_from_every_primary_answers_the_cluster_total(cl):
    for p in cl.primaries():
        keys = fill(cl, "it", 120, lambda i: ["shared", f"g{i % 3}"])
        spread(cl, keys)
        assert cl.c(p).cmd("CACHE.INVALIDATETAG", "shared") == 120
        cl.sync()
        for k in keys:
            assert cl.served_anywhere(k) == [], k
        assert cl.c(p).cmd("CACHE.INVALIDATETAG", "shared") == 0
    for s in cl.nodes:
        assert cl.local_entries(s) == 0, s.name


def test_tag_pattern_and_soft(cl):
    keys = fill(cl, "sp", 90, lambda i: [f"report:{i % 3}"])
    p = cl.primaries()[1]
    assert cl.c(p).cmd("CACHE.INVALIDATETAG", "report:*", "SOFT") == 90
    cl.sync()
    for k in keys:
        assert set(cl.states(k).values()) == {b"STALE", b"SERVED"}, k
        assert cl.served_anywhere(k) != [], "SOFT keeps the value, stale"
    assert cl.c(p).cmd("CACHE.INVALIDATETAG", "report:[01]") == 60
    cl.sync()
    gone = [k for i, k in enumerate(keys) if i % 3 != 2]
    for k in gone:
        assert cl.served_anywhere(k) == [], k
    assert ok(cl.c(p).cmd("CACHE.INVALIDATE", "sp:*")) == 30


def test_invalidate_patterns_from_every_primary(cl):
    for p in cl.primaries():
        keys = fill(cl, "pat", 60, lambda i: ["x"])
        others = fill(cl, "other", 30, lambda i: ["x"])
        # A literal prefix, then none (a suffix), SOFT too.
        assert cl.c(p).cmd("CACHE.INVALIDATE", "pat:1*") == 11
        assert cl.c(p).cmd("CACHE.INVALIDATE", "*:2?", "SOFT") == 20  # pat:2x and other:2x
        assert cl.c(p).cmd("CACHE.INVALIDATE", "*t:*") == 60 - 11
        cl.sync()
        for k in keys:
            assert cl.served_anywhere(k) == [], k
        for i, k in enumerate(others):
            st = set(cl.states(k).values())
            assert st == ({b"STALE", b"SERVED"} if 20 <= i < 30 else {b"HIT", b"SERVED"}), (k, st)
        assert cl.c(p).cmd("CACHE.INVALIDATE", "other:*") == 30
    for s in cl.nodes:
        assert cl.local_entries(s) == 0, s.name


def test_stats_sums_over_primaries_from_every_node(cl):
    assert cl.c(cl.nodes[0]).cmd("CACHE.STATS", "RESET") == OK
    for s in cl.primaries():
        assert dict(pairs(cl.c(s).cmd("CACHE.STATS", "LOCAL")))[b"hits"] == 0, s.name
    keys = fill(cl, "st", 60, lambda i: ["a", f"b{i % 2}"])
    for k in keys[:40]:
        assert cl.on_owner(k, "CACHE.GET", k) is not None
    for i in range(20):
        assert cl.on_owner(f"missing:{i}", "CACHE.GET", f"missing:{i}") is None
    want_local = {}
    for p in cl.primaries():
        want_local[p.name] = dict(pairs(cl.c(p).cmd("CACHE.STATS", "LOCAL")))
    assert sum(v[b"entries"] for v in want_local.values()) == 60
    for s in cl.nodes:
        st = stats(cl.c(s))
        assert (st["hits"], st["misses"], st["sets"], st["entries"]) == (40, 20, 60, 60), (s.name, st)
        assert st["hit_ratio"] == "0.6667", st
        # Each shard counts its own distinct tags.
        assert st["tags"] == sum(v[b"tags"] for v in want_local.values())
        ns = stats(cl.c(s), "NAMESPACE", "st")
        assert (ns["sets"], ns["entries"], ns["hits"]) == (60, 60, 40), ns
        spaces = {k: dict(pairs(v)) for k, v in pairs(cl.c(s).cmd("CACHE.STATS", "NAMESPACES"))}
        assert spaces[b"st"][b"entries"] == 60 and spaces[b"missing"][b"misses"] == 20
    assert cl.c(cl.primaries()[0]).cmd("CACHE.INVALIDATETAG", "a") == 60
    st = stats(cl.c(cl.nodes[4]))
    assert (st["invalidations"], st["invalidated"], st["entries"]) == (1, 60, 0), st


def test_tagscan_walks_every_shard_with_one_cursor(cl):
    keys = fill(cl, "ts", 100, lambda i: ["scan"] + (["odd"] if i % 2 else []))
    spread(cl, keys)
    for s in cl.nodes:
        got, cursor, calls = [], b"0", 0
        while True:
            cursor, batch = ok(cl.c(s).cmd("CACHE.TAGSCAN", "scan", cursor, "COUNT", 7))
            got += batch
            calls += 1
            assert calls < 200
            if cursor == b"0":
                break
        assert sorted(got) == sorted(k.encode() for k in keys), s.name
    got, cursor = [], b"0"
    while True:
        cursor, batch = ok(cl.c(cl.nodes[2]).cmd("CACHE.TAGSCAN", "odd", cursor, "MATCH", "ts:1*"))
        got += batch
        if cursor == b"0":
            break
    assert sorted(got) == sorted(k.encode() for i, k in enumerate(keys) if i % 2 and k.startswith("ts:1"))
    assert cl.c(cl.nodes[0]).cmd("CACHE.TAGSCAN", "scan", 16383) == Err("ERR invalid cursor")
    assert cl.c(cl.nodes[0]).cmd("CACHE.INVALIDATETAG", "scan") == 100


def test_local_acts_on_one_node(cl):
    keys = fill(cl, "lo", 90, lambda i: ["lt"])
    share = spread(cl, keys)
    p = cl.primaries()[0]
    mine = [k for k in keys if cl.owner(k)[0] is p]
    assert dict(pairs(cl.c(p).cmd("CACHE.STATS", "LOCAL")))[b"entries"] == share[p.name]
    page = ok(cl.c(p).cmd("CACHE.TAGSCAN", "lt", 0, "COUNT", 1000, "LOCAL"))
    assert page[0] == b"0" and sorted(page[1]) == sorted(k.encode() for k in mine)
    assert cl.c(p).cmd("CACHE.INVALIDATETAG", "lt", "LOCAL") == share[p.name]
    cl.sync()
    for k in keys:
        assert bool(cl.served_anywhere(k)) == (k not in mine), k
    assert cl.c(p).cmd("CACHE.INVALIDATE", "lo:*", "SOFT", "LOCAL") == 0
    assert cl.c(p).cmd("CACHE.INVALIDATETAG", "lt") == 90 - share[p.name]


def test_multi_and_scripts_refuse_the_cluster_wide_form(cl):
    c = cl.fresh(cl.primaries()[0])
    assert c.cmd("MULTI") == OK
    c.cmd("CACHE.INVALIDATETAG", "mt")
    c.cmd("CACHE.STATS")
    c.cmd("CACHE.INVALIDATETAG", "mt", "LOCAL")
    res = c.cmd("EXEC")
    assert isinstance(res[0], Err) and "LOCAL" in res[0].msg, res
    assert "MULTI" in res[0].msg and res[0].msg.startswith("ERR"), res
    assert isinstance(res[1], Err) and "LOCAL" in res[1].msg, res
    assert isinstance(res[2], int), res
    r = c.cmd("EVAL", "return redis.call('CACHE.INVALIDATE', 'm*')", 0)
    assert isinstance(r, Err) and "LOCAL" in r.msg, r
    assert c.cmd("EVAL", "return redis.call('CACHE.INVALIDATE', 'm*', 'LOCAL')", 0) == 0
    for k in ("CACHE.INVALIDATETAG", "CACHE.INVALIDATE"):
        r = cl.c(cl.replicas()[0]).cmd(k, "x")
        assert isinstance(r, Err) and r.msg.startswith("READONLY"), r
    c.close()


def test_acl_restricted_user_touches_only_its_keys_on_every_shard(cl):
    for s in cl.nodes:
        ok(cl.c(s).cmd("ACL", "SETUSER", "tenant", "on", ">pw", "~tenantA:*", "+@all"))
    a = fill(cl, "tenantA", 60, lambda i: ["shared-t"])
    b = fill(cl, "tenantB", 60, lambda i: ["shared-t"])
    spread(cl, a)
    spread(cl, b)
    for p in cl.primaries():
        c = cl.fresh(p)
        assert c.cmd("AUTH", "tenant", "pw") == OK
        assert c.cmd("CACHE.INVALIDATETAG", "shared-t", "SOFT") == 60
        assert c.cmd("CACHE.INVALIDATE", "*") == 60
        assert c.cmd("CACHE.INVALIDATETAG", "shared-t") == 0
        r = c.cmd("CACHE.STATS")
        assert isinstance(r, Err) and r.msg.startswith("NOPERM"), r
        c.close()
        cl.sync()
        for k in a:
            assert cl.served_anywhere(k) == [], k
        for k in b:
            assert set(cl.states(k).values()) == {b"HIT", b"SERVED"}, k
        a = fill(cl, "tenantA", 60, lambda i: ["shared-t"])
    assert cl.c(cl.nodes[0]).cmd("CACHE.INVALIDATETAG", "shared-t") == 120


def test_redis_py_cluster_client_with_target_nodes(cl):
    """redis-py 8 RedisCluster: keyed commands route by their key; keyless ones need
    target_nodes, and one primary is enough: the module fans out itself."""
    from redis.cluster import RedisCluster
    rc = RedisCluster(host="127.0.0.1", port=cl.primaries()[0].port)
    try:
        for i in range(40):
            assert rc.execute_command("CACHE.SETTAGGED", f"py:{i}", "v", "TAGS", "py-t") == b"OK"
        node = rc.get_default_node()
        assert rc.execute_command("CACHE.STATS", "NAMESPACE", "py", target_nodes=node)[b"entries"] == 40
        keys, cursor = set(), 0
        while True:
            cursor, batch = rc.execute_command("CACHE.TAGSCAN", "py-t", cursor, "COUNT", 100,
                                               target_nodes=node)
            keys.update(batch)
            if int(cursor) == 0:
                break
        assert len(keys) == 40
        assert rc.execute_command("CACHE.INVALIDATETAG", "py-t", target_nodes=node) == 40
        assert rc.execute_command("CACHE.GET", "py:1") is None
    finally:
        rc.close()


PHP_CLUSTER = r"""
$rc = new RedisCluster(NULL, ['127.0.0.1:' . $argv[1]], 2.0, 5.0);
for ($i = 0; $i < 40; $i++) {
    // Keyed: the first argument routes the call (by slot).
    $rc->rawCommand("php:$i", 'CACHE.SETTAGGED', "php:$i", 'v', 'TAGS', 'php-t');
}
// Keyless: any one primary, named by [host, port]; the module fans out itself.
$node = $rc->_masters()[0];
echo $rc->rawCommand($node, 'CACHE.INVALIDATETAG', 'php-t'), "\n";
var_dump($rc->rawCommand('php:1', 'CACHE.GET', 'php:1'));
"""


def test_phpredis_cluster_client(cl, tmp_path):
    import shutil
    import subprocess
    php = shutil.which("php")
    if not php or "redis" not in subprocess.run([php, "-m"], capture_output=True, text=True).stdout:
        pytest.skip("php with the redis extension is not installed")
    script = tmp_path / "c.php"
    script.write_text("<?php\n" + PHP_CLUSTER)
    out = subprocess.run([php, str(script), str(cl.primaries()[0].port)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["40", "NULL"], out.stdout


NODE_CLUSTER = r"""
const { createCluster } = require('redis');
(async () => {
  const c = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:' + process.argv[2] }] });
  await c.connect();
  for (let i = 0; i < 40; i++) {
    // Keyed: the key (first argument) routes the call.
    await c.sendCommand('node:' + i, false, ['CACHE.SETTAGGED', 'node:' + i, 'v', 'TAGS', 'node-t']);
  }
  // Keyless: one primary is enough; the module fans out itself.
  const client = await c.nodeClient(c.masters[0]);
  console.log(await client.sendCommand(['CACHE.INVALIDATETAG', 'node-t']));
  console.log(await c.sendCommand('node:1', true, ['CACHE.GET', 'node:1']));
  await c.close();
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_node_redis_cluster_client(cl, tmp_path):
    import shutil
    import subprocess
    from pathlib import Path
    modules = Path(__file__).resolve().parent.parent / "examples" / "node" / "node_modules"
    node = shutil.which("node")
    if not node or not (modules / "redis").is_dir():
        pytest.skip("node-redis not installed (npm ci in examples/node)")
    script = modules.parent / "_cluster_probe.js"
    script.write_text(NODE_CLUSTER)
    try:
        out = subprocess.run([node, str(script), str(cl.primaries()[0].port)], capture_output=True,
                             text=True, timeout=60)
    finally:
        script.unlink()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["40", "null"], out.stdout


def test_valkey_atomic_slot_migration_is_refused_not_half_handled(cl):
    """The module does not declare atomic slot migration support (README: why), so Valkey 9
    refuses CLUSTER MIGRATESLOTS rather than moving entries past the invalidation guarantees."""
    p0, p1 = cl.primaries()[0], cl.primaries()[1]
    r = cl.c(p0).cmd("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 0, 0, "NODE", cl.id(p1))
    if isinstance(r, Err) and "unknown subcommand" in r.msg.lower():
        pytest.skip("no atomic slot migration on this server")
    assert isinstance(r, Err) and "does not support atomic slot migration" in r.msg, r


def check_cluster_index(cl, tags):
    """On every node: each entry's CACHE.TAGS agrees with TAGSCAN LOCAL, STATS LOCAL entries
    with the keyspace."""
    for s in cl.nodes:
        if not s.alive():
            continue
        c = cl.fresh(s)
        keys = []
        cursor = b"0"
        while True:
            cursor, batch = c.cmd("SCAN", cursor, "COUNT", 1000)
            keys += batch
            if cursor == b"0":
                break
        by_tag = {}
        for k in keys:
            for t in ok(c.cmd("CACHE.TAGS", k)):
                by_tag.setdefault(t, set()).add(k)
        for t in tags:
            t = t.encode()
            page = ok(c.cmd("CACHE.TAGSCAN", t, 0, "COUNT", 100000, "LOCAL"))
            assert set(page[1]) == by_tag.get(t, set()), (s.name, t)
        assert dict(pairs(c.cmd("CACHE.STATS", "LOCAL")))[b"entries"] == len(keys), s.name
        c.close()


def migrate_slot(cl, slot, src, dst, writer=None):
    sid, did = cl.id(src), cl.id(dst)
    ok(cl.c(dst).cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", sid))
    ok(cl.c(src).cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", did))
    while True:
        keys = cl.c(src).cmd("CLUSTER", "GETKEYSINSLOT", slot, 10)
        if writer:
            writer()
        if not keys:
            break
        ok(cl.c(src).cmd("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys))
    for s in cl.primaries():
        ok(cl.c(s).cmd("CLUSTER", "SETSLOT", slot, "NODE", did))
    cl.slots = None


def test_resharding_under_a_writer_keeps_the_index_exact(cl):
    prefix = "rs{a}"  # one slot for every key
    slot = key_slot(b"a")
    src, _ = cl.owner(f"{prefix}:0")
    dst = [p for p in cl.primaries() if p is not src][0]
    keys = [f"{prefix}:{i}" for i in range(300)]
    for i, k in enumerate(keys):
        cl.set(k, "v", [f"r{i % 5}", "rall"])
    written = [0]

    def writer():
        # Writes during the migration go where the cluster sends them (ASK during migration).
        for _ in range(10):
            i = written[0] % 300
            written[0] += 1
            k = keys[i]
            r = cl.c(src).cmd("CACHE.SETTAGGED", k, "w", "TAGS", f"r{i % 5}", "rall")
            if isinstance(r, Err) and r.msg.startswith("ASK"):
                c = cl.fresh(dst)
                c.cmd("ASKING")
                r = c.cmd("CACHE.SETTAGGED", k, "w", "TAGS", f"r{i % 5}", "rall")
                c.close()
            assert r == OK, r

    migrate_slot(cl, slot, src, dst, writer)
    cl.wait_ok()
    cl.sync()
    assert cl.owner(keys[0])[0] is dst
    check_cluster_index(cl, [f"r{i}" for i in range(5)] + ["rall"])
    assert cl.c(src).cmd("CACHE.INVALIDATETAG", "rall") == 300
    migrate_slot(cl, slot, dst, src)
    cl.wait_ok()


def test_invalidation_racing_a_migration_leaves_no_survivor(cl):
    """The forced interleaving: the entry is dumped from its old owner before an invalidation
    runs and restored on its new owner after the invalidation ran there (what MIGRATE does when
    the invalidation reaches the target first and the source after the key left)."""
    cases = [("INVALIDATETAG", "race-t0", [], "race-t0"),
             ("INVALIDATETAG", "race1-*", ["SOFT"], "race1-x"),
             ("INVALIDATE", "race:2*", [], "race-t2")]
    for n, (cmd, arg, opts, tag) in enumerate(cases):
        key = f"race:{n}"
        src, _ = cl.owner(key)
        dst = [p for p in cl.primaries() if p is not src][0]
        cl.set(key, "old", [tag])
        dump = cl.c(src).cmd("DUMP", key)
        slot = key_slot(key.encode())
        ok(cl.c(dst).cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", cl.id(src)))
        ok(cl.c(src).cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", cl.id(dst)))
        # Sent to the target: it has nothing yet; the source invalidates its copy.
        assert cl.c(dst).cmd("CACHE." + cmd, arg, *opts) == 1, cmd
        c = cl.fresh(dst)
        c.cmd("ASKING")
        assert c.cmd("RESTORE", key, 0, dump, "REPLACE") == OK
        c.close()
        cl.c(src).cmd("DEL", key)  # what MIGRATE does after the target restored the key
        for s in cl.primaries():
            ok(cl.c(s).cmd("CLUSTER", "SETSLOT", slot, "NODE", cl.id(dst)))
        cl.slots = None
        cl.wait_ok()
        cl.sync()
        if "SOFT" in opts:
            assert set(cl.states(key).values()) == {b"STALE", b"SERVED"}, cl.states(key)
            ok(cl.on_owner(key, "DEL", key))
        else:
            assert cl.served_anywhere(key) == [], key
            wait_until(lambda: cl.on_owner(key, "EXISTS", key) == 0, timeout=10,
                       what="the dead arrival swept")
        migrate_slot(cl, slot, dst, src)
        cl.wait_ok()
    # An entry arriving after the window (2 x cache.cluster-timeout-ms + 1 s) is kept.
    time.sleep(2 * TIMEOUT_MS / 1000 + 1.3)
    key = "race:late"
    src, _ = cl.owner(key)
    cl.set(key, "v", ["race-t0"])
    dst = [p for p in cl.primaries() if p is not src][0]
    migrate_slot(cl, key_slot(key.encode()), src, dst)
    cl.wait_ok()
    assert cl.owner(key)[0] is dst
    assert cl.on_owner(key, "CACHE.GET", key) == b"v"
    assert cl.c(src).cmd("CACHE.INVALIDATETAG", "race-t0") == 1


def test_stopped_primary_gives_incomplete_then_converges(cl):
    keys = fill(cl, "stop", 90, lambda i: ["stop-t"])
    share = spread(cl, keys)
    victim = cl.primaries()[2]
    vid = cl.id(victim)
    asker = cl.primaries()[0]
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = cl.c(asker).cmd("CACHE.INVALIDATETAG", "stop-t")
        elapsed = time.monotonic() - t0
        done = 90 - share[victim.name]
        assert isinstance(r, Err), r
        assert r.msg.startswith(f"INCOMPLETE {done} entries invalidated"), r.msg
        assert vid in r.msg, r.msg
        # Within the timeout plus a few hz ticks (generous: the machine is shared).
        assert TIMEOUT_MS / 1000 - 0.05 <= elapsed < TIMEOUT_MS / 1000 + 1.5, elapsed
        r = cl.c(asker).cmd("CACHE.STATS")
        assert isinstance(r, Err) and r.msg.startswith("INCOMPLETE counters of 2 of 3 primaries"), r
        assert vid in r.msg
        # A client that goes away while blocked is forgotten, its handle released once.
        for _ in range(5):
            gone = cl.fresh(asker)
            gone.send("CACHE.INVALIDATETAG", "stop-t")
            gone.close()
        wait_until(lambda: asker.info("cache").get("cache_cluster_in_flight") == "0",
                   timeout=10, what="no cluster-wide command left in flight")
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    # The victim applies the request it was sent when it wakes up; a retry answers in full.
    wait_until(lambda: not isinstance(cl.c(asker).cmd("CACHE.STATS"), Err), timeout=20,
               what="the stopped node answering again")
    assert cl.c(asker).cmd("CACHE.INVALIDATETAG", "stop-t") == 0
    cl.sync()
    for k in keys:
        assert cl.served_anywhere(k) == [], k


def test_manual_failover_then_invalidation_works(cl):
    old = cl.primaries()[1]
    rep = cl.replica_of(old)
    keys = fill(cl, "fo", 90, lambda i: ["fo-t"])
    ok(cl.c(rep).cmd("CLUSTER", "FAILOVER"))
    wait_until(lambda: cl.role(rep) == "master" and cl.role(old) == "slave", timeout=30,
               what="manual failover")
    cl.wait_ok()
    first, *rest = cl.primaries()
    assert cl.c(first).cmd("CACHE.INVALIDATETAG", "fo-t") == 90
    for s in rest:
        assert cl.c(s).cmd("CACHE.INVALIDATETAG", "fo-t") == 0
    cl.sync()
    for k in keys:
        assert cl.served_anywhere(k) == [], k
    keys = fill(cl, "fo", 90, lambda i: ["fo-t"])
    assert cl.c(rep).cmd("CACHE.INVALIDATETAG", "fo-t") == 90


def test_killed_primary_replaced_then_invalidation_works(cl):
    keys = fill(cl, "k9", 90, lambda i: ["k9-t"])
    victim = cl.primaries()[0]
    vid = cl.id(victim)
    cl.sync()
    victim.kill9()
    del cl.conns[victim.name]
    alive = [s for s in cl.nodes if s.alive()]
    wait_until(lambda: all("cluster_state:ok" in cl.c(s).cmd("CLUSTER", "INFO").decode()
                           for s in alive) and len(cl.primaries()) == 3,
               timeout=60, interval=0.2, what="a replica promoted")
    cl.slots = None
    asker = cl.primaries()[0]
    # The failed primary owns no slots now: it is not waited for.
    assert cl.c(asker).cmd("CACHE.INVALIDATETAG", "k9-t") == 90
    for k in keys:
        assert cl.served_anywhere(k) == [], k
    assert vid not in str(cl.c(asker).cmd("CACHE.STATS"))
