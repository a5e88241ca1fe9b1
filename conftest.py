"""The test session's own servers, started before anything else runs.

nbval starts a notebook's kernel before any fixture runs, so the servers and
the environment variables that point at them (REDIS_URL, DATABASE_URL) are
set up here, in ``pytest_configure``, and torn down in ``pytest_unconfigure``.
The session never uses a server this machine happens to run:

* Redis: always a throwaway of the binary ``helpers.servers.redis_binary()``
  chooses (the pip Redis 8.2 unless ``WORKSHOP_REDIS`` picks ``valkey``,
  ``system`` or a path: ``make test-servers`` runs the suite once per server),
  else a container when a Docker engine answers.
* Redis Cluster: a throwaway of three primaries of the same binary
  (``helpers.production.cluster``), its URL in ``REDIS_CLUSTER_URL``: the pattern helpers'
  tests run a second time against it.
* PostgreSQL: a throwaway database on the server ``DATABASE_URL`` names when
  it is set; else a throwaway PostgreSQL 18 from pip (``helpers.servers``).
* A foreign key, planted before the notebooks run: the keyspace tests check
  it is still there afterwards.

When a server cannot be had the session stops before collecting anything,
with one message that says what was tried and what to run.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from helpers import servers
from helpers.clients import client_from_url, redact
from helpers.production import cluster

FOREIGN_KEYS = {"learner:precious": "do not delete", "workshopper:data": "not our prefix either"}
_state: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # xdist workers share the controller's servers
        return
    os.environ.setdefault("WORKSHOP_SIZE", "ci")
    try:
        _start_servers(config)
    except servers.SetupError as error:
        pytest_unconfigure(config)
        raise pytest.UsageError(f"the test session needs its own servers: {error}") from None


def _start_servers(config: pytest.Config) -> None:
    redis_server = servers.start_redis()
    _state["redis"] = redis_server
    os.environ["REDIS_URL"] = redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    client.mset(FOREIGN_KEYS)
    client.close()
    try:
        local_cluster = cluster.start_cluster()
    except servers.SetupError as error:
        if os.environ.get("CI", "").lower() == "true":
            raise
        os.environ.pop("REDIS_CLUSTER_URL", None)  # the cluster runs of the tests skip, saying why
        config.issue_config_time_warning(pytest.PytestWarning(f"no local Redis Cluster: {error}"), 2)
    else:
        _plant_on_cluster(local_cluster)

    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        postgres = servers.start_postgres()
        _state["postgres_server"] = postgres
        os.environ["DATABASE_URL"] = postgres.url
        return
    name = f"workshop_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as error:
        raise servers.SetupError(
            f"DATABASE_URL={redact(admin_url)} is set, but a test database cannot be created there "
            f"({str(error).strip().splitlines()[0]}). Unset it to let the tests start their own PostgreSQL."
        ) from None
    _state["postgres"] = (admin_url, name)
    parts = urlsplit(admin_url)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    if "redis" in _state:
        lines.append(f"redis: {redact(_state['redis'].url)} ({_state['redis'].how})")
    if "postgres_server" in _state:
        server = _state["postgres_server"]
        lines.append(f"postgresql: {redact(server.url)} ({server.how})")
    elif "postgres" in _state:
        admin_url, name = _state["postgres"]
        lines.append(f"postgresql: database {name} on {redact(admin_url)}")
    return lines


@pytest.fixture(scope="session")
def planted_foreign_keys() -> dict[str, str]:
    """Keys that are not ours, written before any notebook ran."""
    return dict(FOREIGN_KEYS)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "postgres" in _state:
        admin_url, name = _state.pop("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    for name in ("postgres_server", "redis", "cluster"):
        if name in _state:
            _state.pop(name).stop()


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
