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
and both insert: the same race as separate Redis commands. It is four statements
plus BEGIN and COMMIT, six round trips, where the Redis script is one.

``create_function`` writes the same four steps as one PL/pgSQL function, which is
what a good PostgreSQL engineer ships: ``hit_function`` decides with a single
``SELECT workshop_ratelimit_hit(key, limit, window_ms)``, one round trip, the lock and
the transaction inside it.

``helpers.bench.ratelimit`` races it and times it beside the Redis limiter
(``sql_race_trials``, ``sql_decisions_per_second``). Its table is a ``workshop_``
table, dropped afterwards.
"""

from __future__ import annotations

from helpers.baselines.sql import TABLE_PREFIX, SqlBaseline

TABLE = TABLE_PREFIX + "ratelimit_log"
NO_LOCK = "PostgreSQL, no lock"
ADVISORY_LOCK = "PostgreSQL, advisory lock"
FUNCTION_CALL = "PostgreSQL, one PL/pgSQL call"
FUNCTION = TABLE_PREFIX + "ratelimit_hit"
_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


def create_table(db: SqlBaseline, name: str = "ratelimit_log", *, unlogged: bool = False) -> str:
    """A fresh, empty log table ``(key, at_ms)`` indexed by (key, at_ms); returns its name.

    ``unlogged``: an UNLOGGED table, which writes no WAL, so a commit waits for no disk and a
    crash empties the table: PostgreSQL's match for a Redis that keeps nothing on disk.
    """
    table = db.table(name)
    db.execute(f"DROP TABLE IF EXISTS {table}")
    kind = "UNLOGGED TABLE" if unlogged else "TABLE"
    db.execute(f"CREATE {kind} {table} (key text NOT NULL, at_ms bigint NOT NULL)")
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


def create_function(db: SqlBaseline, table: str = TABLE, name: str = FUNCTION) -> str:
    """``hit`` as one PL/pgSQL function over ``table``: lock, clean up, count, insert; returns its name."""
    db.execute(f"""
        CREATE OR REPLACE FUNCTION {name}(k text, lim integer, window_ms bigint) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE
          now_ms bigint;
          n bigint;
        BEGIN
          PERFORM pg_advisory_xact_lock(hashtext(k));  -- one decision per key at a time, until COMMIT
          now_ms := {_NOW_MS};
          DELETE FROM {table} WHERE key = k AND at_ms <= now_ms - window_ms;
          SELECT count(*) INTO n FROM {table} WHERE key = k;
          IF n >= lim THEN
            RETURN false;
          END IF;
          INSERT INTO {table} (key, at_ms) VALUES (k, now_ms);
          RETURN true;
        END $$""")  # fmt: skip
    return name


def hit_function(conn, key: str, limit: int, window_ms: int, *, function: str = FUNCTION) -> bool:
    """Decide one request with one call of ``create_function``'s function (autocommit: one transaction)."""
    return conn.execute(f"SELECT {function}(%s, %s, %s)", (key, limit, window_ms)).fetchone()[0]


def drop_function(db: SqlBaseline, name: str = FUNCTION) -> None:
    db.execute(f"DROP FUNCTION IF EXISTS {name}(text, integer, bigint)")
