"""helpers.bench.streams: the Redis experiments return well-formed tables, count exactly, and clean up.

Benchmarks are not timed tests: only the shape and the exact counts are checked
(every event appended is in the stream, every event is acknowledged, every
event sent is received), never a rate or a latency.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers.bench import durability, outbox, processes
from helpers.bench import streams as sb
from helpers.bench.claims import CLAIMS
from helpers.bench.sizes import settings
from helpers.clients import redis_label
from helpers.keyspace import key


def workshop_keys(r) -> list[str]:
    return sorted(r.scan_iter(match="workshop:*", count=1_000))


# --- settings and arguments ---------------------------------------------------------------------


def test_ci_benchmark_sizes_are_no_bigger_than_the_workshop_sizes(monkeypatch):
    monkeypatch.delenv("WORKSHOP_SIZE", raising=False)
    workshop = settings()
    monkeypatch.setenv("WORKSHOP_SIZE", "ci")
    ci = settings()
    for name in ("stream_bench_events", "stream_bench_one_by_one", "stream_bench_per_process",
                 "stream_redis_benchmark_requests", "stream_latency_seconds", "outbox_bench_events",
                 "outbox_bench_one_by_one"):  # fmt: skip
        assert 0 < getattr(ci, name) < getattr(workshop, name), name
    assert workshop.stream_bench_processes == (1, 2, 4)
    assert set(ci.stream_bench_processes) <= set(workshop.stream_bench_processes)
    assert ci.stream_latency_rate == workshop.stream_latency_rate == 10_000  # the claim's rate


@pytest.mark.parametrize(
    "call",
    [
        lambda r, url: sb.producer_throughput(r, 0),
        lambda r, url: sb.producer_throughput(r, 10, one_by_one=0),
        lambda r, url: sb.producer_processes(url, (), per_process=10),
        lambda r, url: sb.producer_processes(url, (1, 0), per_process=10),
        lambda r, url: sb.consumer_throughput(url, 0),
        lambda r, url: sb.end_to_end_latency(url, rate=0),
        lambda r, url: sb.end_to_end_latency(url, seconds=0),
        lambda r, url: sb.redis_benchmark_xadd(url, 0),
    ],
)
def test_bad_sizes_are_value_errors_and_leave_no_keys(r, redis_url, call):
    with pytest.raises(ValueError):
        call(r, redis_url)
    assert workshop_keys(r) == []


# --- Redis: producing ---------------------------------------------------------------------------


def test_producer_throughput_one_by_one_and_pipelined_put_every_event_in_the_stream(r):
    frame = sb.producer_throughput(r, 2_500, one_by_one=300)
    assert list(frame.method) == [sb.ONE_BY_ONE, sb.PIPELINED]
    assert list(frame.events) == [300, 2_500]
    assert (frame.in_stream == frame.events).all()
    assert (frame.system == redis_label(r)).all()
    assert (frame.seconds > 0).all()
    assert np.allclose(frame.events_per_s, frame.events / frame.seconds)
    assert workshop_keys(r) == []


def test_producer_processes_append_every_event_of_every_process_to_one_stream(r, redis_url):
    frame = sb.producer_processes(redis_url, (1, 2), per_process=700)
    assert list(frame.processes) == [1, 2]
    assert list(frame.events) == [700, 1_400]
    assert list(frame.in_stream) == [700, 1_400]
    assert np.allclose(frame.events_per_s, frame.events / frame.seconds)
    assert (frame.slowest_process_events_per_s > 0).all()
    assert workshop_keys(r) == []


def test_a_process_that_fails_is_reported_at_once_not_waited_for(redis_url):
    job = ("redis://127.0.0.1:1/0", "bench:nowhere", 10, 0, 1_000)  # nothing listens on port 1
    with pytest.raises(RuntimeError, match="ConnectionError"):
        processes.run_together(sb._produce, [job], timeout=30)


# --- Redis: redis-benchmark ---------------------------------------------------------------------

BENCHMARK_OUTPUT = (
    "XADD workshop:stream:{bench:redis-benchmark} * field value: rps=0.0 (overall: 0.0) avg_msec=-nan"
    " (overall: -nan)\r"
    "XADD workshop:stream:{bench:redis-benchmark} * field value: rps=812345.2 (overall: 812345.2)\r"
    "XADD workshop:stream:{bench:redis-benchmark} * field value: 961538.44 requests per second,"
    " p50=1.511 msec                    \n\n"
)


def test_parse_requests_per_second_reads_the_final_figure_not_the_progress_lines():
    assert sb.parse_requests_per_second(BENCHMARK_OUTPUT) == pytest.approx(961538.44)
    assert sb.parse_requests_per_second("XADD k * f v: 1000 requests per second\n") == 1000.0


@pytest.mark.parametrize("output", ["", "Could not connect to Redis at 127.0.0.1:1: Connection refused\n"])
def test_parse_requests_per_second_without_a_figure_is_a_value_error(output):
    with pytest.raises(ValueError, match="requests per second"):
        sb.parse_requests_per_second(output)


def test_redis_benchmark_command_names_host_port_db_and_user_and_passes_the_password_in_its_environment():
    command, environment = sb.redis_benchmark_command(
        "rb", "redis://alice:p%40ss@10.0.0.5:7000/3", "workshop:k", 1_000, 32
    )
    assert command[0] == "rb"
    assert command[-9:] == [
        "XADD",
        "workshop:k",
        "*",
        "action",
        "placed",
        "order_id",
        "ord-1",
        "total",
        "89.99",
    ]
    flags = dict(zip(command[1::2], command[2::2]))
    assert command[1] == "-q"
    for flag, value in {"-n": "1000", "-P": "32", "-h": "10.0.0.5", "-p": "7000", "--dbnum": "3",
                        "--user": "alice"}.items():  # fmt: skip
        assert command[command.index(flag) + 1] == value, (flag, flags)
    assert "-a" not in command and "p@ss" not in command  # argv is visible to every user in ps
    assert environment == {"REDISCLI_AUTH": "p@ss"}


def test_redis_benchmark_command_without_password_has_no_auth_and_defaults_db_0():
    command, environment = sb.redis_benchmark_command("rb", "redis://127.0.0.1:6390", "workshop:k", 10, 32)
    assert "-a" not in command and "--user" not in command and environment == {}
    assert command[command.index("--dbnum") + 1] == "0"
    unix, _ = sb.redis_benchmark_command("rb", "unix:///tmp/redis.sock?db=2", "workshop:k", 10, 32)
    assert unix[unix.index("-s") + 1] == "/tmp/redis.sock"
    assert unix[unix.index("--dbnum") + 1] == "2"
    assert "-h" not in unix


def test_redis_benchmark_xadd_reports_a_rate_and_deletes_its_key(r, redis_url):
    if sb.shutil.which("redis-benchmark") is None:
        pytest.skip("no redis-benchmark binary here")
    frame = sb.redis_benchmark_xadd(redis_url, 3_000, pipeline=16)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row.system == "redis-benchmark" and row.requests == 3_000 and row.pipeline == 16
    assert row.events_per_s > 0
    assert "entries written" in row.note
    assert workshop_keys(r) == []


def test_redis_benchmark_xadd_without_the_binary_says_so_and_returns_no_rate(r, redis_url, monkeypatch):
    monkeypatch.setattr(sb.shutil, "which", lambda name: None)
    frame = sb.redis_benchmark_xadd(redis_url, 1_000)
    assert len(frame) == 1
    assert frame.events_per_s.iloc[0] is None
    assert "not found" in frame.note.iloc[0]
    assert workshop_keys(r) == []


# --- Redis: consuming ---------------------------------------------------------------------------


def test_consumer_throughput_acknowledges_every_event_for_every_worker_count(r, redis_url):
    frame = sb.consumer_throughput(redis_url, 2_500, (1, 2), batch=500)
    assert list(frame.workers) == [1, 2]
    assert (frame.events == 2_500).all()
    assert (frame.pending_after == 0).all()
    assert (frame.entries_read == 2_500).all()
    assert (frame.handled >= 2_500).all()  # above only if an entry was claimed from a slow worker
    assert (frame.handled - 2_500 <= frame.claimed).all()
    assert frame.all_acked.all()
    assert np.allclose(frame.events_per_s, frame.events / frame.seconds)
    assert workshop_keys(r) == []


def test_consumer_throughput_counts_cpu_on_both_sides_per_event(r, redis_url):
    frame = sb.consumer_throughput(redis_url, 2_000, (1,), batch=500)
    row = frame.iloc[0]
    assert row.client_us > 0 and row.server_us > 0
    assert math.isclose(row.server_bound_per_s, 1e6 / row.server_us)


def test_a_waiting_handler_waits_for_every_event_and_every_event_is_still_acknowledged(r, redis_url):
    frame = sb.consumer_throughput(redis_url, 60, (1, 2), batch=5, handler_ms=5.0)
    assert (frame.handler_ms == 5.0).all() and frame.all_acked.all()
    # each consumer sleeps 5 ms per event it handles: together they cannot go faster than that
    assert (frame.seconds >= 60 * 0.005 / frame.workers).all()
    assert workshop_keys(r) == []


def test_server_cpu_seconds_grows_with_the_work_the_server_does(r):
    before = sb.server_cpu_seconds(r)
    r.eval("for i = 1, 3000000 do end", 0)  # about 10 ms of the server's own CPU, whatever the client does
    assert sb.server_cpu_seconds(r) > before


# --- Redis and PostgreSQL at each durability setting ------------------------------------------


def test_durability_runs_store_every_event_with_the_setting_each_row_names(r, db):
    runs = sb.durability_runs(db, 1_500, one_by_one=40, repeats=2)
    assert sorted(set(runs["repeat"])) == [0, 1] and len(runs) == 2 * 5 * 2  # repeats x settings x methods
    asked = runs["mode"].map(lambda mode: durability.NAMED.get(mode, mode))
    assert all(setting.startswith(mode) for mode, setting in zip(asked, runs.setting, strict=True))
    assert runs.stored.all()
    assert set(runs["mode"]) == set(durability.REDIS_MODES) | {
        "synchronous_commit=on",
        "synchronous_commit=off",
    }
    assert db.tables() == [] and workshop_keys(r) == []


def test_durability_pairs_divide_redis_by_sql_for_each_pair():
    methods = (sb.ONE_BY_ONE, sb.PIPELINED)
    rows = [
        {"mode": mode, "method": method, "events_per_s": rate * (10 if method == sb.PIPELINED else 1)}
        for mode, rate in {
            "no persistence": 400,
            "AOF, fsync everysec": 300,
            "AOF, fsync always": 200,
        }.items()
        for method in methods
    ] + [
        {
            "mode": f"synchronous_commit={mode}",
            "method": method,
            "events_per_s": rate * (10 if "1,000" in method else 1),
        }
        for mode, rate in {"on": 100, "off": 400}.items()
        for method in (outbox.SQL_ONE_BY_ONE, outbox.SQL_BATCHED)
    ]
    first = rows[0]  # no persistence, one by one: two more repeats, one far off each way
    rows += [{**first, "events_per_s": 40_000}, {**first, "events_per_s": 4}]
    pairs = sb.durability_pairs(pd.DataFrame(rows))  # the median of 4, 400, 40,000 is 400
    assert list(pairs["ratio, one by one"]) == [2.0, 3.0, 0.75, 1.0]
    assert list(pairs["ratio, 1,000 per round trip"]) == [2.0, 3.0, 0.75, 1.0]
    assert pairs["a crash may lose"].iloc[0] == "nothing acknowledged, either side"


def test_end_to_end_latency_receives_exactly_what_was_sent(r, redis_url):
    frame = sb.end_to_end_latency(redis_url, rate=2_000, seconds=0.3)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row.sent == 600  # 2,000/s for 300 ticks of 1 ms
    assert row.received == row.sent == row.samples
    assert row.pending_after == 0
    assert 0 < row.p50_ms <= row.p99_ms <= row["p99.9_ms"] <= row.max_ms
    assert row.achieved_rate > 0
    assert workshop_keys(r) == []


# --- the tables ---------------------------------------------------------------------------------

REDIS = "Redis 7"
PRODUCER = pd.DataFrame(
    [
        {"system": REDIS, "method": sb.ONE_BY_ONE, "events_per_s": 10_000.0},
        {"system": REDIS, "method": sb.PIPELINED, "events_per_s": 160_000.0},
    ]
)
PRODUCERS = pd.DataFrame(
    [
        {"system": REDIS, "processes": 1, "events_per_s": 150_000.0},
        {"system": REDIS, "processes": 2, "events_per_s": 210_000.0},
        {"system": REDIS, "processes": 4, "events_per_s": 190_000.0},
    ]
)
CEILING = pd.DataFrame([{"system": "redis-benchmark", "events_per_s": 950_000.0, "note": ""}])
CONSUMERS = pd.DataFrame(
    [
        {"system": REDIS, "workers": 1, "events_per_s": 140_000.0},
        {"system": REDIS, "workers": 2, "events_per_s": 180_000.0},
    ]
)
LATENCY = pd.DataFrame(
    [{"system": REDIS, "target_rate": 10_000, "p50_ms": 0.4, "p99_ms": 1.5, "p99.9_ms": 3.0}]
)
PG = "PostgreSQL 18"
OUTBOX_PRODUCER = pd.DataFrame(
    [
        {"system": PG, "method": outbox.SQL_ONE_BY_ONE, "events_per_s": 2_000.0},
        {"system": PG, "method": outbox.SQL_BATCHED, "events_per_s": 40_000.0},
        {"system": PG, "method": outbox.SQL_COPY, "events_per_s": 320_000.0},
    ]
)
OUTBOX_CONSUMERS = pd.DataFrame(
    [
        {"system": PG, "workers": 1, "events_per_s": 20_000.0},
        {"system": PG, "workers": 2, "events_per_s": 35_000.0},
    ]
)
OUTBOX_LATENCY = pd.DataFrame([
    {"system": PG, "target_rate": 10_000, "p50_ms": 1.0, "p99_ms": 6.0, "p99.9_ms": 9.0}
])  # fmt: skip


def test_summary_table_lines_redis_and_sql_up_with_their_ratio():
    table = sb.summary_table(PRODUCER, CONSUMERS, LATENCY, OUTBOX_PRODUCER, OUTBOX_CONSUMERS, OUTBOX_LATENCY)
    assert list(table.columns) == ["job", "unit", REDIS, PG, f"{REDIS} / {PG}"]
    rows = table.set_index("job")
    assert rows.loc["append one at a time (SQL: a commit each)", [REDIS, PG]].tolist() == [10_000, 2_000]
    assert rows.loc["append 1,000 per round trip (SQL: per transaction)", PG] == 40_000
    assert rows.loc["bulk load (Redis: pipelined; SQL: COPY)", PG] == 320_000
    assert rows.loc["read + ack, 1 consumer", f"{REDIS} / {PG}"] == pytest.approx(7.0)
    assert rows.loc["read + ack, best (Redis k=2, SQL k=2)", REDIS] == 180_000
    assert rows.loc["end to end at 10,000/s, p99", [REDIS, PG]].tolist() == [1.5, 6.0]
    assert set(table.unit) == {"events/s", "ms"}


def test_claims_table_puts_each_claim_beside_its_figures_and_verdict():
    table = sb.claims_table(
        PRODUCER, PRODUCERS, CEILING, CONSUMERS, LATENCY, OUTBOX_PRODUCER, OUTBOX_CONSUMERS, OUTBOX_LATENCY
    )
    assert list(table.columns) == ["claim", "target", "Redis", "met", "SQL outbox"]
    rows = table.set_index("claim")
    assert rows.loc[CLAIMS["append"].text, ["Redis", "met", "SQL outbox"]].tolist() == [
        160_000,
        "yes",
        40_000,
    ]
    assert rows.loc[CLAIMS["consume"].text, ["Redis", "met", "SQL outbox"]].tolist() == [
        140_000,
        "no",
        20_000,
    ]
    assert rows.loc[CLAIMS["latency"].text, ["Redis", "met", "SQL outbox"]].tolist() == [1.5, "yes", 6.0]
    assert rows.loc[CLAIMS["one producer"].text, "Redis"] == 150_000
    assert rows.loc[CLAIMS["producers"].text + " (best: 2)", "Redis"] == 210_000
    assert rows.loc[CLAIMS["ceiling"].text, "Redis"] == 950_000
    assert rows.loc[CLAIMS["ceiling"].text, "met"] == "-"


def test_claims_table_without_a_redis_benchmark_figure_has_no_verdict_for_it():
    missing = pd.DataFrame([{"system": "redis-benchmark", "events_per_s": None, "note": "not found"}])
    table = sb.claims_table(PRODUCER, PRODUCERS, missing, CONSUMERS, LATENCY).set_index("claim")
    assert math.isnan(table.loc[CLAIMS["ceiling"].text, "Redis"])
    assert table["SQL outbox"].isna().all()


def test_produce_and_consume_moves_every_event_through_the_log_once(r, redis_url):
    frame = sb.produce_and_consume(redis_url, 3_000, ((1, 1), (2, 2)), chunk=500, batch=200)
    assert list(zip(frame.producers, frame.consumers)) == [(1, 1), (2, 2)]
    assert frame.events.tolist() == [3_000, 6_000]
    assert (frame.read == frame.events).all() and frame.all_acked.all()
    assert np.allclose(frame.events_per_s, frame.events / frame.seconds)
    assert workshop_keys(r) == []


def test_produce_and_consume_refuses_bad_pairs_before_starting_anything(r, redis_url):
    for pairs in [((0, 1),), ((1, 0),), ((1, 65),)]:
        with pytest.raises(ValueError):
            sb.produce_and_consume(redis_url, 100, pairs)
    with pytest.raises(ValueError):
        sb.produce_and_consume(redis_url, 0)
    assert workshop_keys(r) == []


def test_claims_table_judges_the_best_pair_against_the_seeds_200k():
    together = pd.DataFrame(
        [
            {"producers": 1, "consumers": 1, "events_per_s": 150_000.0},
            {"producers": 2, "consumers": 2, "events_per_s": 210_000.0},
        ]
    )
    table = sb.claims_table(PRODUCER, PRODUCERS, CEILING, CONSUMERS, LATENCY, together=together)
    row = table.set_index("claim").loc[f"{CLAIMS['together'].text} (best: 2 producers, 2 consumers)"]
    assert row[["target", "Redis", "met"]].tolist() == [">= 200,000 events/s", 210_000.0, "yes"]


def test_stream_entries_cost_their_payload_plus_a_small_overhead(r):
    frame = sb.stream_by_entry_size(r, entries=500, payload_sizes=(16, 256))
    assert frame.bytes_per_entry.is_monotonic_increasing
    assert (frame.overhead_per_entry > 0).all()
    assert (frame.bytes_per_entry > frame.payload_bytes).all()
    assert r.keys(key("stream", "{bench:memory}") + "*") == []


def test_trimming_keeps_maxlen_exactly_or_a_little_more_with_the_tilde(r):
    frame = sb.stream_trimming(r, entries=2_000, maxlen=300).set_index("trimming")
    assert frame.loc["no trimming", "kept"] == 2_000
    assert frame.loc["MAXLEN 300", "kept"] == 300
    assert 300 <= frame.loc["MAXLEN ~ 300", "kept"] <= 300 + 100  # whole nodes of 100 entries
    assert frame.loc["MAXLEN ~ 300", "bytes_total"] < frame.loc["no trimming", "bytes_total"] / 3
    assert r.keys(key("stream", "{bench:memory}") + "*") == []


@pytest.mark.parametrize("kwargs", [{"entries": 0}, {"maxlen": -5}, {"entries": 1.5}])
def test_stream_trimming_rejects_bad_sizes(r, kwargs):
    with pytest.raises(ValueError):
        sb.stream_trimming(r, **kwargs)


def test_stream_by_entry_size_rejects_bad_sizes(r):
    with pytest.raises(ValueError):
        sb.stream_by_entry_size(r, entries=10, payload_sizes=(-1,))
