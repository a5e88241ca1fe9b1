"""Notebook 03's experiments: rate limiters on Redis raced, replayed, weighed and timed.

* the race is ``helpers.bench.race`` (``race_trials``, ``race_summary``,
  ``watch_retries_by_contention``), used here for ``main`` and ``claims_table``;
* ``clock_skew``: the classic script trusts each app server's clock;
* ``member_collisions``: the classic script's ``now-<math.random>`` members;
* ``trace`` + ``compare_algorithms``: one recorded trace (steady traffic, bursts
  either side of window edges) through all four algorithms and the exact oracle;
* ``memory_per_key``: MEMORY USAGE of one key per algorithm as the limit grows;
* ``decisions_per_second`` (one connection, latency percentiles); what one Redis serves many
  clients, and the server's time per decision beside the ``limits`` library, is
  ``helpers.bench.limiter_service``;
* ``refusals``: what every algorithm answers, under each policy, when Redis says no
  (a full server, a busy one, a stopped one), beside the classic script without flags.

The PostgreSQL sliding log is ``helpers.baselines.ratelimit``. Each experiment returns
a pandas DataFrame; ``claims_table`` lines the figures up against the notebook's
claims; ``main`` prints everything for ``python -m helpers.bench ratelimit``.
Keys are ``RateLimiter`` keys under the workshop prefix
(``workshop:ratelimit:{rlbench:...}``), deleted afterwards; processes come from
``helpers.bench.processes`` (spawn, a start gate, every one joined).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import redis

from helpers import bounds, scripts, servers
from helpers.baselines import ratelimit as ratelimit_sql
from helpers.baselines.sql import SqlBaseline
from helpers.bench import claims, limiter_service, timing
from helpers.bench.claims import CLAIMS
from helpers.bench.race import (
    CLASSIC,
    METHODS,
    NAME,
    bench_key,
    positive,
    race_summary,
    race_trials,
    remove,
    watch_retries_by_contention,
)
from helpers.bench.race import now_ms as client_clock_ms
from helpers.bench.sizes import settings
from helpers.clients import url_of
from helpers.ratelimit import ALGORITHMS, RateLimiter, sliding_window_oracle

CONDITIONS = ("full (maxmemory, noeviction)", "busy (another script runs)", "stopped")


def refusals(*, busy_ms: int = 2_000, timeout_s: float = 0.2) -> pd.DataFrame:
    """Every algorithm's ``RateLimiter``, failing closed and open, when a throwaway Redis says no.

    In turn the server is full (``maxmemory`` 1 byte, ``noeviction``: every write refused),
    busy (another client's ``busy_loop`` runs past ``busy-reply-threshold``, 100 ms here:
    every command gets BUSY) and stopped. One row per condition, algorithm and policy:
    what ``hit`` answered, whether it was ``degraded`` (the policy decided) and how long the
    answer took. On the full server the classic script (no ``#!lua`` flags) is called too:
    its first write, ZREMRANGEBYSCORE, is not refused, and after it its ZADD goes through.
    ``keys_written`` counts the keys that appeared on the full server, per row.
    """
    bounds.integer("busy_ms", busy_ms, 500, 10_000)
    server = servers.start_redis_binary(extra_args=("--busy-reply-threshold", "100"))
    rows: list[dict] = []
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        limiters = {
            (algorithm, policy): RateLimiter(client, 3, 60, algorithm, on_error=policy, timeout_s=timeout_s)
            for algorithm in sorted(ALGORITHMS)
            for policy in ("closed", "open")
        }
        for limiter in limiters.values():
            limiter.hit("warm")  # each script is in the server's cache before the server says no

        def decide(condition: str, hit, algorithm: str, policy: str) -> None:
            before = client.dbsize() if condition == full else 0
            started = time.perf_counter()
            allowed, degraded = hit()
            answered_ms = (time.perf_counter() - started) * 1000
            wrote = condition == full and client.dbsize() != before
            row = {"condition": condition, "algorithm": algorithm, "on_error": policy, "allowed": allowed}
            rows.append(row | {"degraded": degraded, "answered_ms": answered_ms, "wrote": wrote})

        no_flags = client.register_script(scripts.source(CLASSIC).split("\n", 1)[1])  # without its #!lua line
        classic_key, now = bench_key("refusals:classic"), client_clock_ms()

        def classic_hit() -> tuple[bool, bool]:
            return no_flags(keys=[classic_key], args=[60, 3, now]) == 1, False

        full = CONDITIONS[0]
        client.config_set("maxmemory", 1)
        try:
            for (algorithm, policy), limiter in limiters.items():
                decide(full, functools.partial(_as_pair, limiter, "full"), algorithm, policy)
            no_flags.sha = client.script_load(no_flags.script)  # loading is allowed at maxmemory
            decide(full, classic_hit, "classic script without #!lua", "-")
        finally:
            client.config_set("maxmemory", 0)

        slow = scripts.load(redis.Redis.from_url(server.url), "busy_loop")
        spinning = threading.Thread(target=lambda: slow(args=[busy_ms]), daemon=True)
        spinning.start()
        _wait_for_busy(server.url)
        for (algorithm, policy), limiter in limiters.items():
            decide(CONDITIONS[1], functools.partial(_as_pair, limiter, "busy"), algorithm, policy)
        spinning.join(timeout=busy_ms / 1000 + 10)

        server.stop()
        for (algorithm, policy), limiter in limiters.items():
            decide(CONDITIONS[2], functools.partial(_as_pair, limiter, "stopped"), algorithm, policy)
    finally:
        server.stop()
    return pd.DataFrame(rows)


def _as_pair(limiter: RateLimiter, key: str) -> tuple[bool, bool]:
    decision = limiter.hit(key)
    return decision.allowed, decision.degraded


def _wait_for_busy(url: str, timeout: float = 10.0) -> None:
    """Return once the server answers BUSY (the other client's script is past the threshold)."""
    probe = redis.Redis.from_url(url, socket_timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                probe.ping()
            except redis.ResponseError as error:
                if str(error).startswith("BUSY"):
                    return
                raise
            time.sleep(0.02)
        raise RuntimeError("the server never answered BUSY: is the script running?")
    finally:
        probe.close()


def _max_in_window(times_ms, window_ms: int) -> int:
    """The most admitted requests in any window (t - window_ms, t]."""
    t = np.sort(np.asarray(times_ms, dtype=np.int64))
    return int((np.arange(len(t)) - np.searchsorted(t, t - window_ms, side="right") + 1).max(initial=0))


def _replay(limiter: RateLimiter, name: str, times_ms) -> list[bool]:
    """Decide requests at the given times (``now_ms`` passed), in ONE pipeline round trip.

    The scripts set TTLs from the passed times (a fixed window's can be 1 ms)
    but Redis expires keys in real time: pipelined, the replay runs faster than
    the trace, so no key expires early.
    """
    pipe, keys = limiter.redis.pipeline(transaction=False), limiter.keys(name)
    for t in times_ms:
        limiter.script(keys=keys, args=[limiter.period_s, limiter.limit, int(t), 1], client=pipe)
    return [bool(int(reply[0])) for reply in pipe.execute()]


# --- the classic script's weaknesses ------------------------------------------------------------


def clock_skew(r: redis.Redis, *, skews_ms=(0, 250, 500), limit: int = 10, window_ms: int = 1_000,
               seconds: int = 20) -> pd.DataFrame:  # fmt: skip
    """App servers with skewed clocks share one limit: the classic script against the fixed one.

    A deterministic construction, not a wall-clock run: server i sends a request
    every ``len(skews) * window_ms / (2 * limit)`` ms of true time (together twice
    the limit), staggered. The classic script is passed ``true time + skew_i``,
    each server's own clock: a server whose clock runs ahead deletes the others'
    entries early and takes their share. The fixed script is called without a
    time and reads Redis' clock (TIME), one clock for every server, so a skew
    has no way in; the replay passes the true time in its place (the same single
    clock, made reproducible). A control row runs the classic script with every
    clock right. ``max_in_window``: admissions in any true window.
    """
    n = len(skews_ms)
    positive(limit=limit, window_ms=window_ms, seconds=seconds, servers=n)
    interval = max(1, n * window_ms // (2 * limit))
    sends = sorted(
        (t, i) for i in range(n) for t in range(i * (interval // n) + 7 * i + 1, seconds * 1000, interval)
    )
    true = [t for t, _ in sends]
    oracle = sliding_window_oracle(true, limit, window_ms)
    classic, fixed = scripts.load(r, CLASSIC), RateLimiter(r, limit, window_ms / 1000, name=NAME)
    cases = [("classic, each server's clock", skews_ms), ("classic, clocks agree", (0,) * n),
             ("fixed: one clock for all (TIME; replayed as the true time)", skews_ms)]  # fmt: skip
    rows = []
    try:
        for case, (script, skews) in enumerate(cases):
            if script.startswith("classic"):
                pipe, key = r.pipeline(transaction=False), bench_key(f"skew:{case}")
                for t, i in sends:
                    classic(keys=[key], args=[window_ms / 1000, limit, t + skews[i]], client=pipe)
                allowed = [reply == 1 for reply in pipe.execute()]
            else:
                allowed = _replay(fixed, f"skew:{case}", true)
            admitted = [t for t, ok in zip(true, allowed) if ok]
            per_server = "/".join(
                str(sum(ok for (_, i), ok in zip(sends, allowed) if i == s)) for s in range(n)
            )
            rows.append((script, "/".join(f"{s:+d}" for s in skews), len(sends), len(admitted), sum(oracle),
                         per_server, sum(a != b for a, b in zip(allowed, oracle)), limit,
                         _max_in_window(admitted, window_ms)))  # fmt: skip
    finally:
        remove(r, "skew")
    columns = ["script", "clocks_ms", "requests", "admitted", "oracle_admitted", "admitted_per_server",
               "mismatches", "limit", "max_in_window"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["over"] = frame.max_in_window - frame.limit
    return frame


def member_collisions(r: redis.Redis, *, requests: int = 20_000, now_ms: int | None = None) -> pd.DataFrame:
    """``requests`` calls in the SAME millisecond (one ``now`` passed); the limit is never reached.

    The classic script's member is ``now .. '-' .. math.random(1000000)``: two
    requests of one millisecond that draw the same number write one member, so
    the log under-counts and later requests get in over the limit. Were
    ``math.random`` re-seeded for every script run, every draw would be equal and
    all but one would collide; Redis 7.0 does not re-seed it per call
    (``distinct_suffixes`` shows it), so the loss follows the birthday problem:
    about n^2 / 2,000,000 of n (``expected_lost``). The fixed script names a member
    by its millisecond and its place among that millisecond's entries: none lost.
    """
    positive(requests=requests)
    now = client_clock_ms() if now_ms is None else now_ms
    classic, fixed = scripts.load(r, CLASSIC), RateLimiter(r, requests + 1, 3600, name=NAME)
    try:
        pipe, key = r.pipeline(transaction=False), bench_key("collide:classic")
        for _ in range(requests):
            classic(keys=[key], args=[3600, requests + 1, now], client=pipe)
        admitted = sum(reply == 1 for reply in pipe.execute())
        suffixes = len({member.rsplit("-", 1)[1] for member in r.zrange(key, 0, -1)})
        expected = requests - 1e6 * (1 - (1 - 1e-6) ** requests)
        rows = [("classic: now-math.random(1000000)", admitted, r.zcard(key), suffixes, expected)]
        hits = [("collide:fixed", 1)] * requests
        batches = [fixed.hit_many(hits[i : i + 1_000], now_ms=now) for i in range(0, requests, 1_000)]
        members = r.zcard(fixed.keys("collide:fixed")[0])
        admitted = sum(d.allowed for b in batches for d in b)
        rows.append(("fixed: now-place in its ms", admitted, members, members, 0.0))
    finally:
        remove(r, "collide")
    frame = pd.DataFrame(
        rows, columns=["script", "admitted", "members", "distinct_suffixes", "expected_lost"]
    )
    frame.insert(1, "requests_in_one_ms", requests)
    frame["lost"] = frame.admitted - frame.members
    return frame


# --- one trace through every algorithm -----------------------------------------------------------


def trace(seed: int = 42, *, limit: int = 10, window_ms: int = 1_000, seconds: int = 60,
          steady_share: float = 0.25, burst_every: int = 4) -> pd.DataFrame:  # fmt: skip
    """A recorded request trace: Poisson traffic at ``steady_share`` of the limit and, every
    ``burst_every`` windows, ``limit`` requests in the last 5% of a window and ``limit`` more in the
    first 5% of the next. ``t_ms`` is sorted; its time base is a multiple of the window.
    """
    positive(limit=limit, window_ms=window_ms, seconds=seconds, burst_every=burst_every)
    rng = np.random.default_rng(seed)
    base, duration, width = window_ms * 1_000_000, seconds * 1_000, max(1, window_ms // 20)
    steady = rng.integers(0, duration, rng.poisson(steady_share * limit * duration / window_ms))
    parts = [pd.DataFrame({"t_ms": base + steady, "kind": "steady"})]
    for edge in range(base + burst_every * window_ms, base + duration, burst_every * window_ms):
        parts.append(pd.DataFrame({"t_ms": edge - rng.integers(1, width + 1, limit), "kind": "before edge"}))
        parts.append(pd.DataFrame({"t_ms": edge + rng.integers(0, width, limit), "kind": "after edge"}))
    frame = pd.concat(parts, ignore_index=True).astype({"t_ms": "int64"})
    return frame.sort_values("t_ms", kind="stable", ignore_index=True)


def compare_algorithms(r: redis.Redis, trace: pd.DataFrame, limit: int, window_ms: int, *,
                       bucket_ms: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Replay ``trace`` (``now_ms`` passed) through the four algorithms and the exact oracle.

    Returns ``(summary, buckets)``. Per algorithm: admitted, the oracle's count,
    allowed-but-oracle-denied, denied-but-oracle-allowed, and the most admitted
    in any sliding window (the sliding log stays within the limit; a fixed window
    can reach about twice it). ``buckets``: requests and admitted per ``bucket_ms``
    (default a tenth of the window), every bucket of the trace, for a plot.
    """
    if window_ms / 1000 * 1000 != window_ms:  # the scripts compute floor(window_s * 1000)
        raise ValueError(f"window_ms must survive ms -> s -> ms exactly, got {window_ms!r}")
    times = trace["t_ms"].tolist()
    decided = {"oracle": sliding_window_oracle(times, limit, window_ms)}
    try:
        for algorithm in ALGORITHMS:
            limiter = RateLimiter(r, limit, window_ms / 1000, algorithm, name=NAME)
            decided[algorithm] = _replay(limiter, f"trace:{algorithm}", times)
    finally:
        remove(r, "trace")
    oracle, rows = decided["oracle"], []
    for algorithm, allowed in decided.items():
        extra = sum(a and not o for a, o in zip(allowed, oracle))
        missing = sum(o and not a for a, o in zip(allowed, oracle))
        peak = _max_in_window([t for t, a in zip(times, allowed) if a], window_ms)
        rows.append((algorithm, len(times), sum(allowed), sum(oracle), extra, missing, limit, peak))
    columns = ["algorithm", "requests", "admitted", "oracle_admitted", "allowed_oracle_denied",
               "denied_oracle_allowed", "limit", "max_in_window"]  # fmt: skip
    bucket_ms = bucket_ms or max(1, window_ms // 10)
    origin = times[0] // window_ms * window_ms  # buckets line up with window edges: t_ms 0 is an edge
    start = (np.asarray(times) - origin) // bucket_ms * bucket_ms
    buckets = pd.DataFrame(
        {"t_ms": start, "requests": 1, **{k: np.asarray(v, int) for k, v in decided.items()}}
    )
    buckets = buckets.groupby("t_ms").sum().reindex(range(0, int(start.max()) + 1, bucket_ms), fill_value=0)
    return pd.DataFrame(rows, columns=columns), buckets.rename_axis("t_ms").reset_index()


# --- memory and speed --------------------------------------------------------------------------


def memory_per_key(r: redis.Redis, *, limit=(10, 100, 1_000), hits: int | None = None) -> pd.DataFrame:
    """MEMORY USAGE (every element counted) of one key per algorithm after ``hits`` requests
    (default twice the limit), for each limit: the log keeps one entry per admitted request.
    """
    rows = []
    try:
        for n in bounds.counts("limit", (limit,) if isinstance(limit, int) else limit):
            count = hits or 2 * n
            positive(hits=count)
            for algorithm in ALGORITHMS:
                limiter, name = RateLimiter(r, n, 3600, algorithm, name=NAME), f"memory:{algorithm}:{n}"
                batches = [
                    limiter.hit_many([(name, 1)] * min(1_000, count - i)) for i in range(0, count, 1_000)
                ]
                keys = limiter.keys(name)
                entries = r.zcard(keys[0]) if algorithm == "sliding_log" else None
                size = sum(r.memory_usage(k, samples=0) or 0 for k in keys)
                admitted = sum(d.allowed for batch in batches for d in batch)
                rows.append((algorithm, n, count, admitted, entries, r.object("encoding", keys[0]), size))
    finally:
        remove(r, "memory")
    return pd.DataFrame(
        rows, columns=["algorithm", "limit", "hits", "admitted", "entries", "encoding", "bytes"]
    )


def decisions_per_second(r: redis.Redis, *, calls: int, limit: int = 100, period_s: float = 60,
                         keys: int = 1_000) -> pd.DataFrame:  # fmt: skip
    """Decisions/s and p50/p99/p99.9 from one connection, one ``hit`` per call, per algorithm,
    and the classic script (EVALSHA, the client's clock) as the seed's reference. Requests go
    round-robin to ``keys`` keys; with the defaults every one is allowed. A last row times PING
    on the same connection: no call can beat the round trip, so it is the ceiling to compare with.
    """
    positive(calls=calls, keys=keys)
    classic = scripts.load(r, CLASSIC)
    runs = {algorithm: RateLimiter(r, limit, period_s, algorithm, name=NAME).hit for algorithm in ALGORITHMS}
    runs["classic (seed)"] = lambda name: classic(
        keys=[bench_key(name)], args=[period_s, limit, client_clock_ms()]
    )
    runs["PING (the round trip alone)"] = lambda name: r.ping()  # this connection's ceiling, same run
    rows = []
    try:
        for algorithm, call in runs.items():
            slug = re.sub(r"[^a-z]+", "-", algorithm)  # one name per algorithm: they would share keys
            names = [f"rate:{slug}:{i % keys}" for i in range(calls)]
            for name in names[:200]:
                call("rate:warmup:" + name)
            started = time.perf_counter()
            samples = timing.time_calls(call, names, warmup=0)
            seconds = time.perf_counter() - started
            row = {"algorithm": algorithm, "calls": calls, "seconds": seconds}
            rows.append(row | {"decisions_per_s": timing.rate(calls, seconds), **timing.summarize(samples)})
    finally:
        remove(r, "rate")
    return pd.DataFrame(rows)


# --- tables and the command line ---------------------------------------------------------------


def _figure(frame: pd.DataFrame | None, column: str, **where) -> float:
    """The sum of ``column`` over the rows matching ``where`` (NaN when absent or skipped)."""
    if frame is None or column not in frame.columns:
        return float("nan")
    for name, value in where.items():
        frame = frame[frame[name] == value]
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.sum()) if len(values) else float("nan")


def _best_sql(sql_decisions: pd.DataFrame | None) -> pd.DataFrame | None:
    """The row the claims compare with: the PL/pgSQL call at PostgreSQL's default durability if measured."""
    if sql_decisions is None or "method" not in sql_decisions.columns:
        return sql_decisions
    logged = sql_decisions["table"] == "logged" if "table" in sql_decisions.columns else True
    default = sql_decisions.synchronous_commit == "on"
    function = sql_decisions[(sql_decisions.method == ratelimit_sql.FUNCTION_CALL) & default & logged]
    return function if len(function) else sql_decisions.head(1)


def claims_table(race: pd.DataFrame, decisions: pd.DataFrame, service: pd.DataFrame,
                 sql_race: pd.DataFrame | None = None, sql_decisions=None) -> pd.DataFrame:  # fmt: skip
    """Notebook 03's claims, their targets, the Redis figures and PostgreSQL's beside them.

    ``race`` and ``sql_race`` are ``race_summary`` tables, ``decisions`` comes from
    ``decisions_per_second``, ``service`` from ``limiter_service.decisions_by_clients``,
    ``sql_decisions`` from ``sql_decisions_per_second`` (one or more rows: the claims use the
    PL/pgSQL call at ``synchronous_commit=on`` when it is there). ``met`` is
    printed, never asserted: benchmarks here do not pass or fail.
    """
    rate = _figure(decisions, "decisions_per_s", algorithm="sliding_log")
    p99 = _figure(decisions, "p99_ms", algorithm="sliding_log")
    trials, over = (
        int(_figure(race, "trials", method="Lua")),
        _figure(race, "over_admitted_trials", method="Lua"),
    )
    best = service.loc[service.decisions_per_s.idxmax()]

    def sql_over(method: str) -> float:
        return _figure(sql_race, "over_admitted_trials", method=method)

    pg = "PostgreSQL"
    sql_best = _best_sql(sql_decisions)
    rows = [
        ("decisions", rate, {pg: _figure(sql_best, "decisions_per_s")}),
        ("decision p99", p99, {pg: _figure(sql_best, "p99_ms")}),
        ("service", best.decisions_per_s, {pg: np.nan}),
        ("over-admitted", over, {pg: sql_over(ratelimit_sql.ADVISORY_LOCK)}),
    ]
    label = {
        CLAIMS["service"]: f"{CLAIMS['service'].text} ({int(best.clients)} clients,"
        f" {int(best.depth)} in flight each)",
        CLAIMS["over-admitted"]: f"{CLAIMS['over-admitted'].text} (of {trials}; SQL: advisory lock)",
    }
    for row in race[race.method != "Lua"].itertuples():
        sql = (
            sql_over(ratelimit_sql.NO_LOCK)
            if row.method == METHODS[0] and row.runner == "threads"
            else np.nan
        )
        note = "; SQL: no lock" if sql == sql else ""
        context = claims.Claim(
            notebook="03", text=f"trials over-admitted, {row.method}, {row.runner} (of {row.trials}{note})"
        )
        rows.append((context, row.over_admitted_trials, {pg: sql}))
    return claims.table(rows, label=label)


def main(r: redis.Redis, db: SqlBaseline) -> None:
    c, url, started = settings(), url_of(r), time.perf_counter()
    race = {"trials": c.ratelimit_trials, "clients": c.ratelimit_clients,
            "calls_per_client": c.ratelimit_calls_per_client, "limit": c.ratelimit_limit}  # fmt: skip
    print(f"workshop size: {c.size}; race: {c.ratelimit_trials} trials x {c.ratelimit_clients} clients x"
          f" {c.ratelimit_calls_per_client} calls, limit {c.ratelimit_limit}", flush=True)  # fmt: skip

    def show(title: str, frame: pd.DataFrame) -> pd.DataFrame:
        print(f"\n{title}\n", frame.round(3).to_string(index=False), flush=True)
        return frame

    races = [race_trials(url, method, **race) for method in METHODS]
    if c.ratelimit_process_trials:
        on_processes = race | {"trials": c.ratelimit_process_trials, "use_processes": True}
        races += [race_trials(url, method, **on_processes) for method in ("separate commands", "Lua")]
    summary = show("Race: one key, all clients released together", race_summary(*races))
    watch = watch_retries_by_contention(url, c.ratelimit_watch_clients, trials=c.ratelimit_watch_trials)
    show("WATCH retries by contention (limit = every call)", watch)
    show("Clock skew: three app servers, limit 10 per 1 s", clock_skew(r))
    show("Member collisions: one millisecond", member_collisions(r, requests=c.ratelimit_collision_requests))
    recorded = trace(42, limit=10, window_ms=1_000, seconds=c.ratelimit_trace_seconds)
    title = f"Trace replay against the oracle ({len(recorded):,} requests, limit 10 per 1 s)"
    show(title, compare_algorithms(r, recorded, 10, 1_000)[0])
    show("Memory per key", memory_per_key(r, limit=c.ratelimit_memory_limits))
    decisions = decisions_per_second(r, calls=c.ratelimit_decision_calls)
    show("Decisions per second, one connection", decisions)
    own = servers.start_redis()
    try:
        costs = limiter_service.server_time(
            calls=c.ratelimit_server_time_calls, rounds=c.ratelimit_server_time_rounds, server=own
        )
        show("The server's µs per decision (INFO commandstats), beside the limits library", costs)
        clients, depths = c.ratelimit_service_clients, c.ratelimit_service_depths
        service = limiter_service.decisions_by_clients(
            own.url, clients, depths, seconds=c.ratelimit_service_seconds
        )
        show("Decisions per second from one Redis, against clients", service)
    finally:
        own.stop()
    sql = race | {"trials": c.ratelimit_sql_trials}
    sql_race = race_summary(
        *(sql_race_trials(db, **sql, lock=lock) for lock in (False, True)),
        sql_race_trials(db, **sql, function=True),
    )
    show(f"Race on {db.label}", sql_race)
    sql_decisions = sql_designs(db, calls=c.ratelimit_sql_calls)
    show(f"Decisions per second on {db.label}, one connection", sql_decisions)
    show("When Redis says no (throwaway servers)", refusals().drop(columns="answered_ms"))
    show("Claims against figures", claims_table(summary, decisions, service, sql_race, sql_decisions))
    print(f"\n(ratelimit benchmark: {time.perf_counter() - started:.1f} s)")


# The PostgreSQL sliding log (helpers.baselines.ratelimit), raced and timed like the Redis one.
def _sql_method(lock: bool, function: bool = False) -> str:
    if function:
        return ratelimit_sql.FUNCTION_CALL
    return ratelimit_sql.ADVISORY_LOCK if lock else ratelimit_sql.NO_LOCK


def _sql_decider(db: SqlBaseline, table: str, lock: bool, function: bool):
    """``decide(conn, key, limit, window_ms) -> bool``: the statements (lock or not), or the function."""
    if function:
        name = ratelimit_sql.create_function(db, table)
        return lambda conn, key, limit, window_ms: ratelimit_sql.hit_function(
            conn, key, limit, window_ms, function=name
        )
    return lambda conn, key, limit, window_ms: ratelimit_sql.hit(
        conn, key, limit, window_ms, lock, table=table
    )


def sql_race_trials(
    db: SqlBaseline,
    *,
    trials: int,
    clients: int,
    calls_per_client: int,
    limit: int,
    window_ms: int = 60_000,
    lock: bool = True,
    function: bool = False,
) -> pd.DataFrame:
    """``clients`` threads, one connection each, send ``calls_per_client`` requests to one fresh
    key per trial, released together by a barrier; one row per trial (admitted, over the limit).

    ``function`` decides with the PL/pgSQL function (which always takes the lock) instead of
    the statements.
    """
    for what, value in (("trials", trials), ("clients", clients), ("calls_per_client", calls_per_client),
                        ("limit", limit), ("window_ms", window_ms)):  # fmt: skip
        bounds.at_least(what, value)
    table = ratelimit_sql.create_table(db)
    decide = _sql_decider(db, table, lock, function)
    barrier = threading.Barrier(clients)
    connections = [db.connect() for _ in range(clients)]

    def client(conn) -> list[tuple[int, float]]:
        try:
            done = []
            for trial in range(trials):
                barrier.wait(timeout=60)
                started = time.perf_counter()
                admitted = sum(
                    decide(conn, f"race:{trial}", limit, window_ms) for _ in range(calls_per_client)
                )
                done.append((admitted, time.perf_counter() - started))
            return done
        except BaseException:
            barrier.abort()  # the others stop at once instead of waiting out the timeout
            raise

    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            results = [f.result() for f in [pool.submit(client, c) for c in connections]]
    finally:
        for conn in connections:
            conn.close()
        ratelimit_sql.drop_function(db)
        db.execute(f"DROP TABLE IF EXISTS {table}")
    rows = []
    for trial in range(trials):
        admitted, seconds = sum(x[trial][0] for x in results), max(x[trial][1] for x in results)
        method = _sql_method(lock, function)
        rows.append((db.label, method, "threads", trial, clients, clients * calls_per_client,
                     admitted, limit, admitted - limit, 0, seconds))  # fmt: skip
    columns = ["system", "method", "runner", "trial", "clients", "calls", "admitted", "limit", "over"]
    columns += ["retries", "seconds"]
    return pd.DataFrame(rows, columns=columns)


def sql_designs(db: SqlBaseline, *, calls: int) -> pd.DataFrame:
    """``sql_decisions_per_second`` for the statements and the function, the function with
    ``synchronous_commit=off`` (a crash may lose about the last 0.6 s: the match for Redis's AOF everysec),
    and the function on an UNLOGGED table (a crash empties it: the match for a Redis without persistence)."""
    runs = [
        sql_decisions_per_second(db, calls=calls),
        sql_decisions_per_second(db, calls=calls, function=True),
        sql_decisions_per_second(db, calls=calls, function=True, synchronous_commit="off"),
        sql_decisions_per_second(db, calls=calls, function=True, unlogged=True),
    ]
    return pd.concat(runs, ignore_index=True)


def sql_decisions_per_second(
    db: SqlBaseline,
    *,
    calls: int,
    limit: int = 100,
    window_ms: int = 60_000,
    keys: int = 1_000,
    function: bool = False,
    synchronous_commit: str | None = None,
    unlogged: bool = False,
) -> pd.DataFrame:
    """Decisions/s and latency percentiles from one connection, one decision per call, with the lock.

    Requests go round-robin to ``keys`` keys (as the Redis figure does): with
    the defaults every one is allowed until a key has had ``limit``. ``function`` decides with
    one PL/pgSQL call instead of the statements; ``synchronous_commit`` (``"on"``, ``"off"``)
    is set for this connection only, and read back into the row; ``unlogged`` keeps the log in an
    UNLOGGED table (``table`` says which in the row).
    """
    bounds.at_least("calls", calls)
    bounds.at_least("keys", keys)
    table = ratelimit_sql.create_table(db, unlogged=unlogged)
    conn, setting = db.connect_with(synchronous_commit)
    allowed = []
    try:
        decide = _sql_decider(db, table, True, function)
        names = [f"rate:{i % keys}" for i in range(calls)]
        for name in names[: min(200, calls)]:
            decide(conn, "warmup:" + name, limit, window_ms)
        started = time.perf_counter()
        samples = timing.time_calls(
            lambda name: allowed.append(decide(conn, name, limit, window_ms)), names, warmup=0
        )
        seconds = time.perf_counter() - started
    finally:
        conn.close()
        ratelimit_sql.drop_function(db)
        db.execute(f"DROP TABLE IF EXISTS {table}")
    row = {"system": db.label, "method": _sql_method(True, function)}
    row |= {"table": "UNLOGGED" if unlogged else "logged", "synchronous_commit": setting}
    row |= {"calls": calls, "allowed": sum(allowed), "seconds": seconds}
    row |= {"decisions_per_s": timing.rate(calls, seconds), **timing.summarize(samples)}
    return pd.DataFrame([row])
