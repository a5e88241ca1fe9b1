"""Load the course's Lua scripts from ``lua/`` as redis-py ``Script`` objects.

A ``Script`` calls EVALSHA and, on NOSCRIPT (the server restarted, failed
over or ran SCRIPT FLUSH), loads the source again and retries: the script
cache is volatile, the files in ``lua/`` are the source of truth.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
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


def load(r: redis.Redis, name: str) -> Script:
    """A callable script bound to ``r``: ``load(r, "x")(keys=[...], args=[...])``."""
    return r.register_script(source(name))
