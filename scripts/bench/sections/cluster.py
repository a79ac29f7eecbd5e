"""Section 9: cluster-wide INVALIDATETAG on a 3-primary cluster against a client loop over the
primaries (LOCAL), and the reclaim of a large tag spread over the shards."""
import os
import time

import common
from common import BenchServer, PingProbe, bulk_load, log, module_check, resp
from harness.cluster import Cluster

LABEL = "9 cluster"


def start_cluster(n=3):
    """n primaries with the module (the tests' cluster builder, no replicas), slots split as
    redis-cli does, cluster_state:ok and every bus link up (a cluster-wide STATS answers)."""
    cl = Cluster(primaries=n, replicas=0, module=common.MODULE, module_args=(),
                 node_timeout_ms=15000, node_class=BenchServer)
    try:
        return cl.start()
    except BaseException:
        cl.close()
        raise


def shard_tags(cl):
    """One hash tag per node whose slot that node serves."""
    tags, i = {}, 0
    while len(tags) < len(cl.nodes):
        t = f"s{i}"
        owner, _ = cl.owner(t)
        tags.setdefault(owner.name, t)
        i += 1
    return [tags[s.name] for s in cl.nodes]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(S, res):
    reps = S.get("cluster_reps", 300)
    big = S.get("cluster_big", 30000)
    if not os.path.exists(common.MODULE):
        res.error("module half", "module file not found: " + common.MODULE)
        return
    log("  starting a cluster of 3 primaries")
    cl = start_cluster(3)
    nodes = cl.nodes
    try:
        if not module_check(nodes[0], res):
            return
        rs = [srv.client() for srv in nodes]
        tags = shard_tags(cl)
        small = 4  # entries per shard in the small tag

        def fill_small():
            for r, t in zip(rs, tags):
                p = r.pipeline(transaction=False)
                for i in range(small):
                    p.execute_command("CACHE.SETTAGGED", f"{{{t}}}:small:{i}", "v", "TAGS", "small")
                p.execute()

        wide, loop = [], []
        for rep in range(reps):
            fill_small()
            t0 = time.perf_counter()
            n = rs[rep % 3].execute_command("CACHE.INVALIDATETAG", "small")
            wide.append((time.perf_counter() - t0) * 1000)
            if n != small * 3:
                raise RuntimeError(f"cluster-wide INVALIDATETAG answered {n}, want {small * 3}")
            fill_small()
            t0 = time.perf_counter()
            n = sum(r.execute_command("CACHE.INVALIDATETAG", "small", "LOCAL") for r in rs)
            loop.append((time.perf_counter() - t0) * 1000)
            if n != small * 3:
                raise RuntimeError(f"client loop answered {n}, want {small * 3}")
        retries = sum(int(r.info("cache").get("cache_cluster_send_retries", 0)) for r in rs)
        note = (f"{reps} calls, tag of {small * 3} entries over 3 primaries, from each primary in turn; "
                f"{retries} sends retried")
        res.add("cluster-wide INVALIDATETAG p50", pct(wide, 50), unit="ms", note=note)
        res.check("cluster-wide INVALIDATETAG p99", pct(wide, 99), "<", 2.0, unit="ms", note=note)
        res.add("client loop over primaries (LOCAL) p50", pct(loop, 50), unit="ms",
                note="what a client does today: one call per primary, in turn")
        res.add("client loop over primaries (LOCAL) p99", pct(loop, 99), unit="ms")

        # The reclaim of a large tag spread over the shards: worst PING round trip per node.
        per = big // 3
        for srv, t in zip(nodes, tags):
            bulk_load(srv.port, lambda i, t=t: resp("CACHE.SETTAGGED", f"{{{t}}}:big:{i}", "v", "TAGS", "big"),
                      per, label=f"load {srv.port}")
        # Control: the same probes on the idle cluster (what this machine's load alone gives).
        probes = [PingProbe(srv.port) for srv in nodes]
        time.sleep(S["control_secs"])
        control = [pr.stop() for pr in probes]
        res.add("  control: worst PING per node, idle cluster", max(o["max_ms"] for o in control),
                unit="ms", note=f"{S['control_secs']} s; " + ", ".join(f"{o['max_ms']:.1f}" for o in control) + " ms")
        probes = [PingProbe(srv.port) for srv in nodes]
        time.sleep(0.3)
        t0 = time.perf_counter()
        n = rs[0].execute_command("CACHE.INVALIDATETAG", "big")
        call_ms = (time.perf_counter() - t0) * 1000
        deadline = time.time() + S["reclaim_timeout"]
        while time.time() < deadline:
            if all(r.execute_command("DBSIZE") == 0 for r in rs):
                break
            time.sleep(0.05)
        reclaim_s = time.perf_counter() - t0
        out = [pr.stop() for pr in probes]
        res.check(f"INVALIDATETAG of {per * 3:,} entries over 3 shards answers", n, "==", per * 3)
        res.add("  its call latency", call_ms, unit="ms")
        res.add("  reclaimed in", reclaim_s, unit="s")
        res.add("  worst PING per node during the reclaim", max(o["max_ms"] for o in out), unit="ms",
                note=", ".join(f"{o['max_ms']:.1f}" for o in out) + " ms; compare section 3's single node")
    finally:
        cl.close()
