"""Workshop settings read from the environment, in one place.

``WORKSHOP_SIZE`` picks how big the experiments are:

* ``workshop`` (default): the sizes the course's claims are about, up to
  1,000,000 players. Needs about 1 GB of free memory and a few minutes.
* ``ci``: small sizes so the whole test suite runs in a few minutes.

``WORKSHOP_5M=1`` adds a 5,000,000-player run to the leaderboard benchmark.
``WORKSHOP_PREFIX`` changes the key prefix (default ``workshop:``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SIZES = ("workshop", "ci")


@dataclass(frozen=True)
class Settings:
    size: str
    prefix: str
    leaderboard_sizes: tuple[int, ...]
    rank_samples: int
    sql_rank_samples: int
    concurrency_writers: int
    concurrency_increments: int
    memory_members: int
    stream_orders: int = 20_000  # notebook 02's event-sourcing log (about 2.8 events per order)
    # notebook 02's benchmark (helpers.streams_bench); defaults are the workshop sizes
    stream_bench_events: int = 200_000  # pipelined appends from one process; events read by the groups
    stream_bench_one_by_one: int = 20_000  # XADD one call at a time (about 10K/s)
    stream_bench_processes: tuple[int, ...] = (1, 2, 4)  # producer and consumer processes
    stream_bench_per_process: int = 100_000  # events per producer process
    stream_redis_benchmark_requests: int = 1_000_000  # redis-benchmark XADD, pipeline 32
    stream_latency_rate: int = 10_000  # events/s of the paced end-to-end latency run
    stream_latency_seconds: float = 5.0
    outbox_bench_events: int = 200_000  # PostgreSQL outbox: rows batched in, rows consumed
    outbox_bench_one_by_one: int = 5_000  # single-row INSERTs, one commit each
    # notebook 03's benchmark (helpers.ratelimit_bench, helpers.ratelimit_sql)
    ratelimit_limit: int = 10  # the race: requests allowed per window on one hot key
    ratelimit_trials: int = 200  # race trials per method, each on a fresh key
    ratelimit_clients: int = 16  # concurrent clients (threads) per trial
    ratelimit_calls_per_client: int = 20
    ratelimit_process_trials: int = 100  # the same race from separate processes (0: not run)
    ratelimit_watch_clients: tuple[int, ...] = (1, 2, 4, 8, 16)  # WATCH retries vs contention
    ratelimit_watch_trials: int = 20
    ratelimit_trace_seconds: int = 300  # the replayed trace (limit 10 per 1 s window)
    ratelimit_collision_requests: int = 9_999  # classic-script calls in one ms: the sliding log holds 10,000
    ratelimit_memory_limits: tuple[int, ...] = (10, 100, 1_000, 10_000)
    ratelimit_decision_calls: int = 20_000  # one connection, one decision per call
    ratelimit_processes: tuple[int, ...] = (1, 2, 4)  # aggregate decisions/s
    ratelimit_process_seconds: float = 3.0
    ratelimit_sql_trials: int = 100  # PostgreSQL race trials per method
    ratelimit_sql_calls: int = 5_000  # PostgreSQL decisions from one connection

    @property
    def is_ci(self) -> bool:
        return self.size == "ci"


def settings() -> Settings:
    """Read the settings; an unknown ``WORKSHOP_SIZE`` is an error, not a guess."""
    size = os.environ.get("WORKSHOP_SIZE", "workshop").strip().lower() or "workshop"
    if size not in SIZES:
        raise ValueError(f"WORKSHOP_SIZE must be one of {SIZES}, got {size!r}")
    prefix = os.environ.get("WORKSHOP_PREFIX", "workshop:")
    if not prefix or not prefix.endswith(":"):
        raise ValueError(f"WORKSHOP_PREFIX must be non-empty and end with ':', got {prefix!r}")
    if size == "ci":
        return Settings(
            size,
            prefix,
            (1_000, 10_000),
            300,
            50,
            4,
            100,
            10_000,
            stream_orders=500,
            stream_bench_events=10_000,
            stream_bench_one_by_one=1_000,
            stream_bench_processes=(1, 2),
            stream_bench_per_process=5_000,
            stream_redis_benchmark_requests=50_000,
            stream_latency_rate=10_000,
            stream_latency_seconds=1.0,
            outbox_bench_events=2_000,
            outbox_bench_one_by_one=200,
            ratelimit_trials=5,
            ratelimit_clients=8,
            ratelimit_calls_per_client=10,
            ratelimit_process_trials=0,
            ratelimit_watch_clients=(1, 4),
            ratelimit_watch_trials=3,
            ratelimit_trace_seconds=30,
            ratelimit_collision_requests=3_000,
            ratelimit_memory_limits=(10, 100),
            ratelimit_decision_calls=2_000,
            ratelimit_processes=(2,),
            ratelimit_process_seconds=0.5,
            ratelimit_sql_trials=5,
            ratelimit_sql_calls=300,
        )
    sizes = (1_000, 10_000, 100_000, 1_000_000)
    if os.environ.get("WORKSHOP_5M") == "1":
        sizes += (5_000_000,)
    return Settings(size, prefix, sizes, 5_000, 200, 8, 250, 100_000)
