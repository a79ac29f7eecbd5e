"""Python client for the rediscache Redis module.

- ``rediscache.Cache``: get-or-compute with leases, tags, stale-while-revalidate (sync).
- ``rediscache.asyncio.Cache``: the same over ``redis.asyncio``.
- ``rediscache.django.RedisCache``: a Django cache backend.
- ``rediscache.flask.RedisCache``: a Flask-Caching backend.
"""

from ._core import (
    JSON,
    PICKLE,
    RAW,
    JSONSerializer,
    PickleSerializer,
    RawSerializer,
    Result,
    Serializer,
    parse_stats,
)
from ._sync import Cache
from .near import NearCache

__all__ = [
    "Cache",
    "NearCache",
    "Result",
    "Serializer",
    "RawSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "RAW",
    "JSON",
    "PICKLE",
    "parse_stats",
]
__version__ = "0.1.0"
