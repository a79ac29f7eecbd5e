"""Throwaway redis-server (or valkey-server) processes with the cache module loaded.

The one launcher of the tests, the model/fuzz/fault drivers, scripts/valgrind.sh,
scripts/profile.py and the benchmark.

Environment:
  REDIS_SERVER   server binary (default `redis-server` on PATH)
  CACHE_MODULE   module path (default <repo>/target/release/librediscache.so)
  CACHE_VALGRIND a directory: every server given no `wrapper` runs under memcheck, one log per
                 process there (start timeout 120 s; slow, for a few targeted tests)

Every server runs on a free loopback port (never 6379, Debian's service, nor 6390, `make run`),
in its own directory (a temporary one, removed by `cleanup()`, unless `dir` is given), with
`--save "" --appendonly no --enable-debug-command yes --loglevel notice` before the caller's
`extra_args` (later arguments win). `wrapper` runs the server under another program
(`memcheck(...)`, `callgrind(...)`: valgrind). A server that exits or does not answer raises
`ServerDied` / `ServerNotReady`, both carrying the tail of its log.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .resp import Err, RawClient

REPO = Path(__file__).resolve().parent.parent.parent
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
CACHE_MODULE = os.environ.get("CACHE_MODULE", str(REPO / "target" / "release" / "librediscache.so"))
FORBIDDEN_PORTS = {6379, 6390}  # Debian's service, and `make run`

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
SYNC_TIMEOUT = 20.0


class ServerError(RuntimeError):
    """A server failed to start, died, or did not answer. `.tail` is the end of its log."""

    def __init__(self, msg, tail=""):
        super().__init__(f"{msg}\n{tail}" if tail else msg)
        self.tail = tail


class ServerDied(ServerError):
    """The server process exited (while starting, or during a call to `check()`)."""


class ServerNotReady(ServerError, TimeoutError):
    """The server did not answer PING within its start timeout."""


def free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in FORBIDDEN_PORTS and port < 55535:
            return port
    raise RuntimeError("no free port found")


def server_version(binary=None):
    out = subprocess.run([binary or REDIS_SERVER, "--version"], capture_output=True, text=True,
                         timeout=10).stdout
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def is_valkey(binary=None):
    out = subprocess.run([binary or REDIS_SERVER, "--version"], capture_output=True, text=True,
                         timeout=10).stdout
    return out.lower().startswith("valkey")


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    """Polls pred() until it is truthy (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# --- valgrind wrappers (Debian's redis-server allocates with the shared libjemalloc, so memcheck
# is told to intercept it) ---
def memcheck(log_dir, suppressions=None):
    """memcheck, one log per process in log_dir; exit code 99 when it found errors."""
    sup = suppressions or str(REPO / "scripts" / "valgrind.sup")
    return ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
            "--error-exitcode=99", "--soname-synonyms=somalloc=libjemalloc.so*",
            "--num-callers=30", f"--suppressions={sup}", f"--log-file={log_dir}/valgrind-%p.log"]


def callgrind(out_dir):
    """callgrind collecting only inside the server's call() (toggled by callgrind_control)."""
    return ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=call",
            f"--callgrind-out-file={out_dir}/callgrind.out.%p"]


class Server:
    """One server process. `module_args` follow `--loadmodule`; `extra_args` are argv words
    (`["--appendonly", "yes"]`); `conf_text` is written to a config file given first."""

    def __init__(self, dir=None, name="server", binary=None, module=None, module_args=(),
                 extra_args=(), conf_text=None, load_module=True, wrapper=(), port=None,
                 start_timeout=START_TIMEOUT):
        self.owns_dir = dir is None
        self.dir = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="cache-test-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.binary = binary or REDIS_SERVER
        self.module = str(module or CACHE_MODULE)
        self.module_args = [str(a) for a in module_args]
        self.extra_args = [str(a) for a in extra_args]
        self.conf_text = conf_text
        self.load_module = load_module
        if not wrapper and os.environ.get("CACHE_VALGRIND"):
            wrapper = memcheck(os.environ["CACHE_VALGRIND"])
            start_timeout = max(start_timeout, 120.0)
        self.wrapper = [str(a) for a in wrapper]
        self.port = port
        self.start_timeout = start_timeout
        self.proc = None
        self.logfile = self.dir / "server.log"
        self._clients = []
        self._expected_exit = True

    # --- lifecycle ---
    def argv(self):
        argv = self.wrapper + [self.binary]
        if self.conf_text is not None:
            conf = self.dir / "redis.conf"
            conf.write_text(self.conf_text)
            argv.append(str(conf))
        argv += [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", str(self.logfile),
            "--loglevel", "notice",
            "--save", "",
            "--appendonly", "no",
            "--enable-debug-command", "yes",
            "--repl-diskless-sync-delay", "0",  # full syncs start at once (7.0 waits 5 s)
        ]
        if self.load_module:
            argv += ["--loadmodule", self.module, *self.module_args]
        argv += self.extra_args
        return argv

    def start(self, wait=True):
        """Starts the process (same port and dir on a restart); with wait, until it answers."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        if self.load_module and not Path(self.module).is_file():
            raise FileNotFoundError(
                f"module not found at {self.module}: build it (cargo build --release) or set CACHE_MODULE")
        first = self.port is None
        for attempt in range(5):
            if first:
                self.port = free_port()
            self._log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
            self.proc = subprocess.Popen(self.argv(), cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self._expected_exit = False
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except ServerDied:
                text = self.log()[self._log_offset:] + self._output()
                if first and "Address already in use" in text and attempt < 4:
                    continue
                raise
        raise ServerError("could not start server")

    def _output(self):
        """What the process wrote to stdout/stderr (only once it has exited)."""
        if self.proc is None or self.proc.poll() is None or self.proc.stdout is None:
            return ""
        try:
            return self.proc.stdout.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def wait_ready(self):
        """Waits until the server answers PING (not LOADING). Raises ServerDied if it exits,
        ServerNotReady (after killing it) if it stays silent for `start_timeout` seconds."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._expected_exit = True
                raise ServerDied(f"server {self.name} exited with {self.proc.returncode}: "
                                 f"{' '.join(self.argv())}", self.tail(40) + "\n" + self._output())
            try:
                with RawClient(self.port, timeout=2) as c:
                    if not isinstance(c.cmd("PING"), Err):
                        return
            except (OSError, ConnectionError):
                pass
            time.sleep(0.02)
        tail = self.tail(40)
        self.kill9()
        raise ServerNotReady(f"server {self.name} not ready after {self.start_timeout}s", tail)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check(self):
        """Raises ServerDied, with the log tail, if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerDied(f"server {self.name} (port {self.port}) exited with "
                             f"{self.proc.returncode}", self.tail(40))

    def died_unexpectedly(self):
        return self.proc is not None and self.proc.poll() is not None and not self._expected_exit

    def _close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []

    def stop(self, save=False, timeout=STOP_TIMEOUT):
        """Graceful stop: SHUTDOWN SAVE|NOSAVE, then waits for the process to exit (bounded;
        killed after `timeout`, at least 120 s under a wrapper). Returns its exit code (None if it
        never started)."""
        if self.wrapper:
            timeout = max(timeout, 120.0)
        self._close_clients()
        if self.proc is None:
            return None
        if self.alive():
            self._expected_exit = True
            try:
                with RawClient(self.port, timeout=timeout) as c:
                    r = c.cmd("SHUTDOWN", "SAVE" if save else "NOSAVE")
                    if isinstance(r, Err):
                        raise ServerError(f"SHUTDOWN failed on {self.name}: {r}")
            except (ConnectionError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise ServerError(f"server {self.name} did not exit after SHUTDOWN")
        return self.proc.returncode

    def restart(self, save=True):
        self.stop(save=save)
        return self.start()

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig`; for a fatal one, waits for the exit (an expected exit, not a death)."""
        if not self.alive():
            return
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self._close_clients()
            self._expected_exit = True
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def kill9(self):
        self.kill(signal.SIGKILL)

    def cleanup(self):
        """Stops the server (killing it if the stop fails) and removes a temporary dir."""
        try:
            self.stop()
        except Exception:
            self.kill9()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # --- clients ---
    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def client(self, protocol=2, decode=False, db=0, **kw):
        """A redis-py client (closed when the server stops); **kw go to redis.Redis."""
        import redis
        kw.setdefault("socket_timeout", 30)
        c = redis.Redis(host="127.0.0.1", port=self.port, protocol=protocol,
                        decode_responses=decode, db=db, **kw)
        self._clients.append(c)
        return c

    def raw(self, protocol=2, db=0, timeout=30.0):
        """A raw RESP client (resp.RawClient; closed when the server stops)."""
        c = RawClient(self.port, protocol=protocol, timeout=timeout)
        if db:
            r = c.cmd("SELECT", db)
            assert not isinstance(r, Err), r
        self._clients.append(c)
        return c

    # --- logs / info ---
    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n=60):
        """The log's last n lines; after a crash, the crash report's useful parts instead."""
        lines = self.log().splitlines()
        if any("BUG REPORT START" in line for line in lines):
            return self._crash_excerpt(lines)
        return "\n".join(lines[-n:])

    @staticmethod
    def _crash_excerpt(lines):
        out = []
        for marker, count in (("BUG REPORT START", 4), ("------ STACK TRACE ------", 24),
                              ("------ CURRENT CLIENT INFO ------", 8)):
            for i, line in enumerate(lines):
                if marker in line:
                    out += lines[i:i + count] + ["..."]
                    break
        return "\n".join(out)

    def crash_summary(self):
        """One line: why the server died (signal, assertion, panic, the command it ran), from
        its crash report; "" while it runs."""
        if self.alive() or self.proc is None:
            return ""
        lines = [x.rstrip() for x in self.log().splitlines()]
        keep = []
        for i, line in enumerate(lines):
            if ("crashed by signal" in line or "ASSERTION FAILED" in line
                    or "Guru Meditation" in line or "panicked" in line):
                keep.append(line.split("# ", 1)[-1].strip())
            if line.startswith("EIP:") and i + 1 < len(lines):
                keep.append("EIP " + lines[i + 1].strip())
            if "argv[" in line and "CLIENT INFO" not in line:
                keep.append(line.strip())
            if "cmd=" in line and "CURRENT CLIENT" in (lines[i - 1] if i else ""):
                keep.append(line[line.find("cmd="):].split()[0])
        what = "; ".join(dict.fromkeys(keep))[:600] or f"exited with {self.proc.returncode}"
        return f"{self.name} (port {self.port}) CRASHED: {what}"

    def info(self, section=None):
        with RawClient(self.port) as c:
            raw = c.cmd("INFO", section) if section else c.cmd("INFO")
        if isinstance(raw, Err):
            raise ServerError(f"INFO failed on {self.name}: {raw}")
        out = {}
        for line in raw.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    # --- replication ---
    def replicaof(self, other):
        with RawClient(self.port) as c:
            r = c.cmd("REPLICAOF", "127.0.0.1", other.port)
            assert not isinstance(r, Err), r
        return self

    def wait_sync(self, primary, timeout=SYNC_TIMEOUT):
        """Waits until this replica's link is up and it has processed all of primary's stream."""
        def synced():
            mine = self.info("replication")
            if mine.get("master_link_status") != "up":
                return False
            theirs = primary.info("replication")
            off = mine.get("slave_repl_offset", mine.get("replica_repl_offset"))
            return off is not None and off == theirs.get("master_repl_offset")
        wait_until(synced, timeout=timeout, what=f"{self.name} in sync with {primary.name}")

    def __repr__(self):
        return f"<Server {self.name} port={self.port}>"
