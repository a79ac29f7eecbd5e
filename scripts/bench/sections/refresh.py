"""Section 8: early refresh of a hot key (HIT with a token) with no MISS or PENDING."""
import threading
import time

import redis

from common import BACKEND_S, BenchServer, log, module_check

LABEL = "8 early refresh"


def run(S, res):
    rate = S["refresh_rate"]
    secs = S["refresh_secs"]
    with BenchServer() as srv:
        if not module_check(srv, res):
            return
        r = srv.client()
        key = "hot:refresh"
        counts = dict(HIT=0, HIT_TOKEN=0, MISS=0, PENDING=0, STALE=0)
        warm = [False]
        refused = [0]
        sets = [0]
        errs = []
        lock = threading.Lock()

        def recompute(tok, warmup):
            try:
                w = redis.Redis(port=srv.port, single_connection_client=True)
                time.sleep(BACKEND_S)
                ok = w.execute_command("CACHE.SETTAGGED", key, b"x" * 100, "COST", 200, "EX", 2, "LEASE", tok)
                with lock:
                    if ok is None:
                        refused[0] += 1
                    else:
                        sets[0] += 1
                w.close()
            except Exception as e:
                errs.append(f"{type(e).__name__}: {e}")

        log(f"  hot key read {rate}/s for {secs} s, EX 2, COST 200")
        period = 1.0 / rate
        t_next = time.perf_counter()
        end = t_next + secs
        bg = []
        reads = 0
        late = 0.0
        while True:
            now = time.perf_counter()
            if now >= end or errs:
                break
            if now < t_next:
                time.sleep(t_next - now)
            else:
                late = max(late, now - t_next)
            t_next += period
            if reads and reads % (rate * 5) == 0:
                log(f"    {reads:,} reads, {sum(counts.values()) - counts['HIT']:,} not plain HIT after warm-up")
            st, v, tok = r.execute_command("CACHE.GETORMARK", key)
            st = st.decode() if isinstance(st, bytes) else st
            reads += 1
            # Warm-up ends at the first HIT the reader itself sees: flagging it from the
            # setter thread would count a PENDING that was already in flight.
            if not warm[0] and st == "HIT":
                warm[0] = True
            if warm[0]:
                k = "HIT_TOKEN" if (st == "HIT" and tok is not None) else st
                counts[k] = counts.get(k, 0) + 1
            if tok is not None:
                t = threading.Thread(target=recompute, args=(tok, not warm[0]), daemon=True)
                t.start()
                bg.append(t)
        for t in bg:
            t.join(5)
        if errs:
            raise RuntimeError(errs[0])
        res.add("reads after warm-up", sum(counts.values()), note=f"{reads:,} reads in all; reader late by up to {late * 1000:.0f} ms")
        res.check("MISS + PENDING after warm-up", counts["MISS"] + counts["PENDING"], "==", 0,
                  note=f"MISS {counts['MISS']}, PENDING {counts['PENDING']}, STALE {counts['STALE']}")
        exp = secs / 2.0
        res.check("early refreshes (HIT + token)", counts["HIT_TOKEN"], ">=", 1,
                  note=f"{exp:.0f} TTLs of 2 s in the run; {sets[0]} sets stored, {refused[0]} refused")
