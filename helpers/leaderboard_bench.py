"""Notebook 01's experiments: Redis against the SQL baseline, measured side by side.

* ``latency_by_size``: ZREVRANK, ZINCRBY and top-10 latency at growing N, and
  the same three jobs in SQL, without and with an index on score;
* ``concurrent_increments``: many writers bump one hot member at once;
* ``memory_by_name_length``: bytes per sorted-set member as names grow.

Each returns a pandas DataFrame; ``main`` prints them for ``python -m helpers.bench``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import redis
from tqdm import tqdm

from helpers import bench
from helpers.config import settings
from helpers.keyspace import key as workshop_key
from helpers.leaderboard import Leaderboard
from helpers.leaderboard_sql import ScoresTable
from helpers.sql import SqlBaseline

SEED = 42


def make_scores(n: int, seed: int = SEED) -> dict[str, int]:
    """``n`` players ``p:<i>`` with random integer scores in [0, 1,000,000), ties included."""
    rng = np.random.default_rng(seed)
    return dict(zip((f"p:{i}" for i in range(n)), rng.integers(0, 1_000_000, n).tolist()))


def redis_label(r: redis.Redis) -> str:
    return f"Redis {r.info('server')['redis_version']}"


def latency_by_size(
    r: redis.Redis, db: SqlBaseline, sizes, *, samples: int, sql_samples: int, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Latency of rank / increment / top-10 per N; and bulk-load rates.

    Returns ``(latency, loads)``: one row per (N, system, operation) with
    p50/p99/p99.9 in ms, and one row per (N, system) with the load rate.
    """
    rows, loads = [], []
    systems = {
        "redis": redis_label(r),
        "sql": f"{db.label}, no index",
        "sql+index": f"{db.label}, index on score",
    }
    bar = tqdm(total=4 * len(sizes), desc="benchmark", unit=" step", disable=not progress)
    for n in sizes:
        scores = make_scores(n)
        rng = np.random.default_rng(SEED + n)
        players = rng.choice(list(scores), size=samples).tolist()
        sql_players = players[:sql_samples]

        bar.set_description(f"N={n:,}: Redis")
        board = Leaderboard(r, f"bench:{n}")
        board.delete()
        started = time.perf_counter()
        board.add_many(scores, progress=False)
        loads.append({"N": n, "system": systems["redis"], "seconds": time.perf_counter() - started})
        operations = {
            "rank": lambda p, key=board.key: r.zrevrank(key, p),
            "increment": lambda p, key=board.key: r.zincrby(key, 1, p),
            "top 10": lambda p, key=board.key: r.zrevrange(key, 0, 9, withscores=True),
        }
        for operation, call in operations.items():
            samples_ms = bench.time_calls(call, players)
            rows.append(
                {"N": n, "system": systems["redis"], "operation": operation, **bench.summarize(samples_ms)}
            )
        board.delete()
        bar.update()

        bar.set_description(f"N={n:,}: SQL load")
        table = ScoresTable(db, f"lb_bench_{n}")
        started = time.perf_counter()
        table.create(scores, progress=False)
        loads.append({"N": n, "system": db.label, "seconds": time.perf_counter() - started})
        bar.update()
        for variant in ("sql", "sql+index"):
            bar.set_description(f"N={n:,}: {systems[variant]}")
            if variant == "sql+index":
                table.add_score_index()
            operations = {
                "rank": table.rank,
                "increment": lambda p, table=table: table.incr(p, 1),
                "top 10": lambda p, table=table: table.top(10),
            }
            for operation, call in operations.items():
                samples_ms = bench.time_calls(call, sql_players, warmup=3)
                rows.append(
                    {
                        "N": n,
                        "system": systems[variant],
                        "operation": operation,
                        **bench.summarize(samples_ms),
                    }
                )
            bar.update()
        table.drop()
    bar.close()
    loads_df = pd.DataFrame(loads)
    loads_df["rows_per_s"] = loads_df["N"] / loads_df["seconds"]
    return pd.DataFrame(rows), loads_df


def speedups(latency: pd.DataFrame, operation: str = "rank", column: str = "p50_ms") -> pd.DataFrame:
    """For each N: how many times faster Redis is than each SQL variant."""
    wide = latency[latency.operation == operation].pivot(index="N", columns="system", values=column)
    redis_column = next(c for c in wide.columns if c.startswith("Redis"))
    return wide.drop(columns=redis_column).div(wide[redis_column], axis=0).add_prefix("x faster than ")


def concurrent_increments(r: redis.Redis, db: SqlBaseline, *, writers: int, increments: int) -> pd.DataFrame:
    """``writers`` threads each add 1 to the same member ``increments`` times.

    Redis does it with ZINCRBY; SQL reads, adds in Python and writes back,
    once without a lock and once with ``SELECT ... FOR UPDATE``.
    """
    expected = writers * increments
    member = "p:hot"
    board = Leaderboard(r, "concurrency")
    board.delete()
    board.add(member, 0)
    table = ScoresTable(db, "lb_concurrency")
    table.create({member: 0}, progress=False)

    def run(make_writer) -> float:
        start_together = threading.Barrier(writers)

        def writer(_: int) -> None:
            step = make_writer()
            start_together.wait()
            for _ in range(increments):
                step()

        started = time.perf_counter()
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(writer, range(writers)))
        return time.perf_counter() - started

    def sql_writer(lock: bool):
        conn = db.connect()
        return lambda: table.read_modify_write(conn, member, 1, lock=lock)

    results = []
    seconds = run(lambda: lambda: r.zincrby(board.key, 1, member))
    results.append(("Redis", "ZINCRBY", board.score(member), seconds))
    for lock, method in ((False, "SELECT, then UPDATE"), (True, "SELECT ... FOR UPDATE, then UPDATE")):
        db.execute(f"UPDATE {table.table} SET score = 0")
        seconds = run(lambda lock=lock: sql_writer(lock))
        results.append((db.label, method, table.score(member), seconds))
    board.delete()
    table.drop()
    frame = pd.DataFrame(results, columns=["system", "method", "final", "seconds"])
    frame.insert(2, "expected", expected)
    frame["lost"] = frame["expected"] - frame["final"]
    frame["increments_per_s"] = expected / frame["seconds"]
    return frame


def memory_by_name_length(r: redis.Redis, *, members: int, lengths=(8, 16, 32, 64, 128)) -> pd.DataFrame:
    """MEMORY USAGE per member of a ``members``-strong sorted set, by member-name length."""
    rows = []
    for length in lengths:
        if length < 8:
            raise ValueError("names shorter than 8 characters cannot hold a unique number")
        key = workshop_key("lb", "memory", str(length))
        r.unlink(key)
        names = [f"p:{i}".ljust(length, "x") for i in range(members)]
        pipe = r.pipeline(transaction=False)
        for start in range(0, members, 10_000):
            pipe.zadd(key, {name: i for i, name in enumerate(names[start : start + 10_000], start)})
        pipe.execute()
        used = r.memory_usage(key, samples=0)
        rows.append(
            {
                "name_length": length,
                "members": members,
                "encoding": r.object("encoding", key),
                "bytes_total": used,
                "bytes_per_member": used / members,
            }
        )
        r.unlink(key)
    return pd.DataFrame(rows)


def main(r: redis.Redis, db: SqlBaseline) -> None:
    config = settings()
    print(f"workshop size: {config.size}; sizes: {', '.join(f'{n:,}' for n in config.leaderboard_sizes)}")
    latency, loads = latency_by_size(
        r, db, config.leaderboard_sizes, samples=config.rank_samples, sql_samples=config.sql_rank_samples
    )
    print("\nLatency (ms)\n", latency.round(4).to_string(index=False))
    print("\nBulk load\n", loads.round(1).to_string(index=False))
    print("\nRank p50: Redis is this many times faster\n", speedups(latency).round(0).to_string())
    print(
        "\nRank p99: Redis is this many times faster\n",
        speedups(latency, column="p99_ms").round(0).to_string(),
    )
    print(
        "\nConcurrent increments\n",
        concurrent_increments(
            r, db, writers=config.concurrency_writers, increments=config.concurrency_increments
        )
        .round(3)
        .to_string(index=False),
    )
    print(
        "\nMemory\n", memory_by_name_length(r, members=config.memory_members).round(1).to_string(index=False)
    )
