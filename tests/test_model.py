"""Model-based randomized testing: random operation sequences against a real redis-server with
the module, every reply compared with tests/model.py.

Time is real. Every boundary an operation creates (fresh-until, key expiry, lease protection) is
aimed at a point of a 250 ms grid, and the driver never sends a command while the clock is within
a margin (30 ms, widened by the creating command's own latency) of a boundary: so every
time-dependent outcome is exact. A command that was slow enough to run into such a zone anyway is
checked against the model at both ends of its window.

    pytest tests/test_model.py                         # >= 10,000 ops, seeds printed
    python tests/test_model.py --ops 1000000 --seed 7  # a long run (scripts/model_long.sh)
    MODEL_SEED=7 pytest tests/test_model.py            # replay a seed
"""

import argparse
import copy
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import OK, Err, RawClient, Server, fields  # noqa: E402
from model import INF, Model  # noqa: E402

GRID, MARGIN, GUARD = 250, 30, 8
NDBS = 3
MAX_TAGS = 6
LEASE_DEFAULT = 86_400_000
KEYS = [b"a:1", b"a:2", b"a:3", b"b:1", b"b:2", b"c", b"", b"\x00bin:\xff"]
TAGS = [b"t1", b"t2", b"t3", b"g:a", b"g:b", b"\x00t"]
KEY_PATTERNS = [b"*", b"a:*", b"b:*", b"*1", b"?:2", b"[ab]:[1-2]", b"[^a]*", b"a\\:1",
                b"c", b"nomatch*", b"*:*", b"\x00*"]
TAG_PATTERNS = [b"t*", b"t[12]", b"g:?", b"*", b"[^t]*", b"nomatch", b"g*b"]
SERVER_ARGS = ["--databases", "4", "--cache.early-beta", "0", "--cache.max-tags", str(MAX_TAGS),
               "--cache.lease-ms", str(LEASE_DEFAULT)]


def now_ms():
    return time.time() * 1000.0


class Zones:
    """Time intervals in which some boundary may lie, bucketed by grid cell."""

    def __init__(self):
        self.cells = {}
        self.slept = 0.0

    def add(self, lo, hi):
        start, end = lo - MARGIN, hi + MARGIN
        for k in range(int(start // GRID), int(end // GRID) + 1):
            zs = self.cells.setdefault(k, [])
            for i, (s, e) in enumerate(zs):
                if s <= end and e >= start:  # overlapping: merge
                    zs[i] = (min(s, start), max(e, end))
                    break
            else:
                zs.append((start, end))

    def hit(self, t0, t1):
        for k in range(int(t0 // GRID), int(t1 // GRID) + 1):
            for z in self.cells.get(k, ()):
                if z[0] <= t1 and z[1] >= t0:
                    return z
        return None

    def wait_clear(self, need=0.0):
        """Sleeps until [now, now + need + GUARD] touches no zone; returns the time."""
        while True:
            t = now_ms()
            z = self.hit(t, t + need + GUARD)
            if z is None:
                return t
            pause = max(z[1] - t, 0) / 1000.0 + 0.0005
            self.slept += pause
            time.sleep(pause)

    def prune(self):
        limit = now_ms() // GRID - 4
        for k in [k for k in self.cells if k < limit]:
            del self.cells[k]


class Divergence(AssertionError):
    pass


class Driver:
    def __init__(self, conn, seed, log=print):
        self.c, self.seed, self.log = conn, seed, log
        self.rng = random.Random(seed)
        self.model = Model(ndbs=NDBS, max_tags=MAX_TAGS, lease_ms=LEASE_DEFAULT, margin=MARGIN)
        self.model.past_expire_voids_lease = b"valkey_version" not in conn.cmd(b"INFO", b"server")
        self.zones = Zones()
        self.db = 0
        self.tokens = []          # every token seen (reused as stale tokens)
        self.unsure_stats = set()  # dbs whose counters a crossing command made ambiguous
        self.ops = 0
        self.crossings = 0
        self.kinds = {}
        self.outcomes = {}
        self.slept = 0.0
        self.c.cmd("SELECT", 0)

    # -- random inputs ---------------------------------------------------------------------
    def key(self):
        return self.rng.choice(KEYS)

    def value(self):
        r = self.rng.random()
        if r < 0.1:
            return b""
        if r < 0.3:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 24)))
        return b"v%d" % self.rng.randrange(1000)

    def word(self, w):
        r = self.rng.random()
        if r < 0.7:
            return w
        if r < 0.85:
            return w.lower()
        return bytes(c ^ 0x20 if self.rng.random() < 0.5 and chr(c).isalpha() else c for c in w)

    def aligned(self, lo_cells=1, hi_cells=8):
        """A future grid point, at least one cell away."""
        now = now_ms()
        k = math.floor(now / GRID) + self.rng.randint(lo_cells + 1, hi_cells + 1)
        return k * GRID, k * GRID - now

    def pick_db(self):
        return self.rng.choices(range(NDBS), weights=(6, 3, 2))[0]

    # -- operations: each returns (commands, model function(model, now, replies) -> expected) --
    def op_settagged(self, d):
        key, value = self.key(), self.value()
        cmd = [b"CACHE.SETTAGGED", key, value]
        kw = {}
        opts = []
        r = self.rng.random()
        if r < 0.3:
            _, px = self.aligned()
            px = math.ceil(px)
            opts.append([self.word(b"PX"), px])
            kw["fresh"] = ("PX", px)
        elif r < 0.4:
            opts.append([self.word(b"PX"), 100_000_000])
            kw["fresh"] = ("PX", 100_000_000)
        elif r < 0.45:
            opts.append([self.word(b"EX"), 100_000])
            kw["fresh"] = ("EX", 100_000)
        elif r < 0.55:
            at, _ = self.aligned()
            if self.rng.random() < 0.3:
                at -= GRID * self.rng.randint(2, 12)  # already stale, maybe already expired
            opts.append([self.word(b"PXAT"), int(at)])
            kw["fresh"] = ("PXAT", int(at))
        elif r < 0.6:
            s = math.ceil(now_ms() / 1000) + self.rng.randint(1, 3)
            opts.append([self.word(b"EXAT"), s])
            kw["fresh"] = ("EXAT", s)
        elif r < 0.65:
            opts.append([self.word(b"PERSIST")])
            kw["fresh"] = ("PERSIST",)
        r = self.rng.random()
        if r < 0.25:
            s = self.rng.randint(0, 2)
            opts.append([self.word(b"STALE"), s])
            kw["stale_ms"] = s * 1000
        elif r < 0.55:
            ms = GRID * self.rng.randint(0, 6)
            opts.append([self.word(b"PSTALE"), ms])
            kw["stale_ms"] = ms
        if self.rng.random() < 0.1:
            opts.append([self.word(b"COST"), self.rng.randint(0, 1000)])
        if self.rng.random() < 0.45:
            lease = self.lease_token(d, key)
            opts.append([self.word(b"LEASE"), lease])
            kw["lease"] = lease
        if self.rng.random() < 0.08:
            opts.append([self.word(b"KEEPTTL")])
            kw["keepttl"] = True
        self.rng.shuffle(opts)
        for o in opts:
            cmd += o
        if self.rng.random() < 0.7:
            n = MAX_TAGS + 1 if self.rng.random() < 0.02 else self.rng.randint(0, 4)
            tags = (self.rng.sample(TAGS, min(n, len(TAGS))) + [b"x%d" % i for i in range(n)])[:n]
            if tags and self.rng.random() < 0.2:
                tags.append(tags[0])  # duplicates count once
            cmd += [self.word(b"TAGS")] + tags
            kw["tags"] = tags
        err = None
        r = self.rng.random()
        if r < 0.01:
            cmd += [b"BOGUS"] if "tags" not in kw else []
            err = Err("ERR syntax error") if "tags" not in kw else None
        elif r < 0.02 and "fresh" not in kw and "tags" not in kw:
            cmd += [b"PX", 0]
            err = Err("ERR invalid expire time in 'cache.settagged' command")
        elif r < 0.03 and "tags" not in kw:
            cmd += [b"EX", b"1x"]
            err = Err("ERR value is not an integer or out of range")
        if err is not None:
            return [cmd], lambda m, now, rep: [err]
        return [cmd], lambda m, now, rep: [m.settagged(d, key, value, now, rep[0], **kw)]

    def lease_token(self, d, key):
        r = self.rng.random()
        lease = self.model.dbs[d].leases.get(key)
        if lease is not None and lease.token and r < 0.6:
            return lease.token
        if self.tokens and r < 0.85:
            return self.rng.choice(self.tokens[-50:])
        if r < 0.95:
            return b"%016x" % self.rng.getrandbits(64)
        return self.rng.choice([b"", b"xyz", b"+123456789abcdeg", b"\x00" * 16])

    def op_get(self, d):
        key = self.key()
        return [[b"CACHE.GET", key]], lambda m, now, rep: [m.get(d, key, now)]

    def op_getormark(self, d):
        key = self.key()
        cmd = [b"CACHE.GETORMARK", key]
        kw = {}
        if self.rng.random() < 0.6:
            _, ms = self.aligned(0, 6)
            ms = math.ceil(ms)
            cmd += [self.word(b"LEASE"), ms]
            kw["lease_ms"] = ms
        if self.rng.random() < 0.2:
            cmd += [self.word(b"WAIT"), 0]
        elif self.rng.random() < 0.03:
            # Blocks only when PENDING; the zone check covers the wait.
            t = now_ms()
            if self.zones.hit(t, t + 40 + GUARD) is None:
                cmd += [self.word(b"WAIT"), 15]
        if self.rng.random() < 0.01:
            cmd[2:] = [b"LEASE", self.rng.choice([0, -1, 86_400_001])]
            return [cmd], lambda m, now, rep: [Err("ERR invalid lease time")]

        def model(m, now, rep):
            exp = m.getormark(d, key, now, rep[0], **kw)
            if isinstance(exp, list) and exp[2] is not None:
                self.tokens.append(exp[2])
            return [exp]
        return [cmd], model

    def op_invalidate(self, d):
        pat = self.rng.choice(KEY_PATTERNS + KEYS)
        soft = self.rng.random() < 0.4
        cmd = [b"CACHE.INVALIDATE", pat] + ([self.word(b"SOFT")] if soft else [])
        return [cmd], lambda m, now, rep: [m.invalidate(d, pat, soft, now)]

    def op_invalidatetag(self, d):
        pat = self.rng.choice(TAG_PATTERNS + TAGS + [b"x1", b"none"])
        soft = self.rng.random() < 0.4
        cmd = [b"CACHE.INVALIDATETAG", pat] + ([self.word(b"SOFT")] if soft else [])
        return [cmd], lambda m, now, rep: [m.invalidatetag(d, pat, soft, now)]

    def op_tags(self, d):
        key = self.key()
        return [[b"CACHE.TAGS", key]], lambda m, now, rep: [m.tags(d, key, now)]

    def op_tagscan(self, d):
        tag = self.rng.choice(TAGS)
        match = self.rng.choice([None, b"a:*", b"*2", b"[bc]*"])
        count = self.rng.randint(1, 5)
        return ("tagscan", tag, match, count), None

    def op_del(self, d):
        key = self.key()
        return [[b"DEL", key]], lambda m, now, rep: [m.delete(d, key, now)]

    def op_rename(self, d):
        a, b = self.key(), self.key()
        return [[b"RENAME", a, b]], lambda m, now, rep: [m.rename(d, a, b, now)]

    def op_move(self, d):
        key = self.key()
        to = self.rng.randrange(NDBS)
        return [[b"MOVE", key, to]], lambda m, now, rep: [m.move(d, key, to, now)]

    def op_expire(self, d):
        key = self.key()
        r = self.rng.random()
        if r < 0.5:
            _, ms = self.aligned(0, 6)
            ms = math.ceil(ms)
            cmd, ms_model = [b"PEXPIRE", key, ms], ms
        elif r < 0.7:
            cmd, ms_model = [b"EXPIRE", key, 100_000], 100_000_000
        elif r < 0.85:
            n = self.rng.choice([0, -1, -100])
            cmd, ms_model = [b"EXPIRE", key, n], n
        else:
            n = self.rng.choice([0, -5])
            cmd, ms_model = [b"PEXPIRE", key, n], n
        return [cmd], lambda m, now, rep: [m.pexpire(d, key, ms_model, now)]

    def op_set_plain(self, d):
        key, value = self.key(), self.value()
        return [[b"SET", key, value]], lambda m, now, rep: [m.set_plain(d, key, value, now)]

    def op_stats(self, d):
        if self.rng.random() < 0.05:
            return [[b"CACHE.STATS", self.word(b"RESET")]], \
                lambda m, now, rep: [m.stats_reset(d)]
        return ("stats",), None

    def op_flushdb(self, d):
        return [[b"FLUSHDB"]], lambda m, now, rep: [m.flushdb(d)]

    def op_swapdb(self, d):
        a, b = self.rng.sample(range(NDBS), 2)
        return [[b"SWAPDB", a, b]], lambda m, now, rep: [m.swapdb(a, b)]

    def op_reload(self, d):
        return [[b"DEBUG", b"RELOAD"]], lambda m, now, rep: [m.reload(now)]

    def op_sleep(self, d):
        return ("sleep",), None

    WEIGHTS = {
        "settagged": 25, "get": 10, "getormark": 18, "invalidate": 4, "invalidatetag": 5,
        "tags": 5, "tagscan": 2, "del": 3, "rename": 2, "move": 2, "expire": 3,
        "set_plain": 0.4, "stats": 4, "flushdb": 0.1, "swapdb": 0.3, "reload": 0.1, "sleep": 0.05,
    }

    # -- running ---------------------------------------------------------------------------
    def select(self, d):
        if d != self.db:
            assert self.c.cmd("SELECT", d) == OK
            self.db = d

    def run_compound(self, spec, d):
        """Read-only multi-command checks: a full TAGSCAN, or SCAN (reclaiming expired keys,
        as the model does) followed by CACHE.STATS."""
        if spec[0] == "sleep":
            t = self.zones.wait_clear()
            time.sleep((GRID * self.rng.randint(1, 3) - t % GRID) / 1000.0)
            return
        t0 = self.zones.wait_clear(5)
        if spec[0] == "tagscan":
            _, tag, match, count = spec
            got, cursor, rounds = set(), b"0", 0
            while True:
                cmd = [b"CACHE.TAGSCAN", tag, cursor] + ([b"MATCH", match] if match else []) \
                    + [b"COUNT", count]
                rep = self.c.cmd(*cmd)
                if isinstance(rep, Err):
                    raise Divergence(f"TAGSCAN error {rep}")
                cursor = rep[0]
                got.update(rep[1])
                rounds += 1
                if cursor == b"0" or rounds > 10_000:
                    break
            got = sorted(got)
            t1 = now_ms()
            exp = self.model.tagscan(d, tag, t0, match)
            what = ["TAGSCAN", tag, match]
        else:
            cursor = b"0"
            while True:
                cursor = self.c.cmd("SCAN", cursor, "COUNT", 1000)[0]
                if cursor == b"0":
                    break
            rep = self.c.cmd("CACHE.STATS")
            t1 = now_ms()
            got = fields(rep)
            exp = self.model.stats(d, t0)
            got = {k: got.get(k) for k in exp}
            what = ["CACHE.STATS"]
            if got != exp and d in self.unsure_stats:
                self.log(f"note: counters of db {d} resynced after a crossing command: "
                         f"model {exp} server {got}")
                for k in self.model.dbs[d].stats:
                    self.model.dbs[d].stats[k] = got[k]
                exp = self.model.stats(d, t0)
            self.unsure_stats.discard(d)
        if got != exp:
            if self.zones.hit(t0 - 1, t1 + 1):
                self.crossings += 1
                return  # read-only and ran into a zone: the next check will tell
            raise Divergence(f"{what}: expected {exp!r}, got {got!r}")

    def step(self):
        kind = self.rng.choices(list(self.WEIGHTS), weights=list(self.WEIGHTS.values()))[0]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        d = self.pick_db()
        self.zones.wait_clear()
        self.select(d)
        cmds, fn = getattr(self, "op_" + kind)(d)
        self.ops += 1
        if fn is None:
            return self.run_compound(cmds, d)
        t0 = now_ms()
        if self.zones.hit(t0, t0 + GUARD):
            self.zones.wait_clear(20)
            t0 = now_ms()
        self.c.send_many(cmds)
        replies = [self.c.read() for _ in cmds]
        t1 = now_ms()
        crossing = self.zones.hit(t0 - 1, t1 + 1) is not None
        snapshot = copy.deepcopy((self.model, self.tokens)) if crossing else None
        self.model.new_bounds = []
        expected = fn(self.model, t0, replies)
        if expected != replies and crossing:
            self.crossings += 1
            self.model, self.tokens = snapshot
            self.model.new_bounds = []
            expected = fn(self.model, t1, replies)
        if crossing:
            self.unsure_stats.update(range(NDBS))
        if expected != replies:
            raise Divergence(f"db {d} {cmds!r}: expected {expected!r}, got {replies!r}")
        self.outcome(kind, replies[-1])
        for b, relative in self.model.new_bounds:
            if b != INF and b is not None:
                self.zones.add(b, b + (t1 - t0) if relative else b)
        if self.ops % 500 == 0:
            self.zones.prune()
            if len(self.tokens) > 1000:
                del self.tokens[:-100]

    def outcome(self, kind, rep):
        if isinstance(rep, Err):
            what = rep.split(" ")[0] if not rep.startswith("ERR") else rep[:22]
        elif kind == "getormark":
            what = rep[0].decode() + ("+token" if rep[2] else "")
        elif kind in ("settagged", "get"):
            what = "nil" if rep is None else "value"
        elif kind in ("invalidate", "invalidatetag"):
            what = "0" if rep == 0 else ">0"
        else:
            return
        k = f"{kind}:{what}"
        self.outcomes[k] = self.outcomes.get(k, 0) + 1

    def run(self, n_ops, max_seconds=None):
        start = time.time()
        for i in range(n_ops):
            try:
                self.step()
            except Divergence as e:
                raise Divergence(f"seed {self.seed}, op {i + 1}: {e}\n"
                                 f"replay: python tests/test_model.py --seed {self.seed} "
                                 f"--ops {i + 1}") from None
            if max_seconds and time.time() - start > max_seconds:
                break
        # A final full check of every database.
        for d in range(NDBS):
            self.select(d)
            self.run_compound(("stats",), d)
        return time.time() - start


def run_seed(seed, n_ops, max_seconds=None, log=print, server_args=()):
    with Server(extra_args=SERVER_ARGS + list(server_args)) as srv:
        conn = RawClient(srv.port)
        try:
            drv = Driver(conn, seed, log=log)
            secs = drv.run(n_ops, max_seconds)
            assert srv.alive(), "server died"
            return drv, secs
        finally:
            conn.close()


def test_model_random_sequences():
    seeds = ([int(os.environ["MODEL_SEED"])] if "MODEL_SEED" in os.environ
             else [random.SystemRandom().randrange(1 << 32) for _ in range(2)])
    total = int(os.environ.get("MODEL_OPS", "12000"))
    per_seed = total // len(seeds)
    done = 0
    for seed in seeds:
        print(f"model seed {seed}, {per_seed} ops")
        drv, secs = run_seed(seed, per_seed)
        print(f"  {drv.ops} ops in {secs:.1f}s, {drv.crossings} crossing commands, "
              f"kinds {drv.kinds}")
        done += drv.ops
    assert done >= 10_000 or "MODEL_OPS" in os.environ


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--max-seconds", type=float, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"model run: seed {seed}, ops {a.ops}", flush=True)
    try:
        drv, secs = run_seed(seed, a.ops, a.max_seconds)
    except Divergence as e:
        print(f"DIVERGENCE: {e}", flush=True)
        return 1
    print(f"model run OK: seed {seed}, ops {drv.ops}, duration {secs:.1f}s, "
          f"{drv.ops / secs:.0f} ops/s, crossing commands {drv.crossings}", flush=True)
    print(f"kinds: {drv.kinds}", flush=True)
    print(f"outcomes: {dict(sorted(drv.outcomes.items()))}", flush=True)
    print(f"slept {drv.zones.slept:.1f}s in zone waits", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def test_invalidatetag_escaped_literal_matches_like_a_pattern():
    """`x\\*y` is a pattern matching only the tag `x*y` (as KEYS would): it must reach the
    entries tagged `x*y`, as the unescaped pattern `x*y` does."""
    with Server() as srv:
        c = RawClient(srv.port)
        assert c.cmd(b"CACHE.SETTAGGED", b"k", b"v", b"TAGS", b"x*y") == OK
        assert c.cmd(b"CACHE.INVALIDATETAG", b"x\\*y") == 1
        assert c.cmd(b"CACHE.TAGS", b"k") == []
        c.close()
