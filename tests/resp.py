"""A tiny raw RESP2/RESP3 client for exact reply assertions.

redis-py hides two things these tests must check: it strips the `ERR ` code from error texts, and
it returns simple strings (`+HIT`) and bulk strings (`$3 HIT`) alike as bytes. This client keeps
both apart:

- simple string  -> S("OK")         (an instance of S, never equal to b"OK")
- error          -> Err("ERR ...")  (returned, not raised, with the full text including the code)
- bulk string    -> bytes
- integer        -> int
- nil / null     -> None
- array / set    -> list
- map            -> Map (a dict that remembers wire order; also a list of pairs in .pairs)
- double         -> float, boolean -> bool, verbatim -> bytes (without the format prefix)
"""

import socket


class S(str):
    """A RESP simple string. Compares equal only to another S with the same text."""

    def __eq__(self, other):
        return isinstance(other, S) and str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self):
        return f"S({str.__repr__(self)})"


class Err:
    """A RESP error reply, with its whole text (`ERR syntax error`, `WRONGTYPE ...`)."""

    def __init__(self, msg):
        self.msg = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")

    def __eq__(self, other):
        return isinstance(other, Err) and self.msg == other.msg

    def __hash__(self):
        return hash(self.msg)

    def __repr__(self):
        return f"Err({self.msg!r})"


class Map(dict):
    """A RESP3 map. Keeps the pairs in wire order in .pairs as well."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = list(pairs)


class Push(list):
    pass


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        elif isinstance(a, (int, float)):
            b = str(a).encode()
        else:
            raise TypeError(f"cannot encode {a!r}")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RawClient:
    def __init__(self, port, host="127.0.0.1", protocol=2, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.protocol = protocol
        if protocol == 3:
            r = self.cmd("HELLO", "3")
            if isinstance(r, Err):
                raise RuntimeError(f"HELLO 3 failed: {r.msg}")

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
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def read(self):
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
        if t == b"|":
            n = int(rest)
            for _ in range(2 * n):
                self.read()
            return self.read()
        raise ValueError(f"unknown RESP type byte in {line!r}")

    def send(self, *args):
        self.sock.sendall(_encode(args))

    def cmd(self, *args):
        """Send one command, return its reply (errors returned as Err, never raised)."""
        self.send(*args)
        r = self.read()
        while isinstance(r, Push):  # RESP3 out-of-band pushes (tracking): skip
            r = self.read()
        return r

    def pipeline(self, commands):
        self.sock.sendall(b"".join(_encode(c) for c in commands))
        return [self.read() for _ in commands]


def pairs(reply):
    """Field/value pairs of a STATS-like reply, RESP2 flat array or RESP3 map, in wire order."""
    if isinstance(reply, Map):
        return list(reply.pairs)
    assert isinstance(reply, list), reply
    assert len(reply) % 2 == 0, reply
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
