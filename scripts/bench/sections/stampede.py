"""Section 7: a herd of clients asking for one missing key: recipes against GETORMARK
(poll and WAIT)."""
import math
import threading
import time

import redis

from common import BACKEND_S, BenchServer, log, module_check

LABEL = "7 stampede"


def herd(port, nclients, strategy, key):
    computations = [0]
    early_pending = [0]
    lock = threading.Lock()
    lats = [None] * nclients
    errors = []
    conns = [redis.Redis(port=port, single_connection_client=True) for _ in range(nclients)]
    for c in conns:
        c.ping()
    barrier = threading.Barrier(nclients)

    def backend():
        with lock:
            computations[0] += 1
        time.sleep(BACKEND_S)
        return b"computed-value"

    def client(i):
        r = conns[i]
        try:
            barrier.wait()
            t0 = time.perf_counter()
            if strategy == "naive":
                v = r.get(key)
                if v is None:
                    v = backend()
                    r.set(key, v, ex=60)
            elif strategy == "setnx":
                while True:
                    v = r.get(key)
                    if v is not None:
                        break
                    if r.set("lock:" + key, "1", nx=True, px=5000):
                        v = backend()
                        r.set(key, v, ex=60)
                        r.delete("lock:" + key)
                        break
                    time.sleep(0.05)
            elif strategy in ("poll", "wait"):
                extra = ["WAIT", 5000] if strategy == "wait" else []
                while True:
                    t1 = time.perf_counter()
                    st, v, tok = r.execute_command("CACHE.GETORMARK", key, *extra)
                    st = st.decode() if isinstance(st, bytes) else st
                    if st == "HIT" or (st == "STALE" and v is not None):
                        break
                    if st == "MISS":
                        v = backend()
                        r.execute_command("CACHE.SETTAGGED", key, v, "EX", 60, "LEASE", tok)
                        break
                    if st != "PENDING":
                        raise RuntimeError(f"unexpected state {st}")
                    if strategy == "poll":
                        time.sleep(0.05)
                    elif time.perf_counter() - t1 < 4.0:
                        # WAIT 5000 answered PENDING long before its timeout: count it,
                        # and back off a little so that 200 threads do not spin.
                        with lock:
                            early_pending[0] += 1
                        time.sleep(0.005)
            lats[i] = time.perf_counter() - t0
            if v is None:
                raise RuntimeError("no value")
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    ths = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(nclients)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    for c in conns:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]}")
    ls = sorted(x for x in lats if x is not None)
    return (computations[0], ls[len(ls) // 2] * 1000, ls[min(len(ls) - 1, int(math.ceil(len(ls) * 0.99)) - 1)] * 1000,
            early_pending[0])


def run(S, res):
    n = S["herd"]
    with BenchServer() as srv:
        has_mod = module_check(srv, res)
        strategies = [("naive", "naive cache-aside (GET, compute, SET)"),
                      ("setnx", "SET NX lock + poll 50 ms")]
        if has_mod:
            strategies += [("poll", "CACHE.GETORMARK + poll 50 ms"), ("wait", "CACHE.GETORMARK WAIT 5000")]
        for s, label in strategies:
            log(f"  {n} clients, backend {BACKEND_S * 1000:.0f} ms: {label}")
            try:
                comp, p50, p99, early = herd(srv.port, n, s, f"herd:{s}")
                if s == "wait":
                    res.check(f"{label}: backend computations", comp, "==", 1,
                              note=f"{early} PENDING replies before the 5 s timeout" if early else "")
                    res.add(f"{label}: latency p50", p50, unit="ms")
                    res.check(f"{label}: latency p99", p99, "<=", 1.25 * BACKEND_S * 1000, unit="ms",
                              goal="<= 1.25 x backend (250 ms)")
                else:
                    res.add(f"{label}: backend computations", comp)
                    res.add(f"{label}: latency p50 / p99", f"{p50:.0f} / {p99:.0f}", unit="ms")
            except Exception as e:
                res.error(label, e)
