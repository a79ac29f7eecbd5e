"""The benchmark suite (scripts/bench/run.py) at its tiny size: proves every section runs
against the module end to end and that no server crashes under it. No timed assertion: the
figures and their goals are for `make bench`, not for a test on a shared machine."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ["1 hit path", "2 set path", "3 tag invalidation", "4 pattern invalidation", "5 memory",
            "6 mixed load", "7 stampede", "8 early refresh", "9 cluster"]


@pytest.mark.skipif(shutil.which(os.environ.get("REDIS_BENCHMARK", "redis-benchmark")) is None,
                    reason="redis-benchmark (Debian: redis-tools) not installed")
def test_bench_suite_tiny_runs_every_section(tmp_path):
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, str(REPO / "scripts/bench/run.py"), "--size", "tiny", "--strict",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    errors = [r for r in rows if r["status"] == "ERROR"]
    assert not errors, errors
    assert sorted({r["section"] for r in rows}) == SECTIONS
    # the table on stdout carries the same rows, and every goal row has a verdict
    assert "goals passed" in p.stdout
    assert all(r["status"] in ("PASS", "FAIL", "INFO", "n/a") for r in rows)
