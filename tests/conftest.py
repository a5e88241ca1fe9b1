"""Fixtures: clients for the session's throwaway Redis, Redis Cluster and PostgreSQL database.

The servers are started by the root ``conftest.py``; every test leaves the
workshop's keys and tables as it found them (none).

In the modules of ``CLUSTER_MODULES`` every test that uses ``r`` or
``redis_url`` runs twice, ``[single]`` against the single Redis and
``[cluster]`` against the three-primary Redis Cluster (``REDIS_CLUSTER_URL``),
so the pattern helpers are shown to work unchanged on both. A test that cannot
run on a cluster says why with ``@pytest.mark.not_on_cluster("reason")``.
"""

from __future__ import annotations

import os

import matplotlib
import pytest

from helpers.baselines.sql import connect_sql
from helpers.clients import client_from_url
from helpers.keyspace import cleanup

matplotlib.use("Agg")

CLUSTER_MODULES = {
    "test_keyspace",
    "test_leaderboard",
    "test_orders",
    "test_ratelimit",
    "test_ratelimit_scripts",
    "test_streams",
}
KINDS = ("single", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "not_on_cluster(reason): skip this test's [cluster] run, for the reason given"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "redis_kind" in metafunc.fixturenames
        and metafunc.module.__name__.removeprefix("tests.") in CLUSTER_MODULES
    ):
        # module scope: all of a module's [single] runs, then its [cluster] runs
        metafunc.parametrize("redis_kind", KINDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def redis_kind(request) -> str:
    """ "single" or "cluster": which Redis this run of the test uses."""
    return getattr(request, "param", "single")


@pytest.fixture(autouse=True)
def _skip_what_cannot_run_on_a_cluster(request) -> None:
    if "redis_kind" not in request.fixturenames or request.getfixturevalue("redis_kind") != "cluster":
        return
    marker = request.node.get_closest_marker("not_on_cluster")
    if marker is not None:
        pytest.skip(f"not on a cluster: {marker.args[0]}")


@pytest.fixture(scope="module")
def redis_url(redis_kind: str) -> str:
    """This run's Redis: ``redis://...`` or ``redis+cluster://...`` (``client_from_url`` reads both)."""
    if redis_kind == "single":
        return os.environ["REDIS_URL"]
    if not os.environ.get("REDIS_CLUSTER_URL"):
        pytest.skip("no local Redis Cluster in this session (REDIS_CLUSTER_URL unset: see the warning)")
    return os.environ["REDIS_CLUSTER_URL"]


@pytest.fixture(scope="module")
def _module_cluster_client(redis_url: str):
    """One cluster client per module: a RedisCluster learns the slot map and the command table
    when it is created (about 20 ms), too slow to repeat for every test."""
    client = client_from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def r(request, redis_kind: str, redis_url: str):
    if redis_kind == "cluster":
        client = request.getfixturevalue("_module_cluster_client")
    else:
        client = client_from_url(redis_url)
    cleanup(client)
    yield client
    cleanup(client)
    if redis_kind == "single":
        client.close()


@pytest.fixture(scope="module")
def own():
    """A client of a throwaway Redis of the module's own: its configuration may be changed."""
    import redis

    from helpers import servers

    server = servers.start_redis_binary()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()
    server.stop()


@pytest.fixture
def db():
    baseline = connect_sql(quiet=True)
    yield baseline
    baseline.cleanup()
    baseline.close()
