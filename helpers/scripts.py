"""Load the course's Lua scripts from ``lua/`` as redis-py ``Script`` objects.

``lua/`` is installed as the package data ``helpers.lua`` and read through
``importlib.resources``, so an editable install (``make setup``) and a plain
``pip install .`` find the same files.

A ``Script`` calls EVALSHA and, on NOSCRIPT (the server restarted, failed
over or ran SCRIPT FLUSH), loads the source again and retries: the script
cache is volatile, the files in ``lua/`` are the source of truth. If the cache
is flushed again between that load and the retry (a flush storm), the call
falls back to EVAL with the whole source, which needs no cache: a NOSCRIPT
never reaches the caller.

Lua in Redis has no ``require``: what several scripts share lives in
``lua/include/`` and a line ``--!include <file>`` stands in for it, expanded by
``source`` (includes may include), so every script is sent whole and one piece
of checking code serves them all.

Every script starts with a ``#!lua`` line that declares its flags
(``flags=no-writes`` for the read-only ones): a server then checks them before
the script runs, so a full server (maxmemory, noeviction) refuses a writing
script before its first write, and a replica runs the read-only ones.

On a Redis Cluster (``redis.cluster.RedisCluster``) EVALSHA goes to the shard
that owns the call's keys, which must therefore share one hash tag, and SCRIPT
LOAD goes to every primary. ``load`` then returns a ``ClusterScript``, which can
also be queued on a cluster pipeline (redis-py refuses ``evalsha()`` there).
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import redis
from redis.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import Script

LUA_DIR = files("helpers.lua")  # the repository's lua/ (pyproject.toml maps it into the package)
INCLUDE_DIR = LUA_DIR / "include"
_INCLUDE = re.compile(r"^--!include (\S+)$", re.MULTILINE)


def names() -> list[str]:
    """The course's scripts, by name (``lua/<name>.lua``), includes left out."""
    return sorted(p.name.removesuffix(".lua") for p in LUA_DIR.iterdir() if p.name.endswith(".lua"))


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``, its ``--!include`` lines replaced by the files they name."""
    path = LUA_DIR / f"{name}.lua"
    if not path.is_file():
        raise FileNotFoundError(f"no Lua script {name!r} in lua/; known: {names()}")
    return _expand(path.read_text(), (path.name,))


def _expand(text: str, chain: tuple[str, ...]) -> str:
    def include(found: re.Match) -> str:
        name = found.group(1)
        path = INCLUDE_DIR / name
        if name in chain:
            raise ValueError(f"{' -> '.join(chain)} includes {name} again: an include loop")
        if not path.is_file():
            raise FileNotFoundError(f"{chain[-1]} includes {name}, which is not in lua/include/")
        return _expand(path.read_text(), (*chain, name)).rstrip("\n")

    return _INCLUDE.sub(include, text)


def body(name: str) -> str:
    """The script without its ``#!lua`` line: the body of a Functions library function."""
    text = source(name)
    return text.split("\n", 1)[1] if text.startswith("#!") else text


def load(r: redis.Redis | RedisCluster, name: str) -> Script:
    """A callable script bound to ``r``: ``load(r, "x")(keys=[...], args=[...])``."""
    if isinstance(r, RedisCluster):
        return ClusterScript(r, source(name))
    return ReloadingScript(r, source(name))


class ReloadingScript(Script):
    """A ``Script`` that survives a flush storm: after a second NOSCRIPT it sends EVAL with the source."""

    def __call__(self, keys=None, args=None, client=None):
        try:
            return super().__call__(keys, args, client)
        except redis.exceptions.NoScriptError:
            keys, args = list(keys or []), list(args or [])
            return (client or self.registered_client).eval(self.script, len(keys), *keys, *args)


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
            try:
                return super().__call__(keys, args, client)
            except redis.exceptions.NoScriptError:
                keys, args = list(keys or []), list(args or [])
                return (client or self.registered_client).eval(self.script, len(keys), *keys, *args)
        if not self._loaded:
            self.sha = self.registered_client.script_load(self.script)  # every primary
            self._loaded = True
        keys = list(keys or [])
        return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *(args or []))
