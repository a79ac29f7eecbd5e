"""Settings of the list-pages example.

The switch: only BACKEND changes between Django's own Redis backend and rediscache's
(CACHE_BACKEND in the environment picks it here, so the tests can run both ways):

    "BACKEND": "django.core.cache.backends.redis.RedisCache",   # before
    "BACKEND": "rediscache.django.RedisCache",                   # after
"""
import os

SECRET_KEY = "example-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "students"]
MIDDLEWARE = []
ROOT_URLCONF = "listpages.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True

CACHES = {
    "default": {
        "BACKEND": os.environ.get("CACHE_BACKEND", "rediscache.django.RedisCache"),
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "KEY_PREFIX": "erp",
        "TIMEOUT": 300,
    }
}
