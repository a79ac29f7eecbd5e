"""Run Django's own cache test suite (``BaseCacheTests`` of ``tests/cache/tests.py`` in Django's
source distribution) against ``rediscache.django.RedisCache`` on a real redis-server with the
module, the way Django's ``RedisCacheTests`` runs it for Django's Redis backend: the same
``caches_setting_for_tests(base=..., exclude={"cull", "zero_cull"})`` aliases.

    python run_django_suite.py DJANGO_TESTS_DIR     # the sdist's tests/ folder

Prints ``django: N passed, N failed, N skipped`` and exits non-zero on any failure or error.
"""

from __future__ import annotations

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from _server import Server  # noqa: E402


def main(argv: list) -> int:
    if len(argv) < 2 or not os.path.isdir(os.path.join(argv[1], "cache")):
        print("usage: run_django_suite.py DJANGO_TESTS_DIR (with cache/tests.py in it)")
        return 2
    tests_dir = os.path.abspath(argv[1])
    sys.path.insert(0, tests_dir)
    with Server() as server:
        return run(tests_dir, server.url, argv[2:])


def run(tests_dir: str, url: str, names: list) -> int:
    import django
    from django.conf import settings

    params = {"BACKEND": "rediscache.django.RedisCache", "LOCATION": url + "/0"}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="rediscache-django-suite",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "cache"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": params},
        USE_TZ=False,
        MIDDLEWARE=[],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

    from cache.tests import BaseCacheTests, caches_setting_for_tests
    from django.test import TestCase, override_settings
    from django.test.runner import DiscoverRunner

    @override_settings(CACHES=caches_setting_for_tests(base=params, exclude={"cull", "zero_cull"}))
    class RediscacheBackendTests(BaseCacheTests, TestCase):
        """BaseCacheTests on rediscache.django.RedisCache (as RedisCacheTests does)."""

    RediscacheBackendTests.__module__ = "cache.tests"
    RediscacheBackendTests.__qualname__ = "RediscacheBackendTests"

    loader = unittest.TestLoader()
    if names:
        suite = unittest.TestSuite(
            loader.loadTestsFromName(n, RediscacheBackendTests) for n in names
        )
    else:
        suite = loader.loadTestsFromTestCase(RediscacheBackendTests)

    class Runner(DiscoverRunner):
        def build_suite(self, *args, **kwargs):
            return suite

    runner = Runner(verbosity=2, interactive=False)
    runner.setup_test_environment()
    old_config = runner.setup_databases()
    try:
        result = runner.run_suite(suite)
    finally:
        runner.teardown_databases(old_config)
        runner.teardown_test_environment()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    for test, reason in result.skipped:
        print(f"skipped: {test.id()}: {reason}")
    print(f"django: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
