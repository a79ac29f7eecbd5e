"""A reference model of the cache module's semantics (API.md plus the decided behaviour), small
enough to read in one sitting. Every operation takes `now` (Unix ms, the client's clock when the
command was sent) and the server's reply (only to learn the random lease tokens, and to settle the
one outcome that depends on a timer rather than on time: a lease record dropped by the 1 s
housekeeping after its retention ended). It returns the reply the server must have given.

Time-dependent outcomes are made exact by the driver (test_model.py), which never sends a command
while any boundary (fresh-until, expiry, lease protection) is within a margin of the clock.
"""

import re

from harness import OK, Err

INF = float("inf")
COUNTERS = ("hits", "stale_hits", "misses", "pending", "sets", "sets_refused",
            "leases_granted", "invalidations", "invalidated")
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
TOKEN = re.compile(rb"^[0-9a-fA-F]{16}$")
MIN_RETENTION_MS = 60_000
HOUSEKEEPING_MS = 1_100  # the lease collector runs every second


def stringmatch(pat, s):
    """Redis's stringmatchlen (util.c), case-sensitive, byte for byte."""
    skip = [False]

    def at(p):
        return pat[p] if p < len(pat) else 0

    def m(p, i):
        while p < len(pat) and i < len(s):
            c = pat[p]
            if c == 0x2A:  # *
                while p + 1 < len(pat) and pat[p + 1] == 0x2A:
                    p += 1
                if p + 1 == len(pat):
                    return True
                while i < len(s):
                    if m(p + 1, i):
                        return True
                    if skip[0]:
                        return False
                    i += 1
                skip[0] = True
                return False
            elif c == 0x3F:  # ?
                i += 1
            elif c == 0x5B:  # [
                p += 1
                neg = at(p) == 0x5E
                if neg:
                    p += 1
                hit = False
                while True:
                    if at(p) == 0x5C and len(pat) - p >= 2:
                        p += 1
                        hit |= pat[p] == s[i]
                    elif p < len(pat) and pat[p] == 0x5D:
                        break
                    elif p >= len(pat):
                        p -= 1
                        break
                    elif len(pat) - p >= 3 and pat[p + 1] == 0x2D:
                        lo, hi = sorted((_signed(pat[p]), _signed(pat[p + 2])))
                        p += 2
                        hit |= lo <= _signed(s[i]) <= hi
                    else:
                        hit |= pat[p] == s[i]
                    p += 1
                if hit == neg:
                    return False
                i += 1
            else:
                if c == 0x5C and len(pat) - p >= 2:
                    p += 1
                    c = pat[p]
                if c != s[i]:
                    return False
                i += 1
            p += 1
            if i == len(s):
                while p < len(pat) and pat[p] == 0x2A:
                    p += 1
                break
        return p >= len(pat) and i == len(s)

    return pat == b"*" or m(0, 0)


def _signed(b):
    return b - 256 if b > 127 else b


def as_literal(pat):
    """The one string `pat` matches when it has no wildcard (escapes resolved), else None."""
    out, p = bytearray(), 0
    while p < len(pat):
        c = pat[p]
        if c in b"*?[":
            return None
        if c == 0x5C and p + 1 < len(pat):
            out.append(pat[p + 1])
            p += 2
        else:
            out.append(c)
            p += 1
    return bytes(out)


class Entry:
    __slots__ = ("value", "tags", "fresh_until", "expire_at", "plain")

    def __init__(self, value, tags=(), fresh_until=INF, expire_at=None, plain=False):
        self.value, self.tags, self.plain = value, tuple(tags), plain
        self.fresh_until, self.expire_at = fresh_until, expire_at


class Lease:
    __slots__ = ("token", "seq", "protect_until", "keep_until")

    def __init__(self, token, seq, protect_until, keep_until):
        self.token, self.seq = token, seq
        self.protect_until, self.keep_until = protect_until, keep_until


class Db:
    def __init__(self):
        self.keys = {}      # name -> Entry (plain=True: a non-entry string key)
        self.leases = {}    # name -> Lease
        self.voids = []     # (tag or tag pattern, is_pattern, seq) of tag invalidations
        self.stats = dict.fromkeys(COUNTERS, 0)


class Model:
    def __init__(self, ndbs=3, max_tags=64, lease_ms=10_000, margin=30):
        self.dbs = [Db() for _ in range(ndbs)]
        self.max_tags, self.lease_ms, self.margin = max_tags, lease_ms, margin
        self.seq = 0
        self.new_bounds = []  # (time, relative?) of boundaries created by the last operation
        self.count_stats = True  # False: commands come from a primary / the AOF
        # Redis 7.0 reports EXPIRE with a past time as a `del` (a write: the lease is void);
        # Valkey 9 reports it as `expired`, which the module cannot tell from a natural expiry
        # (which keeps the lease, so a refresh in flight may still store). README: Decisions.
        self.past_expire_voids_lease = True

    # -- helpers ---------------------------------------------------------------------------
    def _live(self, db, key, now):
        e = db.keys.get(key)
        if e is not None and e.expire_at is not None and now > e.expire_at:
            del db.keys[key]
            return None
        return e

    def _count(self, db, field, n=1):
        if self.count_stats:
            db.stats[field] += n

    def _bound(self, t, relative=True):
        if t != INF and t is not None:
            self.new_bounds.append((t, relative))

    def _grant(self, db, key, lease_ms, now, token):
        self.seq += 1
        protect = now + lease_ms
        db.leases[key] = Lease(token, self.seq, protect,
                               protect + max(MIN_RETENTION_MS, 10 * lease_ms))
        if lease_ms < 10_000_000:
            self._bound(protect)
        self._count(db, "leases_granted")
        return token

    def _voided(self, db, tag, seq):
        return any(s > seq and (stringmatch(p, tag) if is_pat else p == tag)
                   for p, is_pat, s in db.voids)

    def _redeem(self, db, key, token, tags, now, reply):
        lease = db.leases.get(key)
        if lease is None or not TOKEN.match(token) or lease.token.lower() != token.lower():
            return False
        if now > lease.keep_until + HOUSEKEEPING_MS + self.margin:
            del db.leases[key]          # collected: the token is refused
            return False
        del db.leases[key]              # consumed
        ok = not any(self._voided(db, t, lease.seq) for t in tags)
        if ok and now >= lease.keep_until - self.margin:
            ok = reply == OK         # the collector may or may not have run yet
        return ok

    def _prune_voids(self, db):
        if len(db.voids) > 64:
            oldest = min((l.seq for l in db.leases.values()), default=self.seq)
            db.voids = [v for v in db.voids if v[2] > oldest]

    def _invalidate(self, db, keys, soft, now):
        n = 0
        for k in keys:
            e = self._live(db, k, now)
            if e is None or e.plain:
                continue
            if soft:
                e.fresh_until = min(e.fresh_until, now)
            else:
                del db.keys[k]
            n += 1
        self._count(db, "invalidations")
        self._count(db, "invalidated", n)
        return n

    # -- commands --------------------------------------------------------------------------
    def settagged(self, d, key, value, now, reply, fresh=None, stale_ms=None, cost=None,
                  lease=None, keepttl=False, tags=None):
        """fresh: None | ("PX", ms) | ("EX", s) | ("PXAT", ms) | ("EXAT", s) | ("PERSIST",)."""
        db = self.dbs[d]
        if tags is not None and len(dict.fromkeys(tags)) > self.max_tags:
            return Err(f"ERR too many tags (max {self.max_tags})")
        e = self._live(db, key, now)
        if e is not None and e.plain:
            return Err(WRONGTYPE)
        kind = fresh[0] if fresh else None
        fresh_until = {None: INF, "PERSIST": INF}.get(kind)
        if kind == "PX":
            fresh_until = now + fresh[1]
        elif kind == "EX":
            fresh_until = now + fresh[1] * 1000
        elif kind == "PXAT":
            fresh_until = fresh[1]
        elif kind == "EXAT":
            fresh_until = fresh[1] * 1000
        tag_list = tuple(dict.fromkeys(tags or ()))
        if lease is not None:
            if not self._redeem(db, key, lease, tag_list, now, reply):
                self._count(db, "sets_refused")
                return None
        else:
            db.leases.pop(key, None)
        if keepttl:
            expire_at = e.expire_at if e is not None else None
        else:
            expire_at = None if fresh_until == INF else fresh_until + (stale_ms or 0)
        db.keys[key] = Entry(value, tag_list, fresh_until, expire_at)
        relative = kind in ("PX", "EX")
        self._bound(fresh_until, relative)
        if expire_at != fresh_until:
            self._bound(expire_at, relative and not keepttl)
        self._count(db, "sets")
        return OK

    def get(self, d, key, now):
        db = self.dbs[d]
        e = self._live(db, key, now)
        if e is not None and e.plain:
            return Err(WRONGTYPE)
        if e is None:
            self._count(db, "misses")
            return None
        self._count(db, "hits" if now < e.fresh_until else "stale_hits")
        return e.value

    def getormark(self, d, key, now, reply, lease_ms=None, wait_ms=0):
        db = self.dbs[d]
        e = self._live(db, key, now)
        if e is not None and e.plain:
            return Err(WRONGTYPE)
        lease_ms = lease_ms or self.lease_ms
        lease = db.leases.get(key)
        protected = lease is not None and lease.protect_until > now
        token = reply[2] if isinstance(reply, list) and len(reply) == 3 else None
        if e is not None and now < e.fresh_until:
            self._count(db, "hits")
            return [b"HIT", e.value, None]
        if e is not None:
            self._count(db, "stale_hits")
            if protected:
                return [b"STALE", e.value, None]
            return [b"STALE", e.value, self._grant(db, key, lease_ms, now, token)]
        if protected:
            self._count(db, "pending")  # with WAIT: times out PENDING (nothing else runs)
            return [b"PENDING", None, None]
        self._count(db, "misses")
        return [b"MISS", None, self._grant(db, key, lease_ms, now, token)]

    def invalidate(self, d, pattern, soft, now):
        db = self.dbs[d]
        for k in [k for k in db.leases if stringmatch(pattern, k)]:
            del db.leases[k]
        keys = [k for k in list(db.keys) if stringmatch(pattern, k)]
        return self._invalidate(db, keys, soft, now)

    def invalidatetag(self, d, pattern, soft, now):
        db = self.dbs[d]
        self.seq += 1
        literal = as_literal(pattern)
        if db.leases:
            db.voids.append((literal, False, self.seq) if literal is not None
                            else (pattern, True, self.seq))
            self._prune_voids(db)
        match = (lambda t: t == literal) if literal is not None else \
            (lambda t: stringmatch(pattern, t))
        keys = [k for k, e in db.keys.items() if not e.plain and any(map(match, e.tags))]
        return self._invalidate(db, keys, soft, now)

    def tags(self, d, key, now):
        e = self._live(self.dbs[d], key, now)
        return [] if e is None or e.plain else list(e.tags)

    def tagscan(self, d, tag, now, match=None):
        db = self.dbs[d]
        return sorted(k for k in list(db.keys)
                      if (e := self._live(db, k, now)) is not None and not e.plain
                      and tag in e.tags and (match is None or stringmatch(match, k)))

    def stats(self, d, now):
        db = self.dbs[d]
        live = [e for k in list(db.keys)
                if (e := self._live(db, k, now)) is not None and not e.plain]
        out = dict(db.stats)
        out["entries"] = len(live)
        out["tags"] = len({t for e in live for t in e.tags})
        served = out["hits"] + out["stale_hits"]
        lookups = served + out["misses"]
        out["hit_ratio"] = ("0" if lookups == 0 else
                            f"{served / lookups:.4f}".rstrip("0").rstrip(".")).encode()
        return out

    def stats_reset(self, d):
        self.dbs[d].stats = dict.fromkeys(COUNTERS, 0)
        return OK

    # -- keyspace commands -----------------------------------------------------------------
    def set_plain(self, d, key, value, now):
        db = self.dbs[d]
        db.keys[key] = Entry(value, plain=True)
        db.leases.pop(key, None)
        return OK

    def delete(self, d, key, now):
        db = self.dbs[d]
        if self._live(db, key, now) is None:
            return 0
        del db.keys[key]
        db.leases.pop(key, None)
        return 1

    def pexpire(self, d, key, ms, now):
        db = self.dbs[d]
        e = self._live(db, key, now)
        if e is None:
            return 0
        if ms <= 0:
            if self.past_expire_voids_lease:
                return self.delete(d, key, now)
            del db.keys[key]
            return 1
        e.expire_at = now + ms
        self._bound(e.expire_at)
        return 1

    def rename(self, d, src, dst, now):
        db = self.dbs[d]
        e = self._live(db, src, now)
        if e is None:
            return Err("ERR no such key")
        if src != dst:
            del db.keys[src]
            db.keys[dst] = e
            db.leases.pop(src, None)
            db.leases.pop(dst, None)
        return OK

    def move(self, d, key, to, now):
        if d == to:
            return Err("ERR source and destination objects are the same")
        src, dst = self.dbs[d], self.dbs[to]
        e = self._live(src, key, now)
        if e is None or self._live(dst, key, now) is not None:
            return 0
        del src.keys[key]
        dst.keys[key] = e
        src.leases.pop(key, None)
        dst.leases.pop(key, None)
        return 1

    def flushdb(self, d):
        db = self.dbs[d]
        db.keys, db.leases, db.voids = {}, {}, []
        return OK

    def swapdb(self, a, b):
        self.dbs[a], self.dbs[b] = self.dbs[b], self.dbs[a]
        return OK

    def reload(self, now):
        """DEBUG RELOAD: keys survive (expired ones are not loaded), leases are forgotten."""
        for db in self.dbs:
            for k in list(db.keys):
                self._live(db, k, now)
            db.leases, db.voids = {}, []
        return OK

