"""helpers.baselines.ratelimit: the PostgreSQL sliding log decides exactly, races without its lock, cleans up.

Only exact facts are checked: a lone client is limited exactly, the advisory
lock admits exactly the limit in every trial, and no ``workshop_`` table is left
behind. Never a rate or a latency.
"""

from __future__ import annotations

import time

import pytest

from helpers.baselines import ratelimit as rs
from helpers.bench import race
from helpers.bench import ratelimit as experiments


def rows(db, table: str, key: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table} WHERE key = %s", (key,)).fetchone()[0]


@pytest.fixture
def log_table(db):
    table = rs.create_table(db)
    yield table
    db.execute(f"DROP TABLE IF EXISTS {table}")


def test_create_table_makes_an_empty_workshop_table(db, log_table):
    assert log_table == rs.TABLE == "workshop_ratelimit_log"
    assert db.tables() == [log_table]
    assert db.execute(f"SELECT count(*) FROM {log_table}").fetchone()[0] == 0


@pytest.mark.parametrize("lock", [True, False])
def test_a_lone_client_is_limited_exactly_per_key_with_or_without_the_lock(db, log_table, lock):
    conn = db.connect()
    try:
        assert [rs.hit(conn, "a", 3, 60_000, lock) for _ in range(5)] == [True] * 3 + [False] * 2
        assert [rs.hit(conn, "b", 1, 60_000, lock) for _ in range(2)] == [True, False]
    finally:
        conn.close()
    assert rows(db, log_table, "a") == 3 and rows(db, log_table, "b") == 1  # denied requests are not logged


def test_old_rows_leave_the_window_and_are_deleted(db, log_table):
    conn = db.connect()
    try:
        assert [rs.hit(conn, "k", 2, 50) for _ in range(3)] == [True, True, False]
        time.sleep(0.1)  # twice the window
        assert rs.hit(conn, "k", 2, 50)
    finally:
        conn.close()
    assert rows(db, log_table, "k") == 1


def test_the_advisory_lock_admits_exactly_the_limit_in_every_trial(db):
    frame = experiments.sql_race_trials(db, trials=6, clients=8, calls_per_client=5, limit=4, lock=True)
    assert list(frame.trial) == list(range(6))
    assert set(race.COLUMNS) <= set(frame.columns)
    assert (frame.method == rs.ADVISORY_LOCK).all() and (frame.runner == "threads").all()
    assert (frame.admitted == 4).all() and (frame.over == 0).all()
    assert (frame.calls == 40).all()
    assert db.tables() == []


def test_without_the_lock_the_trials_have_the_same_shape_and_never_admit_fewer(db):
    frame = experiments.sql_race_trials(db, trials=4, clients=8, calls_per_client=5, limit=4, lock=False)
    assert (frame.method == rs.NO_LOCK).all()
    assert (frame.admitted >= 4).all() and (frame.admitted <= 40).all()
    assert (frame.over == frame.admitted - 4).all()
    assert db.tables() == []


def test_decisions_per_second_from_one_connection(db):
    frame = experiments.sql_decisions_per_second(db, calls=50, keys=5, limit=100)
    row = frame.iloc[0]
    assert len(frame) == 1 and row.method == rs.ADVISORY_LOCK and row.system == db.label
    assert row.calls == 50 and row.samples == 50 and row.allowed == 50
    assert row.decisions_per_s > 0 and row.p50_ms <= row.p99_ms
    assert db.tables() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda db: experiments.sql_race_trials(db, trials=0, clients=1, calls_per_client=1, limit=1),
        lambda db: experiments.sql_race_trials(db, trials=1, clients=1, calls_per_client=1, limit=0),
        lambda db: experiments.sql_decisions_per_second(db, calls=0),
    ],
)
def test_bad_sizes_are_value_errors_and_create_no_table(db, call):
    with pytest.raises(ValueError):
        call(db)
    assert db.tables() == []


# --- the same limiter as one PL/pgSQL function call -------------------------------------------


def test_the_function_decides_as_the_statements_do_and_logs_only_what_it_allows(db, log_table):
    function = rs.create_function(db, log_table)
    conn = db.connect()
    try:
        assert [rs.hit_function(conn, "a", 3, 60_000) for _ in range(5)] == [True] * 3 + [False] * 2
        assert [rs.hit_function(conn, "b", 1, 60_000) for _ in range(2)] == [True, False]
    finally:
        conn.close()
        rs.drop_function(db, function)
    assert rows(db, log_table, "a") == 3 and rows(db, log_table, "b") == 1


def test_the_function_admits_exactly_the_limit_in_every_trial_and_leaves_nothing(db):
    frame = experiments.sql_race_trials(db, trials=4, clients=8, calls_per_client=5, limit=4, function=True)
    assert (frame.method == rs.FUNCTION_CALL).all()
    assert (frame.admitted == 4).all()
    assert db.tables() == []
    assert db.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (rs.FUNCTION,)).fetchone()[0] == 0


@pytest.mark.parametrize("setting", ["off", "on"])
def test_decisions_per_second_by_function_runs_with_the_durability_asked_for(db, setting):
    frame = experiments.sql_decisions_per_second(
        db, calls=40, keys=4, function=True, synchronous_commit=setting
    )
    row = frame.iloc[0]
    assert row.method == rs.FUNCTION_CALL and row.synchronous_commit == setting and row.allowed == 40
    assert db.tables() == []


def test_an_unlogged_log_table_is_unlogged_decides_the_same_and_is_dropped(db):
    table = rs.create_table(db, "ratelimit_unlogged", unlogged=True)
    try:
        persistence = db.execute(
            "SELECT relpersistence FROM pg_class WHERE relname = %s", (table,)
        ).fetchone()
        assert persistence == ("u",)  # u: unlogged, p: permanent
    finally:
        db.execute(f"DROP TABLE IF EXISTS {table}")
    frame = experiments.sql_decisions_per_second(db, calls=12, keys=3, limit=2, function=True, unlogged=True)
    row = frame.iloc[0]
    assert row.table == "UNLOGGED" and row.allowed == 6  # 3 keys, 2 each
    assert db.tables() == []
