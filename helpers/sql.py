"""The SQL baseline: a real PostgreSQL when there is one, SQLite when not.

``connect_sql()`` finds a database the same way ``connect()`` finds a Redis:

1. ``DATABASE_URL`` (for example the PostgreSQL from ``docker compose up -d``);
2. a PostgreSQL on localhost:5432, first with the docker-compose credentials,
   then as your own user;
3. a throwaway PostgreSQL container when a Docker engine answers;
4. SQLite in ``.workshop/baseline.sqlite3``, and every label says so.

With ``CI=true`` step 4 is an error: CI must measure against the real thing.

Every table the workshop creates is named ``workshop_...``; ``cleanup()``
drops those and nothing else.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field

import psycopg

from helpers import servers

COMPOSE_URL = "postgresql://workshop:workshop@127.0.0.1:5432/workshop"
LOCAL_URL = "postgresql://127.0.0.1:5432/postgres"
TABLE_PREFIX = "workshop_"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class SqlUnavailable(RuntimeError):
    """No PostgreSQL could be reached where one is required."""


@dataclass
class SqlBaseline:
    """One database for the baseline: hands out connections and owns its tables."""

    backend: str  # "postgresql" or "sqlite"
    target: str  # URL or file path
    label: str  # what tables and plots print, e.g. "PostgreSQL 15.20"
    how: str = ""  # how it was found, e.g. "from DATABASE_URL"
    _shared: object = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    def connect(self):
        """A new autocommit connection (one per thread in concurrency tests)."""
        if self.is_postgres:
            return psycopg.connect(self.target, autocommit=True)
        conn = sqlite3.connect(self.target, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @property
    def conn(self):
        if self._shared is None:
            self._shared = self.connect()
        return self._shared

    def sql(self, statement: str) -> str:
        """Queries are written with ``%s``; SQLite wants ``?``."""
        return statement if self.is_postgres else statement.replace("%s", "?")

    def execute(self, statement: str, params: tuple = (), conn=None):
        return (conn or self.conn).execute(self.sql(statement), params)

    def table(self, name: str) -> str:
        """``table("lb_scores")`` -> ``"workshop_lb_scores"``, checked to be a safe identifier."""
        full = TABLE_PREFIX + name
        if not _IDENTIFIER.fullmatch(full):
            raise ValueError(f"table name must be lower-case letters, digits and _, got {name!r}")
        return full

    def tables(self) -> list[str]:
        if self.is_postgres:
            rows = self.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
                (TABLE_PREFIX.replace("_", r"\_") + "%",),
            ).fetchall()
        else:
            rows = self.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE %s ESCAPE '\\'",
                (TABLE_PREFIX.replace("_", r"\_") + "%",),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def cleanup(self) -> int:
        """Drop every ``workshop_`` table; return how many."""
        found = self.tables()
        for name in found:
            self.execute(f"DROP TABLE IF EXISTS {name}")
        return len(found)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None


def connect_sql(url: str | None = None, *, quiet: bool = False) -> SqlBaseline:
    """Find the SQL baseline's database and print one line saying which it is."""
    url = url or os.environ.get("DATABASE_URL")
    candidates = (
        [(url, "from DATABASE_URL")]
        if url
        else [
            (COMPOSE_URL, "docker-compose on localhost"),
            (LOCAL_URL, "already running on localhost"),
        ]
    )
    errors = []
    for candidate, how in candidates:
        baseline = _try_postgres(candidate, how, errors)
        if baseline:
            break
    else:
        baseline = None
        if not url:
            container = servers.start_postgres()
            if container:
                baseline = _try_postgres(container.url, container.how, errors)
        if baseline is None:
            if url or os.environ.get("CI", "").lower() == "true":
                raise SqlUnavailable(
                    "PostgreSQL is required here but none answers: "
                    + "; ".join(errors)
                    + ". Start one with `docker compose up -d` or set DATABASE_URL."
                )
            baseline = _sqlite()
    if not quiet:
        print(f"{baseline.label} at {servers.redact(baseline.target)} ({baseline.how})")
    return baseline


def _try_postgres(url: str, how: str, errors: list[str]) -> SqlBaseline | None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    except psycopg.Error as exc:
        errors.append(f"{servers.redact(url)}: {str(exc).strip().splitlines()[0]}")
        return None
    return SqlBaseline("postgresql", url, f"PostgreSQL {version}", how=how)


def _sqlite() -> SqlBaseline:
    servers.WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = str(servers.WORK_DIR / "baseline.sqlite3")
    return SqlBaseline(
        "sqlite", path, f"SQLite {sqlite3.sqlite_version} (no PostgreSQL found)", how="fallback file"
    )
