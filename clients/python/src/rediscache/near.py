"""``rediscache.NearCache``: an in-process L1 in front of the module, kept right by the server.

Reads go L1 -> ``CACHE.GET key WITHMETA`` (tracked) -> ``CACHE.GETORMARK`` (leases, WAIT) on a
miss. A local copy is aged from fresh to stale by itself (``fresh_until_ms``) and dropped when
the server says so:

- the invalidation channel ``__cache@<db>__:invalidate`` (``tag``, ``softtag``, ``pattern``,
  ``softpattern``): one message per invalidation command, at command time, however many
  entries it covers;
- ``CLIENT TRACKING`` pushes (RESP2, ``REDIRECT`` to the listening connection), for overwrite,
  DEL, expiry, eviction, soft invalidation of a key, and FLUSHDB (a nil push).

A background thread owns one connection subscribed to both channels; the reading connection has
``CLIENT TRACKING on REDIRECT <that connection>``. When either connection drops, every local copy
is dropped (messages sent meanwhile are lost) and the L1 is bypassed until both are back.

Costs per message: a tag, O(1) (its generation is bumped; the dead copies are freed later by a
background sweep through a tag -> keys index, 2,000 at a time); a tag pattern, O(distinct local
tags); a literal key, O(1); a key pattern with wildcards, O(1) (a rule checked on read until the
background sweep of the local copies has applied it); a tracking push, O(keys it names).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Iterable, Optional

import redis

from . import _core
from ._core import KeyT, Serializer, TagsT, log
from ._sync import Cache

__all__ = ["NearCache", "redis_glob"]

_SPECIAL = re.compile(rb"[*?\[\\]")
_CONN_KEYS = (
    "host",
    "port",
    "path",
    "db",
    "username",
    "password",
    "credential_provider",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "client_name",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
    "ssl_password",
)


def redis_glob(pattern: bytes) -> re.Pattern[bytes]:
    """Redis's glob language (KEYS, SCAN MATCH) as a compiled regex on bytes."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i : i + 1]))
        elif c == b"[":
            j = i + 1
            neg = j < n and pattern[j : j + 1] == b"^"
            if neg:
                j += 1
            items = []
            while j < n and pattern[j : j + 1] != b"]":
                ch = pattern[j : j + 1]
                if ch == b"\\" and j + 1 < n:
                    j += 1
                    items.append(re.escape(pattern[j : j + 1]))
                elif (
                    pattern[j + 1 : j + 2] == b"-" and j + 2 < n and pattern[j + 2 : j + 3] != b"]"
                ):
                    lo, hi = sorted((pattern[j : j + 1], pattern[j + 2 : j + 3]))
                    items.append(re.escape(lo) + b"-" + re.escape(hi))
                    j += 2
                else:
                    items.append(re.escape(ch))
                j += 1
            if j >= n:  # no closing bracket: Redis matches the rest literally
                out.append(re.escape(pattern[i:]))
                break
            out.append(b"[" + (b"^" if neg else b"") + b"".join(items) + b"]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"(?s:" + b"".join(out) + b")\\Z")


def _b(k: Any) -> bytes:
    if isinstance(k, bytes):
        return k
    if isinstance(k, (bytearray, memoryview)):
        return bytes(k)
    return str(k).encode()


class _Copy:
    __slots__ = ("value", "fresh_until", "expire_at", "tags", "gens", "soft", "epoch")

    def __init__(self, value: Any, fresh_until: int, expire_at: int, tags: list) -> None:
        self.value = value
        self.fresh_until = fresh_until
        self.expire_at = expire_at
        self.tags = tags
        self.gens: tuple = ()  # (hard, soft) generation of each tag when the copy was kept
        self.soft = False
        self.epoch = 0  # the message count when the copy was kept


class NearCache:
    """An in-process LRU of module entries in front of ``rediscache.Cache``.

    ``client`` is the application's ``redis.Redis`` (its connection settings are reused for the
    two connections this class owns). ``maxsize`` bounds the local copies (LRU).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        maxsize: int = 10_000,
        serializer: Serializer = _core.RAW,
        **cache_kwargs: Any,
    ) -> None:
        self.client = client
        self.maxsize = maxsize
        self.serializer = serializer
        self.cache = Cache(client, serializer=serializer, **cache_kwargs)
        pool_kw = client.connection_pool.connection_kwargs
        # The two connections of this class: the client's address and credentials, RESP2
        # (tracking pushes come as Pub/Sub messages through REDIRECT) and bytes, whatever
        # protocol and decoding the application's client uses.
        kw = {k: pool_kw[k] for k in _CONN_KEYS if k in pool_kw}
        kw["protocol"] = 2
        self._conn_class = client.connection_pool.connection_class
        self._conn_kwargs = kw
        self._db = int(kw.get("db", 0) or 0)
        self.channel = f"__cache@{self._db}__:invalidate".encode()
        self._lock = threading.RLock()
        self._applied = threading.Condition(self._lock)  # notified after each message
        self._read_lock = threading.Lock()
        self._copies: OrderedDict[bytes, _Copy] = OrderedDict()
        self._by_tag: dict = {}
        # A tag message bumps the tag's generation (O(1)): a copy whose tags' generations
        # moved on is dead (hard) or stale (soft) from that instant; the listener then
        # reclaims the dead copies' memory in chunks, letting readers in between.
        self._hard_gen: dict = {}
        self._soft_gen: dict = {}
        self._reclaim: deque = deque()
        # Key patterns with wildcards: a rule [epoch, regex, soft] applies to every copy kept
        # before it, checked on read, until the listener has swept the local copies.
        self._rules: list = []
        self._epoch = 0
        self._log: deque = deque(maxlen=1024)  # (epoch, kind, arg) for reads in flight
        self._listener_id: Optional[int] = None
        self._reader: Optional[redis.Connection] = None
        self._reader_for: Optional[int] = None  # the listener id its tracking redirects to
        self._ready = threading.Event()
        self._running = True
        #: ``hits`` (served locally), ``misses``, ``dropped`` (copies dropped by messages),
        #: ``messages``, ``resets`` (everything dropped: connection lost, FLUSHDB).
        self.counters = {
            "hits": 0,
            "misses": 0,
            "dropped": 0,
            "messages": 0,
            "channel_messages": 0,
            "resets": 0,
        }
        #: ``time.perf_counter()`` when the last message (of any kind / of the invalidation
        #: channel) was applied: from then on no copy it invalidated is served.
        self.last_applied = 0.0
        self.last_channel_applied = 0.0
        self._thread = threading.Thread(target=self._listen, name="rediscache-near", daemon=True)
        self._thread.start()

    # -- public API -----------------------------------------------------------------------

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until the listener is subscribed (local copies are kept from then on)."""
        return self._ready.wait(timeout)

    def __len__(self) -> int:
        return len(self._copies)

    def get(self, key: KeyT, default: Any = None) -> Any:
        """L1, else ``CACHE.GET WITHMETA`` (a fresh or stale value, kept locally), else
        ``default``."""
        found, value = self._local(_b(key))
        if found:
            return value
        reply = self._read_many([_b(key)])[0]
        return default if reply is None else self.serializer.loads(reply[0])

    def get_many(self, keys: Iterable[KeyT]) -> dict:
        """Like ``get`` for many keys, one pipelined round trip for those not held locally."""
        out: dict = {}
        missing = []
        for k in keys:
            bk = _b(k)
            found, value = self._local(bk)
            if found:
                out[k] = value
            else:
                missing.append((k, bk))
        if missing:
            replies = self._read_many([bk for _, bk in missing])
            for (k, _), reply in zip(missing, replies):
                if reply is not None:
                    out[k] = self.serializer.loads(reply[0])
        return out

    def get_or_compute(
        self,
        key: KeyT,
        compute: Callable[[], Any],
        ttl: Optional[float],
        tags: TagsT = (),
        stale: Optional[float] = 0,
        **kwargs: Any,
    ) -> Any:
        """L1 (fresh copies only) -> ``CACHE.GET WITHMETA`` (a fresh entry) -> the leases of
        ``Cache.get_or_compute`` (stale entries, misses). A stored value is read back with
        WITHMETA so that this process keeps a tracked copy."""
        bk = _b(key)
        found, value = self._local(bk, fresh_only=True)
        if found:
            return value
        reply = self._read_many([bk], fresh_only=True)[0]
        if reply is not None:
            return self.serializer.loads(reply[0])
        before = self._epoch
        res = self.cache.fetch(key, compute, ttl, tags, stale, **kwargs)
        if res.stored and self._ready.is_set():
            # The nil read above tracked the key, so our own store comes back as a push; a
            # read racing it would not be kept. Wait (briefly) for it, then read the copy.
            with self._lock:
                self._applied.wait_for(lambda: self._pushed_since(before, bk), timeout=0.05)
            self._read_many([bk], fresh_only=True)
        return res.value

    def _pushed_since(self, epoch: int, key: bytes) -> bool:
        return any(e > epoch and kind == "keys" and key in arg for e, kind, arg in self._log)

    def invalidate_tags(self, tags: TagsT, soft: bool = False) -> int:
        return self.cache.invalidate_tags(tags, soft=soft)

    def invalidate(self, pattern: KeyT, soft: bool = False) -> int:
        return self.cache.invalidate(pattern, soft=soft)

    def set(self, key: KeyT, value: Any, ttl: Optional[float], tags: TagsT = (), stale=0) -> bool:
        return self.cache.set(key, value, ttl, tags, stale)

    def stats(self, namespace: Optional[str] = None) -> dict:
        return self.cache.stats(namespace)

    def clear_local(self) -> None:
        with self._lock:
            self._reset_locked()

    def close(self) -> None:
        self._running = False
        self._thread.join(5)
        with self._read_lock:
            if self._reader is not None:
                self._reader.disconnect()
        self.cache.close()

    # -- local copies ---------------------------------------------------------------------

    def _local(self, key: bytes, fresh_only: bool = False) -> tuple[bool, Any]:
        with self._lock:
            c = self._copies.get(key)
            if c is None or not self._ready.is_set():
                self.counters["misses"] += 1
                return False, None
            if (c.gens and not self._check_gens(c)) or (
                self._rules and not self._check_rules(key, c)
            ):
                self._drop_locked(key)
                self.counters["misses"] += 1
                return False, None
            now = int(time.time() * 1000)
            if c.expire_at != -1 and now >= c.expire_at:
                self._drop_locked(key)
                self.counters["misses"] += 1
                return False, None
            fresh = not c.soft and (c.fresh_until == -1 or now < c.fresh_until)
            if fresh_only and not fresh:
                self.counters["misses"] += 1
                return False, None
            self._copies.move_to_end(key)
            self.counters["hits"] += 1
            return True, c.value

    def _check_gens(self, c: _Copy) -> bool:
        """False when a tag of the copy was invalidated since it was kept; marks it stale
        when a tag was soft-invalidated."""
        for t, (hard, soft) in zip(c.tags, c.gens):
            if self._hard_gen.get(t, 0) != hard:
                return False
            if self._soft_gen.get(t, 0) != soft:
                c.soft = True
        return True

    def _check_rules(self, key: bytes, c: _Copy) -> bool:
        for epoch, rx, soft in self._rules:
            if c.epoch < epoch and rx.match(key):
                if not soft:
                    return False
                c.soft = True
        return True

    def _insert_locked(self, key: bytes, meta: list, since: int) -> None:
        value, state, fresh_until, expire_at, tags = meta
        tags = [_b(t) for t in tags]
        if not self._unaffected_since(since, key, tags):
            return
        self._drop_locked(key)
        c = _Copy(self.serializer.loads(value), int(fresh_until), int(expire_at), tags)
        if _b(state) == b"STALE":
            c.soft = True
        c.gens = tuple((self._hard_gen.get(t, 0), self._soft_gen.get(t, 0)) for t in tags)
        c.epoch = self._epoch
        self._copies[key] = c
        for t in tags:
            self._by_tag.setdefault(t, set()).add(key)
        while len(self._copies) > self.maxsize:
            old, _ = self._copies.popitem(last=False)
            self._unindex_locked(old, _)

    def _unaffected_since(self, since: int, key: bytes, tags: list) -> bool:
        """No message applied after epoch ``since`` concerns this key (else its reply may
        predate an invalidation we already applied)."""
        if self._epoch == since:
            return True
        if not self._log or self._log[0][0] > since + 1:
            return False  # the log does not reach back that far
        for epoch, kind, arg in self._log:
            if epoch <= since:
                continue
            if kind == "reset":
                return False
            if kind == "keys" and key in arg:
                return False
            if kind in ("tag", "softtag"):
                if _SPECIAL.search(arg):
                    rx = redis_glob(arg)
                    if any(rx.match(t) for t in tags):
                        return False
                elif arg in tags:
                    return False
            if kind in ("pattern", "softpattern"):
                if redis_glob(arg).match(key) if _SPECIAL.search(arg) else arg == key:
                    return False
        return True

    def _unindex_locked(self, key: bytes, c: _Copy) -> None:
        for t in c.tags:
            s = self._by_tag.get(t)
            if s is not None:
                s.discard(key)
                if not s:
                    del self._by_tag[t]

    def _drop_locked(self, key: bytes) -> bool:
        c = self._copies.pop(key, None)
        if c is None:
            return False
        self._unindex_locked(key, c)
        return True

    def _reset_locked(self) -> None:
        if self._copies:
            self.counters["resets"] += 1
        self._copies.clear()
        self._by_tag.clear()
        self._reclaim.clear()
        self._rules.clear()
        self._epoch += 1
        self._log.append((self._epoch, "reset", None))

    # -- reading through the tracked connection -------------------------------------------

    def _connect_reader(self) -> redis.Connection:
        conn = self._conn_class(**self._conn_kwargs)
        conn.connect()
        return conn

    def _read_many(self, keys: list, fresh_only: bool = False) -> list:
        """``CACHE.GET key WITHMETA`` for each key on the tracked connection, pipelined; keeps
        local copies of what it read when the listener is up. Replies with STALE entries are
        returned as None when ``fresh_only``."""
        with self._read_lock:
            listener = self._listener_id if self._ready.is_set() else None
            try:
                if self._reader is None or not self._reader._sock:
                    self._reader = self._connect_reader()
                    self._reader_for = None
                    with self._lock:  # a new connection is not tracking anything yet
                        self._reset_locked()
                conn = self._reader
                if listener is not None and self._reader_for != listener:
                    if self._reader_for is not None:
                        conn.send_command("CLIENT", "TRACKING", "off")
                        conn.read_response()
                    conn.send_command("CLIENT", "TRACKING", "on", "REDIRECT", listener)
                    conn.read_response()
                    self._reader_for = listener
                    with self._lock:  # copies read under the old redirect are not covered
                        self._reset_locked()
                since = self._epoch
                conn.send_packed_command(
                    conn.pack_commands([("CACHE.GET", k, "WITHMETA") for k in keys])
                )
                replies = [conn.read_response() for _ in keys]
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                if self._reader is not None:
                    self._reader.disconnect()
                self._reader = None
                with self._lock:
                    self._reset_locked()
                raise
        keep = listener is not None and self._reader_for == listener
        out = []
        with self._lock:
            for k, meta in zip(keys, replies):
                if isinstance(meta, redis.ResponseError):
                    raise meta
                if meta is not None and keep and self._listener_id == listener:
                    self._insert_locked(k, meta, since)
                if meta is not None and fresh_only and _b(meta[1]) != b"HIT":
                    meta = None
                out.append(meta)
        return out

    # -- the listener ---------------------------------------------------------------------

    def _listen(self) -> None:
        backoff = 0.05
        while self._running:
            conn = None
            try:
                conn = self._conn_class(**{**self._conn_kwargs, "socket_timeout": None})
                conn.connect()
                conn.send_command("CLIENT", "ID")
                listener_id = int(conn.read_response())
                conn.send_command("SUBSCRIBE", "__redis__:invalidate", self.channel)
                for _ in range(2):
                    conn.read_response()
                with self._lock:
                    self._reset_locked()
                    self._listener_id = listener_id
                self._ready.set()
                backoff = 0.05
                while self._running:
                    if not conn.can_read(timeout=0.2):
                        continue
                    msg = conn.read_response()
                    self._apply(msg)
                    if self._reclaim and not conn.can_read(timeout=0):
                        self._reclaim_dead()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                if self._running:
                    log.warning(
                        "rediscache: near-cache listener lost (%r); local copies dropped", e
                    )
            finally:
                self._ready.clear()
                with self._lock:
                    self._listener_id = None
                    self._reset_locked()
                if conn is not None:
                    conn.disconnect()
            if self._running:
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _apply(self, msg: Any) -> None:
        if not isinstance(msg, list) or len(msg) < 3 or _b(msg[0]) != b"message":
            return
        channel, payload = _b(msg[1]), msg[2]
        with self._lock:
            self.counters["messages"] += 1
            self._epoch += 1
            if channel == b"__redis__:invalidate":
                if payload is None:  # FLUSHDB / FLUSHALL, or tracking reset
                    self._reset_locked()
                else:
                    keys = {_b(k) for k in payload}
                    self._log.append((self._epoch, "keys", keys))
                    for k in keys:
                        if self._drop_locked(k):
                            self.counters["dropped"] += 1
            elif channel == self.channel:
                kind, _, arg = _b(payload).partition(b" ")
                kind_s = kind.decode("ascii", "replace")
                self._log.append((self._epoch, kind_s, arg))
                if kind_s in ("tag", "softtag"):
                    self._by_tags(arg, soft=kind_s == "softtag")
                elif kind_s in ("pattern", "softpattern"):
                    self._by_pattern(arg, soft=kind_s == "softpattern")
                self.counters["channel_messages"] += 1
                self.last_channel_applied = time.perf_counter()
            self.last_applied = time.perf_counter()
            self._applied.notify_all()

    def _by_tags(self, arg: bytes, soft: bool) -> None:
        if _SPECIAL.search(arg):
            rx = redis_glob(arg)
            tags = [t for t in self._by_tag if rx.match(t)]
        else:
            tags = [arg] if arg in self._by_tag else []
        gens = self._soft_gen if soft else self._hard_gen
        for t in tags:
            gens[t] = gens.get(t, 0) + 1
            if not soft:
                self._reclaim.append(["tag", t, None, 0])

    def _reclaim_dead(self) -> None:
        """Free the copies that messages made dead (and mark the soft ones), a chunk at a
        time: after _apply, so the message is in force before this starts; readers get the
        lock between chunks."""
        while self._reclaim:
            with self._lock:
                if not self._reclaim:
                    return
                job = self._reclaim[0]
                kind, arg = job[0], job[1]
                if job[2] is None:
                    job[2] = list(self._by_tag.get(arg, ()) if kind == "tag" else self._copies)
                keys, at = job[2], job[3]
                for k in keys[at : at + 2000]:
                    c = self._copies.get(k)
                    if c is None:
                        continue
                    if kind == "tag":
                        dead = not self._check_gens(c)
                    else:
                        epoch, rx, soft = arg
                        if c.epoch >= epoch or not rx.match(k):
                            continue
                        if soft:
                            c.soft = True
                        dead = not soft
                    if dead:
                        self._drop_locked(k)
                        self.counters["dropped"] += 1
                job[3] = at + 2000
                if job[3] >= len(keys):
                    self._reclaim.popleft()
                    if kind == "pattern" and arg in self._rules:
                        self._rules.remove(arg)
            time.sleep(0)

    def _by_pattern(self, arg: bytes, soft: bool) -> None:
        if not _SPECIAL.search(arg):
            if arg in self._copies:
                self._affect(arg, soft)
            return
        rule = (self._epoch, redis_glob(arg), soft)  # O(1) now; swept by _reclaim_dead
        self._rules.append(rule)
        self._reclaim.append(["pattern", rule, None, 0])

    def _affect(self, key: bytes, soft: bool) -> None:
        if soft:
            c = self._copies.get(key)
            if c is not None:
                c.soft = True
        elif self._drop_locked(key):
            self.counters["dropped"] += 1
