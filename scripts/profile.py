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
MODULE_MARK = "librediscache"


def setup(c, n):
    for i in range(n):
        # GET reads a key with a TTL too: the recipe the entries replace is SET EX + GET.
        c.send_many([["SET", f"s:{i}", VALUE, "EX", "3600"],
                     ["CACHE.SETTAGGED", f"e:{i}", VALUE, "EX", "3600", *TAGS]])
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


def name_of(names, text):
    """A compressed callgrind name: `(id) name` defines it, `(id)` refers to it."""
    if not text.startswith("("):
        return text
    ref, _, full = text.partition(")")
    if full.strip():
        names[ref] = full.strip()
    return names.get(ref, "")


def layers(path):
    """A callgrind dump's instructions in three layers: `module` (the module's own functions
    and the C library calls they make), `api` (calls from the module into the server: the
    module API, with any callback it makes back into the module) and `server` (the rest: the
    server's own work for the command, the dispatcher and context included)."""
    names = {}
    total = module = 0
    calls = []  # (caller's object, callee's object, inclusive cost)
    ob = fn_ob = cob = None
    in_call = False
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                total = int(line.split()[1])
            elif line.startswith("ob="):
                ob = name_of(names, line[3:].strip())
            elif line.startswith("fn="):
                fn_ob = ob
            elif line.startswith("cob="):
                cob = name_of(names, line[4:].strip())
            elif line.startswith("calls="):
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                tokens = line.split()
                cost = int(tokens[-1]) if len(tokens) > 1 else 0
                if in_call:
                    calls.append((fn_ob, cob or fn_ob, cost))
                    in_call, cob = False, None
                elif fn_ob and MODULE_MARK in fn_ob:
                    module += cost
    api = 0
    for caller, callee, cost in calls:
        if caller and MODULE_MARK in caller and callee and MODULE_MARK not in callee:
            if callee.endswith(".so") or ".so." in callee:
                module += cost
            else:
                api += cost
    return {"total": total, "module": module, "api": api, "server": total - module - api}


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
            return {k: v / calls for k, v in layers(new.pop()).items()}
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
        print(f"{'instructions per call inside call()':36} {'Ir':>7} {'module':>7} {'API':>7}"
              f" {'server':>7}  vs")
        for name, ir in results.items():
            base = WORKLOADS[name][1]
            ratio = f"{ir['total'] / results[base]['total']:.2f}x {base}" if base in results else ""
            print(f"{name:36} {ir['total']:7.0f} {ir['module']:7.0f} {ir['api']:7.0f}"
                  f" {ir['server']:7.0f}  {ratio}")
        print("module: the module's own code; API: the server working for it through the module "
              "API;\nserver: the rest (for a native command, everything).")
    finally:
        server.stop(timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
