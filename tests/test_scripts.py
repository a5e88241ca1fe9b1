"""The Lua scripts in lua/: documented headers, strict argument checks, and NOSCRIPT recovery."""

from __future__ import annotations

import re

import pytest
import redis

from helpers import bounds, scripts
from helpers.production import security

SCRIPTS = scripts.names()
BOARD = "workshop:lb:{scripts}"


@pytest.fixture
def board(r):
    r.zadd(BOARD, {"ann": 30, "bob": 20, "cat": 20, "dan": 10})
    return BOARD


def snapshot(r) -> tuple:
    return r.dbsize(), sorted(r.scan_iter(match="workshop:*")), r.zrange(BOARD, 0, -1, withscores=True)


def test_there_are_scripts_to_check():
    assert {"leaderboard_around", "leaderboard_range", "leaderboard_rank", "leaderboard_standing"} <= set(
        SCRIPTS
    )


WRITES = {"zadd", "zremrangebyscore", "incrby", "pexpire", "hset", "set", "sadd", "hincrby", "zrem", "del"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_declares_its_flags_then_a_header_naming_keys_argv_returns_complexity_flags(name):
    text = scripts.source(name)
    shebang, rest = text.split("\n", 1)
    assert shebang in ("#!lua", "#!lua flags=no-writes"), f"{name}.lua must start with #!lua (its flags)"
    assert rest.startswith("--[[")
    header = rest[: rest.index("]]")]
    assert header.splitlines()[1].startswith(f"{name}.lua")
    for word in ("KEYS[1]", "ARGV[1]", "Returns", "Complexity", "Flags"):
        assert word in header, f"{name}.lua's header does not mention {word}"
    writes = set(security.commands_in_scripts([name])) & WRITES
    assert (shebang == "#!lua flags=no-writes") == (not writes), (name, writes)


TIMES = {"MAX_PERIOD_S": bounds.MAX_PERIOD_S, "MAX_NOW_MS": bounds.MAX_NOW_MS}
BOUNDS_IN_SCRIPTS = {  # the constants a script states, and the bound of helpers/bounds.py each must equal
    "leaderboard_range": {"MAX_POSITION": bounds.MAX_POSITION, "MAX_RESULTS": bounds.MAX_RESULTS},
    "leaderboard_around": {"MAX_RADIUS": (bounds.MAX_RESULTS - 1) // 2},
    "project_order_event": {"MAX_CENTS": bounds.MAX_CENTS},
    "sliding_window": {"MAX_LIMIT": bounds.MAX_LOG_LIMIT, **TIMES},
    **{name: {"MAX_LIMIT": bounds.MAX_LIMIT, **TIMES}
       for name in ("fixed_window", "sliding_window_counter", "gcra")},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BOUNDS_IN_SCRIPTS))
def test_the_bounds_a_script_states_are_those_of_helpers_bounds(name):
    text = scripts.source(name)
    stated = {}
    for names, values in re.findall(r"^local ((?:MAX_\w+(?:, )?)+) = ([\d, ]+)", text, re.MULTILINE):
        stated.update(zip(names.split(", "), (int(v) for v in values.split(", "))))
    assert stated == BOUNDS_IN_SCRIPTS[name]


def test_a_functions_library_body_has_no_shebang():
    assert not scripts.body("sliding_window").startswith("#!")
    assert scripts.body("sliding_window") == scripts.source("sliding_window").split("\n", 1)[1]


def test_source_is_the_file_text_with_its_includes_expanded():
    text = (scripts.LUA_DIR / "leaderboard_standing.lua").read_text()
    assert scripts.source("leaderboard_standing") == text  # no include: the file as it is
    expanded = scripts.source("leaderboard_range")
    assert "--!include" not in expanded
    assert (scripts.INCLUDE_DIR / "integer.lua").read_text().rstrip("\n") in expanded


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_include_is_expanded_in_every_script(name):
    assert "--!include" not in scripts.source(name)


def test_an_include_that_is_missing_or_loops_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(scripts, "LUA_DIR", tmp_path)
    monkeypatch.setattr(scripts, "INCLUDE_DIR", tmp_path / "include")
    (tmp_path / "include").mkdir()
    (tmp_path / "missing.lua").write_text("--!include nowhere.lua\n")
    (tmp_path / "include" / "a.lua").write_text("--!include b.lua\n")
    (tmp_path / "include" / "b.lua").write_text("--!include a.lua\n")
    (tmp_path / "loop.lua").write_text("--!include a.lua\n")
    scripts.source.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="nowhere.lua"):
            scripts.source("missing")
        with pytest.raises(ValueError, match="include loop"):
            scripts.source("loop")
    finally:
        scripts.source.cache_clear()


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


def test_rank_returns_score_and_higher_and_nothing_else(r, board):
    assert r.eval(scripts.source("leaderboard_rank"), 1, board, "bob") == ["20", 1]
    assert r.eval(scripts.source("leaderboard_rank"), 1, board, "ann") == ["30", 0]
    assert r.eval(scripts.source("leaderboard_rank"), 1, board, "dan") == ["10", 3]
    assert r.eval(scripts.source("leaderboard_rank"), 1, board, "zed") is None


def test_rank_and_standing_agree_on_higher(r, board):
    for member in ("ann", "bob", "dan"):
        rank = r.eval(scripts.source("leaderboard_rank"), 1, board, member)
        assert rank == r.eval(scripts.source("leaderboard_standing"), 1, board, member)[:2]


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
        ("leaderboard_rank", [], ["ann"]),
        ("leaderboard_rank", [BOARD, BOARD + ":meta"], ["ann"]),
        ("leaderboard_rank", [BOARD], [""]),
        ("leaderboard_rank", [BOARD], []),
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


def test_range_past_the_end_of_a_small_board_within_the_bound_returns_the_rest(r, board):
    expected = [1, ["bob", "20", "dan", "10"]]
    assert r.eval(scripts.source("leaderboard_range"), 1, board, 2, 2 + 9_999) == expected


@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, 10_000), (0, 10**17), (10**15 + 1, 10**15 + 2), ("-0", 1), ("1e3", 2_000), (" 1", 2), ("0x10", 20)],
)
def test_range_beyond_ten_thousand_positions_or_not_a_plain_integer_is_an_error(r, board, start, stop):
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match="leaderboard_range: ARGV"):
        r.eval(scripts.source("leaderboard_range"), 1, board, start, stop)
    assert snapshot(r) == before


@pytest.mark.parametrize("radius", [5_000, 10**17, "-0", "1.5", ""])
def test_around_with_a_radius_past_its_bound_is_an_error(r, board, radius):
    with pytest.raises(redis.ResponseError, match="leaderboard_around: ARGV\\[2\\]"):
        r.eval(scripts.source("leaderboard_around"), 1, board, "dan", radius)


def test_around_with_the_largest_radius_returns_the_whole_small_board(r, board):
    everyone = ["ann", "30", "cat", "20", "bob", "20", "dan", "10"]
    assert r.eval(scripts.source("leaderboard_around"), 1, board, "dan", 4_999) == [0, 0, everyone]


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
