"""redis-py clients: made from a URL, described by one, and a twin that never retries.

What the patterns need to reach a server, and nothing of the course's machinery:

* ``client_from_url(url)``: a client (strings decoded) for ``redis://``,
  ``rediss://``, ``unix://`` or, for Redis Cluster, ``redis+cluster://`` URLs;
* ``url_of(client)``: the URL another process passes back to ``client_from_url``;
* ``without_retries(client)``: the same server without redis-py's retries, for
  writes that must never be sent twice;
* ``redact(url)`` and ``scrub(text, url)``: a URL, or a message quoting one,
  fit to print (no password, whatever it contains).
"""

from __future__ import annotations

import re
import weakref
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

Client = redis.Redis | RedisCluster


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
        raise ValueError(
            f"{redact(url)} is not a valid Redis URL ({type(error).__name__}). A password with "
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


def _credentials(kwargs: dict) -> str:
    if not kwargs.get("password"):
        return ""
    return f"{quote(kwargs.get('username') or '', safe='')}:{quote(kwargs['password'], safe='')}@"


def redact(url: str) -> str:
    """The URL without its password (nor the user beside it) or password parameter, fit to print.

    Done on the text, before any parsing: a password pasted raw may hold ``/``,
    ``?``, ``#`` or ``@``, which a URL parser reads as the path, the query or the
    fragment. Everything between ``://`` and the last ``@`` goes (a user alone,
    with no ``:``, stays), and every ``password=`` parameter to the end of the URL.
    """
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    # the password parameter first: its value may hold an "@" that would pass for the userinfo's end
    rest = re.sub(r"(?i)([?&;]password=).*$", r"\1***", rest)
    credentials, at, after = rest.rpartition("@")
    if at:
        alone = credentials and not any(c in credentials for c in ":/?#")
        rest = (f"{credentials}@" if alone else "***@") + after
    return f"{scheme}://{rest}"


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error message, say) with ``url`` and its credentials blanked out."""
    text = text.replace(url, redact(url))
    credentials = url.split("://", 1)[-1].rpartition("@")[0]
    if credentials:
        text = text.replace(credentials, "***")
    password = re.search(r"(?i)password=(.*)$", url)
    if password and password.group(1):
        text = text.replace(password.group(1), "***")
    return text


def redis_label(client: Client) -> str:
    """``"Redis 8.2.3"``: how benchmark tables name the Redis side (Valkey gives the Redis it forked from)."""
    info = client.info("server")
    if isinstance(client, RedisCluster) and info and isinstance(next(iter(info.values())), dict):
        info = next(iter(info.values()))
    return f"Redis {info['redis_version']}"


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
