#!/usr/bin/env python3
"""Benchmark suite for the cache module against today's client-side recipes.

Starts its own redis-server processes (never on 6379), runs the sections of
issue 4 (scale, memory) and issue 3 (stampede, early refresh), prints ONE table
with every figure, its goal and pass/fail, and writes the same as JSON.

    python3 scripts/bench/run.py --size tiny        # < ~60 s, proves it works
    python3 scripts/bench/run.py --size full        # the real sizes
    python3 scripts/bench/run.py --only stampede    # one section
    python3 scripts/bench/run.py --module old.so    # the same run against another build

Env: REDIS_SERVER (default redis-server), REDIS_BENCHMARK (default
redis-benchmark), CACHE_MODULE (default <repo>/target/release/librediscache.so).

This file is the runner (arguments, section registry, table, results.json); each section
is scripts/bench/sections/<name>.py, and what they share is scripts/bench/common.py
(servers through the tests' harness, tests/harness/).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback

if importlib.util.find_spec("redis") is None:  # pragma: no cover
    sys.stderr.write("run.py needs redis-py: pip install redis\n")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from common import SIZES, Results, fmt, log  # noqa: E402
from harness import REDIS_SERVER  # noqa: E402
from sections import SECTIONS  # noqa: E402


def machine_info():
    try:
        ver = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True).stdout.strip()
    except Exception:
        ver = "?"
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = "%.0f GiB" % (int(f.readline().split()[1]) / 2 ** 20)
    except Exception:
        pass
    mod = common.MODULE if os.path.exists(common.MODULE) else common.MODULE + " (missing)"
    commit = ""
    try:
        # the commit of the tree the module was built in (another worktree with --module)
        commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(common.MODULE)), "rev-parse",
                                 "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except Exception:
        pass
    return dict(date=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), cpus=os.cpu_count(), memory=mem,
                loadavg_start="%.2f" % os.getloadavg()[0],
                cpu=platform.processor() or platform.machine(), redis=ver, module=mod, commit=commit)


def print_table(rows, meta, out=sys.stdout):
    hdr = ("section", "metric", "value", "goal", "result", "note")
    data = []
    for r in rows:
        val = fmt(r["value"]) + ((" " + r["unit"]) if r["unit"] and r["value"] is not None else "")
        data.append((r["section"], r["metric"], val, r["goal"], r["status"], r["note"]))
    w = [max([len(h)] + [len(d[i]) for d in data]) for i, h in enumerate(hdr)]
    print(f"cache module benchmark, size={meta['size']}, {meta['date']}, {meta['cpus']} cores, {meta['memory']}, "
          f"{meta['redis']}", file=out)
    print(f"module: {meta['module']} (commit {meta['commit']}); load average {meta.get('loadavg_start')} at start, "
          f"{meta.get('loadavg_end')} at end (other work on this machine skews every figure)", file=out)
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)).rstrip(), file=out)
    print("  ".join("-" * x for x in w[:5]) + "  ----", file=out)
    for d in data:
        print("  ".join([d[0].ljust(w[0]), d[1].ljust(w[1]), d[2].rjust(w[2]), d[3].ljust(w[3]), d[4].ljust(w[4]),
                         d[5]]).rstrip(), file=out)
    n = {s: sum(1 for r in rows if r["status"] == s) for s in ("PASS", "FAIL", "ERROR")}
    print(f"{n['PASS']} goals passed, {n['FAIL']} failed, {n['ERROR']} errors", file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--only", action="append", help="run only this section (name or number); repeatable: " +
                    ", ".join(f"{i + 1}={n}" for i, (n, _) in enumerate(SECTIONS)))
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--strict", action="store_true", help="exit 1 when a section reports ERROR")
    ap.add_argument("--fail-on-goal", action="store_true", help="exit 1 when a goal FAILs too")
    ap.add_argument("--module", default=common.MODULE,
                    help="the module every server loads (default %(default)s): an older build gives "
                         "the before/after figures of a change")
    a = ap.parse_args(argv)
    common.MODULE = os.path.abspath(a.module)
    S = SIZES[a.size]
    chosen = SECTIONS
    if a.only:
        want = set()
        for o in a.only:
            for x in o.split(","):
                x = x.strip().lower()
                match = [n for i, (n, _) in enumerate(SECTIONS) if x in (n, str(i + 1))]
                if not match:
                    ap.error(f"unknown section {x!r}; choose from " + ", ".join(n for n, _ in SECTIONS))
                want.update(match)
        chosen = [s for s in SECTIONS if s[0] in want]
    meta = machine_info()
    meta["size"] = a.size
    if os.getloadavg()[0] > 0.7:
        log(f"WARNING: load average {os.getloadavg()[0]:.2f}: something else is running; figures will be noisy")
    if not os.path.exists(common.MODULE):
        log(f"WARNING: {common.MODULE} not found: module halves will report ERROR (build with cargo build --release)")
    res = Results()
    # A server found dead when its section stops it: an ERROR row of that section.
    common.ON_CRASH[:] = [lambda msg: res.add("server crash", None, "no crash", "ERROR", note=msg)]
    for name, section in chosen:
        log(f"== section {name}")
        res.section = section.LABEL  # every row, error and crash of the section is filed here
        t = time.monotonic()
        try:
            section.run(S, res)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            res.error("section", e)
        for srv in list(common.LIVE):  # a section that left a server running: stop it here
            srv.cleanup()
        log(f"== section {name} done in {time.monotonic() - t:.1f}s")
    meta["loadavg_end"] = "%.2f" % os.getloadavg()[0]
    print_table(res.rows, meta)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(dict(meta=meta, rows=res.rows), f, indent=1, default=str)
    log(f"wrote {a.out}")
    errs = sum(1 for r in res.rows if r["status"] == "ERROR")
    fails = sum(1 for r in res.rows if r["status"] == "FAIL")
    if (a.strict and errs) or (a.fail_on_goal and (errs or fails)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
