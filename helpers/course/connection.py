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
(``helpers.production.cluster``). ``REDIS_CLUSTER_URL`` is never used by a plain
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
from urllib.parse import urlsplit

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from helpers import servers
from helpers.clients import Client, client_from_url, is_cluster_url, product_version, redact, url_of

LOCAL_URL = "redis://127.0.0.1:6379/0"
CLUSTER_ENV = "REDIS_CLUSTER_URL"
PASSWORD_ENV = "REDIS_PASSWORD"
ENV_FILE = servers.CHECKOUT / ".env"  # git-ignored; docker compose reads it too
MIN_VERSION = (7, 0)  # listpack encodings, ZADD GT, Functions, XAUTOCLAIM's deleted IDs
_started: list = []  # throwaway servers and clusters, kept so they live as long as the kernel


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
            f"{product} {shown} at {redact(url)} ({how}) is too old: the course needs Redis "
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
        client = client_from_url(url)  # a cluster client contacts the cluster here
        client.ping()
    except ValueError as error:  # a bad URL: the message names it without the password
        raise RedisUnavailable(str(error)) from None
    except (redis.RedisError, RedisClusterException) as exc:
        raise RedisUnavailable(
            f"Redis at {redact(url)} ({how}) does not answer: {exc}. Start it, correct the URL, or "
            "unset the variable to let the notebooks start their own Redis."
        ) from exc
    if not isinstance(client, RedisCluster) and client.info("cluster").get("cluster_enabled"):
        client.close()
        raise RedisUnavailable(
            f"Redis at {redact(url)} ({how}) is a Redis Cluster node: a plain client would get "
            f"MOVED errors for most keys. Use {_as_cluster_url(redact(url))} (with the same "
            "credentials) for a cluster client."
        )
    return client, how, url


def describe(client: Client, url: str, how: str) -> str:
    """One line: which server (or how many primaries), where (password hidden), and how it was found."""
    product, version = product_version(client)
    if isinstance(client, RedisCluster):
        primaries = len(client.get_primaries())
        where = f"at {redact(url)} ({how})"
        return f"{product} Cluster of {primaries} primaries, {product} {version}, {where}"
    return f"{product} {version} at {redact(url)} ({how})"


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


def _as_cluster_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    scheme = {"redis": "redis+cluster", "rediss": "rediss+cluster"}.get(scheme)
    if scheme is None:
        raise RedisUnavailable(f"a cluster URL is redis:// or redis+cluster://, not {redact(url)}")
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
    from helpers.production.cluster import start_cluster

    try:
        local = start_cluster()
    except servers.SetupError as exc:
        raise RedisUnavailable(
            f"{CLUSTER_ENV} is not set and no local cluster could be started: {exc} Or set {CLUSTER_ENV} "
            "to a node of a cluster you already have."
        ) from None
    _started.append(local)
    return client_from_url(local.url), f"throwaway, {local.how}", local.url
