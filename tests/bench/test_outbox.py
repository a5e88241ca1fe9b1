"""helpers.bench.outbox, helpers.baselines.outbox: every row inserted and taken exactly once, tables dropped.

As for the Redis experiments, only shapes and exact counts are checked, never a
rate or a latency.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.baselines import outbox as baseline
from helpers.bench import outbox


def test_payloads_are_the_benchmark_events_as_compact_json():
    assert outbox.payloads(2) == ['{"action":"placed","order_id":"ord-0","total":"89.99"}',
                                  '{"action":"paid","order_id":"ord-0","total":"89.99"}']  # fmt: skip
    assert outbox.payloads(1, start=5) == ['{"action":"paid","order_id":"ord-1","total":"89.99"}']


def test_create_outbox_makes_an_empty_workshop_table_and_replaces_an_old_one(db):
    table = baseline.create_outbox(db, "outbox_test")
    assert table.startswith("workshop_")
    db.execute(f"INSERT INTO {table} (payload) VALUES ('x')")
    assert baseline.create_outbox(db, "outbox_test") == table
    assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    db.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize(
    "call",
    [
        lambda db: outbox.outbox_producer_throughput(db, 0),
        lambda db: outbox.outbox_producer_throughput(db, 10, one_by_one=0),
        lambda db: outbox.outbox_consumer_throughput(db, 0),
        lambda db: outbox.outbox_consumer_throughput(db, 10, ()),
        lambda db: outbox.outbox_consumer_throughput(db, 10, (1, 0)),
        lambda db: outbox.outbox_end_to_end_latency(db, rate=0),
        lambda db: outbox.outbox_end_to_end_latency(db, seconds=0),
    ],
)
def test_bad_sizes_are_value_errors_and_create_no_table(db, call):
    with pytest.raises(ValueError):
        call(db)
    assert db.tables() == []


def test_outbox_producer_inserts_every_row_three_ways_and_drops_its_table(db):
    frame = outbox.outbox_producer_throughput(db, 2_300, one_by_one=120)
    assert list(frame.method) == [outbox.SQL_ONE_BY_ONE, outbox.SQL_BATCHED, outbox.SQL_COPY]
    assert list(frame.events) == [120, 2_300, 2_300]
    assert (frame.in_table == frame.events).all()
    assert (frame.system == db.label).all()
    assert np.allclose(frame.events_per_s, frame.events / frame.seconds)
    assert db.tables() == []


@pytest.mark.parametrize("setting", ["off", "on"])
def test_outbox_producer_runs_with_the_synchronous_commit_asked_for_and_says_so(db, setting):
    frame = outbox.outbox_producer_throughput(db, 1_000, one_by_one=10, synchronous_commit=setting)
    assert (frame.synchronous_commit == setting).all()
    assert (
        db.execute("SELECT current_setting('synchronous_commit')").fetchone()[0] == "on"
    )  # others keep theirs


def test_outbox_consumers_delete_every_row_exactly_once(db):
    frame = outbox.outbox_consumer_throughput(db, 2_500, (1, 2), batch=400)
    assert list(frame.workers) == [1, 2]
    assert (frame.deleted == 2_500).all()
    assert (frame.remaining == 0).all()
    assert frame.all_acked.all()
    assert db.tables() == []


def test_outbox_end_to_end_latency_receives_exactly_what_was_sent(db):
    frame = outbox.outbox_end_to_end_latency(db, rate=2_000, seconds=0.3)
    row = frame.iloc[0]
    assert row.sent == 600
    assert row.received == row.sent == row.samples
    assert row.remaining_after == 0
    assert 0 < row.p50_ms <= row.p99_ms <= row["p99.9_ms"] <= row.max_ms
    assert db.tables() == []
