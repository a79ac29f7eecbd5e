"""The one raw RESP2/RESP3 client of the tests, the drivers and the benchmark.

redis-py hides two things these tests must check: it strips the `ERR ` code from error texts, and
it returns simple strings (`+OK`) and bulk strings (`$2 OK`) alike as bytes. This client keeps
both apart:

- simple string  -> S("OK")         (an instance of S, never equal to b"OK" or "OK")
- error          -> Err("ERR ...")  (returned, not raised, with the full text including the code)
- bulk string    -> bytes
- integer        -> int
- nil / null     -> None
- array / set    -> list
- push           -> Push (a list; `cmd` skips pushes, `read` returns them)
- map            -> Map (a dict that remembers wire order; also a list of pairs in .pairs)
- double         -> float, boolean -> bool, verbatim -> bytes (without the format prefix)
"""

import socket


class _Exact(str):
    """A str equal only to another of its own reply type with the same text (never to a plain
    str, bytes or the other type)."""

    def __eq__(self, other):
        return type(other) is type(self) and str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self):
        return f"{type(self).__name__}({str.__repr__(self)})"


class S(_Exact):
    """A RESP simple string."""


class Err(_Exact):
    """A RESP error reply: its whole text (`ERR syntax error`, `WRONGTYPE ...`), code included.

    A str, so `.startswith("OOM")` and `in` work. `.msg` is the text as a plain str."""

    def __new__(cls, msg):
        if isinstance(msg, (bytes, bytearray, memoryview)):
            msg = bytes(msg).decode("utf-8", "replace")
        return super().__new__(cls, msg)

    @property
    def msg(self):
        return str.__str__(self)


class Map(dict):
    """A RESP3 map. Keeps the pairs in wire order in .pairs as well."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = list(pairs)


class Push(list):
    """A RESP3 out-of-band push (`>`): tracking invalidations, pub/sub messages."""


OK = S("OK")


def _arg(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, (bytearray, memoryview)):
        return bytes(a)
    if isinstance(a, str):
        return a.encode()
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return str(a).encode()
    raise TypeError(f"cannot encode {a!r}")


def encode(args):
    """One command as a RESP array of bulk strings (str, bytes, int or float arguments)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _arg(a)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RawClient:
    """A raw connection: exact reply types and error texts, binary-safe, pipelining.

    `cmd(*args)` sends one command and returns its reply; `send(*args)` / `send_many(cmds)` and
    `read()` pipeline; `pipeline(cmds)` sends a batch and returns its replies."""

    def __init__(self, port, host="127.0.0.1", protocol=2, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.protocol = protocol
        if protocol == 3:
            r = self.cmd("HELLO", "3")
            if isinstance(r, Err):
                self.close()
                raise RuntimeError(f"HELLO 3 failed: {r}")

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- wire ---
    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            start = max(0, len(self.buf) - 1)
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n + 2]
        return data

    def read(self):
        """The next reply off the wire (a Push too: see `cmd`)."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return S(rest.decode("utf-8", "replace"))
        if t == b"-":
            return Err(rest)
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.read() for _ in range(n)]
            return Push(items) if t == b">" else items
        if t == b"%":
            n = int(rest)
            pairs = []
            for _ in range(n):
                k = self.read()
                v = self.read()
                pairs.append((k, v))
            return Map(pairs)
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        if t == b"(":
            return int(rest)
        if t == b"=":
            data = self._exact(int(rest))
            return data[4:]
        if t == b"!":
            return Err(self._exact(int(rest)))
        if t == b"|":  # attributes: skipped, the reply they annotate follows
            n = int(rest)
            for _ in range(2 * n):
                self.read()
            return self.read()
        raise ValueError(f"unknown RESP type byte in {line!r}")

    def send(self, *args):
        self.sock.sendall(encode(args))

    def send_many(self, cmds):
        self.sock.sendall(b"".join(encode(c) for c in cmds))

    def cmd(self, *args):
        """Send one command, return its reply (errors returned as Err, never raised; RESP3
        out-of-band pushes before the reply are skipped)."""
        self.send(*args)
        r = self.read()
        while isinstance(r, Push):
            r = self.read()
        return r

    def pipeline(self, commands):
        self.send_many(commands)
        return [self.read() for _ in commands]


def pairs(reply):
    """Field/value pairs of a STATS-like reply, RESP2 flat array or RESP3 map, in wire order."""
    if isinstance(reply, Map):
        return list(reply.pairs)
    assert isinstance(reply, list), reply
    assert len(reply) % 2 == 0, reply
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]


def name(x):
    """A field name (bytes or S) as str."""
    return x.decode() if isinstance(x, bytes) else str(x)


def fields(reply):
    """A STATS-like reply as {field name (str): value as sent}."""
    return {name(k): v for k, v in pairs(reply)}
