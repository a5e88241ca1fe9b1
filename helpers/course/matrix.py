"""``python -m helpers.course.matrix`` (``make test-servers``): the suite once per server this machine has.

For every Redis-compatible binary ``helpers.servers.redis_binaries()`` finds (the
pip Redis 8.2, the pip Valkey 8.1, a system ``redis-server``) it runs pytest, the
notebooks included, with ``WORKSHOP_REDIS`` set to that server: the test
session's own servers, the notebooks' throwaway servers and the cluster all run
it. Then one table: server, passed, failed, minutes. It exits non-zero if any
run failed, or if fewer servers than ``--require`` were found.

Extra arguments go to pytest (``python -m helpers.course.matrix -- -x tests/production/test_blocking.py``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from helpers import servers

ROOT = servers.CHECKOUT


def run_once(binary: servers.RedisBinary, pytest_args: list[str]) -> dict:
    """pytest with ``WORKSHOP_REDIS`` set to ``binary``; its counts from the JUnit report."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "junit.xml"
        environment = os.environ | {servers.REDIS_CHOICE_ENV: binary.choice}
        environment.pop("REDIS_URL", None)  # the session starts its own servers of that binary
        environment.pop("REDIS_CLUSTER_URL", None)
        command = [sys.executable, "-m", "pytest", f"--junitxml={report}", *pytest_args]
        print(f"\n=== {binary.label} ({servers.REDIS_CHOICE_ENV}={binary.choice}) ===", flush=True)
        started = time.monotonic()
        code = subprocess.run(command, cwd=ROOT, env=environment).returncode
        minutes = (time.monotonic() - started) / 60
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if report.exists():
            suite = ElementTree.parse(report).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            counts = {name: int(suite.get(name, 0)) for name in counts}
    failed = counts["failures"] + counts["errors"]
    return {
        "server": f"{binary.product} {binary.version}",
        "from": binary.origin,
        "passed": counts["tests"] - failed - counts["skipped"],
        "failed": failed,
        "skipped": counts["skipped"],
        "minutes": round(minutes, 1),
        "exit": code,
    }


def table(rows: list[dict]) -> str:
    columns = ["server", "from", "passed", "failed", "skipped", "minutes", "exit"]
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(row[c]).ljust(widths[c]) for c in columns) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.course.matrix", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--require", type=int, default=1, help="fail if fewer servers than this are found")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    options = parser.parse_args(argv)
    found = servers.redis_binaries()
    print("servers found: " + (", ".join(f"{b.label}" for b in found) or "none"), flush=True)
    if len(found) < options.require:
        print(f"expected at least {options.require} servers; {servers.SETUP_FIX}; {servers.NO_WHEEL_FIX}")
        return 1
    rows = [run_once(binary, options.pytest_args) for binary in found]
    print("\nthe suite on every server:\n" + table(rows))
    return 0 if all(row["exit"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
