"""What the sync and the asyncio clients share: command building, reply parsing, results."""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence, Tuple, Union

import redis

log = logging.getLogger("rediscache")

KeyT = Union[str, bytes]
TagsT = Iterable[Union[str, bytes]]

#: Errors that mean "the cache server cannot be used right now" (as opposed to a bad command).
UNAVAILABLE: Tuple[type, ...] = (redis.ConnectionError, redis.TimeoutError)
#: The client's own connection pool is exhausted (every connection is busy, e.g. blocked in
#: WAIT): not an outage; the caller backs off and asks again like after a PENDING.
POOL_FULL: Tuple[type, ...] = tuple(
    t for t in (getattr(redis.exceptions, "MaxConnectionsError", None),) if t is not None
)

HIT = "HIT"
MISS = "MISS"
STALE = "STALE"
PENDING = "PENDING"


class Serializer(Protocol):
    """Turns values into what is stored, and back."""

    def dumps(self, value: Any) -> Any: ...

    def loads(self, data: Any) -> Any: ...


class RawSerializer:
    """Stores values as given (bytes, str, int, float); reads back what redis-py returns
    (bytes, or str with ``decode_responses=True``). The format other languages read too."""

    def dumps(self, value: Any) -> Any:
        return value

    def loads(self, data: Any) -> Any:
        return data


class JSONSerializer:
    """JSON text: readable from PHP, Node and redis-cli."""

    def dumps(self, value: Any) -> Any:
        return json.dumps(value, separators=(",", ":"))

    def loads(self, data: Any) -> Any:
        return json.loads(data)


class PickleSerializer:
    """Any picklable Python object (Python readers only)."""

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> Any:
        return pickle.dumps(value, self.protocol)

    def loads(self, data: Any) -> Any:
        if isinstance(data, str):
            data = data.encode("latin-1")
        return pickle.loads(data)


RAW = RawSerializer()
JSON = JSONSerializer()
PICKLE = PickleSerializer()


@dataclass
class Result:
    """What one ``fetch``/``get_or_compute`` call did.

    - ``value``: what the caller gets.
    - ``state``: the server's answer to the last lookup (``HIT``, ``MISS``, ``STALE``,
      ``PENDING``), or ``None`` when the server could not be reached.
    - ``computed``: ``compute`` ran on the caller's path.
    - ``stored``: the computed value was stored (``False``: the lease was void, Redis was
      unreachable, or the computation was a fallback after PENDING).
    - ``stale``: the value is a stale copy (served while refreshing, or by the fail-safe).
    - ``refreshing``: a refresh was started off the caller's path (STALE or early refresh).
    - ``degraded``: Redis was unreachable; the value was computed without the cache.
    - ``fail_safe``: ``compute`` raised and a stale value was served instead; ``error`` holds it.
    """

    value: Any = None
    state: Optional[str] = None
    computed: bool = False
    stored: bool = False
    stale: bool = False
    refreshing: bool = False
    degraded: bool = False
    fail_safe: bool = False
    error: Optional[BaseException] = None
    trace: list = field(default_factory=list)


def state_of(reply: Any) -> Tuple[str, Any, Any]:
    """Decode a GETORMARK reply ``[state, value, token]`` (state as bytes or str)."""
    state, value, token = reply
    if isinstance(state, bytes):
        state = state.decode()
    return state, value, token


def lifetime_args(ttl: Optional[float]) -> list:
    """SETTAGGED's fresh-lifetime words for ``ttl`` seconds; ``None`` means never stale."""
    if ttl is None:
        return ["PERSIST"]
    ms = int(round(float(ttl) * 1000))
    if ms <= 0:
        raise ValueError("ttl must be positive (None for no expiry)")
    if ms % 1000 == 0:
        return ["EX", ms // 1000]
    return ["PX", ms]


def stale_args(stale: Optional[float]) -> list:
    if not stale:
        return []
    ms = int(round(float(stale) * 1000))
    if ms <= 0:
        return []
    if ms % 1000 == 0:
        return ["STALE", ms // 1000]
    return ["PSTALE", ms]


def set_args(
    key: KeyT,
    data: Any,
    ttl: Optional[float],
    tags: Sequence[Any] = (),
    stale: Optional[float] = 0,
    cost_ms: Optional[int] = None,
    token: Any = None,
) -> list:
    args: list = ["CACHE.SETTAGGED", key, data, *lifetime_args(ttl), *stale_args(stale)]
    if cost_ms:
        args += ["COST", max(1, int(cost_ms))]
    if token is not None:
        args += ["LEASE", token]
    if tags:
        args += ["TAGS", *tags]
    return args


def getormark_args(key: KeyT, lease_ms: Optional[int], wait_ms: Optional[int]) -> list:
    args: list = ["CACHE.GETORMARK", key]
    if lease_ms:
        args += ["LEASE", int(lease_ms)]
    if wait_ms:
        args += ["WAIT", int(wait_ms)]
    return args


def wait_limit(client: Any, max_waiting: Optional[int]) -> float:
    """How many callers may block in WAIT at once on ``client``'s pool (the rest poll)."""
    if max_waiting is not None:
        return max(1, int(max_waiting))
    mc = getattr(getattr(client, "connection_pool", None), "max_connections", None)
    if not isinstance(mc, int) or mc >= 2**30:
        return float("inf")
    return max(1, mc - max(2, mc // 10))


def _num(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def parse_stats(reply: Any) -> dict:
    """CACHE.STATS as a dict of str -> int/float (RESP3 map or RESP2 flat list)."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[0::2], reply[1::2]))
    out = {}
    for k, v in items:
        name = k.decode() if isinstance(k, bytes) else str(k)
        if isinstance(v, (list, dict)):
            out[name] = parse_stats(v)
        else:
            out[name] = _num(v)
    return out


def tags_list(tags: Optional[TagsT]) -> list:
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)):
        return [tags]
    return list(tags)


# Scripts the framework backends use for operations that read and write one entry atomically.
# Store only if no visible entry holds the key (CACHE.GET answers nil also for an entry that
# an invalidation already removed from view, before the sweeper deletes the key).
LUA_ADD = """
if redis.call('CACHE.GET', KEYS[1]) then return 0 end
if ARGV[1] == '0' then return 1 end
redis.call('CACHE.SETTAGGED', KEYS[1], select(2, unpack(ARGV)))
return 1
"""

LUA_DELETE = """
local v = redis.call('CACHE.GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""

# Re-store an entry's value and tags with a new lifetime (ARGV: the lifetime words); '0'
# deletes it, as Django's touch(timeout=0) expires the key at once.
LUA_TOUCH = """
local v = redis.call('CACHE.GET', KEYS[1])
if not v then return 0 end
if ARGV[1] == '0' then redis.call('DEL', KEYS[1]) return 1 end
local tags = redis.call('CACHE.TAGS', KEYS[1])
local args = {KEYS[1], v}
for i = 1, #ARGV do args[#args + 1] = ARGV[i] end
if #tags > 0 then
  args[#args + 1] = 'TAGS'
  for i = 1, #tags do args[#args + 1] = tags[i] end
end
redis.call('CACHE.SETTAGGED', unpack(args))
return 1
"""


FailSafeHook = Callable[[KeyT, BaseException], None]


def incr_entry(client: Any, key: KeyT, delta: Any, serializer: Any, missing: Callable) -> Any:
    """Add ``delta`` to the entry at ``key`` atomically (WATCH/MULTI), keeping its tags and
    expiry. ``missing()`` makes the exception raised when there is no entry."""
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.execute_command("CACHE.GET", key)
                if raw is None:
                    raise missing()
                value = serializer.loads(raw) + delta
                pttl = int(pipe.pttl(key))
                tags = pipe.execute_command("CACHE.TAGS", key)
                pipe.multi()
                lifetime = ["PERSIST"] if pttl < 0 else ["PX", max(1, pttl)]
                pipe.execute_command(
                    "CACHE.SETTAGGED",
                    key,
                    serializer.dumps(value),
                    *lifetime,
                    *(["TAGS", *tags] if tags else []),
                )
                pipe.execute()
                return value
            except redis.WatchError:
                continue
