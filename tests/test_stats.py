"""CACHE.STATS: fields, order, RESP2/RESP3 shapes, counting, hit_ratio, namespaces, RESET, INFO."""

import time

from harness import Map
from cachelib import (OK, S, stat_fields, documented_stat_fields, settag, must_set, gom, stats, decode_fields, pairs)

ZERO2 = [b"hits", 0, b"stale_hits", 0, b"misses", 0, b"pending", 0, b"hit_ratio", b"0",
         b"sets", 0, b"sets_refused", 0, b"leases_granted", 0, b"invalidations", 0,
         b"invalidated", 0, b"entries", 0, b"tags", 0]


def names_as_bytes(reply):
    """Field names may be simple or bulk strings (the contract does not say); values are exact."""
    return [bytes(x, "utf-8") if isinstance(x, S) and i % 2 == 0 else x for i, x in enumerate(reply)]


# API.md: "at least these fields": the twelve come first, in this order; more may follow.
def test_empty_stats_resp2_exact(r):
    reply = names_as_bytes(r.cmd("CACHE.STATS"))
    assert reply[:len(ZERO2)] == ZERO2
    assert len(reply) % 2 == 0


def test_empty_stats_resp3_map(server):
    r3 = server.raw(protocol=3)
    reply = r3.cmd("CACHE.STATS")
    assert isinstance(reply, Map), reply
    flat = [x for kv in reply.pairs for x in kv]
    assert names_as_bytes(flat)[:len(ZERO2)] == ZERO2


def test_field_order_after_activity(server):
    r = server.raw()
    must_set(r, "a", "v", tags=["t"])
    gom(r, "a")
    fields = stat_fields(r)
    assert fields == documented_stat_fields()
    for reply in (r.cmd("CACHE.STATS"), server.raw(protocol=3).cmd("CACHE.STATS")):
        names = [str(k) if isinstance(k, S) else k.decode() for k, _ in pairs(reply)]
        assert names == fields


def ratio(r):
    return stats(r)["hit_ratio"]


def test_hit_ratio_formatting(r):
    assert ratio(r) == "0"
    gom(r, "k")                        # miss
    assert ratio(r) == "0"
    must_set(r, "k", "v")
    gom(r, "k")                        # hit: 1/2
    assert ratio(r) == "0.5"
    gom(r, "k")                        # 2/3
    assert ratio(r) == "0.6667"
    r.cmd("CACHE.STATS", "RESET")
    gom(r, "k")
    assert ratio(r) == "1"
    r.cmd("CACHE.STATS", "RESET")
    r.cmd("CACHE.GET", "k")            # hit
    r.cmd("CACHE.GET", "m1")           # miss
    r.cmd("CACHE.GET", "m2")
    assert ratio(r) == "0.3333"
    for _ in range(5):
        r.cmd("CACHE.GET", "k")        # 6/8
    assert ratio(r) == "0.75"


def test_hit_ratio_counts_stale_hits(r):
    must_set(r, "k", "v", "PX", "50", "STALE", "10")
    time.sleep(0.1)
    gom(r, "k")                        # stale hit (lease)
    gom(r, "k")                        # stale hit
    r.cmd("CACHE.GET", "nothere")      # miss
    st = stats(r)
    assert st["stale_hits"] == 2 and st["misses"] == 1 and st["hits"] == 0
    assert st["hit_ratio"] == "0.6667"


def test_pending_does_not_enter_ratio(server):
    a, b = server.raw(), server.raw()
    gom(a, "k")                       # miss
    for _ in range(3):
        assert gom(b, "k")[0] == b"PENDING"
    st = stats(a)
    assert st["pending"] == 3 and st["misses"] == 1 and st["hit_ratio"] == "0"


def test_reset(r):
    must_set(r, "a", "v", tags=["t1", "t2"])
    gom(r, "a")
    gom(r, "b")
    r.cmd("CACHE.INVALIDATE", "zzz")
    assert r.cmd("CACHE.STATS", "RESET") == S("OK")
    st = stats(r)
    expected = {f: 0 for f in st}  # extra fields beyond the twelve are counters too
    expected.update(hit_ratio="0", entries=1, tags=2)
    assert st == expected
    assert r.cmd("cache.stats", "reset") == S("OK")


def test_invalidation_counters(r):
    for i in range(4):
        must_set(r, f"k{i}", "v", tags=["t"])
    r.cmd("CACHE.INVALIDATE", "k0")
    r.cmd("CACHE.INVALIDATE", "k*", "SOFT")
    r.cmd("CACHE.INVALIDATETAG", "nosuch")
    st = stats(r)
    assert st["invalidations"] == 3 and st["invalidated"] == 4
    assert st["entries"] == 3


def test_stats_per_database(server):
    r0, r1 = server.raw(), server.raw(db=1)
    must_set(r0, "a", "v", tags=["x"])
    gom(r0, "a")
    gom(r1, "zz")
    s0, s1 = stats(r0), stats(r1)
    assert (s0["hits"], s0["misses"], s0["entries"], s0["tags"], s0["sets"]) == (1, 0, 1, 1, 1)
    assert (s1["hits"], s1["misses"], s1["entries"], s1["tags"], s1["sets"]) == (0, 1, 0, 0, 0)
    r1.cmd("CACHE.STATS", "RESET")
    assert stats(r0)["hits"] == 1


def test_namespace_view(r):
    must_set(r, "a:1", "v")
    must_set(r, "a:2:x", "v")
    must_set(r, "b:1", "v")
    must_set(r, "plain", "v")
    gom(r, "a:1")        # a: hit
    gom(r, "a:404")      # a: miss
    gom(r, "b:1")        # b: hit
    gom(r, "plain")      # (none): hit
    na = stats(r, "NAMESPACE", "a")
    assert list(na) == stat_fields(r)
    assert (na["hits"], na["misses"], na["entries"], na["sets"], na["leases_granted"]) == (1, 1, 2, 2, 1)
    assert na["hit_ratio"] == "0.5"
    nb = stats(r, "NAMESPACE", "b")
    assert (nb["hits"], nb["misses"], nb["entries"]) == (1, 0, 1)
    nn = stats(r, "NAMESPACE", "(none)")
    assert (nn["hits"], nn["entries"], nn["sets"]) == (1, 1, 1)
    nz = stats(r, "namespace", "zzz")
    assert (nz["hits"], nz["misses"], nz["entries"], nz["hit_ratio"]) == (0, 0, 0, "0")


def test_namespace_is_before_first_delimiter(r):
    must_set(r, "processed_data:6361819:2025-01-15", "v")
    assert stats(r, "NAMESPACE", "processed_data")["entries"] == 1
    must_set(r, ":leading", "v")
    assert stats(r, "NAMESPACE", "")["entries"] == 1


def test_namespace_invalidation_counters(r):
    for i in range(3):
        must_set(r, f"a:{i}", "v", tags=["t"])
    must_set(r, "b:1", "v", tags=["t"])
    assert r.cmd("CACHE.INVALIDATETAG", "t") == 4
    na, nb = stats(r, "NAMESPACE", "a"), stats(r, "NAMESPACE", "b")
    assert na["invalidated"] == 3 and nb["invalidated"] == 1
    assert na["entries"] == 0 and nb["entries"] == 0


def test_namespaces_resp2_and_resp3(server):
    r = server.raw()
    must_set(r, "a:1", "v")
    must_set(r, "b:1", "v")
    must_set(r, "b:2", "v")
    must_set(r, "plain", "v")
    reply = r.cmd("CACHE.STATS", "NAMESPACES")
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    got = {k: decode_fields(v) for k, v in pairs(reply)}
    assert set(got) == {b"a", b"b", b"(none)"}
    assert got[b"a"]["entries"] == 1 and got[b"b"]["entries"] == 2 and got[b"(none)"]["entries"] == 1
    assert got[b"b"]["sets"] == 2
    reply3 = server.raw(protocol=3).cmd("CACHE.STATS", "NAMESPACES")
    assert isinstance(reply3, Map), reply3
    assert set(reply3) == {b"a", b"b", b"(none)"}
    assert all(isinstance(v, Map) for v in reply3.values())
    assert decode_fields(reply3[b"b"])["entries"] == 2


def test_max_namespaces_overflow_goes_to_other(r):
    # (Loading with the config as a module argument is test_config's business.)
    assert r.cmd("CONFIG", "SET", "cache.max-namespaces", "3") == OK
    for i in range(10):
        must_set(r, f"ns{i}:k", "v")
        must_set(r, f"ns{i}:k2", "v")
    got = {k: decode_fields(v) for k, v in pairs(r.cmd("CACHE.STATS", "NAMESPACES"))}
    named = set(got) - {b"(other)"}
    assert len(named) <= 3
    assert b"(other)" in got
    assert sum(v["entries"] for v in got.values()) == 20
    assert sum(v["sets"] for v in got.values()) == 20


def test_namespace_delimiter_config(r):
    assert r.cmd("CONFIG", "SET", "cache.namespace-delimiter", "/") == OK
    must_set(r, "x/y:z", "v")
    must_set(r, "x:q", "v")
    assert stats(r, "NAMESPACE", "x")["entries"] == 1
    assert stats(r, "NAMESPACE", "(none)")["entries"] == 1


def test_info_cache_section(r):
    must_set(r, "k", "v", tags=["t"])
    gom(r, "k")
    gom(r, "k")
    gom(r, "nope")
    text = r.cmd("INFO", "cache").decode()
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v
    assert fields, text
    # Field names may carry the module prefix (cache_hits); values are the STATS totals.
    def field(name):
        cands = [k for k, v in fields.items()
                 if (k == name or k.endswith("_" + name)) and not k.endswith("stale_" + name)]
        assert len(cands) == 1, f"field {name} in INFO cache: {cands}\n{text}"
        return fields[cands[0]]
    assert field("hits") == "2"
    assert field("misses") == "1"
    assert field("entries") == "1"


def test_stats_numbers_agree_with_replies(server):
    """Counters equal what was answered, over a mixed workload from two clients."""
    a, b = server.raw(), server.raw()
    seen = {"HIT": 0, "STALE": 0, "MISS": 0, "PENDING": 0}
    leases = 0
    sets = refused = 0
    for i in range(40):
        key = f"k{i % 9}"
        for c in (a, b):
            rep = gom(c, key, "LEASE", "1000")
            seen[rep[0].decode()] += 1
            if rep[2] is not None:
                leases += 1
                if i % 3:
                    rs = settag(c, key, "v", "PX", "30", "STALE", "1")
                    # no LEASE: always stored
                    sets += 1
                else:
                    rs = settag(c, key, "v", "PX", "30", "STALE", "1", "LEASE", rep[2])
                    if rs is None:
                        refused += 1
                    else:
                        sets += 1
        if i % 10 == 0:
            time.sleep(0.05)
    st = stats(a)
    assert st["hits"] == seen["HIT"] and st["stale_hits"] == seen["STALE"]
    assert st["misses"] == seen["MISS"] and st["pending"] == seen["PENDING"]
    assert st["leases_granted"] == leases
    assert st["sets"] == sets and st["sets_refused"] == refused


def test_info_agrees_with_stats_per_database(server):
    """INFO cache: `cache_<field>` totals over all databases, and one `cache_db<N>:f=v,...`
    line per database equal to CACHE.STATS in that database, field for field."""
    r0, r1 = server.raw(), server.raw(db=1)
    must_set(r0, "a:1", "v", tags=["t"])
    gom(r0, "a:1")
    gom(r0, "a:2")
    must_set(r1, "b:1", "v", tags=["t", "u"])
    r1.cmd("CACHE.GET", "b:1")
    r1.cmd("CACHE.INVALIDATETAG", "u", "SOFT")
    lines = dict(line.split(":", 1) for line in r0.cmd("INFO", "cache").decode().splitlines()
                 if ":" in line and not line.startswith("#"))
    s0, s1 = stats(r0), stats(r1)
    for db, st in (("db0", s0), ("db1", s1)):
        row = dict(kv.split("=", 1) for kv in lines[f"cache_{db}"].split(","))
        assert row == {k: str(v) for k, v in st.items()}, db
    for field in ("hits", "misses", "sets", "invalidated", "entries", "tags", "leases_granted"):
        assert int(lines[f"cache_{field}"]) == s0[field] + s1[field], field
    assert lines["cache_hit_ratio"] == "0.6667"
