"""Start a redis-server with the module on a free port, run this project's tests (manage.py
test) against it with CACHE_BACKEND as set in the environment, print a summary line."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python", "tests"))

from _server import Server  # noqa: E402

with Server() as server:
    env = dict(os.environ, REDIS_URL=server.url + "/0")
    backend = env.setdefault("CACHE_BACKEND", "rediscache.django.RedisCache")
    print(f"django_list_pages: CACHES BACKEND = {backend}")
    rc = subprocess.call([sys.executable, "manage.py", "test", "-v", "2", "students"], cwd=HERE, env=env)
sys.exit(rc)
