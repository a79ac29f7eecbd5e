"""A small launcher for throwaway redis-servers with the module loaded.

Each server gets a free loopback port (never 6379) and its own temp dir, and is always stopped
(SIGTERM, then SIGKILL) when the `with` block ends. Binary: $REDIS_SERVER (default
redis-server); module: $CACHE_MODULE (default <repo>/target/release/librediscache.so).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
CACHE_MODULE = os.environ.get(
    "CACHE_MODULE", os.path.join(REPO, "target", "release", "librediscache.so"))


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


class Server:
    """One redis-server process. `args` are extra config pairs, e.g. ["appendonly", "yes"]."""

    def __init__(self, args=(), module=True, wrapper=(), dir=None, port=None,
                 start_timeout=10.0):
        self.args = list(args)
        self.module = module
        self.wrapper = list(wrapper)
        self.owns_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="cache-test-")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.proc = None
        self.log = os.path.join(self.dir, "redis.log")

    def command_line(self):
        cmd = self.wrapper + [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                              "--dir", self.dir, "--logfile", self.log, "--save", "",
                              "--enable-debug-command", "yes", "--daemonize", "no"]
        if self.module:
            cmd += ["--loadmodule", CACHE_MODULE]
        for i in range(0, len(self.args), 2):
            cmd += ["--" + self.args[i], str(self.args[i + 1])]
        return cmd

    def start(self, wait=True):
        self.proc = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.dir)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        """Waits until the server answers PING (not LOADING); raises if it exits or stalls."""
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n"
                                   + self.log_text()[-3000:])
            try:
                c = Conn(self.port, timeout=1.0)
                try:
                    if c.call("PING") == b"PONG":
                        return
                finally:
                    c.close()
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError("redis-server did not start:\n" + self.log_text()[-3000:])

    def client(self, **kw):
        kw.setdefault("socket_timeout", 30)
        return redis.Redis(host="127.0.0.1", port=self.port, single_connection_client=True, **kw)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self, timeout=30):
        """Stops the server; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()


class Err(str):
    """An error reply, its text as sent (code prefix included)."""


def _b(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, (bytearray, memoryview)):
        return bytes(a)
    return str(a).encode()


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = _b(a)
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


class Conn:
    """A minimal RESP2 client: exact error texts, binary-safe, pipelining by send/read."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, *args):
        self.sock.sendall(encode(args))

    def send_many(self, cmds):
        self.sock.sendall(b"".join(encode(c) for c in cmds))

    def call(self, *args):
        self.send(*args)
        return self.read()

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("connection closed by server")
        self.buf += data

    def _line(self):
        while True:
            at = self.buf.find(b"\r\n")
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[:at + 2]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n + 2]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return Err(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(f"bad reply line {line!r}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
