"""Load the course's Lua scripts from ``lua/`` as redis-py ``Script`` objects.

A ``Script`` calls EVALSHA and, on NOSCRIPT (the server restarted, failed
over or ran SCRIPT FLUSH), loads the source again and retries: the script
cache is volatile, the files in ``lua/`` are the source of truth.

On a Redis Cluster (``redis.cluster.RedisCluster``) EVALSHA goes to the shard
that owns the call's keys, which must therefore share one hash tag, and SCRIPT
LOAD goes to every primary. ``load`` then returns a ``ClusterScript``, which can
also be queued on a cluster pipeline (redis-py refuses ``evalsha()`` there).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
from redis.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import Script

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    path = LUA_DIR / f"{name}.lua"
    if not path.is_file():
        known = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
        raise FileNotFoundError(f"no Lua script {name!r} in {LUA_DIR}; known: {known}")
    return path.read_text()


def load(r: redis.Redis | RedisCluster, name: str) -> Script:
    """A callable script bound to ``r``: ``load(r, "x")(keys=[...], args=[...])``."""
    if isinstance(r, RedisCluster):
        return ClusterScript(r, source(name))
    return r.register_script(source(name))


class ClusterScript(Script):
    """A ``Script`` bound to a cluster client that can also be queued on its pipelines.

    A plain pipeline loads its scripts before it runs; a cluster pipeline cannot,
    so the script is loaded on every primary the first time it is queued, and the
    raw EVALSHA is queued (routed by its keys). If the cache is flushed later, the
    pipeline's reply for that call is a ``NoScriptError``, as on a single server.
    """

    _loaded = False

    def __call__(self, keys=None, args=None, client=None):
        if not isinstance(client, ClusterPipeline):
            return super().__call__(keys, args, client)
        if not self._loaded:
            self.sha = self.registered_client.script_load(self.script)  # every primary
            self._loaded = True
        keys = list(keys or [])
        return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *(args or []))
