"""helpers.bench.timing and helpers.bench.__main__: timing calls, percentiles, rates, and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.bench import timing

ROOT = Path(__file__).resolve().parents[2]


def test_time_calls_returns_one_sample_per_argument_after_an_unrecorded_warmup():
    calls = []
    samples = timing.time_calls(calls.append, range(10), warmup=3)
    assert calls == [0, 1, 2, *range(10)]
    assert samples.shape == (10,)
    assert (samples >= 0).all()


def test_time_calls_with_warmup_longer_than_the_arguments_still_records_each_once():
    calls = []
    samples = timing.time_calls(calls.append, ["a", "b"], warmup=20)
    assert calls == ["a", "b", "a", "b"]
    assert len(samples) == 2


def test_time_calls_without_warmup_calls_each_argument_once():
    calls = []
    assert len(timing.time_calls(calls.append, iter([1, 2, 3]), warmup=0)) == 3
    assert calls == [1, 2, 3]


@pytest.mark.parametrize("arguments", [[], (), iter([])])
def test_time_calls_without_arguments_is_a_value_error(arguments):
    with pytest.raises(ValueError):
        timing.time_calls(print, arguments)


def test_time_calls_reports_milliseconds():
    def sleepy(_):
        import time

        time.sleep(0.002)

    assert timing.time_calls(sleepy, [0, 1], warmup=0).min() >= 2.0  # 2 ms asleep is at least 2.0


def test_summarize_matches_numpy_percentile_on_known_data():
    data = np.arange(1, 1_001, dtype=float)
    summary = timing.summarize(data)
    assert summary == {
        "p50_ms": pytest.approx(np.percentile(data, 50)),
        "p99_ms": pytest.approx(np.percentile(data, 99)),
        "p99.9_ms": pytest.approx(np.percentile(data, 99.9)),
        "samples": 1_000,
    }
    assert summary["p50_ms"] == pytest.approx(500.5)
    assert summary["p99_ms"] == pytest.approx(990.01)


def test_summarize_of_one_sample_is_that_sample_everywhere():
    expected = {"p50_ms": 0.25, "p99_ms": 0.25, "p99.9_ms": 0.25, "samples": 1}
    assert timing.summarize(np.array([0.25])) == expected


def test_summarize_values_are_plain_python_numbers():
    summary = timing.summarize(np.array([1.0, 2.0, 3.0]))
    assert all(type(summary[k]) is float for k in timing.PERCENTILES)
    assert type(summary["samples"]) is int


def test_rate_is_count_over_seconds():
    assert timing.rate(1_000, 0.5) == 2_000.0


@pytest.mark.parametrize("seconds", [0, 0.0, -1.0])
def test_rate_refuses_a_zero_or_negative_duration(seconds):
    with pytest.raises(ValueError):
        timing.rate(10, seconds)


def test_command_line_leaderboard_ci_run_prints_every_table(r, db):
    run = subprocess.run(
        [sys.executable, "-m", "helpers.bench", "leaderboard", "--size", "ci"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3_000:]
    headings = ("workshop size: ci", "Latency", "Bulk load", "Rank p50", "Concurrent increments", "Memory")
    for heading in headings:
        assert heading in run.stdout
    assert "from REDIS_URL" in run.stdout and "from DATABASE_URL" in run.stdout
    assert list(r.scan_iter(match="workshop:*")) == []
    assert db.tables() == []


def test_command_line_streams_ci_run_prints_every_table(r, db):
    run = subprocess.run(
        [sys.executable, "-m", "helpers.bench", "streams", "--size", "ci"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3_000:]
    headings = ("workshop size: ci", "Producer, one process", "Producer processes", "redis-benchmark",
                "Consumer group", "End-to-end latency", "Outbox producer", "Outbox consumers",
                "Outbox end-to-end latency", "Side by side", "Claims against figures")  # fmt: skip
    for heading in headings:
        assert heading in run.stdout
    assert "from REDIS_URL" in run.stdout and "from DATABASE_URL" in run.stdout
    assert list(r.scan_iter(match="workshop:*")) == []
    assert db.tables() == []


def test_command_line_refuses_an_unknown_pattern():
    run = subprocess.run(
        [sys.executable, "-m", "helpers.bench", "no-such-pattern"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "invalid choice" in run.stderr
