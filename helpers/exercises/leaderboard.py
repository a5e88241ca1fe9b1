"""Checks for notebook 01's "Your turn" exercises (sorted-set leaderboards).

In the notebook: ``from helpers.exercises import leaderboard as check``, then

1. ``check.record_lap(r, record_lap)``: keep each driver's best (lowest) lap, atomically;
2. ``check.weekly_board(r, weekly_board)``: the week's board from seven daily ones;
3. ``check.where_would_i_be(r, where_would_i_be)``: the rank and neighbours of a score
   that is not on the board, without writing to it.

Each returns a ``helpers.exercises.checker.Verdict``; solutions are in ``notebooks/solutions/01_*.py``.
"""

from __future__ import annotations

import random

import redis

from helpers.exercises.checker import NotDone, Recorder, Wrong, attempt, evaluate, number

__all__ = ["record_lap", "weekly_board", "where_would_i_be"]

ZSET_READS = {
    "ZSCORE", "ZMSCORE", "ZRANK", "ZREVRANK", "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE", "ZCOUNT", "ZSCAN", "ZRANDMEMBER",
}  # fmt: skip
BOARD_READS = ZSET_READS | {"ZCARD", "ZLEXCOUNT", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "EXISTS", "TYPE", "TTL"}


# --- 1. the best lap ---------------------------------------------------------------
LAPS = [  # (driver, lap in seconds, is it a new personal best?)
    ("ana", 61.25, True),
    ("bob", 63.5, True),
    ("ana", 62.0, False),
    ("ana", 60.75, True),
    ("bob", 63.5, False),
    ("cy", 59.0, True),
    ("bob", 62.25, True),
]


def record_lap(r: redis.Redis, fn: object) -> object:
    """``record_lap(r, key, driver, lap_s) -> bool``: keep the lowest lap; True if it is a new best."""
    return evaluate(r, fn, name="record_lap", scratch="record-lap", body=_record_lap)


def _record_lap(r: redis.Redis, fn, prefix: str) -> str:
    board = prefix + "track:monza"
    best: dict[str, float] = {}
    for driver, lap, improves in LAPS:
        shown = f"record_lap(r, key, {driver!r}, {number(lap)})"
        answer = attempt(fn, r, board, driver, lap, shown=shown)
        if answer is None and not best:
            raise NotDone
        before = best.get(driver)
        best[driver] = lap if before is None else min(before, lap)
        stored = r.zscore(board, driver)
        if stored is None:
            raise Wrong(f"after {shown}, {driver} is not on the board at key: ZADD the lap there.")
        if stored != best[driver]:
            if before is not None and stored == lap > before:
                raise Wrong(
                    f"after laps of {number(before)} and {number(lap)}, the board says {number(stored)} for "
                    f"{driver}: the slower lap replaced the best one. Lower is better here: ZADD ... LT only "
                    "ever lowers a score (GT would keep the highest)."
                )
            raise Wrong(
                f"after {shown}, the board says {number(stored)} for {driver}; "
                f"their best lap is {number(best[driver])}."
            )
        if isinstance(answer, int):  # bool is an int too
            if bool(answer) != improves:
                raise Wrong(_lap_answer_hint(driver, lap, before, answer, improves))
        else:
            raise Wrong(f"{shown} returned {answer!r}: return True (a new personal best) or False.")
    extra = set(r.zrange(board, 0, -1)) - set(best)
    if extra:
        raise Wrong(f"the board holds {sorted(extra)}, who never drove: write only the driver's lap.")
    return _record_lap_race(r, fn, prefix)


def _lap_answer_hint(driver: str, lap: float, before: float | None, answer: object, improves: bool) -> str:
    said = f"{driver}'s lap of {number(lap)}"
    if before is None:
        return f"returned {answer!r} for {said}, their first: a first lap is a personal best (True)."
    if improves:
        return (
            f"returned {answer!r} when {driver} improved from {number(before)} to {number(lap)}. ZADD "
            "answers how many members it *added* (0 for a driver already there) unless you pass CH (changed)."
        )
    return f"returned {answer!r} for {said}, not better than their {number(before)}: expected False."


def _record_lap_race(r: redis.Redis, fn, prefix: str) -> str:
    """Another game server records a better lap right after the learner's first read of the board."""
    board = prefix + "track:spa"
    r.zadd(board, {"dee": 60.0})
    interrupted: list[str] = []

    def another_server(how: str, args: tuple) -> None:
        if not interrupted and str(args[0]).upper() in ZSET_READS and len(args) > 1 and args[1] == board:
            interrupted.append(str(args[0]).upper())
            r.zadd(board, {"dee": 55.0}, lt=True)

    attempt(fn, Recorder(r, after=another_server), board, "dee", 58.0, shown="record_lap(r, key, 'dee', 58)")
    final = r.zscore(board, "dee")
    if interrupted and final != 55.0:
        raise Wrong(
            f"dee had 60. Between your {interrupted[0]} and your write, another game server recorded 55 for "
            f"dee; after your call of record_lap(r, key, 'dee', 58) the board says {number(final)}: that lap "
            "was lost. Let Redis compare and write in one step: ZADD ... LT (no read first)."
        )
    if not interrupted and final != 58.0:
        raise Wrong(f"dee had 60; after record_lap(r, key, 'dee', 58) the board says {number(final)}.")
    how = (
        "another game server's lap recorded in the middle of your call survived"
        if interrupted
        else "it reads nothing before writing, so no other game server's lap can slip in between"
    )
    return f"record_lap keeps each driver's lowest lap and says when it improved; {how}."


# --- 2. the weekly board ----------------------------------------------------------
def weekly_board(r: redis.Redis, fn: object) -> object:
    """``weekly_board(r, daily_keys, dest) -> int``: dest = each player's total over the days."""
    return evaluate(r, fn, name="weekly_board", scratch="weekly-board", body=_weekly_board)


def _daily_scores(seed: int = 11) -> list[dict[str, int] | None]:
    """Seven days of scores for players p:1..p:12; days 3 and 6 have no board at all."""
    rng = random.Random(seed)
    days: list[dict[str, int] | None] = []
    for day in range(1, 8):
        if day in (3, 6):
            days.append(None)
            continue
        players = rng.sample([f"p:{i}" for i in range(1, 13)], 7)
        days.append({p: rng.randrange(5, 55, 5) for p in players})
    return days


def _weekly_board(r: redis.Redis, fn, prefix: str) -> str:
    days = _daily_scores()
    daily_keys = [prefix + f"day:{n}" for n in range(1, 8)]
    for key, scores in zip(daily_keys, days):
        if scores:
            r.zadd(key, scores)
    dest = prefix + "week"
    stale = {"p:3": 100, "ghost": 70}  # last week's board, still at dest
    r.zadd(dest, stale)
    before = {key: r.zrange(key, 0, -1, withscores=True) for key in daily_keys}

    answer = attempt(fn, r, list(daily_keys), dest, shown="weekly_board(r, daily_keys, dest)")
    if answer is None:
        raise NotDone
    for n, key in enumerate(daily_keys, start=1):
        if r.zrange(key, 0, -1, withscores=True) != before[key]:
            raise Wrong(
                f"the board of day {n} changed: the daily boards are the source; write into dest only."
            )
    if r.type(dest) != "zset":
        raise Wrong("there is no sorted set at dest: write the weekly board into the key dest.")
    got = dict(r.zrange(dest, 0, -1, withscores=True))
    if "ghost" in got:
        raise Wrong(
            "dest still holds 'ghost' (70), left there from last week: the weekly board must replace what "
            "dest held. ZUNIONSTORE replaces its destination; a loop of ZINCRBY adds to it (DEL dest first)."
        )
    by_player: dict[str, list[tuple[int, int]]] = {}
    for n, scores in enumerate(days, start=1):
        for player, score in (scores or {}).items():
            by_player.setdefault(player, []).append((n, score))
    for player in sorted(by_player, key=lambda p: int(p.split(":")[1])):
        daily = by_player[player]
        total = sum(score for _, score in daily)
        if player not in got:
            raise Wrong(f"{player} (on the boards of days {_days(daily)}) is missing from the weekly board.")
        if got[player] != total:
            raise Wrong(_weekly_hint(player, got[player], daily, stale.get(player)))
    extra = sorted(set(got) - set(by_player))
    if extra:
        raise Wrong(f"the weekly board holds {extra}, who scored on no day.")
    if isinstance(answer, bool) or not isinstance(answer, int) or answer != len(got):
        raise Wrong(
            f"weekly_board returned {answer!r}, but the weekly board has {len(got)} players: return how "
            "many players it holds (ZUNIONSTORE answers exactly that)."
        )
    return (
        f"weekly_board adds up {len(got)} players' scores over 7 days (the 2 days with no board count as "
        "empty) and replaces what dest held."
    )


def _days(daily: list[tuple[int, int]]) -> str:
    return ", ".join(str(n) for n, _ in daily)


def _weekly_hint(player: str, got: float, daily: list[tuple[int, int]], stale: int | None) -> str:
    scores = [score for _, score in daily]
    total = sum(scores)
    said = (
        f"{player} has {number(got)} on the weekly board; its daily scores (days {_days(daily)}) are "
        f"{' + '.join(map(str, scores))} = {total}"
    )
    if stale is not None and got == total + stale:
        return (
            f"{said}, plus the {stale} dest held before: start from an empty dest (DEL it first, or "
            "ZUNIONSTORE, which replaces it)."
        )
    if len(scores) > 1 and got == max(scores):
        return f"{said}: did you use AGGREGATE MAX (the best day) instead of SUM?"
    if len(scores) > 1 and got == min(scores):
        return f"{said}: did you use AGGREGATE MIN instead of SUM?"
    if len(scores) > 1 and got == scores[-1]:
        return (
            f"{said}: it holds the last day's score only; a ZADD per day overwrites the score, "
            "ZINCRBY (or ZUNIONSTORE) adds to it."
        )
    return said + "."


# --- 3. where would a score place? ------------------------------------------------
def where_would_i_be(r: redis.Redis, fn: object) -> object:
    """``where_would_i_be(r, key, score, radius) -> (rank, above, below)`` for a score not on the board."""
    return evaluate(r, fn, name="where_would_i_be", scratch="where-would-i-be", body=_where_would_i_be)


def _board(seed: int = 5) -> dict[str, int]:
    """40 players whose scores come from 12 values: ties everywhere."""
    rng = random.Random(seed)
    return {f"pl:{i:02d}": rng.randrange(300, 1500, 100) for i in range(1, 41)}


def _ordered(entries: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Best first, as the board shows it: score descending, ties in reverse name order (ZREVRANGE's)."""
    return sorted(entries, key=lambda e: (e[1], e[0]), reverse=True)


def _where_would_i_be(r: redis.Redis, fn, prefix: str) -> str:
    scores = _board()
    board = prefix + "board"
    r.zadd(board, scores)
    snapshot = r.zrange(board, 0, -1, withscores=True)
    # a score 4 players have, one nobody has, above the top (1400), below the bottom (300); each
    # radius reaches past a run of equal scores, so the order of the neighbours shows
    queries = [(600, 3), (850, 4), (1401, 2), (299, 2)]
    for position, (score, radius) in enumerate(queries):
        shown = f"where_would_i_be(r, key, {score}, {radius})"
        recorder = Recorder(r)
        answer = attempt(fn, recorder, board, score, radius, shown=shown)
        if answer is None and position == 0:
            raise NotDone
        written = [c for _, _, c, k in recorder.sent if k == board and c not in BOARD_READS]
        if written or r.zrange(board, 0, -1, withscores=True) != snapshot:
            raise Wrong(
                f"{shown} wrote to the board. Finding where a score would place is a read: "
                "count the players above it (ZCOUNT) instead of adding it to the board and asking its rank."
            )
        rank, above, below = _unpack(answer, shown)
        higher = [(m, float(s)) for m, s in scores.items() if s > score]
        same_or_lower = [(m, float(s)) for m, s in scores.items() if s <= score]
        expected_rank = 1 + len(higher)
        if rank != expected_rank:
            raise Wrong(_rank_hint(shown, rank, expected_rank, score, scores))
        at_least = [(m, float(s)) for m, s in scores.items() if s >= score]
        lower = [(m, float(s)) for m, s in scores.items() if s < score]
        tie_above = (
            _ordered(at_least)[-radius:] if at_least else [],
            f"Players on exactly {score} tie with it: they belong below, not above (an exclusive bound, "
            "'(score', leaves them out).",
        )
        top = (
            _ordered(higher)[:radius],
            "Those are the top of the board: above means the players just above.",
        )
        tie_below = (
            _ordered(lower)[:radius],
            f"Players on exactly {score} tie with it and come first below (an inclusive bound).",
        )
        _compare_neighbours(
            shown, "above", above, _ordered(higher)[-radius:] if higher else [], [tie_above, top]
        )
        _compare_neighbours(shown, "below", below, _ordered(same_or_lower)[:radius], [tie_below])
    return (
        "where_would_i_be places 4 scores (a tie, a gap, above the top, below the bottom) as the board "
        "would rank them, with their neighbours, and never writes to the board."
    )


def _unpack(answer: object, shown: str) -> tuple[object, list, list]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        raise Wrong(f"{shown} returned {answer!r}: return a tuple (rank, above, below).")
    rank, above, below = answer
    for what, entries in (("above", above), ("below", below)):
        if not isinstance(entries, (list, tuple)) or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 for e in entries
        ):
            raise Wrong(
                f"{shown}: {what} should be a list of (member, score) pairs "
                f"(withscores=True gives them), got {entries!r}."
            )
    return rank, list(above), list(below)


def _rank_hint(shown: str, rank: object, expected: int, score: float, scores: dict[str, int]) -> str:
    higher = expected - 1
    said = (
        f"{shown} gave rank {rank!r}; {higher} players score strictly more than {score}: it ranks {expected}"
    )
    same = sum(1 for s in scores.values() if s == score)
    if rank == expected - 1:
        return said + ": ranks start at 1 (1 + the number of players above)."
    if same and rank == expected + same:
        return (
            said + f": you counted the {same} players on exactly {score} as above it. Equal scores share a "
            "rank: count with an exclusive bound, ZCOUNT key (score +inf."
        )
    return said + "."


def _compare_neighbours(shown: str, what: str, got: list, expected: list, mistakes: list[tuple]) -> None:
    """Right players, best first (equal scores in any order); else say which mistake it looks like."""
    pairs = [(str(m), float(s)) for m, s in got]
    if _same(pairs, expected):
        return
    said = f"{shown}: {what} is {_show(pairs)}, expected {_show(expected)}."
    for mistaken, hint in mistakes:
        if mistaken != expected and _same(pairs, mistaken):
            raise Wrong(f"{said} {hint}")
    if sorted(pairs) == sorted(expected):
        raise Wrong(
            f"{said} List them best first, as the board shows them (ZRANGEBYSCORE answers lowest "
            "first: reverse it)."
        )
    raise Wrong(said)


def _same(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> bool:
    return sorted(got) == sorted(expected) and [s for _, s in got] == [s for _, s in expected]


def _show(entries: list[tuple[str, float]]) -> str:
    return "[" + ", ".join(f"{m} {number(s)}" for m, s in entries) + "]"
