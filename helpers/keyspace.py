"""Keys the workshop owns, and the only way it deletes them.

Every key the notebooks and helpers write starts with the workshop prefix
(``workshop:`` unless ``WORKSHOP_PREFIX`` says otherwise). Clean-up walks the
keyspace with SCAN and removes our keys with UNLINK, so a learner's own data in
the same Redis is never touched. Nothing here, or anywhere in the course, empties
a whole database on a server it did not start itself.

Both work on a Redis Cluster client too: SCAN then walks every primary, and
the keys found on a primary are unlinked there. Keys are read as bytes, so a key
under the prefix whose name is not UTF-8 is deleted too instead of stopping the
clean-up.
"""

from __future__ import annotations

import os

import redis
from redis.client import NEVER_DECODE
from redis.cluster import RedisCluster

PREFIX_ENV = "WORKSHOP_PREFIX"


def prefix() -> str:
    """The workshop prefix: ``WORKSHOP_PREFIX`` if set (it must end with ':'), else ``workshop:``."""
    value = os.environ.get(PREFIX_ENV, "workshop:")
    if not value or not value.endswith(":"):
        raise ValueError(f"{PREFIX_ENV} must be non-empty and end with ':', got {value!r}")
    return value


def key(*parts: str) -> str:
    """``key("lb", "daily")`` -> ``"workshop:lb:daily"``."""
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise ValueError(f"key parts must be non-empty strings, got {parts!r}")
    return prefix() + ":".join(parts)


def cleanup(r: redis.Redis, pattern_prefix: str | None = None, *, batch: int = 1_000) -> int:
    """Delete every key under ``pattern_prefix`` (default: the whole workshop prefix).

    Returns how many keys were removed. The prefix must itself live under the
    workshop prefix: this function refuses to delete anything else.
    """
    root = prefix()
    under = root if pattern_prefix is None else pattern_prefix
    if not under.startswith(root):
        raise ValueError(f"refusing to clean {under!r}: only keys under {root!r} are ours")
    removed = 0
    # glob characters in the prefix are escaped so "workshop:[x]" cannot match foreign keys
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in under)
    nodes = [n.redis_connection for n in r.get_primaries()] if isinstance(r, RedisCluster) else [r]
    for node in nodes:  # on a cluster, every primary: each key is unlinked where it lives
        pending: list[bytes] = []
        for found in _scan_raw(node, escaped + "*", batch):
            pending.append(found)
            if len(pending) >= batch:
                removed += _unlink(node, pending)
                pending = []
        if pending:
            removed += _unlink(node, pending)
    return removed


def _scan_raw(r: redis.Redis, match: str, count: int):
    """SCAN's keys as bytes, whatever the client decodes: a key that is not UTF-8 is still ours to delete."""
    cursor = 0
    while True:
        cursor, keys = r.execute_command(
            "SCAN", cursor, "MATCH", match, "COUNT", count, **{NEVER_DECODE: True}
        )
        yield from keys
        cursor = int(cursor)
        if cursor == 0:
            return


def _unlink(r: redis.Redis, keys: list) -> int:
    # one UNLINK per key, pipelined: a cluster node refuses one command over keys of several slots
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.unlink(k)
    return sum(pipe.execute())
