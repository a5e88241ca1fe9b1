"""The SQL side of notebook 02: a PostgreSQL transactional outbox, as a good engineer builds it.

The outbox is a table ``(id, payload, created_at)``. A producer inserts rows in
its own transaction (the outbox way: the row commits with the business change);
consumers take a batch with ``DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
LOCKED) RETURNING`` (``take_query``): the delete is the acknowledgement, and SKIP
LOCKED lets several consumers work without blocking each other. Bulk loads use
COPY (``copy_rows``).

``helpers.bench.outbox`` measures it beside the Redis stream of ``helpers.bench.streams``.
"""

from __future__ import annotations

from helpers.baselines.sql import SqlBaseline


def create_outbox(db: SqlBaseline, name: str = "outbox_bench") -> str:
    """A fresh outbox table ``(id, payload, created_at)``; returns its (``workshop_``) name."""
    table = db.table(name)
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(
        f"CREATE TABLE {table} (id bigserial PRIMARY KEY, payload text NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    return table


def take_query(table: str, limit: int) -> str:
    return (
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT {int(limit)}"
        " FOR UPDATE SKIP LOCKED) RETURNING id, payload"
    )


def copy_rows(conn, table: str, rows: list[str]) -> None:
    """COPY ``rows`` into the payload column in one transaction."""
    with conn.transaction(), conn.cursor().copy(f"COPY {table} (payload) FROM STDIN") as copy:
        for payload in rows:
            copy.write_row((payload,))


def count_rows(db: SqlBaseline, table: str, conn=None) -> int:
    return db.execute(f"SELECT count(*) FROM {table}", conn=conn).fetchone()[0]
