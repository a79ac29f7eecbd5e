"""Section 4: CACHE.INVALIDATE of a key pattern at several keyspace sizes, against SCAN/KEYS
recipes."""
import time

from common import (BenchServer, bulk_load, cmdstat_usec, latency_latest, log, module_check,
                    PingProbe, resp, VALUE100)

LABEL = "4 pattern invalidation"


OTHER_PREFIXES = ["a", "match", "match:prefiw", "match:prefiy", "match:prefixx", "n", "user", "z"]


def pattern_key(i, n_match):
    if i < n_match:
        return f"match:prefix:{i}"
    return f"{OTHER_PREFIXES[i % len(OTHER_PREFIXES)]}:{i}"


def run(S, res):
    M = 1000
    pat = "match:prefix:*"
    with BenchServer() as srv:
        r = srv.client()
        r.config_set("latency-monitor-threshold", 1)
        has_mod = module_check(srv, res)
        mod_lat = {}
        for N in S["pat_ns"]:
            if has_mod:
                try:
                    r.flushall()
                    log(f"  loading {N:,} entries ({M:,} match {pat})")
                    bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", pattern_key(i, M), VALUE100, "EX", 3600), N,
                              label="CACHE.SETTAGGED")
                    # warm-up call on a pattern matching nothing, then the real one
                    r.execute_command("CACHE.INVALIDATE", "nomatch:prefix:*")
                    r.config_resetstat()
                    probe = PingProbe(srv.port)
                    t0 = time.perf_counter()
                    n = r.execute_command("CACHE.INVALIDATE", pat)
                    rtt = (time.perf_counter() - t0) * 1000
                    time.sleep(0.02)
                    pr = probe.stop()
                    cs = cmdstat_usec(r, "cache.invalidate")
                    srv_ms = cs[0] / 1000 if cs else None
                    mod_lat[N] = srv_ms if srv_ms is not None else rtt
                    res.check(f"N={N:,}: CACHE.INVALIDATE reply", int(n), "==", M)
                    res.check(f"N={N:,}: CACHE.INVALIDATE round trip", rtt, "<", 2, unit="ms",
                              note=f"max PING {pr['max_ms']:.2f} ms")
                    if srv_ms is not None:
                        res.check(f"N={N:,}: CACHE.INVALIDATE server usec (commandstats)", srv_ms, "<", 2, unit="ms")
                    left = sum(1 for x in r.pipeline(transaction=False).execute_command("CACHE.GET", "match:prefix:1")
                               .execute_command("CACHE.GET", f"match:prefix:{M - 1}").execute() if x is not None)
                    res.check(f"N={N:,}: invalidated keys still served", left, "==", 0)
                    # no literal prefix: must be incremental, no stall, and (API guarantee) no
                    # invalidated entry served once the command has returned
                    bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", pattern_key(i, M), VALUE100, "EX", 3600), M)
                    keys0 = r.dbsize()
                    probe = PingProbe(srv.port)
                    t0 = time.perf_counter()
                    n2 = r.execute_command("CACHE.INVALIDATE", "*atch:prefix:*")
                    rtt2 = (time.perf_counter() - t0) * 1000
                    p = r.pipeline(transaction=False)
                    for i in range(0, M, 10):
                        p.execute_command("CACHE.GET", f"match:prefix:{i}")
                    served = sum(1 for x in p.execute() if x is not None)
                    t1 = time.perf_counter()
                    while r.dbsize() > keys0 - M and time.perf_counter() - t1 < 30:
                        time.sleep(0.01)
                    gone = time.perf_counter() - t0
                    pr2 = probe.stop()
                    res.add(f"N={N:,}: CACHE.INVALIDATE '*atch:prefix:*' (no literal prefix)", rtt2, unit="ms",
                            note=f"reply {n2}; the {M:,} keys gone after {gone:.2f} s")
                    res.check(f"N={N:,}: no-prefix pattern: matching entries served after it returned", served,
                              "==", 0, note=f"{M // 10} sampled")
                    res.check(f"N={N:,}: no-prefix pattern: reply", int(n2), "==", M,
                              note="API: reply is the number of entries invalidated")
                    res.check(f"N={N:,}: no-prefix pattern max PING", pr2["max_ms"], "<=", 5, unit="ms")
                except Exception as e:
                    res.error(f"N={N:,}: CACHE.INVALIDATE", e)

            # recipes on plain strings
            try:
                r.flushall()
                log(f"  loading {N:,} plain strings for SCAN/KEYS recipes")
                bulk_load(srv.port, lambda i: resp("SET", pattern_key(i, M), VALUE100, "EX", 3600), N, label="SET")
                for name in ("SCAN MATCH COUNT 10 + DEL", "SCAN MATCH COUNT 1000 + DEL", "KEYS + DEL"):
                    if r.exists(f"match:prefix:{M - 1}") == 0:
                        bulk_load(srv.port, lambda i: resp("SET", pattern_key(i, M), VALUE100, "EX", 3600), M)
                    r.execute_command("LATENCY", "RESET")
                    log(f"    N={N:,}: {name}")
                    probe = PingProbe(srv.port)
                    t0 = time.perf_counter()
                    trips = 0
                    deleted = 0
                    if name.startswith("KEYS"):
                        ks = r.keys(pat)
                        trips += 1
                        for j in range(0, len(ks), 1000):
                            deleted += r.delete(*ks[j:j + 1000])
                            trips += 1
                    else:
                        count = 10 if "COUNT 10 " in name else 1000
                        cursor = 0
                        last = time.perf_counter()
                        while True:
                            cursor, ks = r.scan(cursor, match=pat, count=count)
                            trips += 1
                            if time.perf_counter() - last > 3:
                                last = time.perf_counter()
                                log(f"      {name}: {trips:,} round trips, {deleted:,} deleted so far")
                            if ks:
                                deleted += r.delete(*ks)
                                trips += 1
                            if cursor == 0:
                                break
                    dur = (time.perf_counter() - t0) * 1000
                    time.sleep(0.02)
                    pr = probe.stop()
                    lat = latency_latest(r)
                    res.add(f"N={N:,}: {name}", dur, unit="ms",
                            note=f"deleted {deleted:,}, {trips:,} round trips, max PING {pr['max_ms']:.1f} ms, "
                                 f"LATENCY LATEST {lat[0]} ms")
            except Exception as e:
                res.error(f"N={N:,}: recipes", e)
        if len(mod_lat) >= 2:
            lo, hi = min(mod_lat), max(mod_lat)
            if mod_lat[lo] > 0:
                res.check(f"CACHE.INVALIDATE cost N={hi:,} / N={lo:,}", mod_lat[hi] / mod_lat[lo], "<=", 2, unit="x",
                          goal="<= 2 x (flat in N)")
