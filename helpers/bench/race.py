"""Notebook 03's race: many clients, one key, one limit. How many get in?

``race_trials`` runs trial after trial: ``clients`` clients (threads, or spawned
processes through ``helpers.bench.processes``), each on its own connection, released
together by a barrier, send ``calls_per_client`` requests to ONE fresh key. The
methods, each a function below whose source the notebook prints:

* ``"separate commands"`` (``separate_commands``): ZREMRANGEBYSCORE, ZCARD, then ZADD
  and PEXPIRE if under the limit, each its own round trip;
* ``"MULTI/EXEC, split"`` (``split_multi``): ZREMRANGEBYSCORE + ZCARD in one transaction,
  ZADD in another: each is atomic, but the check between them still runs in the client;
* ``"MULTI/EXEC, one"`` (``one_multi``): the correct transaction: add this request
  first, count, and remove it again when the count is over the limit;
* ``"INCR, fixed window"`` (``incr_fixed_window``): a fixed window (another algorithm,
  starting at the key's first request) needs no script: INCR answers the new count;
* ``"WATCH"`` (``watch_retry``): optimistic: WATCH the key, count, MULTI, ZADD, EXEC,
  and retry when another client changed the key first (retries are counted);
* ``"Lua classic"``: ``lua/sliding_window_classic.lua``, passed the client's clock;
* ``"Lua"``: ``RateLimiter`` (``lua/sliding_window.lua``, Redis' clock).

The window is long (60 s) so nothing expires during a trial, and the non-Lua
methods write unique members: every admission over the limit is the race's.
``race_summary`` counts the trials that over-admitted; ``watch_retries_by_contention``
shows what WATCH pays for being exact.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import redis

from helpers import bounds, scripts
from helpers.bench.processes import report_failure, run_together, spawn_context, wait_at_gate
from helpers.clients import client_from_url
from helpers.keyspace import cleanup
from helpers.keyspace import key as workshop_key
from helpers.ratelimit import RateLimiter

NAME = "rlbench"  # the RateLimiter name every benchmark key is under
CLASSIC = "sliding_window_classic"
METHODS = (
    "separate commands",
    "MULTI/EXEC, split",
    "MULTI/EXEC, one",
    "INCR, fixed window",
    "WATCH",
    "Lua classic",
    "Lua",
)
COLUMNS = ["method", "runner", "trial", "clients", "calls", "admitted", "limit", "over", "retries", "seconds"]


def bench_key(name: str) -> str:
    """The key a benchmark's own commands use, shaped like ``RateLimiter(name=NAME).keys(name)[0]``."""
    return workshop_key("ratelimit", "{" + f"{NAME}:{name}" + "}")


def remove(r: redis.Redis, part: str) -> int:
    """Delete the benchmark keys whose names start with ``part:``."""
    return cleanup(r, workshop_key("ratelimit", "{" + f"{NAME}:{part}:"))


def positive(**values) -> None:
    for what, value in values.items():
        bounds.at_least(what, value)


def now_ms() -> int:
    return time.time_ns() // 1_000_000  # the app server's clock


def separate_commands(r: redis.Redis, key: str, member: str, limit: int, window_ms: int) -> tuple[bool, int]:
    """Count, then write, in four round trips: between them, other clients count the same entries."""
    now = now_ms()
    r.zremrangebyscore(key, 0, now - window_ms)
    if r.zcard(key) >= limit:
        return False, 0
    r.zadd(key, {f"{now}-{member}": now})
    r.pexpire(key, window_ms)
    return True, 0


def split_multi(r: redis.Redis, key: str, member: str, limit: int, window_ms: int) -> tuple[bool, int]:
    """Two transactions: each is atomic, but the decision between them is made in the client."""
    now = now_ms()
    pipe = r.pipeline(transaction=True)
    if pipe.zremrangebyscore(key, 0, now - window_ms).zcard(key).execute()[1] >= limit:
        return False, 0
    pipe.zadd(key, {f"{now}-{member}": now}).pexpire(key, window_ms).execute()
    return True, 0


def one_multi(r: redis.Redis, key: str, member: str, limit: int, window_ms: int) -> tuple[bool, int]:
    """One transaction that writes first: add, count (this request included), then undo when over.

    It never over-admits. Until its ZREM lands (or for a whole window, if the client dies
    first) a refused request's entry counts against the others, so near a window's edge it
    can refuse a request a script would admit.
    """
    now = now_ms()
    entry = f"{now}-{member}"
    pipe = r.pipeline(transaction=True)
    pipe.zremrangebyscore(key, 0, now - window_ms).zadd(key, {entry: now}).zcard(key).pexpire(key, window_ms)
    if pipe.execute()[2] > limit:
        r.zrem(key, entry)  # until this runs, the refused request counts against the others
        return False, 0
    return True, 0


def incr_fixed_window(r: redis.Redis, key: str, member: str, limit: int, window_ms: int) -> tuple[bool, int]:
    """A fixed window needs no script: INCR answers the count with this request in it.

    The window starts at the key's first request (PEXPIRE ... NX sets it once), so no window
    edge falls inside a trial; aligned to the clock, two windows would each admit the limit.
    """
    pipe = r.pipeline(transaction=True)
    count = pipe.incr(key).pexpire(key, window_ms, nx=True).execute()[0]
    return count <= limit, 0


def watch_retry(r: redis.Redis, key: str, member: str, limit: int, window_ms: int) -> tuple[bool, int]:
    """Optimistic: read under WATCH, write in MULTI; EXEC fails if another client wrote first, so retry."""
    retries, deadline = 0, time.monotonic() + 60
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                now = now_ms()
                if pipe.zcount(key, f"({now - window_ms}", "+inf") >= limit:
                    return False, retries  # leaving the block sends UNWATCH
                pipe.multi()
                pipe.zremrangebyscore(key, 0, now - window_ms).zadd(key, {f"{now}-{member}": now})
                pipe.pexpire(key, window_ms).execute()
                return True, retries
            except redis.WatchError:
                retries += 1
                if time.monotonic() > deadline:
                    raise TimeoutError(f"WATCH gave up after {retries} retries") from None


WITHOUT_LUA = {
    "separate commands": separate_commands,
    "MULTI/EXEC, split": split_multi,
    "MULTI/EXEC, one": one_multi,
    "INCR, fixed window": incr_fixed_window,
    "WATCH": watch_retry,
}


def _decider(r: redis.Redis, method: str, limit: int, window_s: float):
    """``decide(name, member) -> (allowed, retries)`` for one method, on this connection."""
    window_ms = round(window_s * 1000)
    if method == "Lua":
        limiter = RateLimiter(r, limit, window_s, name=NAME)
        return lambda name, member: (limiter.hit(name).allowed, 0)
    if method == "Lua classic":
        script = scripts.load(r, CLASSIC)
        return lambda name, member: (script(keys=[bench_key(name)], args=[window_s, limit, now_ms()]) == 1, 0)
    variant = WITHOUT_LUA[method]
    return lambda name, member: variant(r, bench_key(name), member, limit, window_ms)


def _race_client(redis_url, method, names, calls, limit, window_s, number, sync, ready=None) -> list:
    """One client: for each trial, wait for the others at ``sync``, then send ``calls`` requests."""
    r = client_from_url(redis_url)
    try:
        decide = _decider(r, method, limit, window_s)
        r.ping()
        if ready:
            ready()
        done = []
        for name in names:
            sync.wait(timeout=120)
            started, admitted, retries = time.perf_counter(), 0, 0
            for i in range(calls):
                allowed, tries = decide(name, f"{number}-{i}")
                admitted, retries = admitted + allowed, retries + tries
            done.append((admitted, retries, time.perf_counter() - started))
        return done
    except BaseException:
        sync.abort()  # the others stop at once instead of waiting out the timeout
        raise
    finally:
        r.close()


def _race_process(redis_url, method, names, calls, limit, window_s, number, sync, gate, results) -> None:
    """Race process: connect, wait at the start gate, then run every trial as one client."""
    try:
        ready = functools.partial(wait_at_gate, gate)
        done = _race_client(redis_url, method, names, calls, limit, window_s, number, sync, ready)
        results.put({"trials": done})
    except BaseException as error:
        report_failure(results, error)


def race_trials(redis_url: str, method: str, *, trials: int, clients: int, calls_per_client: int, limit: int,
                window_s: float = 60.0, use_processes: bool = False) -> pd.DataFrame:  # fmt: skip
    """One row per trial: admitted, over (admitted - limit), WATCH's retries, and the seconds
    from the release to the last client done. See the module's docstring for the methods.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    positive(trials=trials, clients=clients, calls_per_client=calls_per_client, limit=limit)
    part = "race:" + re.sub(r"[^a-z]+", "-", method.lower())
    names = [f"{part}:{trial}" for trial in range(trials)]
    job = (redis_url, method, names, calls_per_client, limit, window_s)
    r = client_from_url(redis_url)
    try:
        remove(r, part)
        if use_processes:
            sync = spawn_context().Barrier(clients)
            jobs = [(*job, c, sync) for c in range(clients)]
            _, reports = run_together(
                _race_process, jobs, timeout=60 + trials * clients * calls_per_client / 200
            )
            results = [x["trials"] for x in reports]
        else:
            sync = threading.Barrier(clients)
            with ThreadPoolExecutor(max_workers=clients) as pool:
                futures = [pool.submit(_race_client, *job, c, sync) for c in range(clients)]
                results = [f.result() for f in futures]
    finally:
        remove(r, part)
        r.close()
    runner, calls = "processes" if use_processes else "threads", clients * calls_per_client
    rows = []
    for trial, outcomes in enumerate(zip(*results)):
        admitted = sum(x[0] for x in outcomes)
        rows.append((method, runner, trial, clients, calls, admitted, limit, admitted - limit,
                     sum(x[1] for x in outcomes), max(x[2] for x in outcomes)))  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def race_summary(*frames: pd.DataFrame) -> pd.DataFrame:
    """Per method and runner: trials, how many over-admitted, admitted range, worst excess, retries."""
    frame = pd.concat(frames, ignore_index=True)
    return frame.groupby(["method", "runner"], sort=False).agg(
        trials=("trial", "size"), over_admitted_trials=("over", lambda s: int((s > 0).sum())),
        admitted_min=("admitted", "min"), admitted_max=("admitted", "max"), max_over=("over", "max"),
        mean_retries=("retries", "mean"), mean_seconds=("seconds", "mean"),
    ).reset_index()  # fmt: skip


def watch_retries_by_contention(
    redis_url: str,
    clients=(1, 2, 4, 8, 16),
    *,
    trials: int = 5,
    calls_per_client: int = 20,
    limit: int | None = None,
) -> pd.DataFrame:
    """WATCH's retries and time as contention grows: one row per number of clients.

    ``limit`` defaults to every call (each decision writes): the worst case for
    optimistic locking. ``all_admitted`` says every call got in, in every trial (none lost
    to a conflict: WATCH retries until it decides); ``max_over`` stays 0 when ``limit`` is lower.
    """
    rows = []
    for k in bounds.counts("clients", clients):
        n = k * calls_per_client
        frame = race_trials(redis_url, "WATCH", trials=trials, clients=k, calls_per_client=calls_per_client,
                            limit=limit or n)  # fmt: skip
        seconds = frame.seconds.mean()
        admitted = bool((frame.admitted == min(limit or n, n)).all())
        rows.append(
            (k, n, limit or n, frame.over.max(), admitted, frame.retries.mean() / n, seconds, n / seconds)
        )
    columns = [
        "clients",
        "decisions",
        "limit",
        "max_over",
        "all_admitted",
        "retries_per_decision",
        "seconds",
        "decisions_per_s",
    ]
    return pd.DataFrame(rows, columns=columns)
