"""``connect()``: a Redis (or a Redis Cluster) for the workshop, found or started, announced in one line.

The order, first that works wins:

1. the ``url`` passed to ``connect(url)``;
2. ``REDIS_URL`` from the environment (a server you already have, or the one
   from ``docker compose up -d``);
3. a Redis that already answers on localhost:6379. If it asks for a password
   (the docker-compose one does), the password comes from ``REDIS_PASSWORD``
   in the environment, else from a ``REDIS_PASSWORD=...`` line in the
   repository's git-ignored ``.env``; without one that works, an error says
   how to set it (nothing else is tried: that Redis is the one you meant);
4. a throwaway Redis this process starts (``helpers.servers``): the server
   binary ``make setup`` installed from pip (Redis 8.2; ``WORKSHOP_REDIS``
   picks Valkey or the system's ``redis-server``), else a Docker container
   when an engine answers;
5. an error that says what was tried and the one command that fixes it.

The line ``connect()`` prints names the product (Redis or Valkey: Valkey
answers INFO with ``redis_version:7.2.4``, the Redis it forked from, and its
own version in ``valkey_version``), its version, where it is and how it was found.

**Redis Cluster.** A URL with the scheme ``redis+cluster://`` (or
``rediss+cluster://`` for TLS), e.g. ``redis+cluster://:password@127.0.0.1:30001``,
gives a ``redis.cluster.RedisCluster`` instead of a ``redis.Redis``. One node is
enough: the client asks it for the others and for who owns which slot. Such a
URL works wherever a URL does (``connect(url)``, ``REDIS_URL``).
``connect(cluster=True)`` asks for a cluster on purpose: it takes the ``url``
given, else ``REDIS_CLUSTER_URL`` (any node's URL, ``redis://`` or
``redis+cluster://``), else starts a throwaway three-primary cluster
(``helpers.cluster``). ``REDIS_CLUSTER_URL`` is never used by a plain
``connect()``, so the single-server notebooks stay on a single server when both
variables are set; and a plain ``redis://`` URL of a cluster node is refused,
naming the URL to use (a plain client would get MOVED for most keys).

``url_of(client)`` gives back a URL that another process passes to
``connect()`` or ``client_from_url()`` to reach the same server or cluster.

The workshop only writes keys under its prefix (``helpers.keyspace``), so a
Redis that already holds your data is safe to use.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from urllib.parse import quote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from helpers import servers

LOCAL_URL = "redis://127.0.0.1:6379/0"
CLUSTER_ENV = "REDIS_CLUSTER_URL"
PASSWORD_ENV = "REDIS_PASSWORD"
ENV_FILE = Path(__file__).resolve().parent.parent / ".env"  # git-ignored; docker compose reads it too
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
MIN_VERSION = (7, 0)  # listpack encodings, ZADD GT, Functions, XAUTOCLAIM's deleted IDs
_started: list = []  # throwaway servers and clusters, kept so they live as long as the kernel

Client = redis.Redis | RedisCluster


class RedisUnavailable(servers.SetupError):
    """No Redis could be reached or started."""


def connect(url: str | None = None, *, cluster: bool = False, quiet: bool = False) -> Client:
    """Return a client (strings decoded) and print which server or cluster it is.

    A ``redis.Redis``, or a ``redis.cluster.RedisCluster`` for a ``redis+cluster://``
    URL and for ``cluster=True`` (see the module docstring for where it looks).
    """
    client, how, url = _find(url, cluster)
    version = _version(client)
    if _as_tuple(version) < MIN_VERSION:
        product, shown = product_version(client)
        raise RedisUnavailable(
            f"{product} {shown} at {servers.redact(url)} ({how}) is too old: the course needs Redis "
            f"{'.'.join(map(str, MIN_VERSION))} or newer. Unset REDIS_URL (or stop that server) to let "
            "the notebooks start the Redis 8.2 that `make setup` installs, or `docker compose up -d --wait`."
        )
    if not quiet:
        print(describe(client, url, how))
    return client


def _find(url: str | None, cluster: bool) -> tuple[Client, str, str]:
    """``(client, how it was found, its URL)``, in the order of the module docstring."""
    if cluster:
        if url is None:
            url, how = os.environ.get(CLUSTER_ENV), f"from {CLUSTER_ENV}"
            if not url:
                return _throwaway_cluster()
        else:
            how = "given"
        return _reach(url if is_cluster_url(url) else _as_cluster_url(url), how)
    url = url or os.environ.get("REDIS_URL")
    if not url:
        return _local_or_throwaway()
    return _reach(url, "from REDIS_URL" if url == os.environ.get("REDIS_URL") else "given")


def _reach(url: str, how: str) -> tuple[Client, str, str]:
    try:
        client = client_from_url(url)
        client.ping()
    except (redis.RedisError, RedisClusterException) as exc:
        raise RedisUnavailable(
            f"Redis at {servers.redact(url)} ({how}) does not answer: {exc}. Start it, correct the URL, or "
            "unset the variable to let the notebooks start their own Redis."
        ) from exc
    if not isinstance(client, RedisCluster) and client.info("cluster").get("cluster_enabled"):
        client.close()
        raise RedisUnavailable(
            f"Redis at {servers.redact(url)} ({how}) is a Redis Cluster node: a plain client would get "
            f"MOVED errors for most keys. Use {_as_cluster_url(servers.redact(url))} (with the same "
            "credentials) for a cluster client."
        )
    return client, how, url


def client_from_url(url: str, **kwargs) -> Client:
    """A client for ``url``, strings decoded, without checks or output: for worker processes.

    ``redis+cluster://`` gives a ``RedisCluster`` (which contacts the cluster at
    once, to learn its slots); anything else a ``redis.Redis``.
    """
    scheme, _, rest = url.partition("://")
    try:
        if scheme in CLUSTER_SCHEMES:
            return RedisCluster.from_url(
                f"{CLUSTER_SCHEMES[scheme]}://{rest}", decode_responses=True, **kwargs
            )
        return redis.Redis.from_url(url, decode_responses=True, **kwargs)
    except ValueError as error:  # its message may quote part of the password: never shown
        raise RedisUnavailable(
            f"{servers.redact(url)} is not a valid Redis URL ({type(error).__name__}). A password with "
            "characters such as / ? # @ : % must be percent-encoded: urllib.parse.quote(password, safe='')."
        ) from None


_twins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def without_retries(client: Client, *, timeout_s: float | None = None) -> Client:
    """A client to the same server or cluster that never sends a command twice.

    redis-py retries a command when the connection drops, and it cannot tell a
    command that never arrived from one whose reply was lost: a retried ZINCRBY,
    XADD or rate-limit script counts twice. The helpers send such writes through
    this twin (its own connection pool, no retries; ``timeout_s`` bounds connecting
    and each reply too), so a lost reply raises instead. Made once per client and
    ``timeout_s``, and kept as long as the client lives.
    """
    made = _twins.setdefault(client, {})
    if timeout_s not in made:
        no_retry = Retry(NoBackoff(), 0)
        timeouts = (
            {} if timeout_s is None else {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        )
        if isinstance(client, RedisCluster):
            made[timeout_s] = client_from_url(url_of(client), retry=no_retry, **timeouts)
        else:
            pool = client.connection_pool
            kwargs = {**pool.connection_kwargs, "retry": no_retry, "retry_on_error": [], **timeouts}
            made[timeout_s] = redis.Redis(
                connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
            )
    return made[timeout_s]


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0] in CLUSTER_SCHEMES


def url_of(client: Client) -> str:
    """The URL of ``client``'s server or cluster, to hand to another process (password included)."""
    if isinstance(client, RedisCluster):
        kwargs = client.get_connection_kwargs()
        node = client.get_default_node()
        scheme = "rediss+cluster" if kwargs.get("ssl") else "redis+cluster"
        return f"{scheme}://{_credentials(kwargs)}{node.host}:{node.port}"
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if client.connection_pool.connection_class.__name__ == "SSLConnection" else "redis"
    host, port, db = kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"{scheme}://{_credentials(kwargs)}{host}:{port}/{db}"


def describe(client: Client, url: str, how: str) -> str:
    """One line: which server (or how many primaries), where (password hidden), and how it was found."""
    product, version = product_version(client)
    if isinstance(client, RedisCluster):
        primaries = len(client.get_primaries())
        where = f"at {servers.redact(url)} ({how})"
        return f"{product} Cluster of {primaries} primaries, {product} {version}, {where}"
    return f"{product} {version} at {servers.redact(url)} ({how})"


def product_version(client: Client) -> tuple[str, str]:
    """``("Redis", "8.2.3")`` or ``("Valkey", "8.1.8")``: the server's own name and version.

    Valkey's INFO says ``redis_version:7.2.4`` (the Redis it forked from, for
    clients that compare versions) and gives its own in ``valkey_version``.
    """
    if isinstance(client, RedisCluster):
        info = client.info("server", target_nodes=RedisCluster.RANDOM)
        info = next(iter(info.values())) if info and isinstance(next(iter(info.values())), dict) else info
    else:
        info = client.info("server")
    if info.get("valkey_version"):
        return "Valkey", str(info["valkey_version"])
    return "Redis", str(info["redis_version"])


def password_from_env() -> tuple[str, str] | None:
    """``(password, where it came from)`` from ``REDIS_PASSWORD``, else from ``.env``; else ``None``."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV], f"{PASSWORD_ENV} in the environment"
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            name, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and name.strip() == PASSWORD_ENV:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                if value:
                    return value, f"{PASSWORD_ENV} in {ENV_FILE.name}"
    return None


def _version(client: Client) -> str:
    """The server's version; on a cluster the oldest of its primaries'."""
    if isinstance(client, RedisCluster):
        infos = client.info("server", target_nodes=RedisCluster.PRIMARIES)
        versions = [info["redis_version"] for info in infos.values()]
        return min(versions, key=_as_tuple)
    return client.info("server")["redis_version"]


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(version).split(".")[:3] if part.isdigit())


def _credentials(kwargs: dict) -> str:
    if not kwargs.get("password"):
        return ""
    return f"{quote(kwargs.get('username') or '', safe='')}:{quote(kwargs['password'], safe='')}@"


def _as_cluster_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    scheme = {"redis": "redis+cluster", "rediss": "rediss+cluster"}.get(scheme)
    if scheme is None:
        raise RedisUnavailable(f"a cluster URL is redis:// or redis+cluster://, not {servers.redact(url)}")
    return f"{scheme}://{rest}"


def _local_or_throwaway() -> tuple[redis.Redis, str, str]:
    client = redis.Redis.from_url(LOCAL_URL, decode_responses=True, socket_connect_timeout=0.5)
    try:
        client.ping()
        return client_from_url(LOCAL_URL), "already running on localhost", LOCAL_URL
    except redis.AuthenticationError:
        return _local_with_password()
    except redis.RedisError:
        pass
    finally:
        client.close()
    try:
        server = servers.start_redis()
    except servers.NoServer as exc:
        raise RedisUnavailable(
            "No Redis answers on localhost:6379 and none could be started: " + str(exc)
        ) from None
    _started.append(server)
    return client_from_url(server.url), server.how, server.url


def _local_with_password() -> tuple[redis.Redis, str, str]:
    """The Redis on localhost asked for a password: the one from REDIS_PASSWORD or .env, or a clear error."""
    where = urlsplit(LOCAL_URL).netloc.rsplit("@", 1)[-1]
    how_to_set = (
        f"Set it with `export {PASSWORD_ENV}=...`, or put a line `{PASSWORD_ENV}=...` in {ENV_FILE} "
        f"(git-ignored), or set REDIS_URL=redis://:PASSWORD@{where}/0."
    )
    found = password_from_env()
    if found is None:
        raise RedisUnavailable(f"The Redis on {where} requires a password and none is set. {how_to_set}")
    password, source = found
    client = redis.Redis.from_url(LOCAL_URL, password=password, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise RedisUnavailable(
            f"The Redis on {where} refused the password from {source} ({exc}). {how_to_set}"
        ) from exc
    return client, f"already running on localhost, password from {source}", url_of(client)


def _throwaway_cluster() -> tuple[RedisCluster, str, str]:
    from helpers.cluster import start_cluster

    try:
        local = start_cluster()
    except servers.SetupError as exc:
        raise RedisUnavailable(
            f"{CLUSTER_ENV} is not set and no local cluster could be started: {exc} Or set {CLUSTER_ENV} "
            "to a node of a cluster you already have."
        ) from None
    _started.append(local)
    return client_from_url(local.url), f"throwaway, {local.how}", local.url
