"""``python -m helpers.check``: can this machine run the workshop? (run by ``make lab``)

Says which Redis and which SQL database the notebooks will use, and exits
non-zero with what to do when there is no way to get a Redis. It starts
nothing that outlives it: when no Redis is running, each notebook starts its
own throwaway one, and this check only makes sure that will work.
"""

from __future__ import annotations

import os
import shutil
import sys

import redis

from helpers import connection, servers
from helpers.config import settings
from helpers.sql import SqlUnavailable, connect_sql


def check_redis() -> bool:
    url = os.environ.get("REDIS_URL") or connection.LOCAL_URL
    how = "from REDIS_URL" if os.environ.get("REDIS_URL") else "already running on localhost"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, decode_responses=True)
        print("✓", connection.describe(client, url, how))
        return True
    except redis.RedisError as error:
        if os.environ.get("REDIS_URL"):
            print(f"✗ REDIS_URL={servers.redact(url)} does not answer: {error}")
            return False
    if servers.docker_engine_available():
        print("✓ no Redis running; each notebook will start a throwaway Redis container (Docker)")
        return True
    if shutil.which("redis-server"):
        print("✓ no Redis running; each notebook will start a throwaway redis-server (found the binary)")
        return True
    print(
        "✗ no Redis: nothing answers on localhost:6379, no Docker engine, no redis-server binary.\n"
        "  Start the workshop's servers with `docker compose up -d --wait`, or install Redis 7\n"
        "  (`apt install redis-server`, `brew install redis`), or set REDIS_URL to a Redis you have."
    )
    return False


def check_sql() -> bool:
    try:
        baseline = connect_sql(quiet=True)
    except SqlUnavailable as error:
        print(f"✗ {error}")
        return False
    mark = "✓" if baseline.is_postgres else "!"
    print(f"{mark} SQL baseline: {baseline.label} at {servers.redact(baseline.target)} ({baseline.how})")
    if not baseline.is_postgres:
        print("  The SQL comparisons will run on SQLite and say so. For PostgreSQL: `docker compose up -d`.")
    return True


def main() -> int:
    print(f"workshop size: {settings().size} (WORKSHOP_SIZE=workshop|ci)")
    ok = check_redis() & check_sql()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
