"""pytest harness: real redis-server (or valkey-server) processes with the cache module loaded.

Environment:
  REDIS_SERVER   server binary (default `redis-server` on PATH)
  CACHE_MODULE   module path (default <repo>/target/release/librediscache.so)

Every server runs on a free loopback port (never 6379), in its own temporary directory, with
`--save "" --appendonly no --enable-debug-command yes --loglevel notice` unless a test asks for
more, and is always stopped at teardown. When a test fails, the tail of each server's log is
attached to the report.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cachelib import wait_until
import redis

from resp import Err, RawClient

REPO = Path(__file__).resolve().parent.parent
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
CACHE_MODULE = os.environ.get("CACHE_MODULE", str(REPO / "target" / "release" / "librediscache.so"))
DEFAULT_MODULE_ARGS = ("cache.lease-ms", "500")
FORBIDDEN_PORTS = {6379, 6390}  # Debian's service, and `make run`

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
SYNC_TIMEOUT = 20.0


def free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in FORBIDDEN_PORTS and port < 55535:
            return port
    raise RuntimeError("no free port found")


def server_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def is_valkey(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    return out.lower().startswith("valkey")


class ServerDied(Exception):
    pass


class Server:
    def __init__(self, workdir, name, binary=None, module=None, module_args=None, extra_args=(),
                 conf_text=None, load_module=True):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.binary = binary or REDIS_SERVER
        self.module = module or CACHE_MODULE
        self.module_args = list(DEFAULT_MODULE_ARGS if module_args is None else module_args)
        self.extra_args = [str(a) for a in extra_args]
        self.conf_text = conf_text
        self.load_module = load_module
        self.port = None
        self.proc = None
        self.logfile = self.dir / "server.log"
        self._clients = []
        self._expected_exit = True

    # --- lifecycle ---
    def argv(self):
        argv = [self.binary]
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
            argv += ["--loadmodule", str(self.module), *self.module_args]
        argv += self.extra_args
        return argv

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        if self.load_module and not Path(self.module).is_file():
            raise FileNotFoundError(
                f"module not found at {self.module}: build it (cargo build --release) or set CACHE_MODULE")
        first = self.port is None
        for attempt in range(5):
            if first:
                self.port = free_port()
            log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
            self.proc = subprocess.Popen(self.argv(), cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self._expected_exit = False
            try:
                self._wait_ready()
                return self
            except ServerDied:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                text = self.log()[log_offset:] + out
                if first and "Address already in use" in text and attempt < 4:
                    continue
                self._expected_exit = True
                raise RuntimeError(f"server {self.name} failed to start: {' '.join(self.argv())}\n"
                                   f"{self.tail(40)}\n{out}")
        raise RuntimeError("could not start server")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerDied()
            try:
                with RawClient(self.port, timeout=2) as c:
                    r = c.cmd("PING")
                    if not isinstance(r, Err):
                        return
            except (OSError, ConnectionError):
                pass
            time.sleep(0.02)
        self.kill9()
        raise RuntimeError(f"server {self.name} not ready after {START_TIMEOUT}s\n{self.tail(40)}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []

    def stop(self, save=False):
        """Graceful stop: SHUTDOWN SAVE|NOSAVE, then wait for the process to exit (bounded)."""
        self._close_clients()
        if not self.alive():
            return
        self._expected_exit = True
        try:
            with RawClient(self.port, timeout=STOP_TIMEOUT) as c:
                r = c.cmd("SHUTDOWN", "SAVE" if save else "NOSAVE")
                if isinstance(r, Err):
                    raise RuntimeError(f"SHUTDOWN failed on {self.name}: {r.msg}")
        except (ConnectionError, OSError):
            pass
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise RuntimeError(f"server {self.name} did not exit after SHUTDOWN")

    def restart(self, save=True):
        self.stop(save=save)
        return self.start()

    def kill9(self):
        self._close_clients()
        self._expected_exit = True
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def died_unexpectedly(self):
        return self.proc is not None and self.proc.poll() is not None and not self._expected_exit

    # --- clients ---
    def client(self, protocol=2, decode=False, db=0):
        c = redis.Redis(host="127.0.0.1", port=self.port, protocol=protocol, decode_responses=decode,
                        db=db, socket_timeout=30)
        self._clients.append(c)
        return c

    def raw(self, protocol=2, db=0):
        c = RawClient(self.port, protocol=protocol)
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
        if any("REDIS BUG REPORT START" in line for line in lines):
            return self._crash_excerpt(lines)
        return "\n".join(lines[-n:])

    @staticmethod
    def _crash_excerpt(lines):
        out = []
        for marker, count in (("REDIS BUG REPORT START", 4), ("------ STACK TRACE ------", 24),
                              ("------ CURRENT CLIENT INFO ------", 8)):
            for i, line in enumerate(lines):
                if marker in line:
                    out += lines[i:i + count] + ["..."]
                    break
        return "\n".join(out)

    def info(self, section=None):
        with RawClient(self.port) as c:
            raw = c.cmd("INFO", section) if section else c.cmd("INFO")
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
        """Wait until this replica's link is up and it has processed all of primary's stream."""
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in getattr(item, "_cache_servers", []):
            rep.sections.append((f"{s.name} log tail ({s.binary}, port {s.port})", s.tail(40)))


@pytest.fixture
def make_server(request, tmp_path):
    """Factory: make_server(name=..., module_args=[...], extra_args=[...], start=True) -> Server."""
    servers = []
    request.node._cache_servers = servers

    def factory(name=None, start=True, **kw):
        name = name or f"s{len(servers)}"
        s = Server(tmp_path / name, name, **kw)
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory
    died = [s for s in servers if s.died_unexpectedly()]
    for s in reversed(servers):  # replicas (made later) first
        try:
            s.stop(save=False)
        except Exception:
            s.kill9()
    if died:
        pytest.fail("server(s) died during the test: " + ", ".join(
            f"{s.name} (exit {s.proc.returncode})\n{s.tail(40)}" for s in died), pytrace=False)


@pytest.fixture
def server(make_server):
    return make_server("main")


@pytest.fixture
def r(server):
    """A raw RESP2 client on the default server (exact reply types and error texts)."""
    return server.raw()


@pytest.fixture(scope="session")
def server_info():
    return {"binary": REDIS_SERVER, "version": server_version(REDIS_SERVER), "valkey": is_valkey(REDIS_SERVER)}
