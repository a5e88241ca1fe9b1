"""What each side of a comparison promises about a write the moment it answers: said beside every ratio.

A Redis without AOF answers before anything reaches a disk; PostgreSQL's default
(``synchronous_commit = on``) answers after the commit's WAL record is flushed. A
ratio between the two is a ratio between different promises, so the notebooks print
``described(r, db)`` beside their claims tables.

``helpers.bench.streams.durability_runs`` runs notebook 02's producer benchmark on both
sides at each setting of ``REDIS_MODES`` and ``SQL_MODES``, so that a ratio can also be
read between equal promises (``PAIRS``).
"""

from __future__ import annotations

import redis

from helpers.baselines.sql import SqlBaseline


def redis_durability(r: redis.Redis) -> str:
    """``"AOF on, fsync everysec"``, ``"no AOF, RDB snapshots (save 3600 1 ...)"``, ``"no persistence"``..."""
    try:
        config = r.config_get("appendonly") | r.config_get("appendfsync") | r.config_get("save")
    except redis.ResponseError:  # CONFIG renamed or refused (managed services)
        return "unknown (CONFIG GET refused)"
    aof = config.get("appendonly") == "yes"
    save = (config.get("save") or "").strip()
    parts = [f"AOF on, fsync {config.get('appendfsync')}" if aof else "no AOF"]
    parts.append(f"RDB snapshots (save {save})" if save else "no RDB snapshots")
    return ", ".join(parts)


def sql_durability(db: SqlBaseline) -> str:
    """``"synchronous_commit=on, fsync=on"``: whether a commit waits for its WAL flush."""
    settings = {
        name: db.execute(f"SELECT current_setting('{name}')").fetchone()[0]
        for name in ("synchronous_commit", "fsync")
    }
    return ", ".join(f"{name}={value}" for name, value in settings.items())


def described(r: redis.Redis, db: SqlBaseline) -> str:
    """One line naming both sides' durability, to print beside a ratio."""
    waits = sql_durability(db).startswith("synchronous_commit=on")
    return (
        f"durability: Redis {redis_durability(r)} | {db.label} {sql_durability(db)}"
        f"{' (each commit waits for its WAL flush)' if waits else ''}"
    )


REDIS_MODES = {  # name -> redis-server arguments; later arguments win over start_redis_binary's defaults
    "no persistence": ("--appendonly", "no"),
    "AOF, fsync everysec": ("--appendonly", "yes", "--appendfsync", "everysec"),
    "AOF, fsync always": ("--appendonly", "yes", "--appendfsync", "always"),
}
NAMED = {  # how redis_durability() reads each mode back
    "no persistence": "no AOF",
    "AOF, fsync everysec": "AOF on, fsync everysec",
    "AOF, fsync always": "AOF on, fsync always",
}
SQL_MODES = ("on", "off")  # synchronous_commit

PAIRS = (  # (what a crash of the machine may lose, Redis mode, synchronous_commit)
    ("nothing acknowledged, either side", "AOF, fsync always", "on"),
    ("Redis up to ~2 s, PostgreSQL nothing", "AOF, fsync everysec", "on"),
    ("Redis up to ~2 s, PostgreSQL up to 0.6 s", "AOF, fsync everysec", "off"),
    ("Redis everything, PostgreSQL up to 0.6 s", "no persistence", "off"),
)
