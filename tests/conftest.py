"""Fixtures: clients for the session's throwaway Redis and PostgreSQL database.

Both servers are started by the root ``conftest.py``; every test leaves the
workshop's keys and tables as it found them (none).
"""

from __future__ import annotations

import os

import matplotlib
import pytest
import redis

from helpers.keyspace import cleanup
from helpers.sql import SqlBaseline, connect_sql

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture
def r(redis_url: str):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    cleanup(client)
    yield client
    cleanup(client)
    client.close()


@pytest.fixture
def db():
    if not os.environ.get("DATABASE_URL"):
        pytest.skip("no PostgreSQL for this run (allowed outside CI only)")
    baseline = connect_sql(quiet=True)
    yield baseline
    baseline.cleanup()
    baseline.close()


@pytest.fixture
def sqlite_db(tmp_path) -> SqlBaseline:
    baseline = SqlBaseline("sqlite", str(tmp_path / "baseline.sqlite3"), "SQLite (test)")
    yield baseline
    baseline.close()
