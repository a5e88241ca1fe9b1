"""helpers.baselines.leaderboard.ScoresTable: the SQL leaderboard baseline."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from helpers.baselines.leaderboard import ScoresTable
from helpers.leaderboard import Leaderboard

SMALL = {"ann": 30.0, "bob": 20.0, "cat": 20.0, "dan": 10.0, "eve": 2.5}


@pytest.fixture
def baseline(db):
    return db


@pytest.fixture
def table(baseline) -> ScoresTable:
    scores = ScoresTable(baseline, "lb_test")
    scores.create(SMALL, progress=False)
    yield scores
    scores.drop()


def index_names(baseline, table: str) -> list[str]:
    rows = baseline.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall()
    return [row[0] for row in rows if row[0].endswith("_score")]


def test_table_name_is_a_workshop_table(table, baseline):
    assert table.table == "workshop_lb_test"
    assert baseline.tables() == ["workshop_lb_test"]


def test_unsafe_table_name_is_refused(baseline):
    with pytest.raises(ValueError):
        ScoresTable(baseline, "lb; DROP TABLE x")
    assert baseline.tables() == []


def test_create_loads_every_score(table):
    for player, score in SMALL.items():
        assert table.score(player) == score
    assert table.db.execute(f"SELECT count(*) FROM {table.table}").fetchone()[0] == len(SMALL)


def test_create_replaces_an_existing_table(table):
    table.create({"zed": 1.0}, progress=False)
    assert table.score("ann") is None
    assert table.score("zed") == 1.0


def test_rank_is_one_plus_the_number_of_strictly_higher_scores(table):
    assert {p: table.rank(p) for p in SMALL} == {"ann": 1, "bob": 2, "cat": 2, "dan": 4, "eve": 5}


def test_rank_and_score_of_a_missing_player_are_none(table):
    assert table.rank("nobody") is None
    assert table.score("nobody") is None


def test_incr_adds_to_the_score(table):
    table.incr("dan", 15)
    table.incr("eve", -0.5)
    assert table.score("dan") == 25.0
    assert table.score("eve") == 2.0
    assert table.rank("dan") == 2


def test_top_is_best_first_ties_by_player_name(table):
    assert table.top(3) == [("ann", 30.0), ("bob", 20.0), ("cat", 20.0)]
    assert len(table.top(100)) == len(SMALL)


def test_queries_accept_a_connection_of_their_own(table):
    conn = table.db.connect()
    try:
        assert table.rank("bob", conn) == 2
        assert table.score("bob", conn) == 20.0
        table.incr("bob", 1, conn)
        assert table.top(1, conn) == [("ann", 30.0)]
        assert table.score("bob") == 21.0
    finally:
        conn.close()


def test_indexed_flag_follows_add_score_index(table, baseline):
    assert table.indexed is False
    assert index_names(baseline, table.table) == []
    table.add_score_index()
    assert table.indexed is True
    assert index_names(baseline, table.table) == [f"{table.table}_score"]
    assert table.rank("cat") == 2
    table.create(SMALL, progress=False)
    assert table.indexed is False
    assert index_names(baseline, table.table) == []


def test_drop_removes_the_table(table, baseline):
    table.drop()
    assert baseline.tables() == []
    table.drop()  # already gone: harmless


@pytest.mark.parametrize("indexed", [False, True])
def test_rank_agrees_with_the_redis_competition_rank_on_tie_heavy_data(r, baseline, indexed):
    rng = np.random.default_rng(11)
    scores = {f"p:{i}": float(v) for i, v in enumerate(rng.integers(0, 60, 600) / 4)}
    board = Leaderboard(r, "sql-agreement")
    board.add_many(scores, progress=False)
    table = ScoresTable(baseline, "lb_agreement")
    table.create(scores, progress=False)
    if indexed:
        table.add_score_index()
    try:
        assert {p: table.rank(p) for p in scores} == {p: board.rank(p) for p in scores}
        assert [s for _, s in table.top(50)] == [e.score for e in board.top(50)]
    finally:
        table.drop()


def test_read_modify_write_without_lock_is_exact_when_alone(table):
    conn = table.db.connect()
    try:
        for _ in range(10):
            table.read_modify_write(conn, "eve", 1, lock=False)
    finally:
        conn.close()
    assert table.score("eve") == 12.5


def test_read_modify_write_with_lock_from_four_threads_is_exact(table):
    writers, increments = 4, 25
    start_together = threading.Barrier(writers)

    def writer(_):
        conn = table.db.connect()
        try:
            start_together.wait()
            for _ in range(increments):
                table.read_modify_write(conn, "dan", 1, lock=True)
        finally:
            conn.close()

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    assert table.score("dan") == 10.0 + writers * increments


def test_rank_by_literal_equals_the_sub_select_rank(table):
    assert {p: table.rank_by_literal(p) for p in SMALL} == {p: table.rank(p) for p in SMALL}
    assert table.rank_by_literal("nobody") is None


@pytest.fixture
def bucketed(table):
    table.add_score_index()
    table.add_buckets(10)  # buckets of 10 points: ann 3, bob and cat 2, dan 1, eve 0
    return table


def bucket_counts(table) -> dict[int, int]:
    rows = table.db.execute(f"SELECT bucket, players FROM {table.buckets} WHERE players > 0").fetchall()
    return dict(rows)


def test_buckets_count_the_players_of_each_score_bucket(bucketed):
    assert bucket_counts(bucketed) == {0: 1, 1: 1, 2: 2, 3: 1}
    assert {p: bucketed.rank_by_buckets(p) for p in SMALL} == {p: bucketed.rank(p) for p in SMALL}
    assert bucketed.rank_by_buckets("nobody") is None


def test_the_trigger_keeps_buckets_exact_through_updates_inserts_and_deletes(bucketed):
    bucketed.incr("eve", 40)  # 2.5 -> 42.5: from bucket 0 to bucket 4
    bucketed.incr("bob", 1)  # 20 -> 21: same bucket, nothing moves
    bucketed.db.execute(f"INSERT INTO {bucketed.table} VALUES ('fay', 35)")
    bucketed.db.execute(f"DELETE FROM {bucketed.table} WHERE player = 'dan'")
    assert bucket_counts(bucketed) == {2: 2, 3: 2, 4: 1}
    players = ["ann", "bob", "cat", "eve", "fay"]
    assert {p: bucketed.rank_by_buckets(p) for p in players} == {p: bucketed.rank(p) for p in players}


def test_a_bucket_width_must_be_positive(table):
    for width in (0, -1, "10", None):
        with pytest.raises(ValueError, match="width must be a positive number"):
            table.add_buckets(width)


def test_the_rank_view_is_stale_until_refreshed(table):
    assert table.add_rank_view() > 0
    assert {p: table.rank_from_view(p) for p in SMALL} == {p: table.rank(p) for p in SMALL}
    table.incr("eve", 100)  # eve goes to the top
    assert table.rank("eve") == 1 and table.rank_from_view("eve") == 5  # the view still says 5
    assert table.refresh_rank_view() > 0
    assert table.rank_from_view("eve") == 1
    assert table.rank_from_view("nobody") is None


def test_drop_removes_the_view_the_buckets_and_the_trigger_function(bucketed, baseline):
    bucketed.add_rank_view()
    bucketed.drop()
    assert baseline.tables() == []
    for name in (bucketed.rank_view, bucketed.buckets):
        assert baseline.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None
    count = "SELECT count(*) FROM pg_proc WHERE proname = %s"
    assert baseline.execute(count, (bucketed.buckets + "_count",)).fetchone()[0] == 0
    bucketed.drop()  # twice is fine
