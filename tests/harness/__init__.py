"""The test harness: one server launcher, one raw RESP client, one error type.

    from harness import Server, RawClient, S, Err, OK

- `harness.server`: `Server` (start/stop/restart/kill9, log tail, valgrind wrappers, dead-server
  detection), `free_port`, `wait_until`, `ServerError` / `ServerDied` / `ServerNotReady`.
- `harness.resp`: `RawClient` (RESP2/RESP3, exact replies), the reply types `S`, `Err`, `Map`,
  `Push`, and `OK`.
- `harness.cluster`: `Cluster`, a local Redis Cluster of such servers (imported on its own:
  `from harness.cluster import Cluster`; it needs redis-py for key slots).

Used by tests/conftest.py (the pytest fixtures), tests/test_*.py, tests/model.py, the drivers in
scripts/ (fuzz_live.py, profile.py, valgrind.sh, make_fixtures.py) and scripts/bench/.
"""

from .resp import OK, S, Err, Map, Push, RawClient, encode, fields, name, pairs
from .server import (CACHE_MODULE, REDIS_SERVER, REPO, Server, ServerDied, ServerError,
                     ServerNotReady, callgrind, free_port, is_valkey, memcheck, server_version,
                     wait_until)

__all__ = [
    "OK", "S", "Err", "Map", "Push", "RawClient", "encode", "fields", "name", "pairs",
    "CACHE_MODULE", "REDIS_SERVER", "REPO", "Server", "ServerDied", "ServerError",
    "ServerNotReady", "callgrind", "free_port", "is_valkey", "memcheck", "server_version",
    "wait_until",
]
