"""Section 6: hit latency under a mixed load of hits, sets and invalidations."""
import math
import multiprocessing as mp
import os
import random
import time

import redis

from common import BenchServer, bulk_load, log, module_check, resp, VALUE100

LABEL = "6 mixed load"


def _mix_hits(port, keys, rate, secs, out, start_at):
    r = redis.Redis(port=port, single_connection_client=True)
    r.ping()
    rnd = random.Random(os.getpid())
    lats = []
    other = 0
    period = 1.0 / rate
    while time.time() < start_at:
        time.sleep(0.001)
    t_next = time.perf_counter()
    end = t_next + secs
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if now < t_next:
            time.sleep(t_next - now)
        t_next += period
        k = keys[rnd.randrange(len(keys))]
        t0 = time.perf_counter()
        x = r.execute_command("CACHE.GETORMARK", k)
        lats.append(time.perf_counter() - t0)
        if not (x and x[0] in (b"HIT", "HIT")):
            other += 1
    out.send((lats, other))
    out.close()


def _mix_writer(port, set_rate, inv_rate, secs, groups, tag_size, out, start_at):
    r = redis.Redis(port=port, single_connection_client=True)
    r.ping()
    rnd = random.Random(11)
    sets = invs = 0
    inv_ms = []
    inv_bad = 0
    err = None
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.perf_counter()
    try:
        while True:
            el = time.perf_counter() - t0
            if el >= secs:
                break
            want_s = int(el * set_rate)
            want_i = min(int(el * inv_rate) + 1, groups) if inv_rate > 0 else 0
            did = False
            if invs < want_i:
                t1 = time.perf_counter()
                n = r.execute_command("CACHE.INVALIDATETAG", f"grp:{invs}")
                inv_ms.append((time.perf_counter() - t1) * 1000)
                if int(n) != tag_size:
                    inv_bad += 1
                invs += 1
                did = True
            if sets < want_s:
                k = "s:%d" % rnd.randrange(10 ** 7)
                r.execute_command("CACHE.SETTAGGED", k, VALUE100, "EX", 3600, "TAGS",
                                  *("st:%d" % rnd.randrange(10000) for _ in range(3)))
                sets += 1
                did = True
            if not did:
                time.sleep(0.0005)
    except Exception as e:
        err = f"{type(e).__name__}: {e}"
    out.send(dict(sets=sets, invs=invs, inv_ms=inv_ms, inv_bad=inv_bad, err=err))
    out.close()


def run(S, res):
    with BenchServer() as srv:
        if not module_check(srv, res):
            return
        secs = S["mix_secs"]
        hit_rate = S["mix_hit_rate"]  # total, over 2 processes
        tag_size = S["mix_tag_size"]
        inv_rate = hit_rate / 90.0  # 90% hits : 9% sets : 1% invalidations
        set_rate = hit_rate / 10.0
        groups = int(math.ceil(secs * inv_rate)) + 1
        hot = [f"hot:{i}" for i in range(10000)]
        bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", hot[i], VALUE100, "EX", 3600, "TAGS", "hot"), len(hot))
        total = groups * tag_size
        log(f"  loading {groups} tags x {tag_size:,} entries = {total:,} for the invalidations")
        bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", f"g:{i}", VALUE100, "EX", 3600, "TAGS", f"grp:{i // tag_size}"),
                  total, label="groups")
        def run_mix(inv_rate, label):
            ctx = mp.get_context("fork")
            start_at = time.time() + 0.3
            pipes = []
            procs = []
            for _ in range(2):
                rx, tx = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_mix_hits, args=(srv.port, hot, hit_rate / 2, secs, tx, start_at), daemon=True)
                p.start()
                pipes.append(rx)
                procs.append(p)
            wrx, wtx = ctx.Pipe(duplex=False)
            wp = ctx.Process(target=_mix_writer, args=(srv.port, set_rate, inv_rate, secs, groups, tag_size, wtx, start_at),
                             daemon=True)
            wp.start()
            log(f"  {label} for {secs} s: {hit_rate}/s GETORMARK hits, {set_rate:.0f}/s SETTAGGED, "
                f"{inv_rate:.1f}/s INVALIDATETAG of {tag_size:,}-entry tags")
            lats = []
            other = 0
            for rx in pipes:
                if rx.poll(secs + 60):
                    l, o = rx.recv()
                    lats += l
                    other += o
            w = wrx.recv() if wrx.poll(secs + 60) else dict(err="writer did not report")
            for p in procs + [wp]:
                p.join(5)
            if w.get("err"):
                res.error(f"{label}: writer", w["err"])
            lats.sort()
            return lats, other, w

        def pct(lats, q):
            return lats[min(len(lats) - 1, int(len(lats) * q))] * 1000

        # Control: the same hits and sets, no invalidation, so that what the client and
        # this 2-core machine add on their own is visible next to the real figure.
        clats, cother, cw = run_mix(0.0, "control (no invalidations)")
        if clats:
            res.add("control, no invalidations: hit p50 / p99", f"{pct(clats, .5):.3f} / {pct(clats, .99):.3f}",
                    unit="ms", note=f"{len(clats):,} hits, {cw.get('sets', 0):,} sets; max {clats[-1] * 1000:.2f} ms")
        lats, other, w = run_mix(inv_rate, "mixed load")
        if not lats:
            res.error("hits", "no hit latencies recorded")
            return
        n_all = len(lats) + w.get("sets", 0) + w.get("invs", 0)
        res.add("ops: hits / sets / invalidations", f"{len(lats):,} / {w.get('sets', 0):,} / {w.get('invs', 0):,}",
                note=f"{100 * len(lats) / n_all:.1f}% / {100 * w.get('sets', 0) / n_all:.1f}% / {100 * w.get('invs', 0) / n_all:.1f}%")
        res.add("hit latency p50", pct(lats, .5), unit="ms")
        res.check("hit latency p99", pct(lats, .99), "<", 1, unit="ms", note=f"max {lats[-1] * 1000:.2f} ms")
        res.check("hot lookups not answered HIT", other + cother, "==", 0)
        if w.get("inv_ms"):
            im = sorted(w["inv_ms"])
            res.add("INVALIDATETAG round trip p50 / max", f"{im[len(im) // 2]:.3f} / {im[-1]:.3f}", unit="ms",
                    note=f"{w['inv_bad']} replies != {tag_size:,}")
