"""helpers.connection.connect(): find a Redis, or start one, and say which in one line."""

from __future__ import annotations

import port_for
import pytest
import redis

from helpers import connection
from helpers.connection import RedisUnavailable, connect


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
        version = client.info("server")["redis_version"]
        client.close()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert f"Redis {version}" in lines[0]
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


def test_without_any_redis_connect_starts_a_throwaway_binary(no_redis_anywhere, started, capsys):
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
    assert "throwaway, redis-server binary" in out[0]
    assert server.url in out[0]


def test_throwaway_started_by_connect_stops_and_removes_its_files(no_redis_anywhere):
    connect(quiet=True).close()
    server = connection._started.pop()
    server.stop()
    assert not server.data_dir.exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url).ping()


def test_without_redis_binary_or_docker_the_error_says_how_to_get_one(
    no_redis_anywhere, monkeypatch, tmp_path, started
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    started_before = len(connection._started)
    with pytest.raises(RedisUnavailable) as raised:
        connect()
    message = str(raised.value)
    assert "docker compose up -d" in message
    assert "install Redis" in message
    assert "REDIS_URL" in message
    assert len(connection._started) == started_before  # nothing was started
