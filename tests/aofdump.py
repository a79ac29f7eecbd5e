"""Reading what an AOF rewrite writes: trigger a rewrite, parse the plain-command base file, and
group its commands by database (sorted, since a rewrite walks keys in hash order)."""

import glob
import os
import time

from harness import Err


def rewrite(conn, server_dir, timeout=60.0):
    """Rewrites the AOF (turning it on first if it is off, which rewrites too); returns the
    new base file's path."""
    before = set(glob.glob(os.path.join(server_dir, "appendonlydir", "*.base.aof*")))
    if conn.cmd("CONFIG", "GET", "appendonly")[1] == b"no":
        reply = conn.cmd("CONFIG", "SET", "appendonly", "yes")
    else:
        reply = conn.cmd("BGREWRITEAOF")
    assert not isinstance(reply, Err), reply
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = conn.cmd("INFO", "persistence").decode()
        fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
        done = fields.get("aof_rewrite_in_progress") == "0" and \
            fields.get("aof_rewrite_scheduled") == "0"
        after = set(glob.glob(os.path.join(server_dir, "appendonlydir", "*.base.aof"))) - before
        if done and after:
            return sorted(after)[-1]
        time.sleep(0.05)
    raise TimeoutError("AOF rewrite did not finish")


def parse(data):
    """The commands of a plain AOF (RESP arrays of bulk strings)."""
    cmds, i = [], 0
    while i < len(data):
        assert data[i:i + 1] == b"*", data[i:i + 20]
        end = data.index(b"\r\n", i)
        n = int(data[i + 1:end])
        i = end + 2
        args = []
        for _ in range(n):
            assert data[i:i + 1] == b"$"
            end = data.index(b"\r\n", i)
            size = int(data[i + 1:end])
            i = end + 2
            args.append(data[i:i + size])
            i += size + 2
        cmds.append(args)
    return cmds


def by_db(cmds):
    """{db: sorted commands} from a rewrite: SELECT switches database; keys come one by one."""
    out, db = {}, "0"
    for cmd in cmds:
        if cmd[0].upper() == b"SELECT":
            db = cmd[1].decode()
            continue
        out.setdefault(db, []).append(cmd)
    return {d: sorted(c) for d, c in out.items()}


def text(b):
    """Bytes as a JSON-friendly string, one code point per byte (None stays None)."""
    return None if b is None else b.decode("latin-1")
