"""The Flask signed-URLs example (seed: a campus forum caching signed object-storage URLs for
45 minutes, one Redis database per environment), on rediscache.flask.RedisCache.

Before (Flask-Caching's own Redis backend):   CACHE_TYPE = "redis"
After:                                         CACHE_TYPE = "rediscache.flask.RedisCache"

What the switch adds: one signing per file however many requests arrive at once (leases),
dropping one file's URL by tag, and hit ratios counted by the server.
"""
import hashlib
import os
import time

from flask import Flask, jsonify, request
from flask_caching import Cache

FILE_URL_TIMEOUT = 2700  # 45 minutes; the signed URL itself is valid for 4 hours
SIGNED_FOR = 4 * 3600

cache = Cache()
signings = []  # every call of the (slow, billed) signing service, for the tests


def sign_url(file_id: int, secret: str) -> str:
    """Stands for the object-storage SDK's presign call (slow, counted by the provider)."""
    signings.append(file_id)
    time.sleep(0.05)
    expires = int(time.time()) + SIGNED_FOR
    sig = hashlib.sha256(f"{secret}:{file_id}:{expires}".encode()).hexdigest()[:16]
    return f"https://oss.example.com/files/{file_id}?Expires={expires}&Signature={sig}"


def create_app(redis_url: str = "", secret: str = "dev-secret") -> Flask:
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="rediscache.flask.RedisCache",
        # one database per environment: redis://host:6379/0 production, /1 development
        CACHE_REDIS_URL=redis_url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        CACHE_DEFAULT_TIMEOUT=FILE_URL_TIMEOUT,
        CACHE_KEY_PREFIX="forum:",
    )
    cache.init_app(app)

    def backend():
        return app.extensions["cache"][cache]

    @app.get("/files/<int:file_id>/url")
    def file_url(file_id: int):
        url = backend().get_or_compute(
            f"file_url:{file_id}",
            lambda: sign_url(file_id, secret),
            FILE_URL_TIMEOUT,
            tags=[f"file:{file_id}"],
        )
        return jsonify(url=url)

    @app.post("/admin/cache/clear")
    def clear():
        file_id = (request.get_json(silent=True) or {}).get("file_id")
        if file_id is None:
            cache.clear()  # this app's entries only, never FLUSHDB
            return jsonify(cleared="all")
        return jsonify(invalidated=backend().invalidate_tags([f"file:{file_id}"]))

    @app.get("/admin/cache/stats")
    def stats():
        s = backend().stats("forum")
        return jsonify(hits=s["hits"], misses=s["misses"], hit_ratio=s["hit_ratio"])

    return app
