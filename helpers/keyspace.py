"""Keys the workshop owns, and the only way it deletes them.

Every key the notebooks and helpers write starts with the workshop prefix
(``workshop:`` unless ``WORKSHOP_PREFIX`` says otherwise). Clean-up walks the
keyspace with SCAN and removes our keys with UNLINK, so a learner's own data in
the same Redis is never touched. Nothing here, or anywhere in the course, empties
a whole database on a server it did not start itself.

Both work on a Redis Cluster client too: SCAN then walks every primary, and
the keys found are unlinked one by one, each on its own shard.
"""

from __future__ import annotations

import redis

from helpers.config import settings


def key(*parts: str) -> str:
    """``key("lb", "daily")`` -> ``"workshop:lb:daily"``."""
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise ValueError(f"key parts must be non-empty strings, got {parts!r}")
    return settings().prefix + ":".join(parts)


def cleanup(r: redis.Redis, pattern_prefix: str | None = None, *, batch: int = 1_000) -> int:
    """Delete every key under ``pattern_prefix`` (default: the whole workshop prefix).

    Returns how many keys were removed. The prefix must itself live under the
    workshop prefix: this function refuses to delete anything else.
    """
    root = settings().prefix
    prefix = root if pattern_prefix is None else pattern_prefix
    if not prefix.startswith(root):
        raise ValueError(f"refusing to clean {prefix!r}: only keys under {root!r} are ours")
    removed = 0
    pending: list = []
    # scan_iter on a cluster client walks every primary; glob characters in
    # the prefix are escaped so "workshop:[x]" cannot match foreign keys.
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
    for found in r.scan_iter(match=escaped + "*", count=batch):
        pending.append(found)
        if len(pending) >= batch:
            removed += _unlink(r, pending)
            pending = []
    if pending:
        removed += _unlink(r, pending)
    return removed


def _unlink(r: redis.Redis, keys: list) -> int:
    # One UNLINK per key in a pipeline: works on a cluster too, where keys of
    # one batch may live on different shards.
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.unlink(k)
    return sum(pipe.execute())
