"""The leaderboard in SQL: the baseline notebook 01 measures Redis against.

A ``workshop_...`` table of ``(player PRIMARY KEY, score)``. A rank is a
``COUNT(*)`` of the rows that scored more: the database must look at every one
of them, with or without an index on score, so it grows with N.
"""

from __future__ import annotations

from collections.abc import Mapping

from tqdm.auto import tqdm

from helpers.baselines.sql import SqlBaseline


class ScoresTable:
    def __init__(self, db: SqlBaseline, name: str):
        self.db = db
        self.table = db.table(name)
        self.indexed = False

    def create(self, scores: Mapping[str, float], *, progress: bool = True) -> None:
        """(Re)create the table holding ``scores``, loaded with COPY (PostgreSQL's fastest load)."""
        self.drop()
        self.db.execute(
            f"CREATE TABLE {self.table} (player TEXT PRIMARY KEY, score DOUBLE PRECISION NOT NULL)"
        )
        rows = tqdm(
            scores.items(), total=len(scores), unit=" rows", desc=f"load {self.table}", disable=not progress
        )
        with (
            self.db.conn.cursor() as cur,
            cur.copy(f"COPY {self.table} (player, score) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        self.db.execute(f"VACUUM ANALYZE {self.table}")  # visibility map: lets an index-only scan count
        self.indexed = False

    def add_score_index(self) -> None:
        self.db.execute(f"CREATE INDEX {self.table}_score ON {self.table} (score)")
        self.db.execute(f"ANALYZE {self.table}")
        self.indexed = True

    def rank(self, player: str, conn=None) -> int | None:
        """1 + the number of strictly higher scores (competition rank); None if absent."""
        count, score = self.db.execute(
            f"SELECT count(*) + 1, (SELECT score FROM {self.table} WHERE player = %s) "
            f"FROM {self.table} WHERE score > (SELECT score FROM {self.table} WHERE player = %s)",
            (player, player),
            conn,
        ).fetchone()
        return None if score is None else count

    def incr(self, player: str, delta: float, conn=None) -> None:
        self.db.execute(
            f"UPDATE {self.table} SET score = score + %s WHERE player = %s", (delta, player), conn
        )

    def top(self, n: int = 10, conn=None) -> list[tuple[str, float]]:
        return self.db.execute(
            f"SELECT player, score FROM {self.table} ORDER BY score DESC, player LIMIT %s", (n,), conn
        ).fetchall()

    def score(self, player: str, conn=None) -> float | None:
        row = self.db.execute(f"SELECT score FROM {self.table} WHERE player = %s", (player,), conn).fetchone()
        return None if row is None else row[0]

    def read_modify_write(self, conn, player: str, delta: float, *, lock: bool) -> None:
        """Read the score, add in Python, write it back: the classic lost-update bug.

        ``lock=True`` takes the row lock first (``SELECT ... FOR UPDATE``).
        """
        read = f"SELECT score FROM {self.table} WHERE player = %s"
        write = f"UPDATE {self.table} SET score = %s WHERE player = %s"
        if not lock:
            current = self.db.execute(read, (player,), conn).fetchone()[0]
            self.db.execute(write, (current + delta, player), conn)
            return
        with conn.transaction():
            current = conn.execute(read + " FOR UPDATE", (player,)).fetchone()[0]
            conn.execute(write, (current + delta, player))

    def drop(self) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS {self.table}")
