"""The test session's own servers, started before anything else runs.

nbval starts a notebook's kernel before any fixture runs, so the servers and
the environment variables that point at them (REDIS_URL, DATABASE_URL) are
set up here, in ``pytest_configure``, and torn down in ``pytest_unconfigure``.

* Redis: always a throwaway (testcontainers when a Docker engine answers,
  else ``redis-server`` on a free port). The Redis on 6379 is never used.
* Redis Cluster: a throwaway of three primaries (``helpers.cluster``, three
  ``redis-server`` processes), its URL in ``REDIS_CLUSTER_URL``: the pattern
  helpers' tests run a second time against it.
* PostgreSQL: a throwaway database on the server ``DATABASE_URL`` names, or
  on localhost:5432. With ``CI=true`` a missing PostgreSQL is an error.
* A foreign key, planted before the notebooks run: the keyspace tests check
  it is still there afterwards.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from helpers import cluster, servers, sql
from helpers.connection import client_from_url

FOREIGN_KEYS = {"learner:precious": "do not delete", "workshopper:data": "not our prefix either"}
_state: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # xdist workers share the controller's servers
        return
    os.environ.setdefault("WORKSHOP_SIZE", "ci")
    redis_server = servers.start_redis()
    _state["redis"] = redis_server
    os.environ["REDIS_URL"] = redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    client.mset(FOREIGN_KEYS)
    client.close()
    try:
        local_cluster = cluster.start_cluster()
    except cluster.ClusterUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            raise pytest.UsageError(f"CI=true but no local Redis Cluster started: {error}") from error
        os.environ.pop("REDIS_CLUSTER_URL", None)  # the cluster runs of the tests skip, saying why
        config.issue_config_time_warning(pytest.PytestWarning(f"no local Redis Cluster: {error}"), 2)
    else:
        _plant_on_cluster(local_cluster)

    admin_url = os.environ.get("DATABASE_URL") or _first_postgres()
    if admin_url is None:
        if os.environ.get("CI", "").lower() == "true":
            raise pytest.UsageError(
                "CI=true but no PostgreSQL answers (DATABASE_URL, or localhost:5432): "
                "CI must run the real SQL baseline."
            )
        os.environ["DATABASE_URL"] = ""  # the notebooks fall back to SQLite, and say so
        return
    name = f"workshop_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    _state["postgres"] = (admin_url, name)
    parts = urlsplit(admin_url)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def planted_foreign_keys() -> dict[str, str]:
    """Keys that are not ours, written before any notebook ran."""
    return dict(FOREIGN_KEYS)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "postgres" in _state:
        admin_url, name = _state.pop("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if "redis" in _state:
        _state.pop("redis").stop()
    if "cluster" in _state:
        _state.pop("cluster").stop()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Tests marked ``after_notebooks`` run last, once every notebook has run."""
    last = [item for item in items if item.get_closest_marker("after_notebooks")]
    items[:] = [item for item in items if item not in last] + last


def _plant_on_cluster(local_cluster: cluster.LocalCluster) -> None:
    _state["cluster"] = local_cluster
    os.environ["REDIS_CLUSTER_URL"] = local_cluster.url
    client = client_from_url(local_cluster.url)
    for name, value in FOREIGN_KEYS.items():  # no hash tags: they land on different shards
        client.set(name, value)
    client.close()


def _first_postgres() -> str | None:
    for url in (sql.COMPOSE_URL, sql.LOCAL_URL):
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error:
            continue
    container = servers.start_postgres()
    if container:
        _state["postgres_container"] = container
        return container.url
    return None
