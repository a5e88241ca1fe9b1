"""The Lua scripts in lua/: documented headers, strict argument checks, and NOSCRIPT recovery."""

from __future__ import annotations

import re

import pytest
import redis

from helpers import scripts

SCRIPTS = sorted(p.stem for p in scripts.LUA_DIR.glob("*.lua"))
BOARD = "workshop:lb:{scripts}"


@pytest.fixture
def board(r):
    r.zadd(BOARD, {"ann": 30, "bob": 20, "cat": 20, "dan": 10})
    return BOARD


def snapshot(r) -> tuple:
    return r.dbsize(), sorted(r.scan_iter(match="workshop:*")), r.zrange(BOARD, 0, -1, withscores=True)


def test_there_are_scripts_to_check():
    assert {"leaderboard_around", "leaderboard_range", "leaderboard_standing"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_starts_with_a_header_naming_keys_argv_returns_and_complexity(name):
    text = scripts.source(name)
    assert text.startswith("--[[")
    header = text[: text.index("]]")]
    assert header.splitlines()[1].startswith(f"{name}.lua")
    for word in ("KEYS[1]", "ARGV[1]", "Returns", "Complexity"):
        assert word in header, f"{name}.lua's header does not mention {word}"


def test_source_is_the_file_text():
    assert scripts.source("leaderboard_range") == (scripts.LUA_DIR / "leaderboard_range.lua").read_text()


def test_load_of_an_unknown_script_lists_the_known_ones(r):
    with pytest.raises(FileNotFoundError) as raised:
        scripts.load(r, "no_such_script")
    message = str(raised.value)
    assert "no_such_script" in message
    for name in SCRIPTS:
        assert name in message


def test_standing_returns_score_higher_lower_and_total(r, board):
    assert r.eval(scripts.source("leaderboard_standing"), 1, board, "bob") == ["20", 1, 1, 4]
    assert r.eval(scripts.source("leaderboard_standing"), 1, board, "ann") == ["30", 0, 3, 4]
    assert r.eval(scripts.source("leaderboard_standing"), 1, board, "dan") == ["10", 3, 0, 4]


def test_standing_of_a_missing_member_or_board_is_nil(r, board):
    assert r.eval(scripts.source("leaderboard_standing"), 1, board, "zed") is None
    assert r.eval(scripts.source("leaderboard_standing"), 1, "workshop:lb:{none}", "ann") is None


def test_standing_compares_scores_exactly(r):
    r.zadd(BOARD, {"a": 0.1 + 0.2, "b": 0.3, "c": 2**53 - 1, "d": 2**53 - 2})
    source = scripts.source("leaderboard_standing")
    assert r.eval(source, 1, BOARD, "b")[1:] == [3, 0, 4]  # 0.1 + 0.2 == 0.30000000000000004 > 0.3
    assert r.eval(source, 1, BOARD, "d")[1:] == [1, 2, 4]


def test_range_returns_higher_count_and_flat_members_with_scores(r, board):
    source = scripts.source("leaderboard_range")
    assert r.eval(source, 1, board, 0, 1) == [0, ["ann", "30", "cat", "20"]]
    assert r.eval(source, 1, board, 2, 3) == [1, ["bob", "20", "dan", "10"]]
    assert r.eval(source, 1, board, 3, 3) == [3, ["dan", "10"]]


def test_range_past_the_end_is_zero_and_empty(r, board):
    assert r.eval(scripts.source("leaderboard_range"), 1, board, 4, 10) == [0, []]
    assert r.eval(scripts.source("leaderboard_range"), 1, "workshop:lb:{none}", 0, 10) == [0, []]


def test_around_returns_start_higher_count_and_the_neighbours(r, board):
    source = scripts.source("leaderboard_around")
    assert r.eval(source, 1, board, "bob", 1) == [1, 1, ["cat", "20", "bob", "20", "dan", "10"]]
    assert r.eval(source, 1, board, "ann", 1) == [0, 0, ["ann", "30", "cat", "20"]]
    assert r.eval(source, 1, board, "dan", 0) == [3, 3, ["dan", "10"]]
    assert r.eval(source, 1, board, "cat", 10) == [0, 0, ["ann", "30", "cat", "20", "bob", "20", "dan", "10"]]


def test_around_of_a_missing_member_or_board_is_nil(r, board):
    assert r.eval(scripts.source("leaderboard_around"), 1, board, "zed", 2) is None
    assert r.eval(scripts.source("leaderboard_around"), 1, "workshop:lb:{none}", "ann", 2) is None


@pytest.mark.parametrize(
    ("name", "keys", "args"),
    [
        ("leaderboard_standing", [], ["ann"]),
        ("leaderboard_standing", [BOARD, BOARD + ":meta"], ["ann"]),
        ("leaderboard_standing", [BOARD], [""]),
        ("leaderboard_standing", [BOARD], []),
        ("leaderboard_around", [], ["ann", 1]),
        ("leaderboard_around", [BOARD, BOARD + ":meta"], ["ann", 1]),
        ("leaderboard_around", [BOARD], ["", 1]),
        ("leaderboard_around", [BOARD], []),
        ("leaderboard_around", [BOARD], ["ann"]),
        ("leaderboard_around", [BOARD], ["ann", -1]),
        ("leaderboard_around", [BOARD], ["ann", 0.5]),
        ("leaderboard_around", [BOARD], ["ann", "x"]),
        ("leaderboard_around", [BOARD], ["ann", "nan"]),
        ("leaderboard_around", [BOARD], ["ann", "inf"]),
        ("leaderboard_range", [], [0, 1]),
        ("leaderboard_range", [BOARD, BOARD + ":meta"], [0, 1]),
        ("leaderboard_range", [BOARD], []),
        ("leaderboard_range", [BOARD], [0]),
        ("leaderboard_range", [BOARD], ["x", 1]),
        ("leaderboard_range", [BOARD], [-1, 1]),
        ("leaderboard_range", [BOARD], [0.5, 1]),
        ("leaderboard_range", [BOARD], ["nan", 1]),
        ("leaderboard_range", [BOARD], ["inf", "inf"]),
        ("leaderboard_range", [BOARD], [0, "x"]),
        ("leaderboard_range", [BOARD], [0, 1.5]),
        ("leaderboard_range", [BOARD], [3, 2]),
        ("leaderboard_range", [BOARD], [0, -1]),
    ],
    ids=lambda value: repr(value),
)
def test_bad_arguments_are_an_error_naming_the_script_and_write_nothing(r, board, name, keys, args):
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match=re.escape(name)):
        r.eval(scripts.source(name), len(keys), *keys, *args)
    assert snapshot(r) == before


def test_range_with_a_huge_integer_stop_returns_the_rest_of_the_board(r, board):
    # 10**17 is a valid ZREVRANGE stop; Lua holds it as a double and prints it as "1e+17"
    assert r.eval(scripts.source("leaderboard_range"), 1, board, 2, 10**17) == [1, ["bob", "20", "dan", "10"]]


def test_around_with_a_huge_integer_radius_returns_the_whole_board(r, board):
    source = scripts.source("leaderboard_around")
    everyone = ["ann", "30", "cat", "20", "bob", "20", "dan", "10"]
    assert r.eval(source, 1, board, "dan", 10**17) == [0, 0, everyone]


def test_load_binds_a_callable_script(r, board):
    standing = scripts.load(r, "leaderboard_standing")
    assert standing(keys=[board], args=["cat"]) == ["20", 1, 1, 4]


def test_script_keeps_working_after_script_flush(r, board):
    standing = scripts.load(r, "leaderboard_standing")
    assert standing(keys=[board], args=["ann"])[1] == 0
    assert r.script_exists(standing.sha) == [True]
    r.script_flush()
    assert r.script_exists(standing.sha) == [False]
    assert standing(keys=[board], args=["ann"])[1] == 0  # NOSCRIPT -> loaded again
    assert r.script_exists(standing.sha) == [True]
