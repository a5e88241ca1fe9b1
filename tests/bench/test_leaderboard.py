"""helpers.bench.leaderboard: notebook 01's experiments return well-formed tables and clean up.

Benchmarks are not timed tests: only the shape and the exact counts are checked.
"""

from __future__ import annotations

import gc
import warnings

import pandas as pd
import pytest

from helpers.bench import leaderboard as lb
from helpers.clients import redis_label


def workshop_keys(r) -> list[str]:
    return sorted(r.scan_iter(match="workshop:*", count=1_000))


def test_make_scores_has_n_players_named_p_i():
    scores = lb.make_scores(500)
    assert list(scores) == [f"p:{i}" for i in range(500)]
    assert all(isinstance(v, int) and 0 <= v < 1_000_000 for v in scores.values())


def test_make_scores_is_deterministic_per_seed():
    assert lb.make_scores(1_000, seed=1) == lb.make_scores(1_000, seed=1)
    assert lb.make_scores(1_000, seed=1) != lb.make_scores(1_000, seed=2)
    assert lb.make_scores(1_000) == lb.make_scores(1_000, seed=lb.SEED)


def test_make_scores_of_zero_is_empty():
    assert lb.make_scores(0) == {}


def test_redis_label_names_the_server_version(r):
    assert redis_label(r) == f"Redis {r.info('server')['redis_version']}"


@pytest.fixture(scope="module")
def latency_run(redis_url, tmp_path_factory):
    """One small run of latency_by_size, shared by the checks below."""
    import redis

    from helpers.baselines.sql import connect_sql
    from helpers.keyspace import cleanup

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    baseline = connect_sql(quiet=True)
    cleanup(client)
    baseline.cleanup()
    latency, loads = lb.latency_by_size(
        client, baseline, (100, 300), samples=30, sql_samples=8, progress=False
    )
    leftover = (sorted(client.scan_iter(match="workshop:*")), baseline.tables())
    result = latency, loads, leftover, redis_label(client), baseline.label
    cleanup(client)
    baseline.cleanup()
    baseline.close()
    client.close()
    return result


def test_latency_by_size_has_a_row_for_every_size_system_and_operation(latency_run):
    latency, _, _, redis_label, sql_label = latency_run
    assert not latency.duplicated(["N", "system", "operation"]).any()
    assert set(latency.N) == {100, 300}
    pairs = {n: set(zip(rows.system, rows.operation)) for n, rows in latency.groupby("N")}
    assert pairs[100] == pairs[300]  # every size measures the same things
    for system in (redis_label, f"{sql_label}, no index", f"{sql_label}, index on score"):
        for operation in ("rank", "increment", "top 10"):
            assert (system, operation) in pairs[100], (system, operation)
    for system, _ in pairs[100]:
        assert system.startswith(("Redis", sql_label))


def test_latency_by_size_measures_the_fair_redis_rank_too(latency_run):
    latency, _, _, redis_label, _ = latency_run
    fair = latency[latency.system.str.startswith(redis_label) & latency.system.str.contains("fair")]
    assert set(zip(fair.N, fair.operation)) == {(100, "rank"), (300, "rank")}


def test_latency_percentiles_are_ordered_and_positive(latency_run):
    latency = latency_run[0]
    assert (latency.p50_ms > 0).all()
    assert (latency.p50_ms <= latency["p99_ms"]).all()
    assert (latency["p99_ms"] <= latency["p99.9_ms"]).all()


def test_latency_rows_say_how_many_samples_they_rest_on(latency_run):
    latency, _, _, redis_label, _ = latency_run
    is_redis = latency.system.str.startswith(redis_label)
    assert (latency[is_redis].samples == 30).all()
    assert (latency[~is_redis].samples == 8).all()


def test_loads_have_a_positive_rate_per_size_and_system(latency_run):
    _, loads, _, redis_label, sql_label = latency_run
    assert set(zip(loads.N, loads.system)) == {(n, s) for n in (100, 300) for s in (redis_label, sql_label)}
    assert (loads.seconds > 0).all()
    assert (loads.rows_per_s == loads.N / loads.seconds).all()


def test_latency_by_size_leaves_no_keys_and_no_tables(latency_run):
    assert latency_run[2] == ([], [])


def test_claims_table_judges_the_largest_board_measured_against_the_course_claims(latency_run):
    latency, loads, _, label, _ = latency_run
    table = lb.claims_table(latency, loads).set_index("claim")
    assert list(table.columns) == ["target", "Redis", "met", "beside it"]
    assert table.target.tolist() == ["<= 1 ms", ">= 100 x", ">= 200,000 members/s"]
    ranks = latency[(latency.operation == "rank") & (latency.N == 300)].set_index("system").p99_ms
    assert table.Redis.iloc[0] == ranks[label]
    assert table.Redis.iloc[1] == ranks[~ranks.index.str.startswith("Redis")].min() / ranks[label]
    assert all("at 300 players" in claim for claim in table.index)
    assert set(table.met) <= {"yes", "no"}


def test_speedups_has_one_column_per_sql_variant(latency_run):
    latency, _, _, _, sql_label = latency_run
    table = lb.speedups(latency)
    assert list(table.index) == [100, 300]
    assert sorted(table.columns) == sorted(
        [f"x faster than {sql_label}, no index", f"x faster than {sql_label}, index on score"]
    )
    assert (table > 0).all().all()


SYNTHETIC = pd.DataFrame(
    [
        {"N": 10, "system": "Redis 7", "operation": "rank", "p50_ms": 0.1, "p99_ms": 0.2},
        {"N": 10, "system": "Redis 7, fair rank (Lua)", "operation": "rank", "p50_ms": 0.2, "p99_ms": 0.4},
        {"N": 10, "system": "PG, no index", "operation": "rank", "p50_ms": 1.0, "p99_ms": 4.0},
        {"N": 10, "system": "PG, index on score", "operation": "rank", "p50_ms": 0.5, "p99_ms": 1.0},
        {"N": 10, "system": "Redis 7", "operation": "top 10", "p50_ms": 9.0, "p99_ms": 9.0},
        {"N": 10, "system": "PG, no index", "operation": "top 10", "p50_ms": 18.0, "p99_ms": 18.0},
    ]
)


def test_speedups_are_sql_latency_over_plain_redis_latency():
    p50 = lb.speedups(SYNTHETIC)
    assert sorted(p50.columns) == ["x faster than PG, index on score", "x faster than PG, no index"]
    assert p50.loc[10, "x faster than PG, no index"] == pytest.approx(10)
    assert p50.loc[10, "x faster than PG, index on score"] == pytest.approx(5)
    assert lb.speedups(SYNTHETIC, column="p99_ms").loc[10, "x faster than PG, no index"] == pytest.approx(20)
    assert lb.speedups(SYNTHETIC, "top 10").loc[10, "x faster than PG, no index"] == pytest.approx(2)


def test_speedups_against_the_fair_redis_rank():
    fair = lb.speedups(SYNTHETIC, reference="Redis 7, fair rank (Lua)")
    assert fair.loc[10, "x faster than PG, no index"] == pytest.approx(5)


def test_speedups_refuses_a_reference_that_is_not_a_redis_system():
    with pytest.raises(ValueError):
        lb.speedups(SYNTHETIC, reference="PG, no index")


@pytest.fixture
def baseline(db):
    return db


def method_row(outcome: pd.DataFrame, *words: str) -> pd.Series:
    rows = outcome[[all(word in method for word in words) for method in outcome.method]]
    assert len(rows) == 1, (words, list(outcome.method))
    return rows.iloc[0]


def test_concurrent_increments_server_side_and_locked_increments_lose_nothing(r, baseline):
    outcome = lb.concurrent_increments(r, baseline, writers=4, increments=25)
    assert list(outcome.columns[:6]) == ["system", "method", "expected", "final", "seconds", "lost"]
    assert (outcome.expected == 100).all()
    assert (outcome.lost == outcome.expected - outcome.final).all()
    assert method_row(outcome, "ZINCRBY").final == 100
    assert method_row(outcome, "ZINCRBY").system.startswith("Redis")
    assert method_row(outcome, "FOR UPDATE").final == 100
    assert method_row(outcome, "FOR UPDATE").system == baseline.label
    assert all(system.startswith("Redis") or system == baseline.label for system in outcome.system)


def test_concurrent_read_then_write_loses_updates_or_none_but_never_invents_any(r, baseline):
    outcome = lb.concurrent_increments(r, baseline, writers=4, increments=25)
    racy = outcome[[m.startswith("SELECT, then UPDATE") or m.startswith("ZSCORE") for m in outcome.method]]
    assert len(racy) >= 1
    assert ((racy.final > 0) & (racy.final <= 100)).all()
    assert (racy.lost >= 0).all()


def test_concurrent_increments_leave_no_keys_and_no_tables(r, baseline):
    lb.concurrent_increments(r, baseline, writers=2, increments=5)
    assert workshop_keys(r) == []
    assert baseline.tables() == []


def test_concurrent_increments_close_the_connections_they_open(r, db):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        lb.concurrent_increments(r, db, writers=2, increments=5)
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


def test_memory_per_member_grows_with_name_length_and_leaves_no_keys(r):
    memory = lb.memory_by_name_length(r, members=2_000, lengths=(8, 128))
    assert list(memory.name_length) == [8, 128]
    assert (memory.members == 2_000).all()
    assert (memory.bytes_per_member == memory.bytes_total / 2_000).all()
    # each name is stored once; the allocator rounds sizes up (jemalloc, libc malloc: differently)
    assert memory.bytes_per_member.iloc[1] - memory.bytes_per_member.iloc[0] >= 0.9 * (128 - 8)
    assert workshop_keys(r) == []


@pytest.mark.parametrize("lengths", [(7,), (0,), (8, 4)])
def test_memory_names_shorter_than_8_are_a_value_error_and_leave_no_keys(r, lengths):
    with pytest.raises(ValueError):
        lb.memory_by_name_length(r, members=100, lengths=lengths)
    assert workshop_keys(r) == []


def test_latency_by_size_records_the_servers_own_time_for_redis_only(latency_run):
    latency, _, _, label, sql_label = latency_run
    redis_rows = latency[latency.system.str.startswith(label)]
    assert (redis_rows.server_us > 0).all()
    assert (redis_rows.server_us / 1000 < redis_rows.p50_ms).all()  # a part of the call, never more
    assert latency[latency.system.str.startswith(sql_label)].server_us.isna().all()


def test_per_call_us_is_the_difference_of_two_readings():
    assert lb.per_call_us((10, 1_000), (20, 1_500)) == 50.0
    assert pd.isna(lb.per_call_us((10, 1_000), (10, 1_000)))  # no call in between


def test_command_stats_counts_the_calls_made(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    before = lb.command_stats(client, "ECHO")
    for _ in range(7):
        client.echo("x")
    after = lb.command_stats(client, "echo")
    assert after[0] - before[0] == 7 and after[1] >= before[1]
    client.close()


@pytest.fixture(scope="module")
def designs_run(redis_url):
    import redis

    from helpers.baselines.sql import connect_sql
    from helpers.keyspace import cleanup

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    baseline = connect_sql(quiet=True)
    ranks, writes = lb.rank_designs(client, baseline, 400, samples=25, sql_samples=6, progress=False)
    leftover = (sorted(client.scan_iter(match="workshop:*")), baseline.tables())
    cleanup(client)
    baseline.cleanup()
    baseline.close()
    client.close()
    return ranks, writes, leftover


def test_rank_designs_times_every_design_at_every_place_and_they_agree(designs_run):
    ranks, _, _ = designs_run
    assert (
        ranks.groupby("design").position.apply(list).map(sorted).tolist() == [["bottom", "middle", "top"]] * 6
    )
    assert (ranks.p50_ms > 0).all() and (ranks.p50_ms <= ranks.p99_ms).all()
    fair = ranks[~ranks.design.str.startswith("ZREVRANK")]
    assert fair.agrees.tolist() == [True] * len(fair)
    assert ranks[ranks.design.str.startswith("ZREVRANK")].agrees.isna().all()
    assert set(ranks.samples[ranks.system.str.startswith("Redis")]) == {25}
    assert set(ranks.samples[~ranks.system.str.startswith("Redis")]) == {6}


def test_rank_designs_prices_each_write_and_only_the_view_is_stale(designs_run):
    _, writes, _ = designs_run
    assert writes.write.tolist() == [
        "ZINCRBY",
        "UPDATE score = score + 1, bucket trigger",
        "UPDATE score = score + 1",
        "UPDATE, then REFRESH MATERIALIZED VIEW",
    ]
    assert writes.stale_s.tolist()[:3] == [0.0, 0.0, 0.0] and writes.stale_s.iloc[3] > 0
    assert writes.exact_after_writes.dropna().tolist() == [True]
    assert writes.attrs["view_build_s"] > 0


def test_rank_designs_leaves_no_keys_and_no_tables(designs_run):
    assert designs_run[2] == ([], [])


def test_claims_table_with_designs_adds_the_bucket_table_as_context(latency_run, designs_run):
    latency, loads, *_ = latency_run
    table = lb.claims_table(latency, loads, designs_run[0])
    assert table.target.tolist() == ["<= 1 ms", ">= 100 x", ">= 200,000 members/s", "context"]
    assert table.met.iloc[3] == "-" and table.Redis.iloc[3] > 0
    assert "trigger on every write" in table["beside it"].iloc[3]


def test_union_cost_is_the_servers_time_for_one_union_and_leaves_no_key(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    seconds = lb.union_cost(client, members=2_000, days=3)
    assert 0 < seconds < 5
    assert sorted(client.scan_iter(match="workshop:lb:{union}*")) == []
    for members, days in [(0, 7), (10, 0), (10, 32), (1.5, 7)]:
        with pytest.raises(ValueError, match="members must be"):
            lb.union_cost(client, members=members, days=days)
    client.close()
