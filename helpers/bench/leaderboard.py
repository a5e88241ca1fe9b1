"""Notebook 01's experiments: Redis against the SQL baseline, measured side by side.

* ``latency_by_size``: ZREVRANK, ZINCRBY and top-10 latency at growing N, and
  the same three jobs in SQL, without and with an index on score;
* ``concurrent_increments``: many writers bump one hot member at once;
* ``memory_by_name_length``: bytes per sorted-set member as names grow;
* ``rank_designs``: every way to rank (Redis, and four SQL designs), by place on the board,
  with what each costs a write; ``union_cost``: the server time of a weekly ``ZUNIONSTORE``.

Each returns a pandas DataFrame; ``main`` prints them for ``python -m helpers.bench``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import redis
from tqdm.auto import tqdm

from helpers import bounds
from helpers.baselines.leaderboard import ScoresTable
from helpers.baselines.sql import SqlBaseline
from helpers.bench import claims, durability, timing
from helpers.bench.claims import CLAIMS
from helpers.bench.sizes import settings
from helpers.clients import redis_label
from helpers.keyspace import key as workshop_key
from helpers.leaderboard import Leaderboard

SEED = 42


def make_scores(n: int, seed: int = SEED) -> dict[str, int]:
    """``n`` players ``p:<i>`` with random integer scores in [0, 1,000,000), ties included."""
    rng = np.random.default_rng(seed)
    return dict(zip((f"p:{i}" for i in range(n)), rng.integers(0, 1_000_000, n).tolist()))


def latency_by_size(
    r: redis.Redis, db: SqlBaseline, sizes, *, samples: int, sql_samples: int, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Latency of rank / increment / top-10 per N; and bulk-load rates.

    Redis' rank is measured twice: the raw ``ZREVRANK`` (ties broken by name)
    and ``Leaderboard.rank``, the fair competition rank in Lua, which is what
    the SQL ``COUNT(*)`` computes. Returns ``(latency, loads)``: one row per
    (N, system, operation) with p50/p99/p99.9 in ms and the sample count, and
    one row per (N, system) with the load rate.
    """
    rows, loads = [], []
    redis_system = redis_label(r)
    systems = {
        "redis": redis_system,
        "redis fair": f"{redis_system}, fair rank (Lua)",
        "sql": f"{db.label}, no index",
        "sql+index": f"{db.label}, index on score",
    }

    def measure(
        n: int, system: str, operations: dict, arguments: list, warmup: int = 20, commands: dict | None = None
    ) -> None:
        for operation, call in operations.items():
            command = (commands or {}).get(operation)
            before = command_stats(r, command) if command else None
            summary = timing.summarize(timing.time_calls(call, arguments, warmup=warmup))
            server_us = per_call_us(before, command_stats(r, command)) if command else float("nan")
            rows.append(
                {"N": n, "system": systems[system], "operation": operation, **summary, "server_us": server_us}
            )

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
        loads.append({"N": n, "system": redis_system, "seconds": time.perf_counter() - started})
        key = board.key
        measure(
            n,
            "redis",
            {
                "rank": lambda p: r.zrevrank(key, p),  # noqa: B023 - called before the loop moves on
                "increment": lambda p: r.zincrby(key, 1, p),  # noqa: B023
                "top 10": lambda p: r.zrevrange(key, 0, 9, withscores=True),  # noqa: B023
            },
            players,
            commands={"rank": "zrevrank", "increment": "zincrby", "top 10": "zrevrange"},
        )
        measure(n, "redis fair", {"rank": board.rank}, players, commands={"rank": "evalsha"})
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
            measure(
                n,
                variant,
                {
                    "rank": table.rank,
                    "increment": lambda p: table.incr(p, 1),  # noqa: B023
                    "top 10": lambda p: table.top(10),  # noqa: B023
                },
                sql_players,
                warmup=3,
            )
            bar.update()
        table.drop()
    bar.close()
    loads_df = pd.DataFrame(loads)
    loads_df["rows_per_s"] = loads_df["N"] / loads_df["seconds"]
    return pd.DataFrame(rows), loads_df


def command_stats(r: redis.Redis, command: str) -> tuple[int, int]:
    """``(calls, microseconds)`` the server has spent on ``command`` so far (``INFO commandstats``)."""
    stats = r.info("commandstats").get(f"cmdstat_{command.lower()}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def per_call_us(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Server microseconds per call between two ``command_stats`` readings (NaN if no call ran).

    Read as a difference, so nothing is reset on the server (other clients' calls of
    the same command in between count too: on a busy shared server, read it as an upper bound).
    """
    calls, usec = after[0] - before[0], after[1] - before[1]
    return usec / calls if calls > 0 else float("nan")


def rank_designs(
    r: redis.Redis, db: SqlBaseline, n: int, *, samples: int, sql_samples: int, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every way to get a competition rank at ``n`` players, by the player's place on the board.

    Redis: ``ZREVRANK`` (ties by name) and ``Leaderboard.rank`` (fair, Lua). SQL, each
    with the index on score: ``count(*)`` with the score from a sub-select, the same with
    the score as a literal, a bucket table kept by a trigger (about sqrt(n) buckets of
    sqrt(n) players), and a materialized view of every rank. Players are drawn from the
    top, the middle and the bottom of the board (``top`` is the best ``k`` players,
    ``k = min(100, n // 10)``).

    Returns ``(ranks, writes)``: ``ranks`` one row per (design, position): p50/p99 ms and
    whether the design's ranks equal Redis' fair ranks for those players (``agrees``);
    ``writes`` one row per design: what one increment costs it (p50/p99 ms) and how stale
    its ranks can get (``stale_s``: 0 when exact, else the seconds a full refresh takes).
    """
    scores = make_scores(n)
    ordered = sorted(scores, key=lambda player: (-scores[player], player))
    k = max(1, min(100, n // 10))
    rng = np.random.default_rng(SEED)
    groups = {
        "top": ordered[:k],
        "middle": ordered[n // 2 - k // 2 : n // 2 - k // 2 + k],
        "bottom": ordered[-k:],
    }
    picked = {where: rng.choice(group, size=samples).tolist() for where, group in groups.items()}
    bar = tqdm(total=5, desc=f"rank designs at N={n:,}", unit=" step", disable=not progress)
    redis_system = redis_label(r)
    board = Leaderboard(r, f"designs:{n}")
    board.delete()
    board.add_many(scores, progress=False)
    table = ScoresTable(db, f"lb_designs_{n}")
    table.create(scores, progress=False)
    table.add_score_index()
    width = (max(scores.values()) - min(scores.values()) + 1) / max(1.0, n**0.5)
    table.add_buckets(width)
    view_s = table.add_rank_view()
    bar.update()
    designs = [
        (redis_system, "ZREVRANK (ties by name)", lambda p: r.zrevrank(board.key, p), samples),
        (redis_system, "Leaderboard.rank (fair, Lua)", board.rank, samples),
        (db.label, "count(*), score by sub-select", table.rank, sql_samples),
        (db.label, "count(*), score as a literal", table.rank_by_literal, sql_samples),
        (db.label, "bucket table (trigger)", table.rank_by_buckets, sql_samples),
        (db.label, "materialized view", table.rank_from_view, sql_samples),
    ]
    rows = []
    for system, design, rank, count in designs:
        for where, players in picked.items():
            summary = timing.summarize(timing.time_calls(rank, players[:count], warmup=min(5, count - 1)))
            checked = players[:20]
            fair = design != designs[0][1]  # ZREVRANK answers another question: a position, ties by name
            agrees = [rank(p) for p in checked] == [board.rank(p) for p in checked] if fair else None
            rows.append({"system": system, "design": design, "position": where, **summary, "agrees": agrees})
    bar.update()
    hot = rng.choice(ordered, size=sql_samples).tolist()
    redis_players = rng.choice(ordered, size=samples).tolist()
    writes = [
        _write_row(redis_system, "ZINCRBY", lambda p: r.zincrby(board.key, 1, p), redis_players),
        _write_row(db.label, "UPDATE score = score + 1, bucket trigger", lambda p: table.incr(p, 1), hot),
    ]
    # after the writes, the trigger-kept buckets must still rank as a fresh count(*) does
    writes[1]["exact_after_writes"] = all(table.rank_by_buckets(p) == table.rank(p) for p in hot[:20])
    bar.update()
    table.drop_buckets()  # the count(*) designs and the view need no trigger: a plain UPDATE
    refresh_s = table.refresh_rank_view()
    writes.append(_write_row(db.label, "UPDATE score = score + 1", lambda p: table.incr(p, 1), hot))
    writes.append({**writes[-1], "write": "UPDATE, then REFRESH MATERIALIZED VIEW", "stale_s": refresh_s})
    bar.update()
    board.delete()
    table.drop()
    bar.update()
    bar.close()
    ranks = pd.DataFrame(rows)
    written = pd.DataFrame(writes)
    written.attrs["view_build_s"] = view_s
    return ranks, written


def union_cost(r: redis.Redis, *, members: int, days: int = 7, repeats: int = 3) -> float:
    """Server seconds one ``ZUNIONSTORE`` of ``days`` boards of ``members`` players takes (commandstats).

    The best of ``repeats`` unions: a single one of a few milliseconds is mostly noise.
    """
    bounds_ok = isinstance(members, int) and members >= 1 and isinstance(days, int) and 1 <= days <= 31
    if not bounds_ok:
        raise ValueError(f"members must be >= 1 and days 1 to 31, got {members!r} and {days!r}")
    bounds.at_least("repeats", repeats)
    sources = [workshop_key("lb", "{union}", f"day{day}") for day in range(days)]
    week = workshop_key("lb", "{union}", "week")
    try:
        for source in sources:
            load_padded_board(r, source, members, 8)
        times_us = []
        for _ in range(repeats):
            before = command_stats(r, "zunionstore")
            r.zunionstore(week, sources)
            times_us.append(per_call_us(before, command_stats(r, "zunionstore")))
        return min(times_us) / 1e6
    finally:
        r.unlink(week, *sources)


def _write_row(system: str, write: str, call, players: list) -> dict:
    """One write design's latency; its ranks are exact after every write (``stale_s`` 0)."""
    summary = timing.summarize(timing.time_calls(call, players, warmup=min(5, len(players) - 1)))
    return {"system": system, "write": write, **summary, "stale_s": 0.0}


def claims_table(
    latency: pd.DataFrame, loads: pd.DataFrame, designs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Notebook 01's claims at the largest board measured, judged on this run's figures.

    ``latency`` and ``loads`` come from ``latency_by_size``, ``designs`` (optional)
    from ``rank_designs``. Redis is the plain commands (the shortest system name
    starting with "Redis"), the SQL rank the best of the ``count(*)`` variants (p99); the
    fair Lua rank and SQL's COPY are shown beside, and the bucket table (a rank structure
    built in SQL) as context, at the player place where it is slowest.
    """
    largest = int(latency.N.max())
    ranks = latency[(latency.operation == "rank") & (latency.N == largest)].set_index("system").p99_ms
    redis_system = min((s for s in ranks.index if s.startswith("Redis")), key=len)
    redis_p99 = float(ranks[redis_system])
    fair_p99 = float(ranks[ranks.index.str.contains("fair rank")].iloc[0])
    best_sql_p99 = float(ranks[~ranks.index.str.startswith("Redis")].min())
    rates = loads[loads.N == largest].set_index("system").rows_per_s
    sql_system = next(s for s in rates.index if not s.startswith("Redis"))
    at = f" at {largest:,} players"
    rows = [
        ("ZREVRANK p99", redis_p99, {"beside it": f"fair rank (Lua) {fair_p99:.3f} ms"}),
        ("SQL rank gap", best_sql_p99 / redis_p99,
         {"beside it": f"best SQL count(*) p99 {best_sql_p99:.2f} ms; "
                       f"{best_sql_p99 / fair_p99:,.0f}x the fair rank's"}),
        ("bulk load", float(rates[redis_system]),
         {"beside it": f"{sql_system} COPY {rates[sql_system]:,.0f} rows/s"}),
    ]  # fmt: skip
    if designs is not None:
        buckets = designs[designs.design.str.startswith("bucket")]
        worst = buckets.loc[buckets.p99_ms.idxmax()]
        plain = designs[designs.design.str.startswith("ZREVRANK") & (designs.position == worst.position)]
        rows.append(("SQL bucket rank", float(worst.p99_ms / plain.p99_ms.iloc[0]),
                     {"beside it": f"bucket table p99 {worst.p99_ms:.2f} ms ({worst.position} of the board), "
                                   "paid for by a trigger on every write"}))  # fmt: skip
    label = {CLAIMS[name]: CLAIMS[name].text + at for name, *_ in rows}
    return claims.table(rows, label=label)


def speedups(
    latency: pd.DataFrame, operation: str = "rank", column: str = "p50_ms", reference: str | None = None
) -> pd.DataFrame:
    """For each N: how many times slower each SQL variant is than the ``reference`` Redis system.

    ``reference`` defaults to the plain Redis commands (the shortest system
    name starting with "Redis").
    """
    wide = latency[latency.operation == operation].pivot(index="N", columns="system", values=column)
    redis_systems = [c for c in wide.columns if c.startswith("Redis")]
    reference = reference or min(redis_systems, key=len)
    if reference not in redis_systems:
        raise ValueError(f"reference must be one of {redis_systems}, got {reference!r}")
    others = wide.drop(columns=redis_systems)
    return others.div(wide[reference], axis=0).add_prefix("x faster than ")


def concurrent_increments(r: redis.Redis, db: SqlBaseline, *, writers: int, increments: int) -> pd.DataFrame:
    """``writers`` threads each add 1 to the same member ``increments`` times.

    Five ways: in both Redis and SQL, reading the score and writing back the
    sum from the application (the lost-update bug), and doing the addition
    on the server (ZINCRBY; ``UPDATE ... SET score = score + 1``); plus SQL's
    fix for the read-then-write, ``SELECT ... FOR UPDATE``.
    """
    expected = writers * increments
    member = "p:hot"
    board = Leaderboard(r, "concurrency")
    table = ScoresTable(db, "lb_concurrency")
    table.create({member: 0}, progress=False)

    def redis_read_then_write():
        return lambda: r.zadd(board.key, {member: r.zscore(board.key, member) + 1})

    opened = []

    def sql_step(kind: str):
        conn = db.connect()
        opened.append(conn)
        if kind == "server":
            return lambda: table.incr(member, 1, conn)
        return lambda: table.read_modify_write(conn, member, 1, lock=kind == "lock")

    methods = [
        ("Redis", "ZSCORE, then ZADD (read, then write)", redis_read_then_write),
        ("Redis", "ZINCRBY (adds on the server)", lambda: lambda: r.zincrby(board.key, 1, member)),
        (db.label, "SELECT, then UPDATE (read, then write)", lambda: sql_step("none")),
        (db.label, "SELECT ... FOR UPDATE, then UPDATE", lambda: sql_step("lock")),
        (db.label, "UPDATE SET score = score + 1 (on the server)", lambda: sql_step("server")),
    ]
    results = []
    for system, method, make_step in methods:
        if system == "Redis":
            board.add(member, 0)
        else:
            db.execute(f"UPDATE {table.table} SET score = 0")
        seconds = _run_together(writers, increments, make_step)
        final = board.score(member) if system == "Redis" else table.score(member)
        results.append((system, method, final, seconds))
    for conn in opened:
        conn.close()
    board.delete()
    table.drop()
    frame = pd.DataFrame(results, columns=["system", "method", "final", "seconds"])
    frame.insert(2, "expected", expected)
    frame["lost"] = frame["expected"] - frame["final"]
    frame["increments_per_s"] = expected / frame["seconds"]
    return frame


def _run_together(writers: int, increments: int, make_step) -> float:
    """Start ``writers`` threads at once, each calling its own step ``increments`` times."""
    start_together = threading.Barrier(writers)

    def writer(_: int) -> None:
        step = make_step()
        start_together.wait()
        for _ in range(increments):
            step()

    started = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    return time.perf_counter() - started


def load_padded_board(
    r: redis.Redis, key: str, members: int, name_length: int, *, chunk: int = 10_000
) -> None:
    """(Re)create ``key`` as a board of ``members`` names ``p:<i>`` padded with ``x`` to ``name_length``."""
    r.unlink(key)
    names = [f"p:{i}".ljust(name_length, "x") for i in range(members)]
    pipe = r.pipeline(transaction=False)
    for start in range(0, members, chunk):
        pipe.zadd(key, {name: i for i, name in enumerate(names[start : start + chunk], start)})
    pipe.execute()


def memory_by_name_length(r: redis.Redis, *, members: int, lengths=(8, 16, 32, 64, 128)) -> pd.DataFrame:
    """MEMORY USAGE per member of a ``members``-strong sorted set, by member-name length."""
    rows = []
    for length in lengths:
        if length < 8:
            raise ValueError("names shorter than 8 characters cannot hold a unique number")
        key = workshop_key("lb", "memory", str(length))
        load_padded_board(r, key, members, length)
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
    server = latency.dropna(subset=["server_us"]).pivot(
        index="N", columns=["system", "operation"], values="server_us"
    )
    print("\nServer time per call (µs, INFO commandstats)\n", server.round(2).to_string())
    ranks, writes = rank_designs(
        r, db, max(config.leaderboard_sizes), samples=config.rank_samples, sql_samples=config.sql_rank_samples
    )
    print(f"\nRank designs at {max(config.leaderboard_sizes):,} players, p99 ms by place on the board\n",
          ranks.pivot(index="design", columns="position", values="p99_ms").round(3).to_string())  # fmt: skip
    print("\nWhat each design costs a write\n", writes.round(4).to_string(index=False))
    print("\n" + durability.described(r, db))
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
