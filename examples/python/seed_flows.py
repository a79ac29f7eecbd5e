#!/usr/bin/env python3
"""Three seed flows on the rediscache Python package (clients/python), each checked:

1. Device charts written by a Python job, read by an API (seed: a CSV job feeding a PHP API):
   the job stores each chart as JSON under `processed_data:<device>:<date>` with tags, the API
   side (here Python; `examples/php` reads the same entries from PHP) reads them with
   get_or_compute, and reprocessing a device drops its charts by tag.
2. The 20-second report shared by many users: 50 concurrent requests, one computation.
3. Analytics invalidated after a batch import: a SOFT tag invalidation; the dashboards are
   served stale once while one caller refreshes each of them in the background, so the import
   causes no stampede on the database.

    REDIS_PORT=6380 python3 seed_flows.py      # a server with the module; empties REDIS_DB (15)

Without REDIS_PORT it starts its own redis-server with the module on a free port.
Exit status 0 when every check passed.
"""

import json
import os
import sys
import threading
import time

import redis

import rediscache

FAILURES = []


def check(what, got, expected):
    ok = got == expected
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: {got!r}" + ("" if ok else f" (expected {expected!r})"))
    if not ok:
        FAILURES.append(what)


def device_charts(r):
    print("1. device charts: a Python job writes, the API reads, reprocessing drops by tag")
    job = rediscache.Cache(r, serializer=rediscache.JSON)
    api = rediscache.Cache(r, serializer=rediscache.JSON)
    db_queries = []

    def chart_from_db(device, day):
        db_queries.append((device, day))
        return {"device": device, "date": day, "points": [1, 2, 3]}

    # the job, after processing the CSV of device 6361819
    for day in ("2025-01-15", "2025-01-16"):
        job.set(f"processed_data:6361819:{day}", chart_from_db(6361819, day), 60,
                tags=["device:6361819", f"date:{day}"])
    check("job queried the database twice", len(db_queries), 2)
    # the API: served from the cache
    got = api.get_or_compute("processed_data:6361819:2025-01-15",
                             lambda: chart_from_db(6361819, "2025-01-15"), 60,
                             tags=["device:6361819", "date:2025-01-15"])
    check("API read the job's chart", got["points"], [1, 2, 3])
    check("no database query from the API", len(db_queries), 2)
    check("stored as JSON (readable from PHP)",
          json.loads(r.execute_command("CACHE.GET", "processed_data:6361819:2025-01-15"))["device"],
          6361819)
    # the job reprocesses the device: every chart of it goes at once, whatever its date
    check("reprocessing drops the device's charts", job.invalidate_tags(["device:6361819"]), 2)
    api.get_or_compute("processed_data:6361819:2025-01-15",
                       lambda: chart_from_db(6361819, "2025-01-15"), 60,
                       tags=["device:6361819", "date:2025-01-15"])
    check("next API read recomputes once", len(db_queries), 3)


def shared_report(r):
    print("2. the 20-second report: 50 users at once, one computation")
    cache = rediscache.Cache(r, wait_ms=10_000)
    runs = []
    lock = threading.Lock()

    def build_report():
        with lock:
            runs.append(1)
        time.sleep(0.3)  # stands for the 20-second query
        return "sales report"

    out = []

    def user():
        out.append(cache.get_or_compute("report:sales:daily", build_report, 20, tags=["reports"]))

    threads = [threading.Thread(target=user) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check("computed once", len(runs), 1)
    check("every user got it", sorted(set(v if isinstance(v, str) else v.decode() for v in out)),
          ["sales report"])


def batch_import(r):
    print("3. analytics after a batch import: SOFT invalidation, stale once, refreshed behind")
    cache = rediscache.Cache(r, serializer=rediscache.JSON)
    version = {"n": 1}
    computed = []

    def dashboard(name):
        def compute():
            computed.append(name)
            return {"name": name, "version": version["n"]}
        return compute

    names = ["sentiment", "top_destinations", "social"]
    for n in names:
        cache.get_or_compute(f"analytics:{n}", dashboard(n), 7200, tags=["analytics"], stale=600)
    check("three dashboards computed", len(computed), 3)
    version["n"] = 2  # the import task wrote new data
    check("the import soft-invalidates the analytics tag",
          cache.invalidate_tags(["analytics"], soft=True), 3)
    served = [cache.fetch(f"analytics:{n}", dashboard(n), 7200, tags=["analytics"], stale=600)
              for n in names]
    check("served at once, stale", [(s.value["version"], s.stale) for s in served], [(1, True)] * 3)
    cache.wait_refreshes()
    check("each refreshed once, in the background", sorted(computed[3:]), sorted(names))
    check("next reads are fresh",
          [cache.get_or_compute(f"analytics:{n}", dashboard(n), 7200)["version"] for n in names],
          [2, 2, 2])
    stats = cache.stats("analytics")
    check("server counted the stale hits", stats["stale_hits"], 3)


def main():
    port = os.environ.get("REDIS_PORT")
    server = None
    if not port:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                        "clients", "python", "tests"))
        from _server import Server

        server = Server().start()
        port = server.port
    try:
        r = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"), port=int(port),
                        db=int(os.environ.get("REDIS_DB", "15")), socket_timeout=30)
        r.flushdb()
        r.execute_command("CACHE.STATS", "RESET")
        device_charts(r)
        shared_report(r)
        batch_import(r)
        r.close()
    finally:
        if server is not None:
            server.stop()
    if FAILURES:
        print(f"seed flows: {len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print("seed flows: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
