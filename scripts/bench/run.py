#!/usr/bin/env python3
"""Benchmark suite for the cache module against today's client-side recipes.

Starts its own redis-server processes (never on 6379), runs the sections of
issue 4 (scale, memory) and issue 3 (stampede, early refresh), prints ONE table
with every figure, its goal and pass/fail, and writes the same as JSON.

    python3 scripts/bench/run.py --size tiny        # < ~60 s, proves it works
    python3 scripts/bench/run.py --size full        # the real sizes
    python3 scripts/bench/run.py --only stampede    # one section

Env: REDIS_SERVER (default redis-server), REDIS_BENCHMARK (default
redis-benchmark), CACHE_MODULE (default <repo>/target/release/librediscache.so).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import redis
except ImportError:  # pragma: no cover
    sys.stderr.write("run.py needs redis-py: pip install redis\n")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
REDIS_BENCHMARK = os.environ.get("REDIS_BENCHMARK", "redis-benchmark")
CACHE_MODULE = os.environ.get("CACHE_MODULE", os.path.join(REPO, "target/release/librediscache.so"))

T0 = time.monotonic()


def log(msg: str) -> None:
    sys.stderr.write("[%6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------- sizes
SIZES = {
    "tiny": dict(
        hit_n=20000, hit_reps=1,
        set_n=20000, set_reps=1, drv_secs=1.0,
        inv_n=20000, reclaim_timeout=8.0, soft_window=1.0, control_secs=0.5,
        pat_ns=[10_000],
        mem_n=20000,
        mix_secs=2.0, mix_hit_rate=1000, mix_tag_size=1000,
        herd=20,
        refresh_rate=200, refresh_secs=5.0,
        cluster_reps=100, cluster_big=9000,
    ),
    "full": dict(
        hit_n=500_000, hit_reps=3,
        set_n=300_000, set_reps=3, drv_secs=5.0,
        inv_n=1_000_000, reclaim_timeout=30.0, soft_window=3.0, control_secs=2.0,
        pat_ns=[10_000, 100_000, 1_000_000],
        mem_n=100_000,
        mix_secs=10.0, mix_hit_rate=2000, mix_tag_size=10_000,
        herd=200,
        refresh_rate=1000, refresh_secs=30.0,
        cluster_reps=1000, cluster_big=1_000_000,
    ),
}

VALUE100 = b"v" * 100


# --------------------------------------------------------------------------- results
class Results:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, section, metric, value, goal="", status="INFO", unit="", note=""):
        row = dict(section=section, metric=metric, value=value, unit=unit, goal=goal,
                   status=status, note=note)
        self.rows.append(row)
        log("  => %s / %s: %s %s [%s]%s" % (section, metric, fmt(value), unit, status,
                                            (" (" + note + ")") if note else ""))
        return row

    def check(self, section, metric, value, op, target, unit="", goal=None, note=""):
        """Add a row with pass/fail: op is '>=', '<=', '<', '==' ."""
        if value is None:
            return self.add(section, metric, None, goal or f"{op} {target}{unit}", "n/a", unit, note)
        ok = {">=": value >= target, "<=": value <= target, "<": value < target,
              "==": value == target, ">": value > target}[op]
        return self.add(section, metric, value, goal or f"{op} {fmt(target)}{(' ' + unit) if unit else ''}",
                        "PASS" if ok else "FAIL", unit, note)

    def error(self, section, metric, exc):
        msg = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        dead = [s.crash_report() for s in Server.live if not s.alive()]
        if dead and not isinstance(exc, str):
            msg = "; ".join(dead) + " -- " + msg
        msg = " ".join(str(msg).split())[:300]
        return self.add(section, metric, None, "", "ERROR", "", msg)


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.2f}"
        if a == 0:
            return "0"
        return f"{v:.3g}"
    return str(v)


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p != 6379:
            return p


class Server:
    """A redis-server of our own, on a free loopback port, in a temp dir."""

    live: list = []
    on_crash = None  # callback(str) for servers that died by themselves

    def __init__(self, with_module=True, extra=(), role="primary"):
        self.role = role
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="cachebench-")
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log"),
                "--protected-mode", "no", "--enable-debug-command", "yes"]
        self.module_loaded = False
        if with_module and os.path.exists(CACHE_MODULE):
            args += ["--loadmodule", CACHE_MODULE]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                r = redis.Redis(port=self.port, socket_connect_timeout=0.2)
                r.ping()
                r.close()
                break
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    tail = self.logtail()
                    self.stop()
                    raise RuntimeError("redis-server did not start: " + tail)
                time.sleep(0.05)
        Server.live.append(self)
        r = self.client()
        try:
            mods = r.execute_command("MODULE", "LIST")
            for m in mods or []:
                d = m if isinstance(m, dict) else dict(zip(m[::2], m[1::2]))
                name = d.get(b"name") or d.get("name")
                if name in (b"cache", "cache"):
                    self.module_loaded = True
        except Exception:
            pass

    def logtail(self, n=5):
        try:
            with open(os.path.join(self.dir, "redis.log"), "rb") as f:
                return " | ".join(x.decode(errors="replace").strip() for x in f.read().splitlines()[-n:])
        except Exception:
            return ""

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(port=self.port, single_connection_client=True, **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def crash_report(self) -> str:
        """If the server died on its own: the lines of its crash report that say why."""
        if self.alive():
            return ""
        self.crash_seen = True
        try:
            with open(os.path.join(self.dir, "redis.log"), "rb") as f:
                lines = [x.decode(errors="replace").rstrip() for x in f.read().splitlines()]
        except Exception:
            return f"server on port {self.port} exited with {self.proc.returncode}"
        keep = []
        for i, l in enumerate(lines):
            if "crashed by signal" in l or "ASSERTION FAILED" in l or "Guru Meditation" in l or "panicked" in l:
                keep.append(l.split("# ", 1)[-1].strip())
            if l.startswith("EIP:") and i + 1 < len(lines):
                keep.append("EIP " + lines[i + 1].strip())
            if "argv[" in l and "CLIENT INFO" not in l:
                keep.append(l.strip())
            if "cmd=" in l and "CURRENT CLIENT" in (lines[i - 1] if i else ""):
                keep.append(l[l.find("cmd="):].split()[0])
        saved = f"/tmp/cachebench-crash-{self.port}.log"
        try:
            shutil.copy(os.path.join(self.dir, "redis.log"), saved)
        except Exception:
            saved = ""
        return (f"{self.role} (port {self.port}) CRASHED: " + "; ".join(dict.fromkeys(keep))[:600]
                + (f" (log: {saved})" if saved else ""))

    def stop(self):
        if self in Server.live:
            Server.live.remove(self)
        if self.proc.poll() is not None and not getattr(self, "crash_seen", False):
            rep = self.crash_report()
            if rep and Server.on_crash:
                Server.on_crash(rep)
        if self.proc.poll() is None:
            # SIGTERM: with --save "" the server exits at once (redis-py's
            # SHUTDOWN retries the dropped connection for seconds).
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def used_memory(r: redis.Redis, purge=True) -> int:
    # MEMORY PURGE asks jemalloc to return dirty pages; it changes RSS, not
    # used_memory (allocated bytes), but makes the readings repeatable.
    if purge:
        try:
            r.execute_command("MEMORY", "PURGE")
        except Exception:
            pass
    return data_memory(r.info("memory"))


def data_memory(m: dict) -> int:
    """used_memory less the replication backlog and replica output buffers, which
    grow while a replica is attached whatever the module does."""
    return int(m["used_memory"]) - int(m.get("mem_replication_backlog", 0)) - int(m.get("mem_clients_slaves", 0))


def cmdstat_usec(r: redis.Redis, cmd: str):
    st = r.info("commandstats")
    d = st.get("cmdstat_" + cmd.lower())
    if not d:
        return None
    return float(d.get("usec", 0)), int(d.get("calls", 0))


def latency_latest(r: redis.Redis):
    """Max latency (ms) recorded by the latency monitor, and its event."""
    best = (0, "")
    try:
        for ev in r.execute_command("LATENCY", "LATEST") or []:
            name = ev[0].decode() if isinstance(ev[0], bytes) else str(ev[0])
            mx = int(ev[3])
            if mx > best[0]:
                best = (mx, name)
    except Exception:
        pass
    return best


def module_check(srv: Server, section: str, res: Results) -> bool:
    if not srv.module_loaded:
        why = "module file not found: " + CACHE_MODULE if not os.path.exists(CACHE_MODULE) \
            else "module did not load (MODULE LIST has no 'cache')"
        res.error(section, "module half", why)
        return False
    return True


# --------------------------------------------------------------------------- raw RESP
def resp(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Raw:
    """A bare socket that sends pre-encoded pipelines and counts reply lines.

    Only for commands whose replies have a known number of lines and no
    embedded newlines (+OK, :n, +QUEUED, *n headers)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.first_error = None

    def roundtrip(self, payload: bytes, lines: int):
        self.s.sendall(payload)
        got = 0
        prev_nl = True
        while got < lines:
            data = self.s.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            got += data.count(b"\n")
            if self.first_error is None and ((prev_nl and data[:1] == b"-") or b"\n-" in data):
                i = data.find(b"\n-") + 1 if not (prev_nl and data[:1] == b"-") else 0
                self.first_error = data[i:data.find(b"\r", i)].decode(errors="replace")
            prev_nl = data.endswith(b"\n")

    def close(self):
        self.s.close()


def bulk_load(port, gen_cmd, n, chunk=10000, lines_per_cmd=1, label=None):
    """Send n commands gen_cmd(i) -> bytes in pipelines of `chunk`. Raises on error replies."""
    raw = Raw(port)
    step = max(n // 5, chunk) if n >= 200_000 else n + 1
    nextp = step
    try:
        for start in range(0, n, chunk):
            end = min(n, start + chunk)
            raw.roundtrip(b"".join(gen_cmd(i) for i in range(start, end)), (end - start) * lines_per_cmd)
            if raw.first_error:
                raise RuntimeError(f"load failed: {raw.first_error}")
            if label and end >= nextp:
                log(f"    {label}: {end:,}/{n:,}")
                nextp += step
    finally:
        raw.close()


def raw_throughput(port, batches, lines_per_batch, units_per_batch, conns=4, duration=2.0):
    """Closed-loop throughput in units/s with `conns` connections, each sending
    whole pre-encoded batches (pipelines) and waiting for all replies."""
    counts = [0] * conns
    errs = []
    barrier = threading.Barrier(conns + 1)
    stop = [0.0]

    def worker(i):
        try:
            raw = Raw(port)
        except Exception as e:  # noqa
            errs.append(e)
            barrier.wait()
            return
        barrier.wait()
        j = i
        n = 0
        try:
            while time.perf_counter() < stop[0]:
                raw.roundtrip(batches[j % len(batches)], lines_per_batch)
                j += conns
                n += units_per_batch
                if raw.first_error:
                    errs.append(RuntimeError(raw.first_error))
                    break
        except Exception as e:
            errs.append(e)
        counts[i] = n
        raw.close()

    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(conns)]
    for t in ths:
        t.start()
    stop[0] = time.perf_counter() + 1e9
    barrier.wait()
    t0 = time.perf_counter()
    stop[0] = t0 + duration
    for t in ths:
        t.join()
    el = time.perf_counter() - t0
    if errs:
        raise errs[0]
    return sum(counts) / el


# --------------------------------------------------------------------------- redis-benchmark
def rbench(port, args_cmd, n, clients=50, pipeline=1, r=None, data=100):
    cmd = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-c", str(clients),
           "-d", str(data), "-P", str(pipeline), "--csv"]
    if r:
        cmd += ["-r", str(r)]
    cmd += [a if isinstance(a, str) else a.decode() for a in args_cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    err = (p.stderr or "").strip()
    if p.returncode != 0 or "Error" in err:
        raise RuntimeError(f"redis-benchmark {' '.join(args_cmd[:2])}: {err.splitlines()[0] if err else 'rc=%d' % p.returncode}")
    lines = [l for l in p.stdout.splitlines() if l.strip() and not l.startswith('"test"')]
    if not lines:
        raise RuntimeError("redis-benchmark printed no result")
    fields = [f.strip('"') for f in lines[-1].split('","')]
    return float(fields[1])


# --------------------------------------------------------------------------- probe
def _probe_main(port, stop_evt, out, interval):
    err = None
    try:
        os.nice(-10)  # as root: keep the probe ahead of our own load generators on 2 cores
    except OSError:
        pass
    maxlat = 0.0
    maxlat_at = 0.0
    maxgap = 0.0
    n = 0
    over5 = 0
    t_start = time.perf_counter()
    last = t_start
    try:
        r = redis.Redis(port=port, single_connection_client=True, retry_on_error=[], socket_timeout=30)
        r.ping()
    except Exception as e:
        stop_evt.set()
        err = f"{type(e).__name__}: {e}"
    while not stop_evt.is_set():
        t0 = time.perf_counter()
        try:
            r.ping()
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            break
        t1 = time.perf_counter()
        lat = t1 - t0
        gap = t1 - last
        last = t1
        n += 1
        if lat > maxlat:
            maxlat = lat
            maxlat_at = t0 - t_start
        if gap > maxgap:
            maxgap = gap
        if lat > 0.005:
            over5 += 1
        time.sleep(interval)
    out.send(dict(max_ms=maxlat * 1000, max_at=maxlat_at, max_gap_ms=maxgap * 1000, pings=n, over5ms=over5, err=err))
    out.close()


class PingProbe:
    """A separate process that PINGs every 1 ms and records the worst round trip
    (a separate process, so that our own GIL never shows up as a server stall)."""

    def __init__(self, port, interval=0.001):
        ctx = mp.get_context("fork")
        self.stop_evt = ctx.Event()
        self.rx, tx = ctx.Pipe(duplex=False)
        self.p = ctx.Process(target=_probe_main, args=(port, self.stop_evt, tx, interval), daemon=True)
        self.p.start()
        time.sleep(0.05)

    def stop(self) -> dict:
        self.stop_evt.set()
        res = self.rx.recv() if self.rx.poll(10) else dict(max_ms=float("nan"), max_gap_ms=float("nan"), pings=0, over5ms=0, err="probe did not report")
        self.p.join(5)
        return res


# --------------------------------------------------------------------------- section 1: hit path
def sec_hit(S, res: Results):
    sec = LABELS["hit"]
    with Server() as srv:
        r = srv.client()
        r.set("str:k", VALUE100)
        has_mod = module_check(srv, sec, res)
        cmds = {"GET": ["GET", "str:k"]}
        if has_mod:
            try:
                r.execute_command("CACHE.SETTAGGED", "ent:k", VALUE100, "EX", 3600, "TAGS", "t1")
                cmds["CACHE.GET"] = ["CACHE.GET", "ent:k"]
                cmds["CACHE.GETORMARK"] = ["CACHE.GETORMARK", "ent:k"]
                v = r.execute_command("CACHE.GET", "ent:k")
                if v != VALUE100:
                    res.error(sec, "CACHE.GET correctness", f"CACHE.GET ent:k returned {v!r:.60}")
                st = r.execute_command("CACHE.GETORMARK", "ent:k")
                if not (isinstance(st, list) and st and st[0] in (b"HIT", "HIT") and st[1] == VALUE100):
                    res.error(sec, "CACHE.GETORMARK correctness", f"returned {st!r:.80}")
            except Exception as e:
                res.error(sec, "setup CACHE.SETTAGGED", e)
        for P in (1, 16):
            rps = {k: [] for k in cmds}
            bad = set()
            for rep in range(S["hit_reps"]):
                for name, c in cmds.items():
                    if name in bad:
                        continue
                    log(f"  redis-benchmark -P {P} {name} (rep {rep + 1}/{S['hit_reps']}, n={S['hit_n']:,})")
                    try:
                        rps[name].append(rbench(srv.port, c, S["hit_n"], pipeline=P))
                    except Exception as e:
                        bad.add(name)
                        res.error(sec, f"{name} -P {P}", e)
            med = {k: statistics.median(v) for k, v in rps.items() if v}
            for k, v in med.items():
                res.add(sec, f"{k} -P {P} (50 clients, 100 B)", v, unit="ops/s")
            for k in ("CACHE.GET", "CACHE.GETORMARK"):
                if k in med and "GET" in med:
                    res.check(sec, f"{k} / GET -P {P}", med[k] / med["GET"], ">=", 0.95, unit="x")


# --------------------------------------------------------------------------- section 2: set path
LUA_TAGGED_SET = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 2, #KEYS do redis.call('SADD', KEYS[i], KEYS[1]) end
return 1
"""


def sec_set(S, res: Results):
    sec = LABELS["set"]
    with Server() as srv:
        r = srv.client()
        has_mod = module_check(srv, sec, res)
        sha = r.script_load(LUA_TAGGED_SET)
        v = VALUE100.decode()
        K = "k:__rand_int____rand_int__"  # ~10^8 distinct keys
        T = "t:__rand_int__"  # with -r 10000: 10,000 distinct tags
        rb = {
            "SET EX": ["SET", K, v, "EX", "3600"],
            "EVALSHA (SET EX + 3 SADD)": ["EVALSHA", sha, "4", K, T, T, T, v, "3600"],
        }
        if has_mod:
            rb["CACHE.SETTAGGED 3 tags"] = ["CACHE.SETTAGGED", K, v, "EX", "3600", "TAGS", T, T, T]
        out = {}
        for P in (1, 16):
            vals = {k: [] for k in rb}
            bad = set()
            for rep in range(S["set_reps"]):
                for name, c in rb.items():
                    if name in bad:
                        continue
                    log(f"  redis-benchmark -P {P} {name} (rep {rep + 1}/{S['set_reps']}, n={S['set_n']:,})")
                    r.flushall()  # SET's strings would make SETTAGGED answer WRONGTYPE
                    try:
                        vals[name].append(rbench(srv.port, c, S["set_n"], pipeline=P, r=10000))
                    except Exception as e:
                        bad.add(name)
                        res.error(sec, f"{name} -P {P}", e)
                r.flushall()
            for k, l in vals.items():
                if l:
                    out[(k, P)] = statistics.median(l)
                    res.add(sec, f"{k} -P {P} [redis-benchmark]", out[(k, P)], unit="ops/s")
        for P in (1, 16):
            st = out.get(("CACHE.SETTAGGED 3 tags", P))
            if st is None:
                continue
            if ("SET EX", P) in out:
                res.check(sec, f"SETTAGGED / SET EX -P {P}", st / out[("SET EX", P)], ">=", 0.8, unit="x")
            if ("EVALSHA (SET EX + 3 SADD)", P) in out:
                res.check(sec, f"SETTAGGED / EVALSHA -P {P}", st / out[("EVALSHA (SET EX + 3 SADD)", P)], ">=", 3, unit="x")

        # MULTI cannot be expressed in redis-benchmark: a raw-socket driver sends
        # the same pre-encoded pipelines for every variant (4 connections, 32
        # units per write), so the server, not Python, is the bottleneck.
        rnd = random.Random(7)
        units = 32

        def mk(kind):
            batches = []
            for _ in range(64):
                parts = []
                for _ in range(units):
                    k = "k:%d" % rnd.randrange(10 ** 8)
                    tags = ["t:%d" % rnd.randrange(10000) for _ in range(3)]
                    if kind == "SET EX":
                        parts.append(resp("SET", k, VALUE100, "EX", 3600))
                    elif kind == "CACHE.SETTAGGED 3 tags":
                        parts.append(resp("CACHE.SETTAGGED", k, VALUE100, "EX", 3600, "TAGS", *tags))
                    elif kind == "EVALSHA (SET EX + 3 SADD)":
                        parts.append(resp("EVALSHA", sha, 4, k, *tags, VALUE100, 3600))
                    elif kind == "MULTI (SET EX + 3 SADD)":
                        parts.append(resp("MULTI") + resp("SET", k, VALUE100, "EX", 3600)
                                     + b"".join(resp("SADD", t, k) for t in tags) + resp("EXEC"))
                batches.append(b"".join(parts))
            lines = {"MULTI (SET EX + 3 SADD)": 10}.get(kind, 1) * units
            return batches, lines

        kinds = ["SET EX", "MULTI (SET EX + 3 SADD)", "EVALSHA (SET EX + 3 SADD)"]
        if has_mod:
            kinds.append("CACHE.SETTAGGED 3 tags")
        drv = {}
        for kind in kinds:
            b, lines = mk(kind)
            vals = []
            try:
                for rep in range(S["set_reps"]):
                    log(f"  raw driver {kind} (rep {rep + 1}/{S['set_reps']}, {S['drv_secs']} s)")
                    vals.append(raw_throughput(srv.port, b, lines, units, conns=4, duration=S["drv_secs"]))
                    r.flushall()
                drv[kind] = statistics.median(vals)
                res.add(sec, f"{kind} [driver, 4 conns x 32 pipelined]", drv[kind], unit="ops/s")
            except Exception as e:
                res.error(sec, f"{kind} [driver]", e)
        if "CACHE.SETTAGGED 3 tags" in drv:
            st = drv["CACHE.SETTAGGED 3 tags"]
            if "SET EX" in drv:
                res.check(sec, "SETTAGGED / SET EX [driver]", st / drv["SET EX"], ">=", 0.8, unit="x")
            if "MULTI (SET EX + 3 SADD)" in drv:
                res.check(sec, "SETTAGGED / MULTI [driver]", st / drv["MULTI (SET EX + 3 SADD)"], ">=", 3, unit="x")
            if "EVALSHA (SET EX + 3 SADD)" in drv:
                res.check(sec, "SETTAGGED / EVALSHA [driver]", st / drv["EVALSHA (SET EX + 3 SADD)"], ">=", 3, unit="x")
        if "SET EX" in drv:
            for k in ("MULTI (SET EX + 3 SADD)", "EVALSHA (SET EX + 3 SADD)"):
                if k in drv:
                    res.add(sec, f"{k.split()[0]} / SET EX [driver] (recipe cost)", drv[k] / drv["SET EX"], unit="x")


# --------------------------------------------------------------------------- section 3: tag invalidation
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


def sec_tag(S, res: Results):
    sec = LABELS["tag"]
    N = S["inv_n"]
    with Server() as srv, Server(extra=["--replicaof", "127.0.0.1", str(srv.port)], role="replica") as rsrv:
        r = srv.client()
        # a dying replica (crash report, memory test) must not hold up the primary's figures
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        rep = rsrv.client(socket_timeout=2, retry=Retry(NoBackoff(), 0))
        for c in (r, rep):
            c.config_set("latency-monitor-threshold", 1)
        has_mod = module_check(srv, sec, res)
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
            res.add(sec, f"{name}: used_memory after load", (loaded - base) / 1e6, unit="MB", note=f"{N:,} entries")
            have_rep = rep_ok()
            if have_rep:
                res.check(sec, f"{name}: keys on the replica after load", rep.dbsize(), "==", N, goal=f"== {N:,}")
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
            res.add(sec, f"{name}: control window, max PING primary / replica",
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
            res.check(sec, f"CACHE.{name} reply", int(n), "==", N, goal=f"== {N:,}")
            res.check(sec, f"CACHE.{name} round trip", rtt, "<", 1, unit="ms")
            cs = cmdstat_usec(r, "cache.invalidatetag")
            if cs:
                res.check(sec, f"CACHE.{name} server time (commandstats usec)", cs[0] / 1000, "<", 1, unit="ms")

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
            res.check(sec, f"{name}: invalidated sample keys {what}", w["served"], "==", 0,
                      note=f"{w['samples']:,} lookups after the command returned")
            res.check(sec, f"{name}: max PING round trip, primary", pr["max_ms"], "<=", 5, unit="ms",
                      note=f"1 ms probe: {pr['pings']} pings, {pr['over5ms']} > 5 ms, max gap {pr['max_gap_ms']:.1f} ms")
            res.check(sec, f"{name}: LATENCY LATEST max, primary", float(lat[0]), "<=", 5, unit="ms",
                      note=lat[1] or "no event >= 1 ms")
            if rpr is None:
                pass
            elif not rep_ok():
                res.add(sec, f"{name}: replica", None, "no crash", "ERROR", note=rsrv.crash_report())
            else:
                res.check(sec, f"{name}: max PING round trip, replica", rpr["max_ms"], "<=", 5, unit="ms",
                          note=f"{rpr['pings']} pings, {rpr['over5ms']} > 5 ms; LATENCY LATEST {rlat[0]} ms {rlat[1]}")
            if soft:
                res.add(sec, f"{name}: keys left (served STALE until expiry)", r.dbsize())
                res.add(sec, f"{name}: used_memory above baseline", (data_memory(r.info('memory')) - base) / 1e6,
                        unit="MB")
            else:
                res.add(sec, f"{name}: all keys gone, primary / replica",
                        f"{fmt(w['keys_gone_s'])} / {fmt(w['replica_gone_s'])}", unit="s")
                if w["reclaimed_s"] is None:
                    res.add(sec, f"{name}: used_memory back to baseline", None, "<= 10 s", "FAIL", "s",
                            note=f"still +{w['mem_left'] / 1e6:.2f} MB after {S['reclaim_timeout']} s"
                                 + ("" if w["replica_gone_s"] is not None else "; replica still has keys"))
                else:
                    res.check(sec, f"{name}: used_memory back to baseline", w["reclaimed_s"], "<=", 10, unit="s",
                              note=f"within max(1 MB, 5%), less repl backlog; {w['mem_left'] / 1e6:+.2f} MB at the end")

        if has_mod:
            for soft in (False, True):
                try:
                    run_module(soft)
                except Exception as e:
                    res.error(sec, "CACHE.INVALIDATETAG" + (" SOFT" if soft else ""), e)

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
            res.add(sec, "Symfony recipe (Lua SSCAN+DEL): duration", dur * 1000, unit="ms", note=f"deleted {n:,}, 1 round trip")
            res.add(sec, "Symfony recipe: max PING round trip", pr["max_ms"], unit="ms", note=f"LATENCY LATEST {lat[0]} ms {lat[1]}")
        except Exception as e:
            res.error(sec, "Symfony recipe", e)

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
            res.add(sec, "Laravel recipe (SSCAN + DEL x1000): duration", dur * 1000, unit="ms",
                    note=f"deleted {deleted:,}, {trips:,} round trips")
            res.add(sec, "Laravel recipe: max PING round trip", pr["max_ms"], unit="ms", note=f"LATENCY LATEST {lat[0]} ms {lat[1]}")
        except Exception as e:
            res.error(sec, "Laravel recipe", e)


# --------------------------------------------------------------------------- section 4: pattern invalidation
OTHER_PREFIXES = ["a", "match", "match:prefiw", "match:prefiy", "match:prefixx", "n", "user", "z"]


def pattern_key(i, n_match):
    if i < n_match:
        return f"match:prefix:{i}"
    return f"{OTHER_PREFIXES[i % len(OTHER_PREFIXES)]}:{i}"


def sec_pattern(S, res: Results):
    sec = LABELS["pattern"]
    M = 1000
    pat = "match:prefix:*"
    with Server() as srv:
        r = srv.client()
        r.config_set("latency-monitor-threshold", 1)
        has_mod = module_check(srv, sec, res)
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
                    res.check(sec, f"N={N:,}: CACHE.INVALIDATE reply", int(n), "==", M)
                    res.check(sec, f"N={N:,}: CACHE.INVALIDATE round trip", rtt, "<", 2, unit="ms",
                              note=f"max PING {pr['max_ms']:.2f} ms")
                    if srv_ms is not None:
                        res.check(sec, f"N={N:,}: CACHE.INVALIDATE server usec (commandstats)", srv_ms, "<", 2, unit="ms")
                    left = sum(1 for x in r.pipeline(transaction=False).execute_command("CACHE.GET", "match:prefix:1")
                               .execute_command("CACHE.GET", f"match:prefix:{M - 1}").execute() if x is not None)
                    res.check(sec, f"N={N:,}: invalidated keys still served", left, "==", 0)
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
                    res.add(sec, f"N={N:,}: CACHE.INVALIDATE '*atch:prefix:*' (no literal prefix)", rtt2, unit="ms",
                            note=f"reply {n2}; the {M:,} keys gone after {gone:.2f} s")
                    res.check(sec, f"N={N:,}: no-prefix pattern: matching entries served after it returned", served,
                              "==", 0, note=f"{M // 10} sampled")
                    res.check(sec, f"N={N:,}: no-prefix pattern: reply", int(n2), "==", M,
                              note="API: reply is the number of entries invalidated")
                    res.check(sec, f"N={N:,}: no-prefix pattern max PING", pr2["max_ms"], "<=", 5, unit="ms")
                except Exception as e:
                    res.error(sec, f"N={N:,}: CACHE.INVALIDATE", e)

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
                    res.add(sec, f"N={N:,}: {name}", dur, unit="ms",
                            note=f"deleted {deleted:,}, {trips:,} round trips, max PING {pr['max_ms']:.1f} ms, "
                                 f"LATENCY LATEST {lat[0]} ms")
            except Exception as e:
                res.error(sec, f"N={N:,}: recipes", e)
        if len(mod_lat) >= 2:
            lo, hi = min(mod_lat), max(mod_lat)
            if mod_lat[lo] > 0:
                res.check(sec, f"CACHE.INVALIDATE cost N={hi:,} / N={lo:,}", mod_lat[hi] / mod_lat[lo], "<=", 2, unit="x",
                          goal="<= 2 x (flat in N)")


# --------------------------------------------------------------------------- section 5: memory
def sec_memory(S, res: Results):
    sec = LABELS["memory"]
    N = S["mem_n"]
    rnd = random.Random(5)
    tags = [["t:%d" % x for x in rnd.sample(range(10000), 3)] for _ in range(N)]
    with Server() as srv:
        r = srv.client()
        has_mod = module_check(srv, sec, res)
        recipe = None
        try:
            r.flushall()
            base = used_memory(r)
            log(f"  recipe: {N:,} x SET EX (100 B) + 3 SADD")
            bulk_load(srv.port, lambda i: resp("SET", f"e:{i}", VALUE100, "EX", 3600), N)
            mid = used_memory(r)
            bulk_load(srv.port, lambda i: b"".join(resp("SADD", t, f"e:{i}") for t in tags[i]), N, lines_per_cmd=3)
            end = used_memory(r)
            recipe = (end - base) / N
            res.add(sec, "recipe: string + 3 tag sets per entry", recipe, unit="B",
                    note=f"string {(mid - base) / N:.0f} B + tag sets {(end - mid) / N:.0f} B")
            res.add(sec, "recipe: MEMORY USAGE of one string", r.memory_usage("e:1"), unit="B")
        except Exception as e:
            res.error(sec, "recipe", e)
        if has_mod:
            try:
                r.flushall()
                base = used_memory(r)
                info0 = r.info("cache")
                log(f"  module: {N:,} x CACHE.SETTAGGED (100 B, 3 tags of 10,000)")
                bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", f"e:{i}", VALUE100, "EX", 3600, "TAGS", *tags[i]), N)
                end = used_memory(r)
                per = (end - base) / N
                if recipe:
                    res.check(sec, "module: entry + index per entry", per, "<=", 0.8 * recipe, unit="B",
                              goal=f"<= 0.8 x recipe ({0.8 * recipe:.0f} B)", note=f"{per / recipe:.2f}x recipe")
                else:
                    res.add(sec, "module: entry + index per entry", per, unit="B")
                try:
                    res.add(sec, "module: MEMORY USAGE of one entry", r.memory_usage("e:1"), unit="B")
                except Exception as e:
                    res.error(sec, "module: MEMORY USAGE", e)
                info = r.info("cache")
                fld = next((k for k in info if "index" in k and "bytes" in k), None)
                if fld is None:
                    fld = next((k for k in info if "index" in k and ("mem" in k or "size" in k)), None)
                if fld is not None:
                    idx = (float(info[fld]) - float(info0.get(fld, 0) or 0)) / N
                    res.check(sec, f"module: tag index per entry (INFO cache {fld})", idx, "<=", 128, unit="B")
                else:
                    res.add(sec, "module: tag index per entry (INFO cache *index*bytes*)", None, "<= 128 B", "n/a",
                            note="INFO cache has no index byte field: " + ",".join(sorted(info)[:12]))
            except Exception as e:
                res.error(sec, "module", e)


# --------------------------------------------------------------------------- section 6: mixed load
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


def sec_mixed(S, res: Results):
    sec = LABELS["mixed"]
    with Server() as srv:
        r = srv.client()
        if not module_check(srv, sec, res):
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
                res.error(sec, f"{label}: writer", w["err"])
            lats.sort()
            return lats, other, w

        def pct(lats, q):
            return lats[min(len(lats) - 1, int(len(lats) * q))] * 1000

        # Control: the same hits and sets, no invalidation, so that what the client and
        # this 2-core machine add on their own is visible next to the real figure.
        clats, cother, cw = run_mix(0.0, "control (no invalidations)")
        if clats:
            res.add(sec, "control, no invalidations: hit p50 / p99", f"{pct(clats, .5):.3f} / {pct(clats, .99):.3f}",
                    unit="ms", note=f"{len(clats):,} hits, {cw.get('sets', 0):,} sets; max {clats[-1] * 1000:.2f} ms")
        lats, other, w = run_mix(inv_rate, "mixed load")
        if not lats:
            res.error(sec, "hits", "no hit latencies recorded")
            return
        n_all = len(lats) + w.get("sets", 0) + w.get("invs", 0)
        res.add(sec, "ops: hits / sets / invalidations", f"{len(lats):,} / {w.get('sets', 0):,} / {w.get('invs', 0):,}",
                note=f"{100 * len(lats) / n_all:.1f}% / {100 * w.get('sets', 0) / n_all:.1f}% / {100 * w.get('invs', 0) / n_all:.1f}%")
        res.add(sec, "hit latency p50", pct(lats, .5), unit="ms")
        res.check(sec, "hit latency p99", pct(lats, .99), "<", 1, unit="ms", note=f"max {lats[-1] * 1000:.2f} ms")
        res.check(sec, "hot lookups not answered HIT", other + cother, "==", 0)
        if w.get("inv_ms"):
            im = sorted(w["inv_ms"])
            res.add(sec, "INVALIDATETAG round trip p50 / max", f"{im[len(im) // 2]:.3f} / {im[-1]:.3f}", unit="ms",
                    note=f"{w['inv_bad']} replies != {tag_size:,}")


# --------------------------------------------------------------------------- section 7: stampede
BACKEND_S = 0.2


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


def sec_stampede(S, res: Results):
    sec = LABELS["stampede"]
    n = S["herd"]
    with Server() as srv:
        has_mod = module_check(srv, sec, res)
        strategies = [("naive", "naive cache-aside (GET, compute, SET)"),
                      ("setnx", "SET NX lock + poll 50 ms")]
        if has_mod:
            strategies += [("poll", "CACHE.GETORMARK + poll 50 ms"), ("wait", "CACHE.GETORMARK WAIT 5000")]
        for s, label in strategies:
            log(f"  {n} clients, backend {BACKEND_S * 1000:.0f} ms: {label}")
            try:
                comp, p50, p99, early = herd(srv.port, n, s, f"herd:{s}")
                if s == "wait":
                    res.check(sec, f"{label}: backend computations", comp, "==", 1,
                              note=f"{early} PENDING replies before the 5 s timeout" if early else "")
                    res.add(sec, f"{label}: latency p50", p50, unit="ms")
                    res.check(sec, f"{label}: latency p99", p99, "<=", 1.25 * BACKEND_S * 1000, unit="ms",
                              goal="<= 1.25 x backend (250 ms)")
                else:
                    res.add(sec, f"{label}: backend computations", comp)
                    res.add(sec, f"{label}: latency p50 / p99", f"{p50:.0f} / {p99:.0f}", unit="ms")
            except Exception as e:
                res.error(sec, label, e)


# --------------------------------------------------------------------------- section 8: early refresh
def sec_refresh(S, res: Results):
    sec = LABELS["refresh"]
    rate = S["refresh_rate"]
    secs = S["refresh_secs"]
    with Server() as srv:
        if not module_check(srv, sec, res):
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
        res.add(sec, "reads after warm-up", sum(counts.values()), note=f"{reads:,} reads in all; reader late by up to {late * 1000:.0f} ms")
        res.check(sec, "MISS + PENDING after warm-up", counts["MISS"] + counts["PENDING"], "==", 0,
                  note=f"MISS {counts['MISS']}, PENDING {counts['PENDING']}, STALE {counts['STALE']}")
        exp = secs / 2.0
        res.check(sec, "early refreshes (HIT + token)", counts["HIT_TOKEN"], ">=", 1,
                  note=f"{exp:.0f} TTLs of 2 s in the run; {sets[0]} sets stored, {refused[0]} refused")


# --------------------------------------------------------------------------- section 9: cluster
def start_cluster(n=3):
    """n primaries with the module, slots split evenly, cluster_state:ok. Returns the servers."""
    cports = [free_port() for _ in range(n)]
    nodes = [Server(extra=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                           "--cluster-port", str(cports[i]), "--cluster-node-timeout", "15000"],
                    role=f"primary {i}") for i in range(n)]
    per = 16384 // n
    for i, srv in enumerate(nodes):
        lo, hi = i * per, (16383 if i == n - 1 else (i + 1) * per - 1)
        srv.client().execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
    for srv in nodes[1:]:
        srv.client().execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port, cports[0])
    deadline = time.time() + 60
    while time.time() < deadline:
        if all(b"cluster_state:ok" in srv.client().execute_command("CLUSTER", "INFO") for srv in nodes):
            views = {str(srv.client().execute_command("CLUSTER", "SLOTS")) for srv in nodes}
            if all(len(srv.client().execute_command("CLUSTER", "NODES").splitlines()) == n for srv in nodes):
                break
        time.sleep(0.1)
    else:
        raise RuntimeError("cluster did not reach cluster_state:ok")
    # Every cluster-bus link up: a cluster-wide STATS from each node answers in full.
    while time.time() < deadline:
        try:
            for srv in nodes:
                srv.client().execute_command("CACHE.STATS")
            break
        except redis.ResponseError:
            time.sleep(0.2)
    return nodes


def shard_tags(nodes):
    """One hash tag per node whose slot that node serves."""
    from redis.crc import key_slot
    per = 16384 // len(nodes)
    tags, i = {}, 0
    while len(tags) < len(nodes):
        t = f"s{i}"
        owner = min(key_slot(t.encode()) // per, len(nodes) - 1)
        tags.setdefault(owner, t)
        i += 1
    return [tags[k] for k in range(len(nodes))]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def sec_cluster(S, res: Results):
    sec = "9 cluster"
    reps = S.get("cluster_reps", 300)
    big = S.get("cluster_big", 30000)
    nodes = start_cluster(3)
    try:
        if not module_check(nodes[0], sec, res):
            return
        rs = [srv.client() for srv in nodes]
        tags = shard_tags(nodes)
        small = 4  # entries per shard in the small tag

        def fill_small():
            for r, t in zip(rs, tags):
                p = r.pipeline(transaction=False)
                for i in range(small):
                    p.execute_command("CACHE.SETTAGGED", f"{{{t}}}:small:{i}", "v", "TAGS", "small")
                p.execute()

        wide, loop = [], []
        for rep in range(reps):
            fill_small()
            t0 = time.perf_counter()
            n = rs[rep % 3].execute_command("CACHE.INVALIDATETAG", "small")
            wide.append((time.perf_counter() - t0) * 1000)
            if n != small * 3:
                raise RuntimeError(f"cluster-wide INVALIDATETAG answered {n}, want {small * 3}")
            fill_small()
            t0 = time.perf_counter()
            n = sum(r.execute_command("CACHE.INVALIDATETAG", "small", "LOCAL") for r in rs)
            loop.append((time.perf_counter() - t0) * 1000)
            if n != small * 3:
                raise RuntimeError(f"client loop answered {n}, want {small * 3}")
        retries = sum(int(r.info("cache").get("cache_cluster_send_retries", 0)) for r in rs)
        note = (f"{reps} calls, tag of {small * 3} entries over 3 primaries, from each primary in turn; "
                f"{retries} sends retried")
        res.add(sec, "cluster-wide INVALIDATETAG p50", pct(wide, 50), unit="ms", note=note)
        res.check(sec, "cluster-wide INVALIDATETAG p99", pct(wide, 99), "<", 2.0, unit="ms", note=note)
        res.add(sec, "client loop over primaries (LOCAL) p50", pct(loop, 50), unit="ms",
                note="what a client does today: one call per primary, in turn")
        res.add(sec, "client loop over primaries (LOCAL) p99", pct(loop, 99), unit="ms")

        # The reclaim of a large tag spread over the shards: worst PING round trip per node.
        per = big // 3
        for srv, t in zip(nodes, tags):
            bulk_load(srv.port, lambda i, t=t: resp("CACHE.SETTAGGED", f"{{{t}}}:big:{i}", "v", "TAGS", "big"),
                      per, label=f"load {srv.port}")
        # Control: the same probes on the idle cluster (what this machine's load alone gives).
        probes = [PingProbe(srv.port) for srv in nodes]
        time.sleep(S["control_secs"])
        control = [pr.stop() for pr in probes]
        res.add(sec, "  control: worst PING per node, idle cluster", max(o["max_ms"] for o in control),
                unit="ms", note=f"{S['control_secs']} s; " + ", ".join(f"{o['max_ms']:.1f}" for o in control) + " ms")
        probes = [PingProbe(srv.port) for srv in nodes]
        time.sleep(0.3)
        t0 = time.perf_counter()
        n = rs[0].execute_command("CACHE.INVALIDATETAG", "big")
        call_ms = (time.perf_counter() - t0) * 1000
        deadline = time.time() + S["reclaim_timeout"]
        while time.time() < deadline:
            if all(r.execute_command("DBSIZE") == 0 for r in rs):
                break
            time.sleep(0.05)
        reclaim_s = time.perf_counter() - t0
        out = [pr.stop() for pr in probes]
        res.check(sec, f"INVALIDATETAG of {per * 3:,} entries over 3 shards answers", n, "==", per * 3)
        res.add(sec, "  its call latency", call_ms, unit="ms")
        res.add(sec, "  reclaimed in", reclaim_s, unit="s")
        res.add(sec, "  worst PING per node during the reclaim", max(o["max_ms"] for o in out), unit="ms",
                note=", ".join(f"{o['max_ms']:.1f}" for o in out) + " ms; compare section 3's single node")
    finally:
        for srv in nodes:
            srv.stop()


# --------------------------------------------------------------------------- main
# Each section's label, as its rows and the table show it; errors and crashes in a section
# are filed under the same label (they used to get "1 hit" for rows labelled "1 hit path").
LABELS = {
    "hit": "1 hit path", "set": "2 set path", "tag": "3 tag invalidation",
    "pattern": "4 pattern invalidation", "memory": "5 memory", "mixed": "6 mixed load",
    "stampede": "7 stampede", "refresh": "8 early refresh", "cluster": "9 cluster",
}

SECTIONS = [
    ("hit", sec_hit), ("set", sec_set), ("tag", sec_tag), ("pattern", sec_pattern),
    ("memory", sec_memory), ("mixed", sec_mixed), ("stampede", sec_stampede), ("refresh", sec_refresh),
    ("cluster", sec_cluster),
]


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
    mod = CACHE_MODULE if os.path.exists(CACHE_MODULE) else CACHE_MODULE + " (missing)"
    commit = ""
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
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
    a = ap.parse_args(argv)
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
    if not os.path.exists(CACHE_MODULE):
        log(f"WARNING: {CACHE_MODULE} not found: module halves will report ERROR (build with cargo build --release)")
    res = Results()
    current = ["?"]
    Server.on_crash = lambda msg: res.add(current[0], "server crash", None, "no crash", "ERROR", note=msg)
    for name, fn in chosen:
        log(f"== section {name}")
        current[0] = LABELS[name]
        t = time.monotonic()
        try:
            fn(S, res)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            res.error(LABELS[name], "section", e)
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
