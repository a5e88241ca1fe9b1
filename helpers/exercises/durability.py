"""Checks for notebook 04's "Your turn" exercise (durability and memory).

In the notebook: ``from helpers.exercises import durability as check``, then
``check.players_that_fit(r, players_that_fit)``: how many players a memory budget holds,
projected from a measured sample board (built at a scratch key, removed after). It returns a
``helpers.exercises.checker.Verdict``; the solution is ``notebooks/solutions/04_players_that_fit.py``.
"""

from __future__ import annotations

import numbers

import redis

from helpers.bench.leaderboard import load_padded_board
from helpers.exercises.checker import NotDone, Recorder, Verdict, Wrong, attempt, evaluate

__all__ = ["players_that_fit"]


# --- a memory budget ------------------------------------------------------------------------
# (maxmemory in bytes, name length); names short enough for a listpack first, to catch a small sample
BUDGETS = ((1024**3, 16), (8 * 1024**3, 120))  # 1 GiB, 8 GiB
REFERENCE_MEMBERS = 10_000  # big enough to be a skiplist, as a board of millions is
TOLERANCE = 0.2  # the hash table doubles in steps: a sample's bytes per member differ by a few percent
SHORT_NAME = 8
WRITES = {"ZADD", "ZINCRBY", "SET", "HSET", "SADD", "RPUSH", "LPUSH", "XADD", "ZUNIONSTORE", "ZINTERSTORE"}


def players_that_fit(r: redis.Redis, fn: object) -> Verdict:
    """``players_that_fit(r, key, maxmemory_bytes, name_length) -> int``: the players a budget holds."""
    return evaluate(r, fn, name="players_that_fit", scratch="players-that-fit", body=_players_that_fit)


def _bytes_per_member(r: redis.Redis, key: str, members: int, name_length: int) -> float:
    """MEMORY USAGE (every element counted) of a board of ``members`` names of ``name_length``, per member."""
    load_padded_board(r, key, members, name_length, chunk=5_000)
    used = r.memory_usage(key, samples=0)
    r.unlink(key)
    return used / members


def _players_that_fit(r: redis.Redis, fn, prefix: str) -> str:
    sample_key = prefix + "sample"
    left_behind = False
    for number, (budget, length) in enumerate(BUDGETS):
        expected_bpm = _bytes_per_member(r, prefix + "reference", REFERENCE_MEMBERS, length)
        expected = int(budget // expected_bpm)
        shown = f"players_that_fit(r, key, {budget:,}, {length})"
        recorder = Recorder(r)
        answer = attempt(fn, recorder, sample_key, budget, length, shown=shown)
        if answer is None and number == 0:
            raise NotDone
        elsewhere = sorted({str(k) for _, _, c, k in recorder.sent if c in WRITES and k != sample_key})
        if elsewhere:
            raise Wrong(
                f"{shown} wrote to {', '.join(elsewhere)}: build your sample board at key, which the check "
                "removes after, so no one's data is touched (UNLINK what you wrote elsewhere)."
            )
        left_behind |= bool(r.exists(sample_key))
        r.unlink(sample_key)
        if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
            raise Wrong(f"{shown} returned {answer!r}: return how many players fit, a whole number.")
        if answer != int(answer):
            raise Wrong(f"{shown} returned {answer!r}: a number of players is whole: use // or int().")
        answer = int(answer)
        if abs(answer - expected) > TOLERANCE * expected:
            raise Wrong(_budget_hint(r, prefix, shown, answer, expected, expected_bpm, budget, length))
    tip = (
        " Tip: your sample board was still at key afterwards; UNLINK it once measured (the check did)."
        if left_behind
        else ""
    )
    return (
        f"players_that_fit projects from a sample big enough to be a skiplist, as a large board is: within "
        f"{TOLERANCE:.0%} of the check's own measurement for names of {BUDGETS[0][1]} and {BUDGETS[1][1]} "
        f"characters.{tip}"
    )


def _budget_hint(
    r: redis.Redis, prefix: str, shown: str, answer: int, expected: int, bpm: float, budget: int, length: int
) -> str:
    said = (
        f"{shown} returned {answer:,}; the check measured {bpm:.0f} bytes per member on a board of "
        f"{REFERENCE_MEMBERS:,} players with names of {length} characters (MEMORY USAGE ... SAMPLES 0), so "
        f"about {expected:,} fit"
    )
    if answer <= 0:
        return said + "."
    implied = budget / answer
    if abs(answer - bpm) <= TOLERANCE * bpm:
        return f"{said}. {answer:,} is about the bytes per member: divide the budget by it."
    if answer * 100 < expected:
        return (
            f"{said}. Did you divide by the whole sample board's MEMORY USAGE? Divide by the bytes per "
            "member (usage / members)."
        )
    listpack_bpm = _bytes_per_member(r, prefix + "reference", 100, length) if length <= 64 else None
    if listpack_bpm is not None and abs(implied - listpack_bpm) <= TOLERANCE * listpack_bpm:
        return (
            f"{said}. Your answer means about {implied:.0f} bytes per member: what a small board costs, "
            f"{listpack_bpm:.0f} bytes, packed in one listpack. Past 128 members (zset-max-listpack-entries) "
            "Redis converts a board to a skiplist and a hash table, several times bigger per member: "
            "measure a sample of a few thousand players."
        )
    short_bpm = _bytes_per_member(r, prefix + "reference", REFERENCE_MEMBERS, SHORT_NAME)
    if length > 2 * SHORT_NAME and abs(implied - short_bpm) <= TOLERANCE * short_bpm:
        return (
            f"{said}. Your answer means about {implied:.0f} bytes per member, what names of about "
            f"{SHORT_NAME} characters cost ({short_bpm:.0f}): every name is stored, so make the sample's "
            f"names {length} characters long."
        )
    return f"{said}. Your answer means {implied:.0f} bytes per member."
