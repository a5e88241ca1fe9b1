"""helpers.servers: throwaway Redis servers this process starts, and URLs fit to print."""

from __future__ import annotations

import os
import signal

import port_for
import pytest
import redis

from helpers import servers


@pytest.fixture
def no_docker_engine(monkeypatch):
    """Point the Docker client at a socket nobody listens on."""
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port_for.select_random()}")


@pytest.fixture
def binary_server():
    server = servers.start_redis_binary()
    yield server
    server.stop()


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
    finally:
        client.close()


@pytest.mark.timeout(30)
def test_docker_engine_available_returns_a_bool():
    assert isinstance(servers.docker_engine_available(timeout=2.0), bool)


@pytest.mark.timeout(30)
def test_docker_engine_available_is_false_when_no_engine_answers(no_docker_engine):
    assert servers.docker_engine_available(timeout=2.0) is False


@pytest.mark.timeout(30)
def test_docker_engine_available_is_false_for_a_missing_socket(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    assert servers.docker_engine_available(timeout=2.0) is False


def test_binary_redis_answers_ping_on_loopback(binary_server):
    assert binary_server.url.startswith("redis://127.0.0.1:")
    assert binary_server.how == "throwaway, redis-server binary"
    assert answers(binary_server.url)


def test_binary_redis_keeps_its_files_under_the_workshop_folder(binary_server):
    assert binary_server.data_dir.parent == servers.WORK_DIR
    assert servers.WORK_DIR.name == ".workshop"
    assert (binary_server.data_dir / "redis.log").is_file()
    client = redis.Redis.from_url(binary_server.url, decode_responses=True)
    try:
        assert client.config_get("dir")["dir"] == str(binary_server.data_dir)
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("save")["save"] == ""
    finally:
        client.close()


def test_binary_redis_uses_the_port_it_is_given():
    port = port_for.select_random()
    server = servers.start_redis_binary(port=port)
    try:
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert answers(server.url)
    finally:
        server.stop()


def test_binary_redis_passes_extra_arguments_to_the_server():
    server = servers.start_redis(prefer_docker=False, extra_args=("--maxmemory", "10mb"))
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("maxmemory")["maxmemory"] == str(10 * 1024 * 1024)
        client.close()
    finally:
        server.stop()


def test_stop_removes_the_data_folder_and_the_port_stops_answering():
    server = servers.start_redis_binary()
    data_dir = server.data_dir
    assert data_dir.is_dir()
    server.stop()
    assert server.stopped
    assert not data_dir.exists()
    assert not answers(server.url)


def test_stop_twice_is_harmless():
    server = servers.start_redis_binary()
    server.stop()
    server.stop()
    assert server.stopped


def test_kill_9_makes_the_port_stop_answering():
    server = servers.start_redis_binary()
    try:
        assert answers(server.url)
        server.executor.kill(sig=signal.SIGKILL)
        assert not answers(server.url)
    finally:
        server.stop()
    assert not server.data_dir.exists()


def test_start_redis_without_docker_falls_back_to_the_binary(no_docker_engine):
    server = servers.start_redis()
    try:
        assert server.how == "throwaway, redis-server binary"
        assert answers(server.url)
    finally:
        server.stop()


def test_no_binary_and_no_engine_is_an_error_naming_both_ways(monkeypatch, tmp_path, no_docker_engine):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as raised:
        servers.start_redis()
    message = str(raised.value)
    assert "docker compose up -d" in message
    assert "install Redis" in message
    assert "REDIS_URL" in message


def test_start_postgres_without_docker_engine_returns_none(no_docker_engine):
    assert servers.start_postgres() is None


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("redis://:s3cret@127.0.0.1:6380/0", "redis://***@127.0.0.1:6380/0"),
        ("redis://default:s3cret@redis.example:6379/0", "redis://***@redis.example:6379/0"),
        ("rediss://user:p@ss@host:6380", "rediss://***@host:6380"),
        ("postgresql://workshop:s3cret@127.0.0.1:5432/workshop", "postgresql://***@127.0.0.1:5432/workshop"),
        ("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6380/0"),
        ("/tmp/baseline.sqlite3", "/tmp/baseline.sqlite3"),
    ],
)
def test_redact_removes_user_and_password(url, printed):
    assert servers.redact(url) == printed


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:5432/workshop?user=workshop&password=s3cret",
        "redis://127.0.0.1:6380/0?password=s3cret",
    ],
)
def test_redact_hides_a_password_given_in_the_query_string(url):
    assert "s3cret" not in servers.redact(url)


# --- kill -9 and restart: the fault tests' and notebook 04's crash ---------------------------------


def test_kill_is_a_sigkill_that_skips_the_save_a_shutdown_would_make():
    server = servers.start_redis_binary(extra_args=("--save", "3600 1"))  # a clean shutdown would save
    try:
        client = redis.Redis.from_url(server.url)
        client.set("workshop:servers:unsaved", "1")
        client.close()
        pid = server.kill()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not answers(server.url)
        assert not (server.data_dir / "dump.rdb").exists()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.dbsize() == 0
        client.close()
    finally:
        server.stop()
    assert not server.data_dir.exists()


def test_restart_comes_back_on_the_same_url_with_what_the_aof_holds():
    server = servers.start_redis_binary(extra_args=("--appendonly", "yes", "--appendfsync", "always"))
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.set("workshop:servers:kept", "yes")
        client.close()
        server.kill()
        server.restart()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.get("workshop:servers:kept") == "yes"
        client.close()
    finally:
        server.stop()


def test_restart_of_a_running_server_and_kill_of_a_dead_one_are_errors():
    server = servers.start_redis_binary()
    try:
        with pytest.raises(RuntimeError, match="still running"):
            server.restart()
        server.kill()
        with pytest.raises(RuntimeError, match="not running"):
            server.kill()
    finally:
        server.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        server.restart()


def test_kill_and_restart_need_a_redis_server_binary():
    container_like = servers.Throwaway("redis://127.0.0.1:1/0", "throwaway, Docker container", lambda: None)
    for action in (container_like.kill, container_like.restart):
        with pytest.raises(RuntimeError, match="binary"):
            action()


def test_wait_until_loaded_gives_up_on_a_port_nobody_listens_on():
    with pytest.raises(TimeoutError, match="did not finish loading"):
        servers.wait_until_loaded(f"redis://127.0.0.1:{port_for.select_random()}/0", timeout=0.3)
