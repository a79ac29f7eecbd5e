#!/usr/bin/env python
"""The Django list-pages example (seed: an ERP whose list pages are cached with cache_page and
invalidated on every write). Run its tests with run_tests.sh."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listpages.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
