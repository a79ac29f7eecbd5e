"""Section 3: INVALIDATETAG (and SOFT) of a large tag with a replica attached: latency, stalls,
memory reclaim; against the Symfony and Laravel recipes."""
import random
import time

import redis

from common import (BenchServer, bulk_load, cmdstat_usec, data_memory, fmt, latency_latest, log,
                    module_check, PingProbe, resp, used_memory, VALUE100)

LABEL = "3 tag invalidation"


SYMFONY_LUA = """
local cursor = '0'
local n = 0
repeat
  local r = redis.call('SSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = r[1]
  local m = r[2]
  for i = 1, #m, 1000 do
    n = n + redis.call('DEL', unpack(m, i, math.min(i + 999, #m)))
  end
until cursor == '0'
redis.call('DEL', KEYS[1])
return n
"""


def wait_reclaim(r, baseline, timeout, check, label, replica=None, until_memory=True, replica_alive=lambda: True):
    """Poll used_memory until back to baseline (+max(1 MB, 5%)); meanwhile sample
    invalidated keys with `check(client) -> (bad, n)` on the primary and the
    replica. With until_memory=False (SOFT) just sample for `timeout` seconds."""
    limit = baseline + max(1 << 20, int(baseline * 0.05))
    t0 = time.perf_counter()
    served = samples = 0
    keys_gone_at = replica_gone_at = reclaimed_at = None
    last_log = t0
    mem = None
    while True:
        now = time.perf_counter()
        if replica is not None and not replica_alive():
            replica = None
        bad, n = check(r)
        served += bad
        samples += n
        if keys_gone_at is None and r.dbsize() == 0:
            keys_gone_at = time.perf_counter() - t0
        if replica is not None:
            try:
                bad, n = check(replica)
                served += bad
                samples += n
                if replica_gone_at is None and replica.dbsize() == 0:
                    replica_gone_at = time.perf_counter() - t0
            except (redis.ConnectionError, redis.TimeoutError):
                replica = None
        mem = data_memory(r.info("memory"))
        if until_memory and mem <= limit and reclaimed_at is None:
            # no MEMORY PURGE here: it is a slow command (tens of ms after freeing
            # hundreds of MB) and the PING probe would blame the module for it
            mem = used_memory(r, purge=False)
            if mem <= limit:
                reclaimed_at = time.perf_counter() - t0
        if until_memory and reclaimed_at is not None and keys_gone_at is not None and \
                (replica is None or replica_gone_at is not None or not replica_alive()):
            break
        if now - t0 > timeout:
            break
        if now - last_log > 2:
            log(f"    {label}: {'reclaiming' if until_memory else 'sampling'}, used_memory {mem / 1e6:.1f} MB "
                f"(baseline {baseline / 1e6:.1f} MB), keys {r.dbsize():,}, {now - t0:.1f}s")
            last_log = now
        time.sleep(0.02)
    return dict(reclaimed_s=reclaimed_at, keys_gone_s=keys_gone_at, replica_gone_s=replica_gone_at,
                served=served, samples=samples, mem_left=mem - baseline)


def wait_replica_sync(r, rep, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        ri = rep.info("replication")
        if ri.get("master_link_status") == "up" and \
                int(ri.get("slave_repl_offset", -1)) >= int(r.info("replication")["master_repl_offset"]):
            return True
        time.sleep(0.05)
    raise RuntimeError("replica did not catch up in %d s" % timeout)


def run(S, res):
    N = S["inv_n"]
    with BenchServer() as srv, BenchServer("replica", extra_args=["--replicaof", "127.0.0.1", str(srv.port)]) as rsrv:
        r = srv.client()
        # a dying replica (crash report, memory test) must not hold up the primary's figures
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        rep = rsrv.client(socket_timeout=2, retry=Retry(NoBackoff(), 0))
        for c in (r, rep):
            c.config_set("latency-monitor-threshold", 1)
        has_mod = module_check(srv, res)
        val = VALUE100
        sample = [f"inv:{i}" for i in random.Random(3).sample(range(N), min(500, N))]

        def rep_ok():
            return rsrv.alive()

        def run_module(soft):
            name = "INVALIDATETAG SOFT" if soft else "INVALIDATETAG"
            r.flushall()
            if rep_ok():
                wait_replica_sync(r, rep)
            base = used_memory(r)
            log(f"  loading {N:,} entries with tag 'big' for CACHE.{name} (and a replica)")
            bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", f"inv:{i}", val, "EX", 3600, "TAGS", "big"),
                      N, label="CACHE.SETTAGGED")
            if rep_ok():
                wait_replica_sync(r, rep)
            loaded = used_memory(r)
            res.add(f"{name}: used_memory after load", (loaded - base) / 1e6, unit="MB", note=f"{N:,} entries")
            have_rep = rep_ok()
            if have_rep:
                res.check(f"{name}: keys on the replica after load", rep.dbsize(), "==", N, goal=f"== {N:,}")
            # Control window: the same probes and the same sampling load, no invalidation, so
            # that what this (possibly shared) 2-core machine adds by itself is on record.
            cprobe = PingProbe(srv.port)
            crprobe = PingProbe(rsrv.port) if have_rep else None
            t_end = time.perf_counter() + S["control_secs"]
            while time.perf_counter() < t_end:
                for c in ([r, rep] if have_rep else [r]):
                    p = c.pipeline(transaction=False)
                    for k in sample:
                        p.execute_command("CACHE.GET", k)
                    p.execute()
                r.dbsize()
                r.info("memory")
                time.sleep(0.02)
            cpr = cprobe.stop()
            crpr = crprobe.stop() if crprobe else None
            res.add(f"{name}: control window, max PING primary / replica",
                    f"{cpr['max_ms']:.2f} / {crpr['max_ms']:.2f}" if crpr else f"{cpr['max_ms']:.2f}", unit="ms",
                    note=f"{S['control_secs']} s of the same sampling, before the invalidation: "
                         f"{cpr['over5ms']}" + (f" / {crpr['over5ms']}" if crpr else "") + " pings > 5 ms")
            r.config_resetstat()
            for c in ([r, rep] if have_rep else [r]):
                c.execute_command("LATENCY", "RESET")
            probe = PingProbe(srv.port)
            rprobe = PingProbe(rsrv.port) if have_rep else None
            t0 = time.perf_counter()
            args = ["CACHE.INVALIDATETAG", "big"] + (["SOFT"] if soft else [])
            n = r.execute_command(*args)
            rtt = (time.perf_counter() - t0) * 1000
            res.check(f"CACHE.{name} reply", int(n), "==", N, goal=f"== {N:,}")
            res.check(f"CACHE.{name} round trip", rtt, "<", 1, unit="ms")
            cs = cmdstat_usec(r, "cache.invalidatetag")
            if cs:
                res.check(f"CACHE.{name} server time (commandstats usec)", cs[0] / 1000, "<", 1, unit="ms")

            if soft:
                # SOFT: CACHE.GET may serve the value (as stale); GETORMARK must never say HIT.
                def check(c):
                    p = c.pipeline(transaction=False)
                    for k in sample[:100]:
                        p.execute_command("CACHE.GETORMARK", k, "LEASE", 60000)
                    out = p.execute()
                    return sum(1 for x in out if x and x[0] in (b"HIT", "HIT")), len(out)
            else:
                def check(c):
                    p = c.pipeline(transaction=False)
                    for k in sample:
                        p.execute_command("CACHE.GET", k)
                    out = p.execute()
                    return sum(1 for x in out if x is not None), len(out)
            w = wait_reclaim(r, base, S["reclaim_timeout"] if not soft else S["soft_window"], check, name,
                             replica=rep if have_rep and not soft else None, until_memory=not soft,
                             replica_alive=rep_ok)
            time.sleep(0.05)
            pr = probe.stop()
            rpr = rprobe.stop() if rprobe else None
            lat = latency_latest(r)
            rlat = latency_latest(rep) if rep_ok() else (0, "")
            what = "answered HIT (GETORMARK)" if soft else "served (CACHE.GET, primary + replica)"
            res.check(f"{name}: invalidated sample keys {what}", w["served"], "==", 0,
                      note=f"{w['samples']:,} lookups after the command returned")
            res.check(f"{name}: max PING round trip, primary", pr["max_ms"], "<=", 5, unit="ms",
                      note=f"1 ms probe: {pr['pings']} pings, {pr['over5ms']} > 5 ms, max gap {pr['max_gap_ms']:.1f} ms")
            res.check(f"{name}: LATENCY LATEST max, primary", float(lat[0]), "<=", 5, unit="ms",
                      note=lat[1] or "no event >= 1 ms")
            if rpr is None:
                pass
            elif not rep_ok():
                res.add(f"{name}: replica", None, "no crash", "ERROR", note=rsrv.crash_report())
            else:
                res.check(f"{name}: max PING round trip, replica", rpr["max_ms"], "<=", 5, unit="ms",
                          note=f"{rpr['pings']} pings, {rpr['over5ms']} > 5 ms; LATENCY LATEST {rlat[0]} ms {rlat[1]}")
            if soft:
                res.add(f"{name}: keys left (served STALE until expiry)", r.dbsize())
                res.add(f"{name}: used_memory above baseline", (data_memory(r.info('memory')) - base) / 1e6,
                        unit="MB")
            else:
                res.add(f"{name}: all keys gone, primary / replica",
                        f"{fmt(w['keys_gone_s'])} / {fmt(w['replica_gone_s'])}", unit="s")
                if w["reclaimed_s"] is None:
                    res.add(f"{name}: used_memory back to baseline", None, "<= 10 s", "FAIL", "s",
                            note=f"still +{w['mem_left'] / 1e6:.2f} MB after {S['reclaim_timeout']} s"
                                 + ("" if w["replica_gone_s"] is not None else "; replica still has keys"))
                else:
                    res.check(f"{name}: used_memory back to baseline", w["reclaimed_s"], "<=", 10, unit="s",
                              note=f"within max(1 MB, 5%), less repl backlog; {w['mem_left'] / 1e6:+.2f} MB at the end")

        if has_mod:
            for soft in (False, True):
                try:
                    run_module(soft)
                except Exception as e:
                    res.error("CACHE.INVALIDATETAG" + (" SOFT" if soft else ""), e)

        # --- recipes: plain strings + one SADD tag set
        def load_recipe():
            r.flushall()
            log(f"  loading {N:,} strings + tag set (recipe)")
            bulk_load(srv.port, lambda i: resp("SET", f"inv:{i}", val, "EX", 3600) + resp("SADD", "tag:big", f"inv:{i}"),
                      N, lines_per_cmd=2, label="SET+SADD")

        # Symfony-style: one Lua script, SSCAN the tag set and DEL its members.
        try:
            load_recipe()
            r.execute_command("LATENCY", "RESET")
            probe = PingProbe(srv.port)
            t0 = time.perf_counter()
            n = r.eval(SYMFONY_LUA, 1, "tag:big")
            dur = time.perf_counter() - t0
            time.sleep(0.02)
            pr = probe.stop()
            lat = latency_latest(r)
            res.add("Symfony recipe (Lua SSCAN+DEL): duration", dur * 1000, unit="ms", note=f"deleted {n:,}, 1 round trip")
            res.add("Symfony recipe: max PING round trip", pr["max_ms"], unit="ms", note=f"LATENCY LATEST {lat[0]} ms {lat[1]}")
        except Exception as e:
            res.error("Symfony recipe", e)

        # Laravel-style: client SSCAN COUNT 1000, DEL in batches of 1000.
        try:
            load_recipe()
            r.execute_command("LATENCY", "RESET")
            probe = PingProbe(srv.port)
            t0 = time.perf_counter()
            cursor = 0
            trips = 0
            batch = []
            deleted = 0
            while True:
                cursor, members = r.sscan("tag:big", cursor, count=1000)
                trips += 1
                batch.extend(members)
                while len(batch) >= 1000:
                    deleted += r.delete(*batch[:1000])
                    trips += 1
                    batch = batch[1000:]
                if cursor == 0:
                    break
            if batch:
                deleted += r.delete(*batch)
                trips += 1
            r.delete("tag:big")
            trips += 1
            dur = time.perf_counter() - t0
            time.sleep(0.02)
            pr = probe.stop()
            lat = latency_latest(r)
            res.add("Laravel recipe (SSCAN + DEL x1000): duration", dur * 1000, unit="ms",
                    note=f"deleted {deleted:,}, {trips:,} round trips")
            res.add("Laravel recipe: max PING round trip", pr["max_ms"], unit="ms", note=f"LATENCY LATEST {lat[0]} ms {lat[1]}")
        except Exception as e:
            res.error("Laravel recipe", e)
