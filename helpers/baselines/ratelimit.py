"""The SQL side of notebook 03: a sliding-log rate limiter in PostgreSQL, as a good engineer writes it.

One table ``(key, at_ms)`` holds a row per admitted request. ``hit`` decides one
request in one transaction, the textbook way:

1. ``SELECT pg_advisory_xact_lock(hashtext(key))``: one transaction per key at a
   time (held until COMMIT), and the database's clock, read once;
2. ``DELETE`` the key's rows older than the window;
3. ``SELECT count(*)`` of what is left;
4. ``INSERT`` a row if the count is under the limit.

READ COMMITTED gives each statement a fresh snapshot, so once the lock is held
the count sees every decision committed before it: exact. With ``lock=False``
step 1 only reads the clock, and two transactions can both count "one left"
and both insert: the same race as separate Redis commands. It is five round
trips plus BEGIN and COMMIT, where the Redis script is one.

``helpers.bench.ratelimit`` races it and times it beside the Redis limiter
(``sql_race_trials``, ``sql_decisions_per_second``). Its table is a ``workshop_``
table, dropped afterwards.
"""

from __future__ import annotations

from helpers.baselines.sql import TABLE_PREFIX, SqlBaseline

TABLE = TABLE_PREFIX + "ratelimit_log"
NO_LOCK = "PostgreSQL, no lock"
ADVISORY_LOCK = "PostgreSQL, advisory lock"
_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


def create_table(db: SqlBaseline, name: str = "ratelimit_log") -> str:
    """A fresh, empty log table ``(key, at_ms)`` indexed by (key, at_ms); returns its name."""
    table = db.table(name)
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(f"CREATE TABLE {table} (key text NOT NULL, at_ms bigint NOT NULL)")
    db.execute(f"CREATE INDEX {table}_key_at ON {table} (key, at_ms)")
    return table


def hit(conn, key: str, limit: int, window_ms: int, lock: bool = True, *, table: str = TABLE) -> bool:
    """Decide one request for ``key`` (``limit`` per ``window_ms``) in one transaction; True if allowed.

    ``conn`` is a psycopg connection in autocommit mode (``SqlBaseline.connect()``).
    """
    with conn.transaction():
        if lock:
            now = conn.execute(f"SELECT {_NOW_MS} FROM pg_advisory_xact_lock(hashtext(%s))", (key,))
        else:
            now = conn.execute(f"SELECT {_NOW_MS}")
        now = now.fetchone()[0]
        conn.execute(f"DELETE FROM {table} WHERE key = %s AND at_ms <= %s", (key, now - window_ms))
        count = conn.execute(f"SELECT count(*) FROM {table} WHERE key = %s", (key,)).fetchone()[0]
        if count >= limit:
            return False
        conn.execute(f"INSERT INTO {table} (key, at_ms) VALUES (%s, %s)", (key, now))
        return True
