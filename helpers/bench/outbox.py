"""Notebook 02's SQL side measured: the outbox of ``helpers.baselines.outbox``, like the Redis stream.

The outbox is a table ``(id, payload, created_at)``: a producer inserts rows (in
its own transaction, the outbox way), consumers take them with ``DELETE ...
WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` (the delete is the
acknowledgement). The same three jobs as the Redis experiments in
``helpers.bench.streams``, on the same events (``helpers.bench.workload``):

* ``outbox_producer_throughput``: one row per transaction, 1,000 rows per
  transaction (executemany), and COPY;
* ``outbox_consumer_throughput``: k consumer processes draining a filled table;
* ``outbox_end_to_end_latency``: a paced producer and one polling consumer process.

Every table is a ``workshop_`` table and is dropped afterwards; processes are
run by ``helpers.bench.processes``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from helpers import bounds
from helpers.baselines.outbox import copy_rows, count_rows, create_outbox, take_query
from helpers.baselines.sql import SqlBaseline
from helpers.bench.processes import (
    finish,
    get,
    report_failure,
    run_together,
    spawn_context,
    wait_at_gate,
    wait_ready,
)
from helpers.bench.workload import latency_frame, make_events, paced

SQL_ONE_BY_ONE = "INSERT, one row per transaction (autocommit)"


SQL_BATCHED = "executemany, 1,000 rows per transaction"


SQL_COPY = "COPY, one transaction"


def payloads(n: int, *, start: int = 0) -> list[str]:
    """The same events as ``make_events``, as the JSON an outbox row carries."""
    return [json.dumps(event, separators=(",", ":")) for event in make_events(n, start=start)]


def outbox_producer_throughput(
    db: SqlBaseline, n: int, *, one_by_one: int | None = None, synchronous_commit: str | None = None
) -> pd.DataFrame:
    """Rows/s into an outbox table: ``one_by_one`` single-row INSERTs, each its own transaction,
    then ``n`` rows 1,000 per transaction (executemany), then ``n`` rows by COPY.

    ``synchronous_commit`` (``"on"``, ``"off"``...) is set for this run's session only;
    ``None`` keeps the server's setting. The setting the session ran with is read back
    into the ``synchronous_commit`` column.
    """
    bounds.at_least("n", n)
    one_by_one = n if one_by_one is None else one_by_one
    bounds.at_least("one_by_one", one_by_one)
    table = create_outbox(db)
    insert = f"INSERT INTO {table} (payload) VALUES (%s)"
    rows, conn = [], None
    try:
        conn, setting = db.connect_with(synchronous_commit)
        single = payloads(one_by_one)
        started = time.perf_counter()
        for payload in single:
            conn.execute(insert, (payload,))
        rows.append((SQL_ONE_BY_ONE, one_by_one, time.perf_counter() - started, count_rows(db, table, conn)))
        conn.execute(f"DELETE FROM {table}")

        many = payloads(n)
        started = time.perf_counter()
        for first in range(0, n, 1_000):
            with conn.transaction():
                conn.cursor().executemany(insert, [(p,) for p in many[first : first + 1_000]])
        rows.append((SQL_BATCHED, n, time.perf_counter() - started, count_rows(db, table, conn)))
        conn.execute(f"DELETE FROM {table}")

        started = time.perf_counter()
        copy_rows(conn, table, many)
        rows.append((SQL_COPY, n, time.perf_counter() - started, count_rows(db, table, conn)))
    finally:
        if conn is not None:
            conn.close()
        db.execute(f"DROP TABLE IF EXISTS {table}")
    frame = pd.DataFrame(rows, columns=["method", "events", "seconds", "in_table"])
    frame.insert(0, "system", db.label)
    frame["events_per_s"] = frame.events / frame.seconds
    frame["synchronous_commit"] = setting
    return frame


def outbox_consumer_throughput(db: SqlBaseline, n_events: int, workers=(1, 2, 4), *, batch: int = 1_000):
    """Rows/s taken by k consumer processes polling the outbox, per k.

    Each consumer repeats ``DELETE ... WHERE id IN (SELECT id ... ORDER BY id
    LIMIT batch FOR UPDATE SKIP LOCKED) RETURNING id, payload`` (the delete is
    the acknowledgement) until it gets no row. The table is emptied (TRUNCATE)
    and refilled by COPY before every k, outside the timing. ``all_acked``: the
    consumers deleted exactly ``n_events`` rows and none is left.
    """
    bounds.at_least("n_events", n_events)
    workers = bounds.counts("workers", workers)
    table = create_outbox(db)
    rows = []
    try:
        events = payloads(n_events)
        for k in workers:
            db.execute(f"TRUNCATE {table}")
            copy_rows(db.conn, table, events)
            db.execute(f"ANALYZE {table}")
            jobs = [(db.target, table, batch) for _ in range(k)]
            seconds, results = run_together(_outbox_consume, jobs, timeout=60 + n_events / 1_000)
            deleted = sum(x["deleted"] for x in results)
            remaining = count_rows(db, table)
            rows.append(
                {
                    "workers": k,
                    "events": n_events,
                    "deleted": deleted,
                    "remaining": remaining,
                    "all_acked": deleted == n_events and remaining == 0,
                    "seconds": seconds,
                    "events_per_s": n_events / seconds,
                }
            )
    finally:
        db.execute(f"DROP TABLE IF EXISTS {table}")
    frame = pd.DataFrame(rows)
    frame.insert(0, "system", db.label)
    return frame


def _outbox_consume(target, table, batch, gate, results) -> None:
    """Outbox consumer process: DELETE ... SKIP LOCKED ... RETURNING until a poll returns nothing."""
    conn = None
    try:
        conn = SqlBaseline(target, "outbox consumer").connect()
        take = take_query(table, batch)
        conn.execute("SELECT 1")
        wait_at_gate(gate)
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        deleted = 0
        while time.monotonic() < deadline:
            taken = conn.execute(take).fetchall()
            if not taken:
                break
            deleted += len(taken)
        results.put({"deleted": deleted, "seconds": time.perf_counter() - started})
    except BaseException as error:
        report_failure(results, error)
    finally:
        if conn is not None:
            conn.close()


def outbox_end_to_end_latency(
    db: SqlBaseline,
    rate: int = 10_000,
    seconds: float = 5.0,
    *,
    batch: int = 1_000,
    idle_sleep_ms: float = 0.5,
) -> pd.DataFrame:
    """Latency from building an event to an outbox consumer having it, at a paced ``rate``.

    This process inserts, every millisecond, the events due by then in one
    statement (``INSERT ... SELECT unnest(array)``, autocommit), each payload
    stamped with ``ts=time.time_ns()``. One consumer process polls with the
    SKIP LOCKED delete and sleeps ``idle_sleep_ms`` when it finds nothing.
    """
    bounds.at_least("rate", rate)
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    table = create_outbox(db, "outbox_latency")
    ctx = spawn_context()
    ready, stop, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    consumer = ctx.Process(
        target=_outbox_latency_consumer,
        args=(db.target, table, batch, idle_sleep_ms, seconds * 3 + 30, ready, stop, results),
        daemon=True,
    )
    conn = None
    try:
        conn = db.connect()
        consumer.start()
        wait_ready(ready, 1, [consumer], results)
        insert = f"INSERT INTO {table} (payload) SELECT unnest(%s::text[])"

        def send(count: int, first: int) -> None:
            rows = [
                f'{{"action":"placed","order_id":"ord-{i}","total":"89.99","ts":{time.time_ns()}}}'
                for i in range(first, first + count)
            ]
            conn.execute(insert, (rows,))

        sent, elapsed = paced(send, rate, seconds)
        conn.execute(f"INSERT INTO {table} (payload) VALUES (%s)", ('{"end":1}',))
        outcome = get(results, consumer, timeout=30 + seconds)
        remaining = count_rows(db, table, conn)
        return latency_frame(db.label, rate, seconds, sent, elapsed, outcome, remaining_after=remaining)
    finally:
        stop.set()
        finish([consumer])
        results.close()
        if conn is not None:
            conn.close()
        db.execute(f"DROP TABLE IF EXISTS {table}")


def _outbox_latency_consumer(target, table, batch, idle_sleep_ms, budget_s, ready, stop, results):
    """Outbox consumer process: poll, record now - ts per row, until the end marker."""
    conn = None
    try:
        conn = SqlBaseline(target, "outbox consumer").connect()
        take = take_query(table, batch)
        conn.execute("SELECT 1")
        latencies: list[float] = []
        deadline = time.monotonic() + budget_s
        ended = False
        ready.release()
        while not ended and not stop.is_set() and time.monotonic() < deadline:
            taken = conn.execute(take).fetchall()
            if not taken:
                time.sleep(idle_sleep_ms / 1_000)
                continue
            for _, payload in taken:
                event = json.loads(payload)
                if "end" in event:
                    ended = True
                else:
                    latencies.append((time.time_ns() - event["ts"]) / 1e6)
        results.put({"latencies_ms": np.array(latencies), "ended": ended})
    except BaseException as error:
        report_failure(results, error)
    finally:
        if conn is not None:
            conn.close()
