"""Throwaway redis-servers with the module loaded, for the package's tests.

Binary: $REDIS_SERVER (default redis-server); module: $CACHE_MODULE (default
<repo>/target/release/librediscache.so). Each server gets a free loopback port (never 6379)
and its own temp dir, and is always stopped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
CACHE_MODULE = os.environ.get(
    "CACHE_MODULE", os.path.join(REPO, "target", "release", "librediscache.so")
)


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


class Server:
    def __init__(self, args: tuple = ()) -> None:
        self.dir = tempfile.mkdtemp(prefix="rediscache-py-")
        self.port = free_port()
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Server:
        if not os.path.exists(CACHE_MODULE):
            raise RuntimeError(f"no module at {CACHE_MODULE} (cargo build --release)")
        cmd = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.dir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            os.path.join(self.dir, "redis.log"),
            "--loadmodule",
            CACHE_MODULE,
            *self.args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited:\n" + self.log()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(7) == b"+PONG\r\n":
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start:\n" + self.log()[-2000:])

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
