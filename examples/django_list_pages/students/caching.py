"""Page caching that works on either backend.

On rediscache's backend, list pages carry tags and a write drops exactly the pages that showed
what it changed. On Django's own Redis backend there are no tags: a write clears the cache
(what the seed's team did, through KEYS, or FLUSHDB as their fallback).
"""
from django.core.cache import caches
from django.views.decorators.cache import cache_page as django_cache_page

try:
    from rediscache.django import RedisCache as _Ours
    from rediscache.django import cache_page as tagged_cache_page
except ImportError:  # the package is not installed: Django's decorator, no tags
    _Ours = None
    tagged_cache_page = None


def has_tags():
    return _Ours is not None and isinstance(caches["default"], _Ours)


def list_page(timeout, tags):
    """cache_page for a list view; its page carries `tags` where the backend has tags."""
    def decorator(view):
        if tagged_cache_page is not None:
            # Tags are applied only when the cache is ours; otherwise this is cache_page.
            return tagged_cache_page(timeout, tags=tags)(view)
        return django_cache_page(timeout)(view)

    return decorator


def pages_changed(*tags):
    """Call after a write: drop the cached pages that showed the changed data."""
    if has_tags():
        caches["default"].invalidate_tags(tags)
    else:
        caches["default"].clear()
