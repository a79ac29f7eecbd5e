#!/usr/bin/env python3
"""Instructions per command inside the server's `call()`, under callgrind: the module's paths
beside the native commands they are measured against, and the floor (a module command that does
almost nothing). Instruction counts are repeatable on a busy machine, unlike timings.

    python3 scripts/profile.py            # every workload, 2,000 calls each
    python3 scripts/profile.py --calls 500 --only get

`make profile` runs it. Needs valgrind (Debian's package).
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from harness import RawClient, Server, callgrind  # noqa: E402

VALUE = b"x" * 100
TAGS = ["TAGS", "t:1", "t:2", "t:3"]


def setup(c, n):
    for i in range(n):
        c.send_many([["SET", f"s:{i}", VALUE], ["CACHE.SETTAGGED", f"e:{i}", VALUE, "EX", "3600",
                                               *TAGS]])
        c.read()
        c.read()


# name -> (command for call i, what it is compared with)
WORKLOADS = {
    "GET": (lambda i: ["GET", f"s:{i}"], None),
    "CACHE.GET": (lambda i: ["CACHE.GET", f"e:{i}"], "GET"),
    "CACHE.GETORMARK hit": (lambda i: ["CACHE.GETORMARK", f"e:{i}"], "GET"),
    "CACHE.TAGS missing (floor)": (lambda i: ["CACHE.TAGS", f"none:{i}"], "GET"),
    "SET EX": (lambda i: ["SET", f"n:{i}", VALUE, "EX", "3600"], None),
    "CACHE.SETTAGGED 3 tags EX": (lambda i: ["CACHE.SETTAGGED", f"m:{i}", VALUE, "EX", "3600",
                                             *TAGS], "SET EX"),
}


def totals(path):
    """The Ir total of a callgrind dump file."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def measure(server, c, command, calls):
    pid = server.proc.pid
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    batch = 100
    for start in range(0, calls, batch):
        c.send_many([command(i) for i in range(start, min(start + batch, calls))])
        for _ in range(start, min(start + batch, calls)):
            c.read()
    before = set(glob.glob(os.path.join(server.dir, "callgrind.out.*")))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    for _ in range(600):
        new = set(glob.glob(os.path.join(server.dir, "callgrind.out.*"))) - before
        if new:
            time.sleep(0.2)
            return totals(new.pop()) / calls
        time.sleep(0.1)
    raise RuntimeError(f"callgrind wrote no dump: {sorted(os.listdir(server.dir))}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--only", default="", help="workloads whose name contains this (any case)")
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cache-profile-")
    server = Server(workdir, "callgrind", wrapper=callgrind(workdir), start_timeout=120)
    server.start()
    try:
        c = RawClient(server.port, timeout=300)
        setup(c, a.calls)
        results = {}
        for name, (command, _) in WORKLOADS.items():
            if a.only.lower() in name.lower():
                results[name] = measure(server, c, command, a.calls)
        print(f"{'instructions per call inside call()':40} {'Ir':>8}  vs")
        for name, ir in results.items():
            base = WORKLOADS[name][1]
            ratio = f"{ir / results[base]:.2f}x {base}" if base in results else ""
            print(f"{name:40} {ir:8.0f}  {ratio}")
    finally:
        server.stop(timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
