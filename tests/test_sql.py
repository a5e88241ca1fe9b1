"""helpers.sql: the SQL baseline's database, found or replaced by SQLite, and its workshop_ tables."""

from __future__ import annotations

import os

import port_for
import pytest

from helpers import sql
from helpers.sql import SqlBaseline, SqlUnavailable, connect_sql


def dead_postgres_url() -> str:
    return f"postgresql://workshop:s3cret@127.0.0.1:{port_for.select_random()}/workshop"


@pytest.fixture
def no_postgres_anywhere(monkeypatch):
    """No DATABASE_URL, nothing on the compose or local URLs, no Docker engine."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(sql, "COMPOSE_URL", dead_postgres_url())
    monkeypatch.setattr(sql, "LOCAL_URL", dead_postgres_url())
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port_for.select_random()}")


@pytest.fixture(params=["postgresql", "sqlite"])
def baseline(request):
    return request.getfixturevalue("db" if request.param == "postgresql" else "sqlite_db")


def test_database_url_gives_postgresql_announced_in_one_line(db, capsys):
    found = connect_sql()
    try:
        assert found.is_postgres
        assert found.label.startswith("PostgreSQL ")
        assert found.how == "from DATABASE_URL"
        assert found.execute("SELECT 1 + 1").fetchone()[0] == 2
    finally:
        found.close()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(found.label)
    assert os.environ["DATABASE_URL"] in lines[0]


def test_quiet_connect_sql_prints_nothing(db, capsys):
    connect_sql(quiet=True).close()
    assert capsys.readouterr().out == ""


def test_unreachable_database_url_raises_sql_unavailable(monkeypatch):
    url = dead_postgres_url()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SqlUnavailable) as raised:
        connect_sql()
    message = str(raised.value)
    assert "s3cret" not in message
    assert "***@127.0.0.1" in message
    assert "DATABASE_URL" in message


def test_unreachable_explicit_url_raises_sql_unavailable_even_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SqlUnavailable):
        connect_sql(dead_postgres_url())


def test_without_postgresql_outside_ci_falls_back_to_sqlite_and_says_so(no_postgres_anywhere, monkeypatch,
                                                                         capsys):
    monkeypatch.delenv("CI", raising=False)
    found = connect_sql()
    assert found.backend == "sqlite"
    assert not found.is_postgres
    assert "SQLite" in found.label
    assert "no PostgreSQL" in found.label
    assert found.target.endswith("baseline.sqlite3")
    out = capsys.readouterr().out
    assert "SQLite" in out and "no PostgreSQL" in out
    found.close()


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_without_postgresql_in_ci_raises_sql_unavailable(no_postgres_anywhere, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(SqlUnavailable) as raised:
        connect_sql()
    assert "docker compose up -d" in str(raised.value)
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize("name", ["lb_scores", "x", "a1_b2", "_private"])
def test_table_prefixes_safe_names(sqlite_db, name):
    assert sqlite_db.table(name) == "workshop_" + name


@pytest.mark.parametrize(
    "name", ["Scores", "lb-scores", "lb scores", "x; DROP TABLE users", "lb.scores", "é", "x'", '"x"', "x\ny"]
)
def test_table_rejects_unsafe_names(sqlite_db, name):
    with pytest.raises(ValueError):
        sqlite_db.table(name)


def test_table_rejects_a_name_with_a_trailing_newline(sqlite_db):
    # "$" in a Python regex also matches just before a final newline
    with pytest.raises(ValueError):
        sqlite_db.table("scores\n")


def test_sql_placeholders_are_rewritten_for_sqlite_only(db, sqlite_db):
    statement = "SELECT * FROM t WHERE a = %s AND b = %s"
    assert db.sql(statement) == statement
    assert sqlite_db.sql(statement) == "SELECT * FROM t WHERE a = ? AND b = ?"


def test_tables_lists_only_workshop_tables(baseline):
    baseline.execute("CREATE TABLE workshop_b (x INTEGER)")
    baseline.execute("CREATE TABLE workshop_a (x INTEGER)")
    baseline.execute("CREATE TABLE learner_keep (x INTEGER)")
    baseline.execute("CREATE TABLE workshopx_keep (x INTEGER)")  # '_' is no wildcard here
    try:
        assert baseline.tables() == ["workshop_a", "workshop_b"]
    finally:
        baseline.execute("DROP TABLE learner_keep")
        baseline.execute("DROP TABLE workshopx_keep")
        baseline.cleanup()


def test_cleanup_drops_only_workshop_tables(baseline):
    baseline.execute("CREATE TABLE workshop_one (x INTEGER)")
    baseline.execute("CREATE TABLE workshop_two (x INTEGER)")
    baseline.execute("CREATE TABLE learner_keep (x INTEGER)")
    baseline.execute("CREATE TABLE workshopx_keep (x INTEGER)")
    baseline.execute("INSERT INTO learner_keep VALUES (%s)", (7,))
    try:
        assert baseline.cleanup() == 2
        assert baseline.tables() == []
        assert baseline.execute("SELECT x FROM learner_keep").fetchall() == [(7,)]
        assert baseline.execute("SELECT count(*) FROM workshopx_keep").fetchone()[0] == 0
    finally:
        baseline.execute("DROP TABLE IF EXISTS learner_keep")
        baseline.execute("DROP TABLE IF EXISTS workshopx_keep")
    assert baseline.cleanup() == 0


def test_connect_gives_independent_autocommit_connections(baseline):
    baseline.execute("CREATE TABLE workshop_autocommit (x INTEGER)")
    other = baseline.connect()
    try:
        baseline.execute("INSERT INTO workshop_autocommit VALUES (%s)", (1,))
        assert baseline.execute("SELECT count(*) FROM workshop_autocommit", conn=other).fetchone()[0] == 1
        assert other is not baseline.conn
    finally:
        other.close()


def test_close_is_idempotent_and_reopens_on_demand(sqlite_db):
    assert sqlite_db.execute("SELECT 1").fetchone()[0] == 1
    sqlite_db.close()
    sqlite_db.close()
    assert sqlite_db.execute("SELECT 2").fetchone()[0] == 2


def test_sqlite_baseline_is_not_postgres(tmp_path):
    baseline = SqlBaseline("sqlite", str(tmp_path / "x.sqlite3"), "SQLite (test)")
    assert not baseline.is_postgres
    baseline.close()
