"""How big every experiment of the course is: one keyword-only configuration, read from the environment.

``WORKSHOP_SIZE`` picks the size:

* ``workshop`` (default): the sizes the course's claims are about, up to
  1,000,000 players. Needs about 1 GB of free memory and a few minutes.
* ``ci``: small sizes so the whole test suite runs in a few minutes (``CI_SIZES``
  lists every field it changes).

``WORKSHOP_5M=1`` adds a 5,000,000-player run to the leaderboard benchmark.
``WORKSHOP_PREFIX`` changes the key prefix (default ``workshop:``; see ``helpers.keyspace``).

Every notebook, benchmark, production experiment and the doctor reads its sizes
here (``settings().<field>``), so a size is written once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from helpers import keyspace

SIZES = ("workshop", "ci")


@dataclass(frozen=True, kw_only=True)
class Settings:
    size: str = "workshop"
    prefix: str = "workshop:"
    # notebook 01 (helpers.bench.leaderboard)
    leaderboard_sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    rank_samples: int = 5_000  # ZREVRANK calls timed per board size
    sql_rank_samples: int = 200  # SQL rank queries timed per board size
    concurrency_writers: int = 8  # threads incrementing one board at once
    concurrency_increments: int = 250  # increments per thread
    memory_members: int = 100_000  # members per name length in the memory table
    # notebook 02 (helpers.bench.streams, helpers.bench.outbox)
    stream_orders: int = 20_000  # the event-sourcing log (about 2.8 events per order)
    stream_bench_events: int = 200_000  # pipelined appends from one process; events read by the groups
    stream_bench_one_by_one: int = 20_000  # XADD one call at a time (about 10K/s)
    stream_bench_processes: tuple[int, ...] = (1, 2, 4)  # producer and consumer processes
    stream_bench_per_process: int = 100_000  # events per producer process
    stream_redis_benchmark_requests: int = 1_000_000  # redis-benchmark XADD, pipeline 32
    stream_latency_rate: int = 10_000  # events/s of the paced end-to-end latency run
    stream_latency_seconds: float = 5.0
    outbox_bench_events: int = 200_000  # PostgreSQL outbox: rows batched in, rows consumed
    outbox_bench_one_by_one: int = 5_000  # single-row INSERTs, one commit each
    stream_io_events: int = 4_000  # consumers whose handler waits (I/O): events per run
    stream_io_handler_ms: float = 1.0  # how long that handler waits per event
    stream_io_workers: tuple[int, ...] = (1, 2, 4, 8)  # consumer processes of that run
    durability_events: int = 100_000  # producers at each durability setting: batched events
    durability_one_by_one: int = 5_000  # ...and one-call-per-event appends (an fsync each at "always")
    # notebook 03 (helpers.bench.ratelimit, helpers.bench.race)
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
    ratelimit_server_time_calls: int = 1_000  # decisions per variant and round, one at a time (server µs)
    ratelimit_server_time_rounds: int = 5
    ratelimit_service_clients: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 50)  # decisions/s against clients
    ratelimit_service_depths: tuple[int, ...] = (1, 16)  # requests in flight per client
    ratelimit_service_seconds: float = 1.5
    ratelimit_sql_trials: int = 100  # PostgreSQL race trials per method
    ratelimit_sql_calls: int = 5_000  # PostgreSQL decisions from one connection
    # notebooks 04 and 05 (helpers.production)
    persistence_seconds: float = 10.0  # how long the writer runs before the kill -9
    persistence_rate: int = 100  # ZADD + XADD pairs per second
    persistence_throughput_writes: int = 10_000  # writes timed per setting, one by one and pipelined
    persistence_batch: int = 100  # writes per pipeline
    blocking_script_ms: int = 1_500  # how long busy_loop spins in the latency demo
    blocking_calls: int = 10_000  # calls timed per course script
    blocking_board_size: int = 100_000  # players on the board the leaderboard scripts read
    unkillable_players: int = 100_000  # on the board before the snapshot (blocking.unkillable)
    unkillable_after_save: int = 10_000  # acknowledged after it
    fork_players: int = 1_000_000  # the board a BGSAVE and an AOF rewrite copy (persistence.fork_cost)
    switch_players: int = 100_000  # persistence.switch_rdb_to_aof
    replica_players: int = 100_000  # persistence.replicas_are_not_backups, primary_restart_empties_replicas
    failover_seconds_before: float = 3.0  # failover.failover_under_load: load before the kill -9
    failover_seconds_after: float = 4.0  # ... and after it
    failover_rate: int = 100  # calls per second per pattern
    memory_growth: tuple[int, ...] = (100_000, 250_000, 500_000, 1_000_000)  # boards for the projection
    memory_stream_entries: int = 100_000
    memory_stream_maxlen: int = 10_000
    eviction_maxmemory: str = "16mb"
    eviction_players: int = 100_000  # the board loaded before the cache floods in
    eviction_cache_writes: int = 24_000  # SET ... EX, 1 KB each: several times maxmemory
    eviction_new_players: int = 150_000  # the board keeps growing afterwards
    # make doctor's benchmark (helpers.course.doctor): about ten seconds on a 2-core laptop
    doctor_board: int = 200_000
    doctor_rank_calls: int = 10_000
    doctor_events: int = 200_000
    doctor_decisions: int = 5_000
    doctor_sql_rows: int = 100_000
    doctor_sql_calls: int = 30

    @property
    def is_ci(self) -> bool:
        return self.size == "ci"


# what the test suite runs (WORKSHOP_SIZE=ci): every step, small
CI_SIZES = dict(
    leaderboard_sizes=(1_000, 10_000),
    rank_samples=300,
    sql_rank_samples=50,
    concurrency_writers=4,
    concurrency_increments=100,
    memory_members=10_000,
    stream_orders=500,
    stream_bench_events=10_000,
    stream_bench_one_by_one=1_000,
    stream_bench_processes=(1, 2),
    stream_bench_per_process=5_000,
    stream_redis_benchmark_requests=50_000,
    stream_latency_seconds=1.0,
    outbox_bench_events=2_000,
    outbox_bench_one_by_one=200,
    stream_io_events=300,
    stream_io_workers=(1, 2),
    durability_events=5_000,
    durability_one_by_one=200,
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
    ratelimit_server_time_calls=100,
    ratelimit_server_time_rounds=2,
    ratelimit_service_clients=(1, 8),
    ratelimit_service_depths=(1, 16),
    ratelimit_service_seconds=0.3,
    ratelimit_sql_trials=5,
    ratelimit_sql_calls=300,
    persistence_seconds=3.0,
    persistence_throughput_writes=1_000,
    blocking_script_ms=600,
    blocking_calls=500,
    blocking_board_size=10_000,
    unkillable_players=10_000,
    unkillable_after_save=1_000,
    fork_players=100_000,
    switch_players=10_000,
    replica_players=10_000,
    failover_seconds_before=1.0,
    failover_seconds_after=1.5,
    failover_rate=50,
    memory_growth=(2_000, 5_000, 10_000, 20_000),
    memory_stream_entries=5_000,
    memory_stream_maxlen=1_000,
    eviction_maxmemory="4mb",
    eviction_players=15_000,
    eviction_cache_writes=6_000,
    eviction_new_players=30_000,
    doctor_board=10_000,
    doctor_rank_calls=500,
    doctor_events=5_000,
    doctor_decisions=500,
    doctor_sql_rows=5_000,
    doctor_sql_calls=10,
)


def settings() -> Settings:
    """Read the settings; an unknown ``WORKSHOP_SIZE`` is an error, not a guess."""
    size = os.environ.get("WORKSHOP_SIZE", "workshop").strip().lower() or "workshop"
    if size not in SIZES:
        raise ValueError(f"WORKSHOP_SIZE must be one of {SIZES}, got {size!r}")
    workshop = Settings(prefix=keyspace.prefix())
    if size == "ci":
        return replace(workshop, size="ci", **CI_SIZES)
    if os.environ.get("WORKSHOP_5M") == "1":
        return replace(workshop, leaderboard_sizes=workshop.leaderboard_sizes + (5_000_000,))
    return workshop
