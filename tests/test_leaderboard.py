"""helpers.leaderboard.Leaderboard: a sorted-set leaderboard with fair ranks, checked input and metadata."""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from redis.crc import key_slot

from helpers import bounds
from helpers.leaderboard import MAX_EXACT_INT, Entry, Leaderboard


def workshop_keys(r) -> list[str]:
    return sorted(r.scan_iter(match="workshop:*", count=1_000))


def contents(r, board: Leaderboard) -> tuple:
    return r.zrange(board.key, 0, -1, withscores=True), r.hgetall(board.meta_key)


@pytest.fixture
def board(r) -> Leaderboard:
    return Leaderboard(r, "global")


@pytest.fixture
def small(board) -> Leaderboard:
    """ann 30, bob 20, cat 20, dan 10: competition ranks 1, 2, 2, 4."""
    board.add_many({"ann": 30, "bob": 20, "cat": 20, "dan": 10}, progress=False)
    return board


@pytest.fixture(scope="module")
def tie_heavy() -> dict[str, float]:
    """2,000 members whose scores come from 80 values: many ties."""
    rng = np.random.default_rng(20261126)
    values = (rng.integers(0, 80, 2_000) / 2).tolist()  # 0.0, 0.5, ... 39.5
    return {f"player:{i:04d}": value for i, value in enumerate(values)}


@pytest.fixture
def loaded(board, tie_heavy) -> Leaderboard:
    assert board.add_many(tie_heavy, chunk=333, progress=False) == len(tie_heavy)
    return board


def pandas_ranks(scores: dict[str, float]) -> pd.Series:
    return pd.Series(scores).rank(method="min", ascending=False).astype(int)


# --- keys -----------------------------------------------------------------------------------------


def test_board_key_is_under_the_prefix_with_the_name_as_hash_tag(board):
    assert board.key == "workshop:lb:{global}"
    assert board.meta_key == "workshop:lb:{global}:meta"
    assert "workshop:lb:{global}" in repr(board)


@pytest.mark.parametrize("period", [None, "day:2026-11-26", "week:2026-W48:sum"])
def test_board_and_meta_keys_share_one_hash_tag_and_slot(r, period):
    board = Leaderboard(r, "arena:eu", period=period)
    assert board.key.startswith("workshop:lb:{arena:eu}")
    assert board.meta_key.startswith("workshop:lb:{arena:eu}")
    assert key_slot(board.key.encode()) == key_slot(board.meta_key.encode()) == key_slot(b"{arena:eu}")


def test_a_period_board_never_shares_a_key_with_another_boards_metadata(r):
    plain, daily = Leaderboard(r, "x"), Leaderboard(r, "x", period="day:1")
    for other_period, other in (("meta", plain), ("day:1:meta", daily)):
        try:
            clash = Leaderboard(r, "x", period=other_period)
        except ValueError:
            continue  # refusing such a period is a fix too
        assert {clash.key, clash.meta_key}.isdisjoint({other.key, other.meta_key})


def test_creating_a_board_writes_nothing(r):
    Leaderboard(r, "nothing", ttl=60)
    assert workshop_keys(r) == []


# --- writes and reads -----------------------------------------------------------------------------


def test_add_then_score(board):
    board.add("ann", 12.5)
    assert board.score("ann") == 12.5
    assert len(board) == 1


def test_add_replaces_a_score(board):
    board.add("ann", 10)
    board.add("ann", 3)
    assert board.score("ann") == 3.0


@pytest.mark.parametrize(
    "score", [0, -7, 2**53, -(2**53), 1e300, Fraction(1, 4), np.int64(9), np.float64(0.5)], ids=repr
)
def test_add_accepts_finite_real_numbers_within_exact_range(board, score):
    board.add("ann", score)
    assert board.score("ann") == float(score)


def test_incr_adds_to_a_score_and_returns_the_new_one(board):
    board.add("ann", 10)
    assert board.incr("ann", 5) == 15.0
    assert board.incr("ann", -2.5) == 12.5
    assert board.score("ann") == 12.5


def test_incr_of_a_new_member_starts_from_zero(board):
    assert board.incr("new", 3) == 3.0
    assert board.rank("new") == 1


def test_remove_reports_whether_the_member_was_there(small):
    assert small.remove("bob") is True
    assert small.remove("bob") is False
    assert small.score("bob") is None
    assert len(small) == 3


def test_delete_removes_board_and_metadata(r, board):
    board.add("ann", 1, meta={"country": "FR"})
    board.delete()
    assert r.exists(board.key, board.meta_key) == 0
    assert len(board) == 0


def test_len_of_a_missing_board_is_zero(board):
    assert len(board) == 0


def test_rank_gives_equal_scores_equal_competition_ranks(small):
    assert [small.rank(m) for m in ("ann", "bob", "cat", "dan")] == [1, 2, 2, 4]


def test_unique_rank_is_zrevrank_plus_one(r, small):
    for member in ("ann", "bob", "cat", "dan"):
        assert small.rank(member, ties="unique") == r.zrevrank(small.key, member) + 1
    assert sorted(small.rank(m, ties="unique") for m in ("ann", "bob", "cat", "dan")) == [1, 2, 3, 4]


def test_top_lists_best_first_with_competition_ranks(small):
    top = small.top(3)
    assert all(isinstance(entry, Entry) for entry in top)
    assert [(e.rank, e.score) for e in top] == [(1, 30.0), (2, 20.0), (2, 20.0)]
    assert top[0].member == "ann"
    assert {top[1].member, top[2].member} == {"bob", "cat"}


def test_top_larger_than_the_board_returns_every_member(small):
    assert [e.member for e in small.top(100)][-1] == "dan"
    assert len(small.top(100)) == 4


def test_top_of_a_missing_board_is_empty(board):
    assert board.top() == []


def test_page_ranks_continue_across_page_boundaries(small):
    first, second = small.page(1, size=2), small.page(2, size=2)
    assert [(e.rank, e.score) for e in first] == [(1, 30.0), (2, 20.0)]
    assert [(e.rank, e.score) for e in second] == [(2, 20.0), (4, 10.0)]  # the tie started on page 1


def test_page_past_the_end_is_empty(small):
    assert small.page(3, size=2) == []
    assert small.page(1_000) == []


def test_page_far_past_the_end_is_empty(small):
    assert small.page(10**12) == []


def test_top_and_around_at_their_bounds_return_the_whole_small_board(small):
    assert len(small.top(bounds.MAX_RESULTS)) == 4
    assert len(small.around("dan", radius=(bounds.MAX_RESULTS - 1) // 2)) == 4


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.top(bounds.MAX_RESULTS + 1),
        lambda b: b.top(10**5000),  # a huge int once crashed the process (hiredis' pack_command)
        lambda b: b.page(1, bounds.MAX_RESULTS + 1),
        lambda b: b.page(10**5000),
        lambda b: b.page(10**15, 10),
        lambda b: b.around("dan", radius=bounds.MAX_RESULTS // 2),
        lambda b: b.around("dan", radius=10**5000),
    ],
)
def test_counts_past_their_bounds_are_value_errors_naming_the_bound(small, call):
    with pytest.raises(ValueError, match="must be an integer from"):
        call(small)


def test_around_returns_the_member_and_its_neighbours(small):
    around = small.around("cat", radius=1)
    assert len(around) == 3
    assert "cat" in [e.member for e in around]
    assert [e.rank for e in around] == sorted(e.rank for e in around)


def test_around_is_clipped_at_the_top_and_bottom(small):
    assert [e.member for e in small.around("ann", radius=1)][0] == "ann"
    assert len(small.around("ann", radius=1)) == 2
    assert [e.member for e in small.around("dan", radius=2)][-1] == "dan"
    assert len(small.around("dan", radius=2)) == 3


def test_around_with_radius_zero_is_the_member_alone(small):
    assert small.around("dan", radius=0) == [Entry(4, "dan", 10.0)]


def test_percentile_is_the_share_of_others_strictly_lower(small):
    assert small.percentile("ann") == 100.0
    assert small.percentile("bob") == pytest.approx(100 / 3)
    assert small.percentile("cat") == pytest.approx(100 / 3)
    assert small.percentile("dan") == 0.0


def test_percentile_over_ten_distinct_scores_runs_from_0_to_100(board):
    board.add_many({f"m{i}": i for i in range(10)}, progress=False)
    assert [board.percentile(f"m{i}") for i in range(10)] == pytest.approx([100 * i / 9 for i in range(10)])


def test_percentile_on_a_board_of_one_is_100(board):
    board.add("solo", 5)
    assert board.percentile("solo") == 100.0


@pytest.mark.parametrize("name", ["score", "rank", "unique_rank", "percentile", "around", "meta"])
def test_missing_member_reads_as_none_and_writes_nothing(r, small, name):
    before = contents(r, small)
    call = {
        "score": lambda: small.score("zed"),
        "rank": lambda: small.rank("zed"),
        "unique_rank": lambda: small.rank("zed", ties="unique"),
        "percentile": lambda: small.percentile("zed"),
        "around": lambda: small.around("zed"),
        "meta": lambda: small.meta("zed"),
    }[name]
    assert call() is None
    assert contents(r, small) == before


@pytest.mark.parametrize("name", ["score", "rank", "percentile", "around", "meta"])
def test_reads_of_a_missing_board_are_none_and_create_nothing(r, board, name):
    assert getattr(board, name)("ann") is None
    assert workshop_keys(r) == []


# --- ranks against pandas on tie-heavy data -----------------------------------------------------


def test_competition_rank_of_every_member_matches_pandas_min_rank(loaded, tie_heavy):
    expected = pandas_ranks(tie_heavy)
    actual = {member: loaded.rank(member) for member in tie_heavy}
    assert actual == expected.to_dict()


def test_page_slices_carry_the_pandas_competition_ranks(loaded, tie_heavy):
    expected = pandas_ranks(tie_heavy)
    seen = []
    number = 1
    while page := loaded.page(number, size=37):
        seen += page
        number += 1
    assert len(seen) == len(tie_heavy)
    assert {e.member for e in seen} == set(tie_heavy)
    assert [e.score for e in seen] == sorted(tie_heavy.values(), reverse=True)
    for entry in seen:
        assert entry.rank == expected[entry.member], entry
        assert entry.score == tie_heavy[entry.member]


@pytest.mark.parametrize("n", [1, 10, 137, 2_000, 5_000])
def test_top_slices_carry_the_pandas_competition_ranks(loaded, tie_heavy, n):
    expected = pandas_ranks(tie_heavy)
    top = loaded.top(n)
    assert len(top) == min(n, len(tie_heavy))
    assert [e.rank for e in top] == [expected[e.member] for e in top]


def test_around_slices_carry_the_pandas_competition_ranks(loaded, tie_heavy):
    expected = pandas_ranks(tie_heavy)
    for member in random.Random(1).sample(sorted(tie_heavy), 60):
        around = loaded.around(member, radius=4)
        assert member in [e.member for e in around]
        assert len(around) <= 9
        assert [e.rank for e in around] == [expected[e.member] for e in around]


def test_unique_ranks_are_zrevrank_order_on_tie_heavy_data(r, loaded, tie_heavy):
    ranks = {member: loaded.rank(member, ties="unique") for member in tie_heavy}
    assert sorted(ranks.values()) == list(range(1, len(tie_heavy) + 1))
    for member, rank in ranks.items():
        assert rank == r.zrevrank(loaded.key, member) + 1


def test_percentile_matches_a_count_of_strictly_lower_scores(loaded, tie_heavy):
    values = np.array(list(tie_heavy.values()))
    for member in random.Random(2).sample(sorted(tie_heavy), 100):
        lower = int((values < tie_heavy[member]).sum())
        assert loaded.percentile(member) == pytest.approx(100 * lower / (len(values) - 1))


# --- bad input: an error, and nothing written --------------------------------------------------

BAD_SCORES = [
    ("12", TypeError),
    (b"12", TypeError),
    (None, TypeError),
    (True, TypeError),
    (False, TypeError),
    (1 + 2j, TypeError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    (float("-inf"), ValueError),
    (2**53 + 1, ValueError),
    (-(2**53) - 1, ValueError),
    (10**20, ValueError),
]
BAD_MEMBERS = ["", None, 5, b"ann", ("ann",)]


@pytest.mark.parametrize(("score", "error"), BAD_SCORES, ids=repr)
@pytest.mark.parametrize("write", ["add", "incr", "submit_best"])
def test_bad_score_is_refused_before_anything_is_written(r, board, write, score, error):
    with pytest.raises(error):
        getattr(board, write)("ann", score)
    assert r.exists(board.key, board.meta_key) == 0
    assert workshop_keys(r) == []


@pytest.mark.parametrize("member", BAD_MEMBERS, ids=repr)
@pytest.mark.parametrize("write", ["add", "incr", "submit_best"])
def test_bad_member_is_refused_before_anything_is_written(r, board, write, member):
    with pytest.raises((ValueError, TypeError)):
        getattr(board, write)(member, 1)
    assert workshop_keys(r) == []


@pytest.mark.parametrize("member", BAD_MEMBERS, ids=repr)
@pytest.mark.parametrize("read", ["score", "rank", "percentile", "around", "meta", "remove"])
def test_bad_member_is_refused_by_reads_and_remove(r, small, read, member):
    before = contents(r, small)
    with pytest.raises((ValueError, TypeError)):
        getattr(small, read)(member)
    assert contents(r, small) == before


@pytest.mark.parametrize(
    "meta", [{}, [], "country=FR", {"x": float("nan")}, {"x": object()}, {"x": {1, 2}}], ids=repr
)
def test_bad_metadata_is_refused_before_the_score_is_written(r, board, meta):
    with pytest.raises(ValueError):
        board.add("ann", 1, meta=meta)
    assert workshop_keys(r) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.page(0),
        lambda b: b.page(-1),
        lambda b: b.page(1, size=0),
        lambda b: b.page(1.0),
        lambda b: b.page(True),
        lambda b: b.page("1"),
        lambda b: b.top(0),
        lambda b: b.top(-5),
        lambda b: b.top(2.5),
        lambda b: b.around("ann", radius=-1),
        lambda b: b.around("ann", radius=1.0),
        lambda b: b.rank("ann", ties="dense"),
        lambda b: b.rank("ann", ties=None),
        lambda b: b.set_meta("ann", {}),
        lambda b: b.set_meta("ann", None),
    ],
    ids=[
        "page 0",
        "page -1",
        "size 0",
        "page 1.0",
        "page True",
        "page '1'",
        "n 0",
        "n -5",
        "n 2.5",
        "radius -1",
        "radius 1.0",
        "ties dense",
        "ties None",
        "meta {}",
        "meta None",
    ],
)
def test_bad_arguments_to_reads_are_value_errors_and_change_nothing(r, small, call):
    before = contents(r, small)
    with pytest.raises(ValueError):
        call(small)
    assert contents(r, small) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": None},
        {"name": 7},
        {"name": "a{b"},
        {"name": "a}b"},
        {"name": "{a}"},
        {"name": "ok", "period": ""},
        {"name": "ok", "period": "day:{1}"},
        {"name": "ok", "ttl": 0},
        {"name": "ok", "ttl": -1},
        {"name": "ok", "ttl": 1.5},
        {"name": "ok", "ttl": True},
        {"name": "ok", "ttl": "60"},
    ],
    ids=repr,
)
def test_bad_board_settings_are_value_errors_and_write_nothing(r, kwargs):
    kwargs = dict(kwargs)  # the parameter is shared by the [single] and [cluster] runs
    name = kwargs.pop("name")
    with pytest.raises(ValueError):
        Leaderboard(r, name, **kwargs)
    assert workshop_keys(r) == []


# --- bulk load --------------------------------------------------------------------------------------


def test_add_many_returns_the_count_and_loads_more_than_one_chunk(board):
    scores = {f"m{i}": i * 1.5 for i in range(100)}
    assert board.add_many(scores, chunk=7, progress=False) == 100
    assert len(board) == 100
    assert {e.member: e.score for e in board.top(100)} == scores


@pytest.mark.parametrize("count", [1, 6, 7, 8, 14, 15, 28, 29])
def test_add_many_loads_every_member_around_chunk_boundaries(board, count):
    scores = {f"m{i}": i for i in range(count)}
    assert board.add_many(scores, chunk=7, progress=False) == count
    assert len(board) == count
    assert board.score(f"m{count - 1}") == float(count - 1)


def test_add_many_of_nothing_writes_nothing(r, board):
    assert board.add_many({}, progress=False) == 0
    assert workshop_keys(r) == []


def test_add_many_updates_existing_members(board):
    board.add("ann", 1, meta={"country": "FR"})
    board.add_many({"ann": 5, "bob": 2}, progress=False)
    assert board.score("ann") == 5.0
    assert board.meta("ann") == {"country": "FR"}


def test_add_many_accepts_numpy_numbers_and_the_2_53_boundary(board):
    scores = {"a": np.int64(3), "b": np.float64(2.5), "c": 2**53, "d": -(2**53)}
    board.add_many(scores, progress=False)
    assert {e.member: e.score for e in board.top(4)} == {k: float(v) for k, v in scores.items()}


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"last": "12"}, TypeError),
        ({"last": True}, TypeError),
        ({"last": None}, TypeError),
        ({"last": float("nan")}, ValueError),
        ({"last": float("inf")}, ValueError),
        ({"last": 2**53 + 1}, ValueError),
        ({"": 1}, ValueError),
        ({7: 1}, ValueError),
    ],
    ids=repr,
)
def test_add_many_validates_everything_before_writing(r, board, bad, error):
    scores = {f"m{i}": i for i in range(50)} | bad  # the bad one comes last
    with pytest.raises(error):
        board.add_many(scores, chunk=7, progress=False)
    assert r.exists(board.key) == 0
    assert workshop_keys(r) == []


@pytest.mark.parametrize(
    ("scores", "chunk", "error"),
    [
        ([("a", 1)], 10, TypeError),
        ({"a": 1}, 0, ValueError),
        ({"a": 1}, -1, ValueError),
        ({"a": 1}, 2.0, ValueError),
        ({"a": 1}, True, ValueError),
    ],
)
def test_add_many_refuses_bad_containers_and_chunks(r, board, scores, chunk, error):
    with pytest.raises(error):
        board.add_many(scores, chunk=chunk, progress=False)
    assert workshop_keys(r) == []


# --- best score and concurrency ---------------------------------------------------------------------


def test_submit_best_keeps_the_best_and_says_whether_it_improved(board):
    assert board.submit_best("ann", 10) is True
    assert board.submit_best("ann", 5) is False
    assert board.submit_best("ann", 10) is False
    assert board.score("ann") == 10.0
    assert board.submit_best("ann", 11.5) is True
    assert board.score("ann") == 11.5


def test_submit_best_keeps_the_maximum_under_concurrency(board):
    rng = random.Random(8)
    submissions = [[rng.randint(-1_000, 1_000_000) for _ in range(150)] for _ in range(8)]
    start_together = threading.Barrier(8)

    def submit(scores):
        start_together.wait()
        for score in scores:
            board.submit_best("hot", score)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, submissions))
    assert board.score("hot") == float(max(max(s) for s in submissions))


def test_concurrent_increments_from_threads_are_exact(board):
    start_together = threading.Barrier(8)

    def bump(_):
        start_together.wait()
        for _ in range(250):
            board.incr("hot", 1)
            board.incr("warm", 0.25)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(8)))
    assert board.score("hot") == 2_000.0
    assert board.score("warm") == 500.0


# --- metadata ---------------------------------------------------------------------------------------


def test_add_with_meta_stores_json_metadata(board):
    board.add("ann", 1, meta={"name": "Ann Étoile", "country": "FR", "level": 3, "tags": ["a", "b"]})
    assert board.meta("ann") == {"name": "Ann Étoile", "country": "FR", "level": 3, "tags": ["a", "b"]}


def test_add_without_meta_keeps_existing_metadata(board):
    board.add("ann", 1, meta={"country": "FR"})
    board.add("ann", 2)
    assert board.meta("ann") == {"country": "FR"}


def test_member_without_metadata_has_none(small):
    assert small.meta("ann") is None


def test_set_meta_replaces_metadata_of_a_member_on_the_board(board):
    board.add("ann", 1, meta={"country": "FR"})
    board.set_meta("ann", {"country": "DE"})
    assert board.meta("ann") == {"country": "DE"}


def test_set_meta_on_a_missing_member_is_a_key_error_and_writes_nothing(r, small):
    before = contents(r, small)
    with pytest.raises(KeyError):
        small.set_meta("zed", {"country": "FR"})
    assert contents(r, small) == before
    assert r.exists(small.meta_key) == 0


def test_remove_deletes_the_members_metadata_too(r, board):
    board.add("ann", 1, meta={"country": "FR"})
    board.add("bob", 2, meta={"country": "DE"})
    assert board.remove("ann") is True
    assert board.meta("ann") is None
    assert r.hkeys(board.meta_key) == ["bob"]


# --- expiry -----------------------------------------------------------------------------------------


@pytest.fixture
def ttl_board(r) -> Leaderboard:
    board = Leaderboard(r, "expiring", ttl=600)
    board.add("ann", 1, meta={"country": "FR"})
    r.persist(board.key)
    r.persist(board.meta_key)
    assert r.ttl(board.key) == r.ttl(board.meta_key) == -1
    return board


@pytest.mark.parametrize(
    "write",
    [
        lambda b: b.add("bob", 2),
        lambda b: b.add("bob", 2, meta={"country": "DE"}),
        lambda b: b.incr("ann", 1),
        lambda b: b.submit_best("ann", 5),
        lambda b: b.submit_best("ann", -5),  # not an improvement: still a write to the board
        lambda b: b.set_meta("ann", {"country": "IT"}),
        lambda b: b.add_many({"bob": 2, "cat": 3}, progress=False),
    ],
    ids=["add", "add with meta", "incr", "submit_best", "submit_best lower", "set_meta", "add_many"],
)
def test_every_write_to_a_ttl_board_renews_the_expiry_of_board_and_metadata(r, ttl_board, write):
    write(ttl_board)
    assert 0 < r.ttl(ttl_board.key) <= 600
    assert 0 < r.ttl(ttl_board.meta_key) <= 600


def test_first_add_with_meta_to_a_ttl_board_sets_both_expiries(r):
    board = Leaderboard(r, "fresh", ttl=600)
    board.add("ann", 1, meta={"country": "FR"})
    assert 0 < r.ttl(board.key) <= 600
    assert 0 < r.ttl(board.meta_key) <= 600


def test_board_without_ttl_never_expires(r, board):
    board.add("ann", 1, meta={"country": "FR"})
    board.incr("ann", 1)
    assert r.ttl(board.key) == r.ttl(board.meta_key) == -1


def test_expired_board_leaves_no_metadata_behind(r):
    board = Leaderboard(r, "short", ttl=1)
    board.add("ann", 1, meta={"country": "FR"})
    board.add("bob", 2, meta={"country": "DE"})
    time.sleep(1.5)
    assert r.exists(board.key) == 0
    assert r.exists(board.meta_key) == 0
    assert board.meta("ann") is None
    assert workshop_keys(r) == []


# --- daily and weekly boards --------------------------------------------------------------------------


def test_daily_board_key_holds_the_iso_date_and_the_name_as_hash_tag(r):
    board = Leaderboard.daily(r, "arena", date(2026, 11, 26))
    assert board.key == "workshop:lb:{arena}:day:2026-11-26"
    assert "2026-11-26" in board.key and "{arena}" in board.key
    assert key_slot(board.key.encode()) == key_slot(board.meta_key.encode())


def test_daily_board_expires_keep_days_after_its_last_write(r):
    board = Leaderboard.daily(r, "arena", date(2026, 11, 26))
    board.add("ann", 1, meta={"country": "FR"})
    assert 7 * 86_400 < r.ttl(board.key) <= 8 * 86_400
    assert 7 * 86_400 < r.ttl(board.meta_key) <= 8 * 86_400
    short = Leaderboard.daily(r, "arena", date(2026, 11, 27), keep_days=1)
    short.add("ann", 1)
    assert 0 < r.ttl(short.key) <= 86_400


def test_daily_boards_of_different_days_are_different_boards(r):
    monday = Leaderboard.daily(r, "arena", date(2026, 11, 23))
    tuesday = Leaderboard.daily(r, "arena", date(2026, 11, 24))
    monday.add("ann", 1)
    assert tuesday.score("ann") is None


@pytest.mark.parametrize("day", ["2026-11-26", None, 20261126])
def test_daily_needs_a_date(r, day):
    with pytest.raises(TypeError):
        Leaderboard.daily(r, "arena", day)
    assert workshop_keys(r) == []


def test_daily_board_of_a_datetime_is_the_board_of_its_date(r):
    try:
        board = Leaderboard.daily(r, "arena", datetime(2026, 11, 26, 15, 30))
    except TypeError:
        return  # refusing a datetime is fine too
    assert board.key == Leaderboard.daily(r, "arena", date(2026, 11, 26)).key


WEEK = [date(2026, 11, 23) + timedelta(days=i) for i in range(7)]  # ISO 2026-W48, Monday to Sunday


@pytest.fixture
def week_of_dailies(r) -> dict[date, dict[str, int]]:
    rng = random.Random(48)
    played = {}
    for day in [WEEK[0] - timedelta(days=1), *WEEK, WEEK[-1] + timedelta(days=1)]:
        if day == WEEK[2]:
            continue  # nobody played on Wednesday
        scores = {f"p{i}": rng.randint(0, 50) for i in rng.sample(range(30), 12)}
        Leaderboard.daily(r, "arena", day).add_many(scores, progress=False)
        played[day] = scores
    return played


@pytest.mark.parametrize(("aggregate", "combine"), [("SUM", sum), ("MAX", max), ("sum", sum), ("max", max)])
def test_weekly_rolls_up_the_seven_dailies_of_the_iso_week(r, week_of_dailies, aggregate, combine):
    expected: dict[str, list[int]] = {}
    for day in WEEK:
        for member, score in week_of_dailies.get(day, {}).items():
            expected.setdefault(member, []).append(score)
    weekly = Leaderboard.weekly(r, "arena", date(2026, 11, 26), aggregate=aggregate)
    assert "week:2026-W48" in weekly.key and "{arena}" in weekly.key
    actual = dict(r.zrange(weekly.key, 0, -1, withscores=True))
    assert actual == {member: float(combine(scores)) for member, scores in expected.items()}


def test_weekly_ignores_days_of_other_weeks(r, week_of_dailies):
    sunday_before, monday_after = WEEK[0] - timedelta(days=1), WEEK[-1] + timedelta(days=1)
    Leaderboard.daily(r, "arena", sunday_before).add_many({"outsider": 1_000, "p0": 1_000}, progress=False)
    Leaderboard.daily(r, "arena", monday_after).add_many({"outsider": 1_000, "p0": 1_000}, progress=False)
    in_week = {}
    for day in WEEK:
        for member, score in week_of_dailies.get(day, {}).items():
            in_week[member] = in_week.get(member, 0) + score
    weekly = Leaderboard.weekly(r, "arena", WEEK[6])
    assert weekly.score("outsider") is None
    assert weekly.score("p0") == (float(in_week["p0"]) if "p0" in in_week else None)
    assert dict(r.zrange(weekly.key, 0, -1, withscores=True)) == {m: float(s) for m, s in in_week.items()}


def test_weekly_is_the_same_from_any_day_of_the_week_and_when_rerun(r, week_of_dailies):
    def weekly_scores(day):
        return dict(r.zrange(Leaderboard.weekly(r, "arena", day).key, 0, -1, withscores=True))

    results = [weekly_scores(day) for day in WEEK]
    results.append(weekly_scores(WEEK[3]))
    assert all(result == results[0] for result in results)


def test_weekly_of_a_datetime_rolls_up_the_same_week(r, week_of_dailies):
    by_date = dict(r.zrange(Leaderboard.weekly(r, "arena", date(2026, 11, 26)).key, 0, -1, withscores=True))
    try:
        weekly = Leaderboard.weekly(r, "arena", datetime(2026, 11, 26, 15, 30))
    except TypeError:
        return  # refusing a datetime is fine too
    assert dict(r.zrange(weekly.key, 0, -1, withscores=True)) == by_date


def test_weekly_merges_metadata_later_days_winning(r):
    Leaderboard.daily(r, "arena", WEEK[0]).add("ann", 1, meta={"team": "red"})
    Leaderboard.daily(r, "arena", WEEK[1]).add("bob", 2, meta={"team": "green"})
    Leaderboard.daily(r, "arena", WEEK[4]).add("ann", 3, meta={"team": "blue"})
    Leaderboard.daily(r, "arena", WEEK[5]).add("ann", 4)
    Leaderboard.daily(r, "arena", WEEK[6] + timedelta(days=1)).add("ann", 9, meta={"team": "next week"})
    weekly = Leaderboard.weekly(r, "arena", WEEK[0])
    assert weekly.meta("ann") == {"team": "blue"}
    assert weekly.meta("bob") == {"team": "green"}
    assert weekly.score("ann") == 8.0


def test_weekly_board_expires_and_so_does_its_metadata(r):
    Leaderboard.daily(r, "arena", WEEK[0]).add("ann", 1, meta={"team": "red"})
    weekly = Leaderboard.weekly(r, "arena", WEEK[0], keep_days=35)
    assert 34 * 86_400 < r.ttl(weekly.key) <= 35 * 86_400
    assert 34 * 86_400 < r.ttl(weekly.meta_key) <= 35 * 86_400


def test_weekly_across_a_year_boundary_uses_the_iso_week(r):
    Leaderboard.daily(r, "arena", date(2026, 12, 28)).add("ann", 1)  # Monday of 2026-W53
    Leaderboard.daily(r, "arena", date(2027, 1, 3)).add("ann", 2)  # its Sunday
    Leaderboard.daily(r, "arena", date(2027, 1, 4)).add("ann", 100)  # 2027-W01
    weekly = Leaderboard.weekly(r, "arena", date(2027, 1, 1))
    assert "week:2026-W53" in weekly.key
    assert weekly.score("ann") == 3.0


def test_weekly_of_a_week_nobody_played_is_empty(r):
    weekly = Leaderboard.weekly(r, "arena", WEEK[0])
    assert len(weekly) == 0
    assert weekly.top() == []


@pytest.mark.parametrize("aggregate", ["AVG", "", "sum ", None, 1], ids=repr)
def test_weekly_with_an_unknown_aggregate_is_a_value_error_and_writes_nothing(r, aggregate):
    Leaderboard.daily(r, "arena", WEEK[0]).add("ann", 1)
    before = workshop_keys(r)
    with pytest.raises(ValueError):
        Leaderboard.weekly(r, "arena", WEEK[0], aggregate=aggregate)
    assert workshop_keys(r) == before


def test_weekly_needs_a_date(r):
    with pytest.raises(TypeError):
        Leaderboard.weekly(r, "arena", "2026-11-26")


def test_rollup_refuses_empty_or_foreign_sources(r, board):
    with pytest.raises(ValueError):
        board.rollup([])
    with pytest.raises(ValueError):
        board.rollup(["workshop:lb:{x}"])
    assert workshop_keys(r) == []


def test_rollup_min_keeps_each_members_lowest_score(r):
    a, b = Leaderboard(r, "rx", period="a"), Leaderboard(r, "rx", period="b")
    a.add_many({"ann": 5, "bob": 1}, progress=False)
    b.add_many({"ann": 2, "cat": 7}, progress=False)
    total = Leaderboard(r, "rx", period="min")
    assert total.rollup([a, b], aggregate="MIN") == 3
    assert dict(r.zrange(total.key, 0, -1, withscores=True)) == {"ann": 2.0, "bob": 1.0, "cat": 7.0}


def test_max_exact_int_is_2_to_the_53():
    assert MAX_EXACT_INT == 2**53
    assert float(MAX_EXACT_INT + 1) == float(MAX_EXACT_INT)  # why the limit exists
    assert math.isfinite(float(MAX_EXACT_INT))


# --- boards on a Redis Cluster: one board, one slot ---------------------------------------------------


def test_rollup_of_boards_of_other_names_works_on_one_server_and_is_refused_on_a_cluster(r, redis_kind):
    eu, us = Leaderboard(r, "eu"), Leaderboard(r, "us")
    eu.add("ann", 5, meta={"country": "FR"})
    us.add("bob", 7)
    world = Leaderboard(r, "world")
    if redis_kind == "single":
        assert world.rollup([eu, us]) == 2
        assert world.top() == [Entry(1, "bob", 7.0), Entry(2, "ann", 5.0)]
        return
    before = workshop_keys(r)
    with pytest.raises(ValueError, match=r"hash tag \{world\}"):
        world.rollup([eu, us])
    assert workshop_keys(r) == before


def test_regional_boards_of_one_name_roll_up_into_a_global_board_on_either(r):
    regions = {region: Leaderboard(r, "world", period=region) for region in ("eu", "us", "asia")}
    regions["eu"].add_many({"ann": 5, "bob": 3}, progress=False)
    regions["us"].add_many({"cat": 9, "bob": 4}, progress=False)
    regions["asia"].add("dan", 1, meta={"country": "JP"})
    world = Leaderboard(r, "world", period="all")
    assert world.rollup(regions.values()) == 4
    assert [(e.member, e.score) for e in world.top()] == [("cat", 9), ("bob", 7), ("ann", 5), ("dan", 1)]
    assert world.meta("dan") == {"country": "JP"}
    assert len({key_slot(board.key.encode()) for board in (*regions.values(), world)}) == 1
