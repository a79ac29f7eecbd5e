#!/usr/bin/env bash
# The switch test: run this project's tests on the cache backend named by CACHE_BACKEND
# (default rediscache.django.RedisCache; e.g. django.core.cache.backends.redis.RedisCache).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/run_tests.py"
