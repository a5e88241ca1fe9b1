"""helpers.bench.ratelimit and helpers.bench.race: well-formed tables, exact counts, no keys left.

Benchmarks are not timed tests: only shapes and exact facts are checked (the
Lua limiter never over-admits, the sliding log agrees with the oracle on every
request, a skewed classic script over-admits by construction), never a rate or
a latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.baselines import ratelimit as ratelimit_sql
from helpers.bench import race
from helpers.bench import ratelimit as rb
from helpers.bench.sizes import settings
from helpers.ratelimit import ALGORITHMS

ROOT = Path(__file__).resolve().parents[2]


def workshop_keys(r) -> list[str]:
    return sorted(r.scan_iter(match="workshop:*", count=1_000))


# --- settings and arguments -----------------------------------------------------------------------


def test_ci_sizes_are_no_bigger_than_the_workshop_sizes(monkeypatch):
    monkeypatch.delenv("WORKSHOP_SIZE", raising=False)
    workshop = settings()
    monkeypatch.setenv("WORKSHOP_SIZE", "ci")
    ci = settings()
    names = ("trials", "clients", "calls_per_client", "watch_trials", "trace_seconds", "collision_requests")
    for name in (*names, "decision_calls", "server_time_calls", "server_time_rounds", "service_seconds",
                 "sql_trials", "sql_calls"):  # fmt: skip
        assert 0 < getattr(ci, "ratelimit_" + name) <= getattr(workshop, "ratelimit_" + name), name
    assert workshop.ratelimit_trials >= 100 and workshop.ratelimit_process_trials >= 100  # the claim's trials
    assert (workshop.ratelimit_clients, workshop.ratelimit_calls_per_client, workshop.ratelimit_limit) == (
        16,
        20,
        10,
    )
    assert ci.ratelimit_process_trials == 0
    for name in ("ratelimit_watch_clients", "ratelimit_memory_limits", "ratelimit_service_clients",
                 "ratelimit_service_depths"):  # fmt: skip
        assert set(getattr(ci, name)) <= set(getattr(workshop, name)), name
    assert {1, 50} <= set(workshop.ratelimit_service_clients)  # one client, and redis-benchmark's 50


@pytest.mark.parametrize(
    "call",
    [
        lambda r, url: race.race_trials(
            url, "no such method", trials=1, clients=1, calls_per_client=1, limit=1
        ),
        lambda r, url: race.race_trials(url, "Lua", trials=0, clients=1, calls_per_client=1, limit=1),
        lambda r, url: race.race_trials(url, "Lua", trials=1, clients=1, calls_per_client=1, limit=0),
        lambda r, url: race.watch_retries_by_contention(url, ()),
        lambda r, url: rb.clock_skew(r, skews_ms=()),
        lambda r, url: rb.member_collisions(r, requests=0),
        lambda r, url: rb.trace(1, seconds=0),
        lambda r, url: rb.compare_algorithms(r, rb.trace(1, window_ms=1_001, seconds=3), 10, 1_001),
        lambda r, url: rb.memory_per_key(r, limit=0),
        lambda r, url: rb.decisions_per_second(r, calls=0),
    ],
)
def test_bad_arguments_are_value_errors_and_leave_no_keys(r, redis_url, call):
    with pytest.raises(ValueError):
        call(r, redis_url)
    assert workshop_keys(r) == []


# --- the race -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", race.METHODS)
def test_every_method_gives_one_row_per_trial_and_never_admits_fewer_than_the_limit(r, redis_url, method):
    frame = race.race_trials(redis_url, method, trials=3, clients=6, calls_per_client=5, limit=4)
    assert list(frame.columns) == race.COLUMNS
    assert list(frame.trial) == [0, 1, 2]
    assert (frame.method == method).all() and (frame.runner == "threads").all()
    assert (frame.calls == 30).all() and (frame.limit == 4).all()
    assert (frame.admitted >= 4).all() and (frame.admitted <= 30).all()
    assert (frame.over == frame.admitted - 4).all()
    if method in ("MULTI/EXEC, one", "INCR, fixed window", "WATCH", "Lua"):
        assert (frame.over == 0).all()  # exact: one transaction, optimistic with retries, or a script
    if method != "WATCH":
        assert (frame.retries == 0).all()
    assert (frame.seconds > 0).all()
    assert workshop_keys(r) == []


def test_the_one_multi_variant_removes_the_entry_of_a_refused_request(r):
    key = race.bench_key("one-multi-undo")
    decisions = [race.one_multi(r, key, f"m{i}", 3, 60_000) for i in range(5)]
    assert [allowed for allowed, _ in decisions] == [True, True, True, False, False]
    assert r.zcard(key) == 3  # the two refused requests left nothing behind
    r.unlink(key)


def test_the_incr_variant_counts_from_the_keys_first_request_and_keeps_its_expiry(r):
    key = race.bench_key("incr-window")
    decisions = [race.incr_fixed_window(r, key, f"m{i}", 2, 60_000)[0] for i in range(4)]
    assert decisions == [True, True, False, False]
    assert 0 < r.pttl(key) <= 60_000
    r.pexpire(key, 5_000)
    race.incr_fixed_window(r, key, "m5", 2, 60_000)
    assert r.pttl(key) <= 5_000  # NX: later requests do not move the window's end
    r.unlink(key)


def test_the_lua_sliding_log_admits_exactly_the_limit_in_every_trial_of_heavy_contention(r, redis_url):
    frame = race.race_trials(redis_url, "Lua", trials=25, clients=16, calls_per_client=20, limit=10)
    assert len(frame) == 25
    assert (frame.admitted == 10).all() and (frame.over == 0).all()
    assert workshop_keys(r) == []


def test_the_race_runs_from_spawned_processes_too(r, redis_url):
    frame = race.race_trials(
        redis_url, "Lua", trials=4, clients=3, calls_per_client=6, limit=5, use_processes=True
    )
    assert list(frame.trial) == [0, 1, 2, 3]
    assert (frame.runner == "processes").all() and (frame.calls == 18).all()
    assert (frame.admitted == 5).all()
    assert workshop_keys(r) == []


def test_watch_retries_by_contention_is_exact_and_a_lone_client_never_retries(r, redis_url):
    frame = race.watch_retries_by_contention(redis_url, (1, 3), trials=2, calls_per_client=5)
    assert list(frame.clients) == [1, 3]
    assert list(frame.decisions) == [5, 15] and list(frame.limit) == [5, 15]
    assert (frame.max_over == 0).all() and frame.all_admitted.all()
    assert frame.retries_per_decision.iloc[0] == 0
    assert (frame.retries_per_decision >= 0).all()
    assert workshop_keys(r) == []


def test_race_summary_counts_over_admitted_trials_per_method():
    def trials(method, admitted):
        rows = [(method, "threads", i, 2, 4, a, 2, a - 2, 0, 0.1) for i, a in enumerate(admitted)]
        return pd.DataFrame(rows, columns=race.COLUMNS)

    summary = race.race_summary(trials("a", [2, 3, 2, 4]), trials("b", [2, 2]))
    assert list(summary.method) == ["a", "b"]
    assert list(summary.trials) == [4, 2]
    assert list(summary.over_admitted_trials) == [2, 0]
    assert list(summary.max_over) == [2, 0]


# --- the classic script's weaknesses ------------------------------------------------------------


def test_clock_skew_lets_the_classic_script_over_admit_and_the_fixed_one_matches_the_oracle(r):
    frame = rb.clock_skew(r)
    skewed, agree, fixed = (frame.iloc[i] for i in range(3))
    assert skewed.clocks_ms == "+0/+250/+500" and agree.clocks_ms == "+0/+0/+0"
    assert skewed.over > 0 and skewed.mismatches > 0  # a deterministic construction: always so
    for row in (agree, fixed):
        assert row.mismatches == 0 and row.admitted == row.oracle_admitted
        assert row.max_in_window <= row.limit
    for row in frame.itertuples():
        assert sum(map(int, row.admitted_per_server.split("/"))) == row.admitted
    assert workshop_keys(r) == []


def test_member_collisions_lose_classic_members_only_and_math_random_is_not_reseeded_per_call(r):
    frame = rb.member_collisions(r, requests=2_000)
    classic, fixed = frame.iloc[0], frame.iloc[1]
    assert (frame.requests_in_one_ms == 2_000).all() and (frame.admitted == 2_000).all()
    assert classic.members <= 2_000 and classic.lost == 2_000 - classic.members
    assert classic.distinct_suffixes == classic.members  # one now: a member is its random suffix
    assert classic.distinct_suffixes > 1_000  # re-seeded per call, every suffix would be the same
    assert fixed.members == 2_000 and fixed.lost == 0
    assert workshop_keys(r) == []


# --- the trace ----------------------------------------------------------------------------------


def test_trace_is_reproducible_sorted_and_bursts_around_window_edges():
    one, again = (
        rb.trace(7, limit=5, window_ms=1_000, seconds=20),
        rb.trace(7, limit=5, window_ms=1_000, seconds=20),
    )
    pd.testing.assert_frame_equal(one, again)
    assert one.t_ms.is_monotonic_increasing and one.t_ms.dtype == np.int64
    assert one.t_ms.min() >= 1_000 * 1_000_000
    counts = one.kind.value_counts()
    assert counts["before edge"] == counts["after edge"] == 5 * 4  # edges at windows 4, 8, 12, 16
    edges = one[one.kind != "steady"].t_ms % 1_000
    assert ((edges >= 950) | (edges < 50)).all()
    assert not rb.trace(8, limit=5, window_ms=1_000, seconds=20).t_ms.equals(one.t_ms)


def test_compare_algorithms_sliding_log_matches_the_oracle_on_every_request(r):
    recorded = rb.trace(42, limit=10, window_ms=1_000, seconds=40)
    summary, buckets = rb.compare_algorithms(r, recorded, 10, 1_000)
    assert list(summary.algorithm) == ["oracle", *ALGORITHMS]
    assert (summary.requests == len(recorded)).all()
    by = summary.set_index("algorithm")
    log = by.loc["sliding_log"]
    assert log.admitted == log.oracle_admitted
    assert log.allowed_oracle_denied == 0 and log.denied_oracle_allowed == 0
    assert log.max_in_window <= 10 and by.loc["oracle", "max_in_window"] <= 10
    assert by.loc["fixed_window", "max_in_window"] > 10  # bursts either side of an edge
    assert list(buckets.columns) == ["t_ms", "requests", "oracle", *ALGORITHMS]
    assert (np.diff(buckets.t_ms) == 100).all() and buckets.t_ms.iloc[0] == 0
    assert buckets.requests.sum() == len(recorded)
    for algorithm, admitted in by.admitted.items():
        assert buckets[algorithm].sum() == admitted
    assert workshop_keys(r) == []


# --- memory and speed ----------------------------------------------------------------------------


def test_memory_per_key_the_sliding_log_grows_with_the_limit(r):
    frame = rb.memory_per_key(r, limit=(5, 200))
    assert len(frame) == 2 * len(ALGORITHMS)
    assert list(frame.hits) == [10] * 4 + [400] * 4
    logs = frame[frame.algorithm == "sliding_log"]
    assert list(logs.entries) == [5, 200] and list(logs.admitted) == [5, 200]
    assert (frame.bytes > 0).all()
    big = frame[frame.limit == 200].set_index("algorithm").bytes
    assert big["sliding_log"] > logs.bytes.iloc[0]
    assert big["sliding_log"] > 10 * big.drop("sliding_log").max()
    assert workshop_keys(r) == []


def test_decisions_per_second_has_a_row_per_algorithm_the_classic_script_and_the_ping_ceiling(r):
    frame = rb.decisions_per_second(r, calls=60, keys=7)
    assert list(frame.algorithm) == [*ALGORITHMS, "classic (seed)", "PING (the round trip alone)"]
    assert (frame.samples == 60).all() and (frame.calls == 60).all()
    assert (frame.decisions_per_s > 0).all()
    assert (frame.p50_ms <= frame.p99_ms).all() and (frame.p99_ms <= frame["p99.9_ms"]).all()
    assert workshop_keys(r) == []


# --- tables and the command line ------------------------------------------------------------------


def test_claims_table_judges_each_target():
    rows = [("Lua", "threads", i, 16, 320, 10, 10, 0, 0, 0.01) for i in range(100)]
    rows += [("separate commands", "threads", i, 16, 320, 10 + i % 2, 10, i % 2, 0, 0.01) for i in range(4)]
    summary = race.race_summary(pd.DataFrame(rows, columns=race.COLUMNS))
    decisions = pd.DataFrame([{"algorithm": "sliding_log", "decisions_per_s": 12_000.0, "p99_ms": 1.5}])
    service = pd.DataFrame({"clients": [1, 50], "depth": [1, 16], "decisions_per_s": [9_000.0, 20_000.0]})
    table = rb.claims_table(summary, decisions, service)
    assert list(table.columns) == ["claim", "target", "Redis", "met", "PostgreSQL"]
    assert list(table.met) == ["yes", "no", "-", "yes", "-"]
    assert list(table.Redis) == [12_000.0, 1.5, 20_000.0, 0, 2]
    assert table.claim.iloc[2] == "decisions/s one Redis served (50 clients, 16 in flight each)"
    assert table.PostgreSQL.isna().all()
    sql = race.race_summary(pd.DataFrame([(ratelimit_sql.NO_LOCK, "threads", 0, 2, 4, 3, 2, 1, 0, 0.1)],
                                       columns=race.COLUMNS))  # fmt: skip
    assert rb.claims_table(summary, decisions, service, sql).PostgreSQL.iloc[4] == 1


def test_command_line_ratelimit_ci_run_prints_every_table(r, db):
    run = subprocess.run(
        [sys.executable, "-m", "helpers.bench", "ratelimit", "--size", "ci"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3_000:]
    headings = ("workshop size: ci", "Race: one key", "WATCH retries", "Clock skew", "Member collisions",
                "Trace replay", "Memory per key", "Decisions per second, one connection",
                "The server's µs per decision", "Decisions per second from one Redis, against clients",
                "Race on PostgreSQL", "Decisions per second on PostgreSQL",
                "Claims against figures")  # fmt: skip
    for heading in headings:
        assert heading in run.stdout, heading
    assert "from REDIS_URL" in run.stdout and "from DATABASE_URL" in run.stdout
    assert workshop_keys(r) == []
    assert db.tables() == []


# --- when Redis says no ---------------------------------------------------------------------------


def test_refusals_leave_every_limiter_to_its_policy_and_only_the_flagless_script_writes():
    frame = rb.refusals(busy_ms=1_000)
    limiters = frame[frame.on_error != "-"]
    assert set(limiters.condition) == set(rb.CONDITIONS)
    assert len(limiters) == len(rb.CONDITIONS) * 4 * 2  # conditions x algorithms x policies
    assert limiters.degraded.all() and (limiters.allowed == (limiters.on_error == "open")).all()
    assert not limiters.wrote.any()
    (classic,) = frame[frame.on_error == "-"].itertuples()
    assert classic.allowed and classic.wrote and not classic.degraded  # past maxmemory
