"""The SQL baseline of notebook 03: a sliding-log rate limiter in PostgreSQL, measured like the Redis one.

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

* ``race_trials``: many threads (one connection each) hit one fresh key at once,
  with and without the lock; rows shaped like ``ratelimit_bench.race_trials``;
* ``decisions_per_second``: decisions/s and p50/p99/p99.9 from one connection,
  like ``ratelimit_bench.decisions_per_second``.

The table is a ``workshop_`` table and is dropped afterwards.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from helpers import bench
from helpers.sql import TABLE_PREFIX, SqlBaseline
from helpers.workload import check_positive

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


def _method(lock: bool) -> str:
    return ADVISORY_LOCK if lock else NO_LOCK


def race_trials(
    db: SqlBaseline,
    *,
    trials: int,
    clients: int,
    calls_per_client: int,
    limit: int,
    window_ms: int = 60_000,
    lock: bool = True,
) -> pd.DataFrame:
    """``clients`` threads, one connection each, send ``calls_per_client`` requests to one fresh
    key per trial, released together by a barrier; one row per trial (admitted, over the limit).
    """
    for what, value in (("trials", trials), ("clients", clients), ("calls_per_client", calls_per_client),
                        ("limit", limit), ("window_ms", window_ms)):  # fmt: skip
        check_positive(what, value)
    table = create_table(db)
    barrier = threading.Barrier(clients)
    connections = [db.connect() for _ in range(clients)]

    def client(conn) -> list[tuple[int, float]]:
        try:
            done = []
            for trial in range(trials):
                barrier.wait(timeout=60)
                started = time.perf_counter()
                admitted = sum(
                    hit(conn, f"race:{trial}", limit, window_ms, lock, table=table)
                    for _ in range(calls_per_client)
                )
                done.append((admitted, time.perf_counter() - started))
            return done
        except BaseException:
            barrier.abort()  # the others stop at once instead of waiting out the timeout
            raise

    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            results = [f.result() for f in [pool.submit(client, c) for c in connections]]
    finally:
        for conn in connections:
            conn.close()
        db.execute(f"DROP TABLE IF EXISTS {table}")
    rows = []
    for trial in range(trials):
        admitted, seconds = sum(x[trial][0] for x in results), max(x[trial][1] for x in results)
        rows.append((db.label, _method(lock), "threads", trial, clients, clients * calls_per_client, admitted,
                     limit, admitted - limit, 0, seconds))  # fmt: skip
    columns = ["system", "method", "runner", "trial", "clients", "calls", "admitted", "limit", "over"]
    columns += ["retries", "seconds"]
    return pd.DataFrame(rows, columns=columns)


def decisions_per_second(
    db: SqlBaseline, *, calls: int, limit: int = 100, window_ms: int = 60_000, keys: int = 1_000
) -> pd.DataFrame:
    """Decisions/s and latency percentiles from one connection, one decision per call, with the lock.

    Requests go round-robin to ``keys`` keys (as the Redis figure does): with
    the defaults every one is allowed until a key has had ``limit``.
    """
    check_positive("calls", calls)
    check_positive("keys", keys)
    table = create_table(db)
    conn = db.connect()
    allowed = []
    try:
        names = [f"rate:{i % keys}" for i in range(calls)]
        for name in names[: min(200, calls)]:
            hit(conn, "warmup:" + name, limit, window_ms, table=table)
        started = time.perf_counter()
        samples = bench.time_calls(
            lambda name: allowed.append(hit(conn, name, limit, window_ms, table=table)), names, warmup=0
        )
        seconds = time.perf_counter() - started
    finally:
        conn.close()
        db.execute(f"DROP TABLE IF EXISTS {table}")
    row = {"system": db.label, "method": ADVISORY_LOCK, "calls": calls, "allowed": sum(allowed)}
    row |= {"seconds": seconds, "decisions_per_s": bench.rate(calls, seconds), **bench.summarize(samples)}
    return pd.DataFrame([row])
