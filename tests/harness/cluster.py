"""A local Redis Cluster of harness servers, with the routing helpers the tests use.

tests/test_cluster.py shares one (3 primaries, 3 replicas) between its tests; the benchmark's
cluster section starts one without replicas.
"""

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from redis.crc import key_slot

from .resp import OK, Err, RawClient, pairs
from .server import Server, free_port, wait_until

TIMEOUT_MS = 600
NODE_TIMEOUT_MS = 6000


def slot_ranges(n):
    """The slot ranges of n primaries, split as redis-cli --cluster create does (3: 0-5460,
    5461-10922, 10923-16383)."""
    out, first, cursor = [], 0, 0.0
    for i in range(n):
        last = 16383 if i == n - 1 else max(first, min(16383, round(cursor + 16384 / n - 1)))
        out.append((first, last))
        cursor += 16384 / n
        first = last + 1
    return out


class ClusterUnsupported(RuntimeError):
    """The server binary cannot form a cluster here (e.g. built without cluster support)."""


def _ok(reply):
    assert not isinstance(reply, Err), reply
    return reply


class Cluster:
    """`primaries` primaries (slots split evenly) with `replicas` replicas each, the module loaded
    on every node, nodes n0..n{k} in dirs under `base` (a temporary dir when None). `node_class`
    makes each node (a harness Server or a subclass, called with keyword arguments)."""

    def __init__(self, base=None, primaries=3, replicas=1, module=None,
                 module_args=("cache.cluster-timeout-ms", str(TIMEOUT_MS)),
                 node_timeout_ms=NODE_TIMEOUT_MS, extra_args=(), node_class=Server):
        self.owns_base = base is None
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="cache-cluster-"))
        self.n_primaries = primaries
        self.nodes = []
        self.cports = []
        for i in range(primaries * (1 + replicas)):
            self.cports.append(free_port())
            s = node_class(dir=self.base / f"n{i}", name=f"n{i}", module=module,
                           module_args=module_args,
                           extra_args=["--cluster-enabled", "yes",
                                       "--cluster-config-file", "nodes.conf",
                                       "--cluster-node-timeout", str(node_timeout_ms),
                                       "--cluster-port", str(self.cports[-1]),
                                       "--cluster-allow-replica-migration", "no",
                                       "--appendonly", "no", *extra_args])
            self.nodes.append(s)
        self.conns = {}
        self.slots = None

    def start(self):
        """Starts every node and forms the cluster; raises ClusterUnsupported when the server
        cannot be a cluster node here."""
        for s in self.nodes:
            s.start()
        n = self.n_primaries
        primaries, replicas = self.nodes[:n], self.nodes[n:]
        bounds = slot_ranges(n)
        for s, (lo, hi) in zip(primaries, bounds):
            r = self.c(s).cmd("CLUSTER", "ADDSLOTSRANGE", lo, hi)
            if isinstance(r, Err):
                raise ClusterUnsupported(f"{s.binary} cannot form a cluster here: {r.msg}")
        for s in self.nodes[1:]:
            _ok(self.c(s).cmd("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port, self.cports[0]))
        wait_until(lambda: all(len(self.c(s).cmd("CLUSTER", "NODES").splitlines()) == len(self.nodes)
                               for s in self.nodes), timeout=30, what="every node meets every other")
        for i, r in enumerate(replicas):
            pid = self.id(primaries[i % n])
            wait_until(lambda: not isinstance(self.c(r).cmd("CLUSTER", "REPLICATE", pid), Err),
                       timeout=30, what="CLUSTER REPLICATE")
        self.wait_ok()
        return self

    def c(self, s):
        """A raw connection to node s (READONLY, so replicas serve reads of their slots)."""
        c = self.conns.get(s.name)
        if c is None:
            c = RawClient(s.port, timeout=30)
            c.cmd("READONLY")
            self.conns[s.name] = c
        return c

    def fresh(self, s):
        c = RawClient(s.port, timeout=30)
        c.cmd("READONLY")
        return c

    def id(self, s):
        return self.c(s).cmd("CLUSTER", "MYID").decode()

    def role(self, s):
        return self.c(s).cmd("ROLE")[0].decode()

    def primaries(self):
        return [s for s in self.nodes if s.alive() and self.role(s) == "master"
                and self.owns_slots(s)]

    def replicas(self):
        return [s for s in self.nodes if s.alive() and self.role(s) == "slave"]

    def owns_slots(self, s):
        me = self.id(s)
        return any(line.split()[0] == me and len(line.split()) > 8
                   for line in self.c(s).cmd("CLUSTER", "NODES").decode().splitlines())

    def wait_ok(self, timeout=60):
        def healthy():
            for s in self.nodes:
                if not s.alive():
                    continue
                info = self.c(s).cmd("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
            for r in self.replicas():
                rep = r.info("replication")
                if rep.get("master_link_status") != "up":
                    return False
            # Every node sees the same slot owners, and every replica under its primary.
            pairs_want = {(self.c(r).cmd("ROLE")[2], r.port) for r in self.replicas()}
            views = set()
            for s in self.nodes:
                if not s.alive():
                    continue
                view = self.c(s).cmd("CLUSTER", "SLOTS")
                views.add(str(sorted((r[0], r[1], r[2][1]) for r in view)))
                if {(r[2][1], x[1]) for r in view for x in r[3:]} != pairs_want:
                    return False
            if len(views) != 1:
                return False
            # Every cluster-bus link up: a cluster-wide STATS answers in full everywhere.
            if any(isinstance(self.c(s).cmd("CACHE.STATS"), Err) for s in self.nodes if s.alive()):
                return False
            return len(self.primaries()) == self.n_primaries and len(self.replicas()) == len(
                [s for s in self.nodes if s.alive()]) - 3
        wait_until(healthy, timeout=timeout, interval=0.2, what="cluster_state:ok, replicas in sync")
        self.slots = None

    def owner(self, key):
        """The node serving key's slot, from a fresh CLUSTER SLOTS view when needed."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for _ in range(2):
            if self.slots is None:
                view = None
                for s in self.nodes:
                    if s.alive():
                        view = self.c(s).cmd("CLUSTER", "SLOTS")
                        break
                by_port = {s.port: s for s in self.nodes}
                self.slots = [(r[0], r[1], by_port[r[2][1]], [by_port[x[1]] for x in r[3:]])
                              for r in view]
            for lo, hi, p, reps in self.slots:
                if lo <= slot <= hi:
                    return p, reps
            self.slots = None
        raise AssertionError(f"no owner for slot {slot}")

    def on_owner(self, key, *cmd):
        for _ in range(5):
            p, _ = self.owner(key)
            reply = self.c(p).cmd(*cmd)
            if isinstance(reply, Err) and reply.msg.startswith(("MOVED", "ASK", "TRYAGAIN")):
                self.slots = None
                time.sleep(0.05)
                continue
            return reply
        raise AssertionError(f"could not route {cmd}")

    def set(self, key, value, tags, *opts):
        reply = self.on_owner(key, "CACHE.SETTAGGED", key, value, *opts, "TAGS", *tags)
        assert reply == OK, (key, reply)

    def sync(self):
        """Every primary's stream reached its replicas."""
        for p in self.primaries():
            n = int(p.info("replication").get("connected_slaves", "0"))
            if n:
                assert self.c(p).cmd("WAIT", n, 5000) == n, p.name

    def replica_of(self, p):
        return [r for r in self.replicas() if self.c(r).cmd("ROLE")[2] == p.port][0]

    def local_entries(self, s):
        return dict(pairs(self.c(s).cmd("CACHE.STATS", "LOCAL")))[b"entries"]

    def served_anywhere(self, key):
        """The nodes (owner primary and its replicas) that still serve `key` by CACHE.GET."""
        p, reps = self.owner(key)
        return [s.name for s in [p, *reps] if s.alive() and self.c(s).cmd("CACHE.GET", key) is not None]

    def states(self, key):
        """GETORMARK's state on the owner (a write command: replicas redirect it), and on each
        replica whether CACHE.GET serves the value (SOFT keeps it, stale)."""
        p, reps = self.owner(key)
        out = {p.name: self.c(p).cmd("CACHE.GETORMARK", key)[0]}
        for r in reps:
            if r.alive():
                got = self.c(r).cmd("CACHE.GET", key)
                assert not isinstance(got, Err), got
                out[r.name] = b"SERVED" if got is not None else None
        return out

    def close(self):
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass
        for s in reversed(self.nodes):
            try:
                if s.alive():
                    os.kill(s.proc.pid, signal.SIGCONT)
                s.stop(save=False)
            except Exception:
                s.kill9()
        self.conns = {}
        if self.owns_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
