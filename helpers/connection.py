"""``connect()``: a Redis for the workshop, found or started, announced in one line.

The order, first that works wins:

1. ``REDIS_URL`` from the environment (a server you already have, or the one
   from ``docker compose up -d`` with its password);
2. a Redis that already answers on localhost:6379;
3. a throwaway Redis this process starts (``helpers.servers``): a Docker
   container when an engine answers, else the ``redis-server`` binary;
4. an error that says how to get one.

The workshop only writes keys under its prefix (``helpers.keyspace``), so a
Redis that already holds your data is safe to use.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import redis

from helpers import servers

LOCAL_URL = "redis://127.0.0.1:6379/0"
MIN_VERSION = (7, 0)  # listpack encodings, ZADD GT, Functions, XAUTOCLAIM's deleted IDs
_started: list[servers.Throwaway] = []  # kept so a throwaway lives as long as the kernel


class RedisUnavailable(RuntimeError):
    """No Redis could be reached or started."""


def connect(url: str | None = None, *, quiet: bool = False) -> redis.Redis:
    """Return a ``redis.Redis`` (strings decoded) and print which server it is."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        client = _client(url)
        how = "from REDIS_URL" if url == os.environ.get("REDIS_URL") else "given"
        try:
            client.ping()
        except redis.RedisError as exc:
            raise RedisUnavailable(f"Redis at {servers.redact(url)} ({how}) does not answer: {exc}") from exc
    else:
        client, how, url = _local_or_throwaway()
    version = client.info("server")["redis_version"]
    if tuple(int(part) for part in version.split(".")[:2]) < MIN_VERSION:
        raise RedisUnavailable(
            f"Redis {version} at {servers.redact(url)} ({how}) is too old: the course needs Redis "
            f"{'.'.join(map(str, MIN_VERSION))} or newer. `docker compose up -d` gives Redis 7.2."
        )
    if not quiet:
        print(describe(client, url, how))
    return client


def url_of(client: redis.Redis) -> str:
    """The URL of ``client``'s server, to hand to another process (password included)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    credentials = ""
    if kwargs.get("password"):
        user = quote(kwargs.get("username") or "", safe="")
        credentials = f"{user}:{quote(kwargs['password'], safe='')}@"
    scheme = "rediss" if client.connection_pool.connection_class.__name__ == "SSLConnection" else "redis"
    host, port, db = kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"{scheme}://{credentials}{host}:{port}/{db}"


def describe(client: redis.Redis, url: str, how: str) -> str:
    version = client.info("server")["redis_version"]
    return f"Redis {version} at {servers.redact(url)} ({how})"


def _local_or_throwaway() -> tuple[redis.Redis, str, str]:
    client = _client(LOCAL_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
        return _client(LOCAL_URL), "already running on localhost", LOCAL_URL
    except redis.RedisError:
        client.close()
    try:
        server = servers.start_redis()
    except Exception as exc:  # noqa: BLE001 - turned into one clear message
        raise RedisUnavailable(
            "No Redis answers on localhost:6379 and none could be started "
            f"({exc}). Start the workshop's servers with `docker compose up -d` "
            "(then set REDIS_URL as the README says), or install Redis 7 "
            "(`apt install redis-server` / `brew install redis`), or set REDIS_URL "
            "to a Redis you already have."
        ) from exc
    _started.append(server)
    return _client(server.url), server.how, server.url


def _client(url: str, **kwargs) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, **kwargs)
