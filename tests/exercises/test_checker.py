"""The "Your turn" checks: each solution passes, the stub is "not done yet", wrong answers are named.

Every check runs against the session's throwaway Redis with a real learner-style function:
the solution file from ``notebooks/solutions/``, an untouched stub, a function that raises,
and realistic wrong answers, each of which must get its own specific message.
"""

from __future__ import annotations

import os
import runpy
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from IPython.lib.pretty import pretty

from helpers import servers
from helpers.clients import client_from_url
from helpers.exercises import checker
from helpers.exercises import durability as durability_exercises
from helpers.exercises import leaderboard as leaderboard_exercises
from helpers.exercises import ratelimit as ratelimit_exercises
from helpers.exercises import scaling_out as scaling_exercises
from helpers.exercises import streams as streams_exercises
from helpers.exercises.checker import Verdict
from helpers.keyspace import cleanup
from helpers.keyspace import key as workshop_key
from helpers.production import security

SOLUTIONS = Path(__file__).resolve().parents[2] / "notebooks" / "solutions"

EXERCISES = [  # (check, solution file, function name)
    (leaderboard_exercises.record_lap, "01_record_lap", "record_lap"),
    (leaderboard_exercises.weekly_board, "01_weekly_board", "weekly_board"),
    (leaderboard_exercises.where_would_i_be, "01_where_would_i_be", "where_would_i_be"),
    (streams_exercises.revenue_at, "02_revenue_at", "revenue_at"),
    (streams_exercises.claim_from, "02_claim_from", "claim_from"),
    (streams_exercises.settle, "02_settle", "settle"),
    (ratelimit_exercises.fixed_window_hit, "03_fixed_window", "fixed_window_hit"),
    (ratelimit_exercises.token_bucket_hit, "03_token_bucket", "token_bucket_hit"),
    (ratelimit_exercises.hit_without_lua, "03_hit_without_lua", "hit_without_lua"),
    (durability_exercises.players_that_fit, "04_players_that_fit", "players_that_fit"),
]
IDS = [name for _, _, name in EXERCISES]


def solution(file: str, name: str):
    return runpy.run_path(str(SOLUTIONS / f"{file}.py"))[name]


def scratch_keys(r) -> list[str]:
    return list(r.scan_iter(match=workshop_key("exercise") + ":*"))


def stub(*args):
    return None  # what the notebook's `...  # your code here` returns


def raises(*args):
    raise KeyError("no such player")


@pytest.mark.parametrize(("check", "file", "name"), EXERCISES, ids=IDS)
def test_each_solution_passes_its_check(r, check, file, name):
    verdict = check(r, solution(file, name))
    assert verdict.ok, verdict.message
    assert verdict.message.startswith("✓ Correct: ")
    assert scratch_keys(r) == []


@pytest.mark.parametrize(("check", "file", "name"), EXERCISES, ids=IDS)
def test_the_untouched_stub_is_not_done_yet(r, check, file, name):
    verdict = check(r, stub)
    assert not verdict.ok and not verdict.done
    assert verdict.message.startswith(
        f"Not done yet: {name} returned None. Write it above, or open the solution below."
    )
    assert scratch_keys(r) == []


@pytest.mark.parametrize(("check", "file", "name"), EXERCISES, ids=IDS)
def test_a_function_that_raises_gets_a_message_not_a_traceback(r, check, file, name):
    verdict = check(r, raises)
    assert not verdict.ok and verdict.done
    assert f"{name}(" in verdict.message and "raised KeyError: 'no such player'" in verdict.message
    assert scratch_keys(r) == []


@pytest.mark.parametrize(("check", "file", "name"), EXERCISES, ids=IDS)
def test_passing_something_that_is_not_a_function_says_how_to_call_the_check(r, check, file, name):
    verdict = check(r, "record_lap")
    assert not verdict.ok and f"check.{name}(r, {name})" in verdict.message


def test_every_solution_file_belongs_to_a_check():
    checked = [file for _, file, _ in EXERCISES + WITHOUT_REDIS]
    assert sorted(p.stem for p in SOLUTIONS.glob("*.py")) == sorted(checked)


def test_a_verdict_shows_as_its_message_alone_in_ipython():
    verdict = Verdict(True, True, "✓ Correct: fine")
    assert pretty(verdict) == "✓ Correct: fine" and str(verdict) == "✓ Correct: fine"


def test_show_solution_prints_the_solution_file(capsys):
    checker.show_solution("01_weekly_board")
    printed = capsys.readouterr().out
    assert printed.startswith("# notebooks/solutions/01_weekly_board.py")
    assert "def weekly_board(r, daily_keys, dest):" in printed


def test_a_wrong_answer_gets_the_same_message_on_every_run(r):
    def max_board(r, daily_keys, dest):
        return r.zunionstore(dest, daily_keys, aggregate="MAX")

    first = leaderboard_exercises.weekly_board(r, max_board)
    assert first == leaderboard_exercises.weekly_board(r, max_board)


# --- wrong answers: notebook 01 ------------------------------------------------------
def lap_gt(r, key, driver, lap_s):
    return r.zadd(key, {driver: lap_s}, gt=True, ch=True) == 1


def lap_without_ch(r, key, driver, lap_s):
    return r.zadd(key, {driver: lap_s}, lt=True) == 1


def lap_read_then_write(r, key, driver, lap_s):
    best = r.zscore(key, driver)
    if best is None or lap_s < best:
        r.zadd(key, {driver: lap_s})
        return True
    return False


def lap_watch_without_retry(r, key, driver, lap_s):
    with r.pipeline() as pipe:
        pipe.watch(key)
        best = pipe.zscore(key, driver)
        if best is not None and lap_s >= best:
            return False
        pipe.multi()
        pipe.zadd(key, {driver: lap_s})
        pipe.execute()
        return True


def lap_watch_with_retries(r, key, driver, lap_s):
    def attempt(pipe):
        best = pipe.zscore(key, driver)
        if best is not None and lap_s >= best:
            return False
        pipe.multi()
        pipe.zadd(key, {driver: lap_s})
        return True

    return r.transaction(attempt, key, value_from_callable=True)


def weekly_max(r, daily_keys, dest):
    return r.zunionstore(dest, daily_keys, aggregate="MAX")


def weekly_zincrby_without_delete(r, daily_keys, dest):
    for key in daily_keys:
        for member, score in r.zrange(key, 0, -1, withscores=True):
            r.zincrby(dest, score, member)
    return r.zcard(dest)


def weekly_zadd_per_day(r, daily_keys, dest):
    r.delete(dest)
    for key in daily_keys:
        scores = dict(r.zrange(key, 0, -1, withscores=True))
        if scores:
            r.zadd(dest, scores)
    return r.zcard(dest)


def weekly_returns_nothing_useful(r, daily_keys, dest):
    r.zunionstore(dest, daily_keys)
    return True


def where_by_adding_a_member(r, key, score, radius):
    r.zadd(key, {"me": score})
    rank = r.zrevrank(key, "me") + 1
    r.zrem(key, "me")
    return rank, [], []


def where_counting_ties_above(r, key, score, radius):
    rank = 1 + r.zcount(key, score, "+inf")
    above = r.zrangebyscore(key, score, "+inf", start=0, num=radius, withscores=True)[::-1]
    below = r.zrevrangebyscore(key, f"({score}", "-inf", start=0, num=radius, withscores=True)
    return rank, above, below


def where_above_not_reversed(r, key, score, radius):
    rank = 1 + r.zcount(key, f"({score}", "+inf")
    above = r.zrangebyscore(key, f"({score}", "+inf", start=0, num=radius, withscores=True)
    below = r.zrevrangebyscore(key, score, "-inf", start=0, num=radius, withscores=True)
    return rank, above, below


def where_zero_based(r, key, score, radius):
    rank, above, below = solution("01_where_would_i_be", "where_would_i_be")(r, key, score, radius)
    return rank - 1, above, below


# --- wrong answers: notebook 02 ------------------------------------------------------
def revenue_first_entry_of_the_ms(r, stream, at_ms):
    return sum(Decimal(f["total"]) for _, f in r.xrange(stream, "-", f"{at_ms}-0") if f["action"] == "paid")


def revenue_every_action(r, stream, at_ms):
    return sum(Decimal(f["total"]) for _, f in r.xrange(stream, "-", at_ms))


def revenue_whole_log(r, stream, at_ms):
    return sum(Decimal(f["total"]) for _, f in r.xrange(stream) if f["action"] == "paid")


def claim_everything_idle_or_not(r, stream, group, dead, me, min_idle_ms):
    cursor, claimed = "0-0", []
    while True:
        cursor, entries, _ = r.xautoclaim(stream, group, me, 0, cursor)
        claimed += [entry_id for entry_id, _ in entries]
        if cursor == "0-0":
            return claimed


def claim_one_page(r, stream, group, dead, me, min_idle_ms):
    _, entries, _ = r.xautoclaim(stream, group, me, min_idle_ms, "0-0")
    return [entry_id for entry_id, _ in entries]


def claim_and_ack(r, stream, group, dead, me, min_idle_ms):
    claimed = solution("02_claim_from", "claim_from")(r, stream, group, dead, me, min_idle_ms)
    r.xack(stream, group, *claimed[:10])
    return claimed


def claim_returns_a_count(r, stream, group, dead, me, min_idle_ms):
    return len(solution("02_claim_from", "claim_from")(r, stream, group, dead, me, min_idle_ms))


def settle_dead_on_first_failure(r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3):
    try:
        handler(entry_id, fields)
    except Exception as error:  # noqa: BLE001
        with r.pipeline(transaction=True) as pipe:
            pipe.xadd(dead_stream, {**fields, "original_id": entry_id, "error": str(error)})
            pipe.xack(stream, group, entry_id)
            pipe.execute()
        return "dead"
    r.xack(stream, group, entry_id)
    return "acked"


def settle_never_dead(r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3):
    try:
        handler(entry_id, fields)
    except Exception:  # noqa: BLE001
        return "retry"
    r.xack(stream, group, entry_id)
    return "acked"


def settle_dead_letter_in_two_steps(
    r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3
):
    try:
        handler(entry_id, fields)
    except Exception as error:  # noqa: BLE001
        [pending] = r.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
        if pending["times_delivered"] < max_deliveries:
            return "retry"
        r.xadd(dead_stream, {**fields, "original_id": entry_id, "error": str(error)})
        r.xack(stream, group, entry_id)
        return "dead"
    r.xack(stream, group, entry_id)
    return "acked"


def settle_without_ack(r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3):
    try:
        handler(entry_id, fields)
    except Exception:  # noqa: BLE001
        return "retry"
    return "acked"


def settle_calls_handler_wrongly(r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3):
    try:
        handler(fields)
    except TypeError:
        return "retry"
    return "acked"


# --- wrong answers: notebook 03 ------------------------------------------------------
FIXED = runpy.run_path(str(SOLUTIONS / "03_fixed_window.py"))["FIXED_WINDOW"]
BUCKET = runpy.run_path(str(SOLUTIONS / "03_token_bucket.py"))["TOKEN_BUCKET"]
REFILL = "math.min(burst, tokens + (now - last) * rate / 1000)"


def fixed_off_by_one(r, key, limit, window_ms, now_ms):
    return r.eval(FIXED.replace("count >= limit", "count > limit"), 1, key, limit, window_ms, now_ms) == 1


def fixed_one_count_for_everyone(r, key, limit, window_ms, now_ms):
    shared = key.rsplit(":", 2)[0] + ":everyone"
    return r.eval(FIXED, 1, shared, limit, window_ms, now_ms) == 1


def fixed_in_python(r, key, limit, window_ms, now_ms):
    window_key = f"{key}:{now_ms // window_ms}"
    count = r.incr(window_key)
    r.pexpire(window_key, window_ms)
    return count <= limit


def fixed_lua_false(r, key, limit, window_ms, now_ms):
    return r.eval(
        FIXED.replace("return 0", "return false").replace("return 1", "return true"),
        1,
        key,
        limit,
        window_ms,
        now_ms,
    )


def fixed_without_expiry(r, key, limit, window_ms, now_ms):
    script = FIXED.replace("redis.call('PEXPIRE'", "-- redis.call('PEXPIRE'")
    return r.eval(script, 1, key, limit, window_ms, now_ms) == 1


def fixed_expiring_on_the_real_clock(r, key, limit, window_ms, now_ms):
    script = """
    local count = redis.call('INCR', KEYS[1])
    if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
    if count > tonumber(ARGV[1]) then return 0 end
    return 1"""
    return r.eval(script, 1, key, limit, window_ms, now_ms) == 1


def fixed_read_then_write_in_two_scripts(r, key, limit, window_ms, now_ms):
    window = now_ms // window_ms
    count = r.eval("return tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or 0)", 1, key, window)
    if count >= limit:
        return False
    r.eval("redis.call('HINCRBY', KEYS[1], ARGV[1], 1) redis.call('PEXPIRE', KEYS[1], 60000)", 1, key, window)
    return True


def bucket(script):
    def hit(r, key, rate_per_s, burst, now_ms, cost=1):
        return r.eval(script, 1, key, rate_per_s, burst, now_ms, cost) == 1

    return hit


NO_EXPIRY = BUCKET.replace("redis.call('PEXPIRE'", "-- redis.call('PEXPIRE'")
bucket_without_cap = bucket(NO_EXPIRY.replace(REFILL, "tokens + (now - last) * rate / 1000"))
bucket_starting_empty = bucket(BUCKET.replace("or burst ", "or 0 "))
bucket_whole_tokens = bucket(
    BUCKET.replace(REFILL, "math.min(burst, tokens + math.floor((now - last) * rate / 1000))")
)
bucket_refused_take = bucket(
    BUCKET.replace("if allowed then tokens = tokens - cost end", "tokens = tokens - cost")
)
bucket_without_expiry = bucket(NO_EXPIRY)


def bucket_ignoring_cost(r, key, rate_per_s, burst, now_ms, cost=1):
    return r.eval(BUCKET, 1, key, rate_per_s, burst, now_ms, 1) == 1


def count_then_write_in_two_transactions(r, key, limit, window_ms, now_ms, member):
    pipe = r.pipeline(transaction=True)
    if pipe.zremrangebyscore(key, "-inf", now_ms - window_ms).zcard(key).execute()[1] >= limit:
        return False
    pipe.zadd(key, {member: now_ms}).pexpire(key, window_ms).execute()
    return True


def count_then_write_in_separate_commands(r, key, limit, window_ms, now_ms, member):
    r.zremrangebyscore(key, "-inf", now_ms - window_ms)
    if r.zcard(key) >= limit:
        return False
    r.zadd(key, {member: now_ms})
    r.pexpire(key, window_ms)
    return True


def one_multi_that_keeps_the_refused(r, key, limit, window_ms, now_ms, member):
    pipe = r.pipeline(transaction=True)
    pipe.zremrangebyscore(key, "-inf", now_ms - window_ms).zadd(key, {member: now_ms}).zcard(key)
    return pipe.pexpire(key, window_ms).execute()[2] <= limit


def a_quick_refusal_then_the_split_transactions(r, key, limit, window_ms, now_ms, member):
    if r.zcount(key, now_ms - window_ms + 1, "+inf") >= limit:
        return False
    return count_then_write_in_two_transactions(r, key, limit, window_ms, now_ms, member)


def counted_by_lexcount_then_written(r, key, limit, window_ms, now_ms, member):
    r.zremrangebyscore(key, "-inf", now_ms - window_ms)
    if r.zlexcount(key, "-", "+") >= limit:
        return False
    r.zadd(key, {member: now_ms})
    r.pexpire(key, window_ms)
    return True


def a_script_after_all(r, key, limit, window_ms, now_ms, member):
    return r.eval("return 1", 1, key) == 1


def watch_and_retry(r, key, limit, window_ms, now_ms, member):
    def transaction(pipe):
        pipe.zremrangebyscore(key, "-inf", now_ms - window_ms)
        room = pipe.zcard(key) < limit
        pipe.multi()
        if room:
            pipe.zadd(key, {member: now_ms}).pexpire(key, window_ms)
        return room

    return r.transaction(transaction, key, value_from_callable=True)


def test_watch_with_retries_is_also_a_limiter_without_lua_that_holds(r):
    verdict = ratelimit_exercises.hit_without_lua(r, watch_and_retry)
    assert verdict.ok, verdict.message


# --- wrong answers: notebook 04 (the memory budget; the other two need no Redis, see the end) ---------
def sample_fit(members: int, name=lambda i, length: f"p:{i}".ljust(length, "x"), answer=None, where=None):
    """A learner's players_that_fit: a sample board of ``members``, measured, projected by ``answer``."""

    def players_that_fit(r, key, maxmemory_bytes, name_length):
        key = where or key
        r.zadd(key, {name(i, name_length): i for i in range(members)})
        used = r.memory_usage(key, samples=0)
        r.unlink(key)
        if answer is None:
            return int(maxmemory_bytes // (used / members))
        return answer(maxmemory_bytes, used / members, used)

    return players_that_fit


fit_from_a_small_board = sample_fit(100)  # a listpack: a fifth of the bytes per member
fit_ignoring_name_length = sample_fit(5_000, name=lambda i, length: f"player:{i}")
fit_returning_bytes_per_member = sample_fit(5_000, answer=lambda budget, per_member, used: round(per_member))
fit_dividing_by_the_whole_sample = sample_fit(5_000, answer=lambda budget, per_member, used: budget // used)
fit_as_a_float = sample_fit(5_000, answer=lambda budget, per_member, used: budget / per_member)
fit_with_a_sample_outside_key = sample_fit(5_000, where=workshop_key("memory", "my-sample"))


WRONG = [  # (check, a realistic wrong answer, what its message must say)
    (
        ratelimit_exercises.hit_without_lua,
        count_then_write_in_two_transactions,
        "and so did yours: 4 for a limit of 3",
    ),
    (
        ratelimit_exercises.hit_without_lua,
        count_then_write_in_separate_commands,
        "and so did yours: 4 for a limit of 3",
    ),
    (ratelimit_exercises.hit_without_lua, one_multi_that_keeps_the_refused, "A refused request still counts"),
    (ratelimit_exercises.hit_without_lua, a_script_after_all, "you sent EVAL: this time, no script"),
    (ratelimit_exercises.hit_without_lua, a_quick_refusal_then_the_split_transactions, "so did yours"),
    (ratelimit_exercises.hit_without_lua, counted_by_lexcount_then_written, "so did yours"),
    (leaderboard_exercises.record_lap, lap_gt, "the slower lap replaced the best one"),
    (leaderboard_exercises.record_lap, lap_without_ch, "unless you pass CH"),
    (
        leaderboard_exercises.record_lap,
        lap_read_then_write,
        "Between your ZSCORE and your write, another game",
    ),
    (leaderboard_exercises.record_lap, lap_watch_without_retry, "Run the transaction again"),
    (leaderboard_exercises.weekly_board, weekly_max, "AGGREGATE MAX (the best day) instead of SUM"),
    (leaderboard_exercises.weekly_board, weekly_zincrby_without_delete, "dest still holds 'ghost'"),
    (leaderboard_exercises.weekly_board, weekly_zadd_per_day, "a ZADD per day overwrites the score"),
    (leaderboard_exercises.weekly_board, weekly_returns_nothing_useful, "return how many players it holds"),
    (leaderboard_exercises.where_would_i_be, where_by_adding_a_member, "wrote to the board"),
    (
        leaderboard_exercises.where_would_i_be,
        where_counting_ties_above,
        "as above it. Equal scores share a rank",
    ),
    (leaderboard_exercises.where_would_i_be, where_above_not_reversed, "List them best first"),
    (leaderboard_exercises.where_would_i_be, where_zero_based, "ranks start at 1"),
    (streams_exercises.revenue_at, revenue_first_entry_of_the_ms, "stops at its first entry"),
    (streams_exercises.revenue_at, revenue_every_action, "only 'paid' events are money taken"),
    (streams_exercises.revenue_at, revenue_whole_log, "you summed the whole log"),
    (streams_exercises.claim_from, claim_everything_idle_or_not, "you took entries it is still working on"),
    (streams_exercises.claim_from, claim_one_page, "owns 100 of worker-dead's 150 pending entries"),
    (streams_exercises.claim_from, claim_and_ack, "Claiming is not acknowledging"),
    (streams_exercises.claim_from, claim_returns_a_count, "returned 150: return the list of the IDs"),
    (streams_exercises.settle, settle_dead_on_first_failure, "only the 3rd failed delivery goes to the dead"),
    (streams_exercises.settle, settle_never_dead, "delivered 3 times (max_deliveries) and failed again"),
    (streams_exercises.settle, settle_dead_letter_in_two_steps, "went out separately"),
    (streams_exercises.settle, settle_without_ack, "but it is still pending: XACK it"),
    (streams_exercises.settle, settle_calls_handler_wrongly, "call it as handler(entry_id, fields)"),
    (ratelimit_exercises.fixed_window_hit, fixed_off_by_one, "You let 6 through in one window"),
    (ratelimit_exercises.fixed_window_hit, fixed_one_count_for_everyone, "share one count"),
    (ratelimit_exercises.fixed_window_hit, fixed_in_python, "sent INCRBY, PEXPIRE, not one script call"),
    (ratelimit_exercises.fixed_window_hit, fixed_read_then_write_in_two_scripts, "sent EVAL, EVAL, not one"),
    (ratelimit_exercises.fixed_window_hit, fixed_lua_false, "Lua's false reaches Python as None"),
    (ratelimit_exercises.fixed_window_hit, fixed_without_expiry, "never expires"),
    (ratelimit_exercises.fixed_window_hit, fixed_expiring_on_the_real_clock, "not on now_ms"),
    (ratelimit_exercises.token_bucket_hit, bucket_without_cap, "cap the tokens at burst (6)"),
    (ratelimit_exercises.token_bucket_hit, bucket_starting_empty, "A new bucket starts full"),
    (ratelimit_exercises.token_bucket_hit, bucket_whole_tokens, "lose the fractions"),
    (ratelimit_exercises.token_bucket_hit, bucket_refused_take, "take tokens only when you allow"),
    (ratelimit_exercises.token_bucket_hit, bucket_ignoring_cost, "take cost tokens"),
    (durability_exercises.players_that_fit, fit_from_a_small_board, "packed in one listpack"),
    (
        durability_exercises.players_that_fit,
        fit_ignoring_name_length,
        "make the sample's names 120 characters",
    ),
    (durability_exercises.players_that_fit, fit_returning_bytes_per_member, "is about the bytes per member"),
    (
        durability_exercises.players_that_fit,
        fit_dividing_by_the_whole_sample,
        "divide by the whole sample board's MEMORY USAGE",
    ),
    (durability_exercises.players_that_fit, fit_as_a_float, "a number of players is whole"),
    (
        durability_exercises.players_that_fit,
        fit_with_a_sample_outside_key,
        f"wrote to {workshop_key('memory', 'my-sample')}: build your sample board at key",
    ),
]


@pytest.mark.parametrize(("check", "wrong", "says"), WRONG, ids=[w.__name__ for _, w, _ in WRONG])
def test_a_realistic_wrong_answer_gets_its_specific_message(r, check, wrong, says):
    verdict = check(r, wrong)
    assert not verdict.ok and verdict.done
    assert verdict.message.startswith("✗ ")
    assert says in verdict.message, verdict.message
    assert scratch_keys(r) == []


def test_every_exercise_has_at_least_one_wrong_answer_named():
    assert {check for check, _, _ in EXERCISES} <= {check for check, _, _ in WRONG}


def test_a_watch_transaction_that_retries_passes_and_survives_the_other_server(r):
    verdict = leaderboard_exercises.record_lap(r, lap_watch_with_retries)
    assert verdict.ok, verdict.message
    assert "recorded in the middle of your call survived" in verdict.message


def test_a_token_bucket_that_never_expires_passes_with_a_tip(r):
    verdict = ratelimit_exercises.token_bucket_hit(r, bucket_without_expiry)
    assert verdict.ok and "Tip: your keys never expire" in verdict.message


def test_the_recorder_sees_calls_pipelines_and_transactions_on_the_learners_connection(r):
    recorder = checker.Recorder(r)
    key = checker.scratch_prefix("recorder") + "k"
    recorder.set(key, 1)
    with recorder.pipeline(transaction=False) as pipe:
        pipe.get(key).get(key).execute()
    with recorder.pipeline(transaction=True) as pipe:
        pipe.incr(key).delete(key).execute()
    assert [(how, command) for _, how, command, _ in recorder.sent] == [
        ("call", "SET"),
        ("pipeline", "GET"),
        ("pipeline", "GET"),
        ("multi", "INCRBY"),
        ("multi", "DEL"),
    ]
    assert [batch for batch, *_ in recorder.sent] == [1, 2, 2, 3, 3]
    assert r.exists(key) == 0


def test_fixed_window_oracle_allows_the_limit_in_each_clock_aligned_window():
    trace = [(1_000 + i, "a", 1) for i in range(7)] + [(2_000, "a", 1), (2_000, "b", 1)]
    decisions = ratelimit_exercises.fixed_window_oracle(trace, 5, 1_000)
    assert decisions == [True] * 5 + [False, False] + [True, True]


def test_token_bucket_oracle_allows_a_burst_then_the_rate_and_caps_at_burst():
    trace = [(0, "a", 1)] * 4 + [
        (250, "a", 1),
        (375, "a", 1),
        (10_000, "a", 3),
        (10_000, "a", 1),
        (10_000, "a", 1),
    ]
    decisions, found = ratelimit_exercises.token_bucket_oracle(trace, 4, 3)
    assert decisions == [True, True, True, False, True, False, True, False, False]
    assert found[6] == 3  # ten idle seconds refill 40 tokens, capped at the burst


def test_an_answer_that_trips_the_checks_own_reads_gets_a_message(r):
    def overwrites_a_daily_board_with_a_string(r, daily_keys, dest):
        r.set(daily_keys[0], "oops")
        return 0

    verdict = leaderboard_exercises.weekly_board(r, overwrites_a_daily_board_with_a_string)
    assert not verdict.ok and verdict.message.startswith("✗ The check stopped on ResponseError: WRONGTYPE")
    assert scratch_keys(r) == []


def test_a_sample_left_behind_passes_with_a_tip_and_the_check_removes_it(r):
    def keeps_its_sample(r, key, maxmemory_bytes, name_length):
        r.zadd(key, {f"p:{i}".ljust(name_length, "x"): i for i in range(2_000)})
        return int(maxmemory_bytes // (r.memory_usage(key, samples=0) / 2_000))

    verdict = durability_exercises.players_that_fit(r, keeps_its_sample)
    assert verdict.ok and "Tip: your sample board was still at key" in verdict.message
    assert scratch_keys(r) == []


# --- notebook 04: the checks that need no Redis of the learner's --------------------------------
# region_board_key computes slots (CRC16, as a cluster does); producer_rules tries the rules on
# a throwaway server it starts and stops. So they are called check.<name>(<function>), no r.
WITHOUT_REDIS = [  # (check, solution file, function name)
    (scaling_exercises.region_board_key, "05_region_board_key", "region_board_key"),
    (scaling_exercises.producer_rules, "05_producer_rules", "producer_rules"),
]
IDS_WITHOUT_REDIS = [name for _, _, name in WITHOUT_REDIS]


@pytest.mark.parametrize(("check", "file", "name"), WITHOUT_REDIS, ids=IDS_WITHOUT_REDIS)
def test_each_solution_needing_no_redis_passes_its_check(check, file, name):
    verdict = check(solution(file, name))
    assert verdict.ok, verdict.message
    assert verdict.message.startswith("✓ Correct: ")


@pytest.mark.parametrize(("check", "file", "name"), WITHOUT_REDIS, ids=IDS_WITHOUT_REDIS)
def test_the_untouched_stub_of_a_check_needing_no_redis_is_not_done_yet(check, file, name):
    verdict = check(stub)
    assert not verdict.ok and not verdict.done
    assert (
        verdict.message == f"Not done yet: {name} returned None. Write it above, or open the solution below."
    )


@pytest.mark.parametrize(("check", "file", "name"), WITHOUT_REDIS, ids=IDS_WITHOUT_REDIS)
def test_a_function_that_raises_gets_a_message_when_the_check_needs_no_redis(check, file, name):
    verdict = check(raises)
    assert not verdict.ok and verdict.done
    assert f"{name}(" in verdict.message and "raised KeyError: 'no such player'" in verdict.message


@pytest.mark.parametrize(("check", "file", "name"), WITHOUT_REDIS, ids=IDS_WITHOUT_REDIS)
def test_a_check_needing_no_redis_says_it_takes_the_function_alone(check, file, name):
    verdict = check("region_board_key")
    assert not verdict.ok and f"check.{name}({name})" in verdict.message


def week_board_key(tagged):
    """A learner's region_board_key from a template: ``tagged(week, region)`` is the part after lb:."""
    return lambda week, region: workshop_key("lb", tagged(week, region))


key_without_tag = week_board_key(lambda week, region: f"{week}:{region}")
key_tagging_the_region = week_board_key(lambda week, region: f"{{{week}:{region}}}")
key_with_empty_tag = week_board_key(lambda week, region: f"{{}}:{week}:{region}")
key_with_a_fixed_tag = week_board_key(lambda week, region: f"{{boards}}:{week}:{region}")
key_without_region = week_board_key(lambda week, region: f"{{{week}}}")
key_without_prefix = lambda week, region: f"lb:{{{week}}}:{region}"  # noqa: E731

WRONG_WITHOUT_REDIS = [  # (check, a realistic wrong answer, what its message must say)
    (scaling_exercises.region_board_key, key_without_tag, "would fail on a cluster with CROSSSLOT"),
    (scaling_exercises.region_board_key, key_without_tag, "eu → slot "),
    (scaling_exercises.region_board_key, key_without_tag, "Without a hash tag the whole key is hashed"),
    (
        scaling_exercises.region_board_key,
        key_tagging_the_region,
        "hold the region, so each region's board",
    ),
    (scaling_exercises.region_board_key, key_with_empty_tag, "Empty braces are no hash tag"),
    (scaling_exercises.region_board_key, key_with_a_fixed_tag, "one node holds every board of every week"),
    (scaling_exercises.region_board_key, key_without_region, "each region needs a board of its own"),
    (scaling_exercises.region_board_key, key_without_prefix, "outside the workshop's keys"),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + security.key_pattern("orders"), "+@write"],
        "+@write lets it XTRIM",
    ),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + security.key_pattern("orders"), "+@write"],
        f"DEL {workshop_key('orders', 'eu')}",
    ),
    (scaling_exercises.producer_rules, lambda: ["~*", "+xadd"], "~* lets it XADD billing:invoices"),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + workshop_key("*"), "+xadd"],
        f"lets it XADD {workshop_key('payments', 'eu')}",
    ),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + security.key_pattern("orders"), "+@stream"],
        f"+@stream lets it XRANGE {workshop_key('orders', 'eu')}, XREAD",
    ),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + security.key_pattern("orders"), "+xadd", "+eval"],
        "+eval lets it EVAL a script",
    ),
    (scaling_exercises.producer_rules, lambda: ["~" + security.key_pattern("orders")], "You forgot +xadd"),
    (scaling_exercises.producer_rules, lambda: ["+xadd"], "No key pattern of yours covers that key"),
    (
        scaling_exercises.producer_rules,
        lambda: ["%R~" + security.key_pattern("orders"), "+xadd"],
        "gives read-only access and XADD writes",
    ),
    (scaling_exercises.producer_rules, lambda: ["allkeys", "allcommands"], "allcommands lets it XRANGE"),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + security.key_pattern("orders"), "+xadd", "nopass"],
        "'nopass' lets anyone",
    ),
    (
        scaling_exercises.producer_rules,
        lambda: ["~" + security.key_pattern("orders"), "+xadd", ">hunter2"],
        "leave passwords out of the rules",
    ),
    (
        scaling_exercises.producer_rules,
        lambda: ["reset", "~" + security.key_pattern("orders"), "+xadd"],
        "could not log in as order-producer",
    ),
    (
        scaling_exercises.producer_rules,
        lambda: "~" + security.key_pattern("orders") + " +xadd",
        "return a list of rules, one string each",
    ),
    (scaling_exercises.producer_rules, lambda: ["+xadd", "+xappend"], "Redis refused the ACL rules"),
]


@pytest.mark.parametrize(
    ("check", "wrong", "says"),
    WRONG_WITHOUT_REDIS,
    ids=[f"{check.__name__}-{n}" for n, (check, _, _) in enumerate(WRONG_WITHOUT_REDIS)],
)
def test_a_realistic_wrong_answer_needing_no_redis_gets_its_specific_message(check, wrong, says):
    verdict = check(wrong)
    assert not verdict.ok and verdict.done
    assert verdict.message.startswith("✗ ")
    assert says in verdict.message, verdict.message


def test_every_check_needing_no_redis_has_a_wrong_answer_named():
    assert {check for check, _, _ in WITHOUT_REDIS} <= {check for check, _, _ in WRONG_WITHOUT_REDIS}


def test_write_only_key_access_is_a_right_answer_too():
    verdict = scaling_exercises.producer_rules(lambda: ["%W~" + security.key_pattern("orders"), "+xadd"])
    assert verdict.ok, verdict.message


def test_the_acl_check_stops_the_server_it_started_whatever_the_answer(monkeypatch):
    started, start = [], servers.start_redis_binary

    def start_and_note(**kwargs):
        started.append(start(**kwargs))
        return started[-1]

    monkeypatch.setattr(servers, "start_redis_binary", start_and_note)
    scaling_exercises.producer_rules(solution("05_producer_rules", "producer_rules"))
    scaling_exercises.producer_rules(lambda: ["reset"])  # the login fails in the middle of the check
    scaling_exercises.producer_rules(stub)  # the stub starts nothing
    assert len(started) == 2
    assert all(server.stopped and not server.data_dir.exists() for server in started)


def test_the_slots_the_key_check_computes_are_the_clusters_and_its_verdicts_hold_there():
    if not os.environ.get("REDIS_CLUSTER_URL"):
        pytest.skip("no local Redis Cluster in this session (REDIS_CLUSTER_URL unset)")
    cluster = client_from_url(os.environ["REDIS_CLUSTER_URL"])
    right = solution("05_region_board_key", "region_board_key")
    try:
        for make in (right, key_without_tag, key_with_empty_tag, key_tagging_the_region):
            keys = [make("2026-W01", region) for region in ("eu", "us", "apac", "world")]
            for key in keys:
                assert scaling_exercises._slot(key) == cluster.cluster_keyslot(key)
            for n, key in enumerate(keys[:-1]):
                cluster.zadd(key, {"ana": n + 1, "bob": 10})
            if make is right:
                assert cluster.zunionstore(keys[-1], keys[:-1]) == 2
                assert cluster.zscore(keys[-1], "bob") == 30
            else:
                # past redis-py's own slot check, to the node that holds the first board: the server says it
                node = cluster.get_node_from_key(keys[0]).redis_connection
                with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):
                    node.execute_command("ZUNIONSTORE", keys[-1], len(keys) - 1, *keys[:-1])
    finally:
        cleanup(cluster)
        cluster.close()
