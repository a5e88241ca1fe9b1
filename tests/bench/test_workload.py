"""helpers.bench.workload: the events, pacing, latency row and size checks both sides of notebook 02 share."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.bench import workload


def test_make_events_are_small_flat_order_events_numbered_from_start():
    events = workload.make_events(6, start=4)
    assert len(events) == 6
    assert events[0] == {"action": "placed", "order_id": "ord-1", "total": "89.99"}
    assert [e["action"] for e in events[:4]] == ["placed", "paid", "shipped", "cancelled"]
    assert all(isinstance(v, str) for e in events for v in e.values())


def test_paced_sends_every_due_event_once_in_order():
    calls = []
    sent, elapsed = workload.paced(
        lambda count, first: calls.append((count, first)), rate=3_500, seconds=0.05
    )
    assert sent == 175  # 3,500/s for 50 ticks of 1 ms
    assert sum(count for count, _ in calls) == sent
    assert [first for _, first in calls] == [sum(c for c, _ in calls[:i]) for i in range(len(calls))]
    assert elapsed >= 0.05


def test_latency_frame_summarises_the_latencies_received():
    outcome = {"latencies_ms": np.array([1.0, 2.0, 3.0, 4.0])}
    row = workload.latency_frame("Redis 7", 1_000, 2.0, 5, 2.5, outcome, pending_after=0).iloc[0]
    assert (row.system, row.target_rate, row.sent, row.received, row.pending_after) == (
        "Redis 7",
        1_000,
        5,
        4,
        0,
    )
    assert row.achieved_rate == 2.0
    assert row.samples == 4 and row.max_ms == 4.0
    assert row.p50_ms == pytest.approx(2.5)


def test_latency_frame_without_latencies_has_no_percentiles():
    frame = workload.latency_frame("PostgreSQL", 1_000, 1.0, 10, 1.0, {"latencies_ms": np.array([])})
    assert frame.received.iloc[0] == 0
    assert "p50_ms" not in frame.columns and "max_ms" not in frame.columns
