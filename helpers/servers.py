"""Throwaway servers: start a Redis or PostgreSQL that nobody else uses.

Used by ``helpers.connect`` when no server answers, and by the test session so
tests never touch a server with someone's data in it.

* With a Docker engine: testcontainers (``redis:7.2``, ``postgres:15``).
* Without one: the ``redis-server`` binary on a free port, managed by
  mirakuru (which also kills it if Python exits), its files under the
  git-ignored ``.workshop/`` folder. PostgreSQL has no binary fallback: the
  SQL baseline falls back to SQLite instead (see ``helpers.sql``).

A machine may have the ``docker`` client and no engine; ``docker_engine_available``
asks the engine itself, with a short time-out, before testcontainers is tried.

A binary server can also be crashed and brought back, for the fault tests and
notebook 04's persistence measurements: ``kill()`` sends SIGKILL (kill -9: no
shutdown, no last save, no last fsync), ``restart()`` starts it again on the same
port, data folder and configuration, and waits until it has loaded its data.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDIS_IMAGE = "redis:7.2"
POSTGRES_IMAGE = "postgres:15"
WORK_DIR = Path(__file__).resolve().parent.parent / ".workshop"


def redact(url: str) -> str:
    """The URL without its user, password or password parameter, fit to print."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        netloc = "***@" + netloc
    query = urlencode([(k, "***" if "password" in k.lower() else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def docker_engine_available(timeout: float = 2.0) -> bool:
    """True only if a Docker engine answers a ping (a client alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine we can use"
        return False


@dataclass
class Throwaway:
    """A server this process started: its URL, how it was started, how to stop it."""

    url: str
    how: str
    _stop: Callable[[], None] = field(repr=False)
    executor: object | None = field(default=None, repr=False)  # mirakuru, for kill -9 tests
    data_dir: Path | None = None
    stopped: bool = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._stop()

    def kill(self) -> int:
        """kill -9 the server and wait for it to die; its files stay for ``restart()``.

        Returns the killed process's id. Only for a ``redis-server`` binary this process started.
        """
        executor = self._executor("kill")
        process = executor.process
        if process is None or not executor.running():
            raise RuntimeError(f"{redact(self.url)} is not running: there is nothing to kill")
        executor.kill(sig=signal.SIGKILL)  # the whole process group, so a BGSAVE child dies too
        if process.returncode != -signal.SIGKILL:
            raise RuntimeError(f"redis-server {process.pid} ended with {process.returncode}, not by SIGKILL")
        return process.pid

    def restart(self, *, timeout: float = 30.0) -> None:
        """Start the server again (same port, folder, configuration) once it is down; wait for its data."""
        executor = self._executor("restart")
        if executor.running():
            raise RuntimeError(f"{redact(self.url)} is still running: kill() it first")
        executor.start()  # mirakuru waits for the port; the data may still be loading
        wait_until_loaded(self.url, timeout=timeout)

    def _executor(self, action: str):
        if self.stopped:
            raise RuntimeError(f"cannot {action} {redact(self.url)}: it was stopped and its files removed")
        if self.executor is None:
            raise RuntimeError(
                f"cannot {action} {redact(self.url)}: only a redis-server binary can be ({self.how})"
            )
        return self.executor


def wait_until_loaded(url: str, *, timeout: float = 30.0) -> None:
    """Return once the Redis at ``url`` answers PING: up, and done loading its RDB or AOF."""
    import redis

    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=timeout)
    try:
        while True:
            try:
                client.ping()
                return
            except (redis.BusyLoadingError, redis.ConnectionError) as error:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{redact(url)} did not finish loading in {timeout} s") from error
                time.sleep(0.02)
    finally:
        client.close()


def start_redis(*, prefer_docker: bool = True, extra_args: tuple[str, ...] = ()) -> Throwaway:
    """Start a private Redis: a container if Docker answers, else ``redis-server``.

    Raises ``RuntimeError`` naming both ways to get one if neither works.
    """
    if prefer_docker and not extra_args and docker_engine_available():
        from testcontainers.community.redis import RedisContainer

        container = RedisContainer(REDIS_IMAGE).start()
        host = container.get_container_host_ip()
        port = container.get_exposed_port(6379)
        server = Throwaway(f"redis://{host}:{port}/0", "throwaway, Docker container", container.stop)
    else:
        server = start_redis_binary(extra_args=extra_args)
    atexit.register(server.stop)
    return server


def start_redis_binary(*, extra_args: tuple[str, ...] = (), port: int | None = None) -> Throwaway:
    """Start ``redis-server`` on a free loopback port; its files go under ``.workshop/``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "No Redis found: there is no Docker engine and no redis-server binary. "
            "Either start the workshop's servers with `docker compose up -d`, "
            "or install Redis 7 (e.g. `apt install redis-server`, `brew install redis`), "
            "or point REDIS_URL at a Redis you have."
        )
    import port_for
    from mirakuru import TCPExecutor

    port = port or port_for.select_random()
    data_dir = WORK_DIR / f"redis-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        str(data_dir / "redis.log"),
        *extra_args,
    ]
    executor = TCPExecutor(command, host="127.0.0.1", port=port, timeout=30)
    executor.start()

    def stop() -> None:
        executor.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    return Throwaway(
        f"redis://127.0.0.1:{port}/0",
        "throwaway, redis-server binary",
        stop,
        executor=executor,
        data_dir=data_dir,
    )


def start_postgres() -> Throwaway | None:
    """A PostgreSQL container when Docker answers, else ``None``."""
    if not docker_engine_available():
        return None
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(POSTGRES_IMAGE, driver=None).start()
    server = Throwaway(container.get_connection_url(), "throwaway, Docker container", container.stop)
    atexit.register(server.stop)
    return server
