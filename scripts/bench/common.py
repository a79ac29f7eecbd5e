"""What the benchmark's sections share: sizes, the result rows, servers (the tests' harness),
the raw-socket load drivers, the redis-benchmark wrapper and the PING probe."""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))
from harness import CACHE_MODULE, Server, encode  # noqa: E402

REDIS_BENCHMARK = os.environ.get("REDIS_BENCHMARK", "redis-benchmark")
# The module every server of the run loads: run.py --module PATH sets it (default
# $CACHE_MODULE, else target/release/librediscache.so).
MODULE = CACHE_MODULE

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
BACKEND_S = 0.2  # the simulated backend's compute time (sections stampede and refresh)


# --------------------------------------------------------------------------- results
class Results:
    """The rows of the table. Rows are filed under `section`, the label of the section that is
    running (run.py sets it), so that every row, error and crash shows under its section."""

    def __init__(self):
        self.rows: list[dict] = []
        self.section = "?"

    def add(self, metric, value, goal="", status="INFO", unit="", note=""):
        row = dict(section=self.section, metric=metric, value=value, unit=unit, goal=goal,
                   status=status, note=note)
        self.rows.append(row)
        log("  => %s / %s: %s %s [%s]%s" % (self.section, metric, fmt(value), unit, status,
                                            (" (" + note + ")") if note else ""))
        return row

    def check(self, metric, value, op, target, unit="", goal=None, note=""):
        """Add a row with pass/fail: op is '>=', '<=', '<', '==' ."""
        if value is None:
            return self.add(metric, None, goal or f"{op} {target}{unit}", "n/a", unit, note)
        ok = {">=": value >= target, "<=": value <= target, "<": value < target,
              "==": value == target, ">": value > target}[op]
        return self.add(metric, value, goal or f"{op} {fmt(target)}{(' ' + unit) if unit else ''}",
                        "PASS" if ok else "FAIL", unit, note)

    def error(self, metric, exc):
        msg = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        dead = [s.crash_report() for s in LIVE if not s.alive()]
        if dead and not isinstance(exc, str):
            msg = "; ".join(dead) + " -- " + msg
        msg = " ".join(str(msg).split())[:300]
        return self.add(metric, None, "", "ERROR", "", msg)


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
LIVE: list = []  # the BenchServers running now
ON_CRASH = []    # callbacks(str) for servers found dead by themselves when stopped (run.py)


class BenchServer(Server):
    """A harness server (free loopback port, temp dir, never 6379) with the run's module,
    registered while it runs so that an error row can say which server crashed and why."""

    def __init__(self, name="primary", extra_args=(), with_module=True, dir=None, module=None,
                 module_args=()):
        module = module or MODULE
        super().__init__(dir, name, module=module, module_args=module_args,
                         load_module=with_module and os.path.exists(module),
                         extra_args=["--protected-mode", "no", *extra_args])
        self.module_loaded = False
        self.crash_seen = False

    def start(self, wait=True):
        super().start(wait)
        if self not in LIVE:
            LIVE.append(self)
        try:
            mods = self.client().execute_command("MODULE", "LIST")
            for m in mods or []:
                d = m if isinstance(m, dict) else dict(zip(m[::2], m[1::2]))
                if (d.get(b"name") or d.get("name")) in (b"cache", "cache"):
                    self.module_loaded = True
        except redis.RedisError:
            pass
        return self

    def client(self, **kw) -> redis.Redis:
        kw.setdefault("single_connection_client", True)
        kw.setdefault("socket_timeout", None)
        return super().client(**kw)

    def crash_report(self) -> str:
        """If the server died on its own: the lines of its crash report that say why, and where
        a copy of its log is kept."""
        if self.alive():
            return ""
        self.crash_seen = True
        saved = f"/tmp/cachebench-crash-{self.port}.log"
        try:
            shutil.copy(self.logfile, saved)
        except OSError:
            saved = ""
        return self.crash_summary() + (f" (log: {saved})" if saved else "")

    def stop(self, save=False, timeout=20.0):
        if self in LIVE:
            LIVE.remove(self)
        if self.died_unexpectedly() and not self.crash_seen:
            for cb in ON_CRASH:
                cb(self.crash_report())
        return super().stop(save=save, timeout=timeout)


def module_check(srv: BenchServer, res: Results) -> bool:
    if not srv.module_loaded:
        why = "module file not found: " + srv.module if not os.path.exists(srv.module) \
            else "module did not load (MODULE LIST has no 'cache')"
        res.error("module half", why)
        return False
    return True


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


# --------------------------------------------------------------------------- raw RESP
def resp(*args) -> bytes:
    return encode(args)


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


def rbench_medians(srv, res, cmds, reps, n, pipeline, r=None, before=None):
    """Median ops/s of each of `cmds` (name -> argv) over `reps` interleaved runs; a command that
    fails is filed as an ERROR once and not run again. `before` runs before every run."""
    runs = {name: [] for name in cmds}
    bad = set()
    for rep in range(reps):
        for name, argv in cmds.items():
            if name in bad:
                continue
            log(f"  redis-benchmark -P {pipeline} {name} (rep {rep + 1}/{reps}, n={n:,})")
            if before:
                before()
            try:
                runs[name].append(rbench(srv.port, argv, n, pipeline=pipeline, r=r))
            except Exception as e:
                bad.add(name)
                res.error(f"{name} -P {pipeline}", e)
    return {name: statistics.median(v) for name, v in runs.items() if v}


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
