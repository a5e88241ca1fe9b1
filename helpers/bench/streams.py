"""Notebook 02's experiments: Redis Streams measured, and lined up against the PostgreSQL outbox.

Redis:

* ``producer_throughput``: XADD one call at a time against ``EventLog.append_many``
  (1,000 XADDs per pipeline round trip), from one process;
* ``producer_processes``: several producer processes appending to one stream at once;
* ``redis_benchmark_xadd``: the server's own ceiling, ``redis-benchmark`` with
  pipelined XADD (C clients, no Python in the way);
* ``consumer_throughput``: k worker processes (``helpers.streams.Worker``, batch
  1,000) drain a pre-filled stream as one consumer group; every event acknowledged;
* ``end_to_end_latency``: a paced producer (10,000 events/s, a pipeline every
  millisecond) and one blocking consumer process: time from XADD to the handler;
* ``produce_and_consume``: producers and consumers on one stream at the same time,
  the seed's 200,000 events/s claim measured as it is meant;
* ``stream_by_entry_size`` and ``stream_trimming``: bytes per entry as payloads grow, and
  what ``MAXLEN`` (exact or ``~``) keeps and costs;
* ``durability_runs`` and ``durability_pairs``: the producer benchmark again on both
  sides at each durability setting (``helpers.bench.durability``), lined up by what a
  crash may lose.

The same jobs on PostgreSQL, the transactional-outbox way (``helpers.baselines.outbox``),
are measured by ``helpers.bench.outbox``; both sides run the workload of
``helpers.bench.workload``. Each experiment returns a pandas
DataFrame; ``summary_table`` and ``claims_table`` line the figures up; ``main``
prints them for ``python -m helpers.bench streams``.

Worker processes are run by ``helpers.bench.processes`` (spawn context, a start gate,
every one joined). Every key lives under the workshop prefix and is deleted
afterwards.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import redis
from tqdm.auto import tqdm

from helpers import bounds, servers
from helpers.baselines.sql import SqlBaseline
from helpers.bench import claims, durability
from helpers.bench.claims import CLAIMS
from helpers.bench.outbox import (
    SQL_BATCHED,
    SQL_COPY,
    SQL_ONE_BY_ONE,
    outbox_consumer_throughput,
    outbox_end_to_end_latency,
    outbox_producer_throughput,
)
from helpers.bench.processes import (
    finish,
    get,
    report_failure,
    run_together,
    spawn_context,
    stop_when,
    wait_at_gate,
    wait_ready,
)
from helpers.bench.sizes import settings
from helpers.bench.workload import latency_frame, make_events, paced
from helpers.clients import client_from_url, redis_label, url_of
from helpers.keyspace import key as workshop_key
from helpers.streams import EventLog, Worker, ensure_group

ONE_BY_ONE = "XADD, one call at a time"
TOGETHER_PAIRS = ((1, 1), (1, 2), (2, 2))  # (producers, consumers) of produce_and_consume
PIPELINED = "EventLog.append_many, 1,000 per round trip"


# --- Redis: producing -------------------------------------------------------------------------


def producer_throughput(r: redis.Redis, n: int, *, one_by_one: int | None = None) -> pd.DataFrame:
    """Events/s appending ``one_by_one`` (default ``n``) events with one XADD call each,
    then ``n`` events with ``EventLog.append_many`` (1,000 XADDs per pipeline round trip).

    The events are built before the clock starts; ``append_many`` validates them
    inside the timing, as it does for its callers.
    """
    bounds.at_least("n", n)
    one_by_one = n if one_by_one is None else one_by_one
    bounds.at_least("one_by_one", one_by_one)
    log = EventLog(r, "bench:producer")
    log.delete()
    rows = []
    try:
        events = make_events(one_by_one)
        started = time.perf_counter()
        for event in events:
            r.xadd(log.key, event)
        rows.append((ONE_BY_ONE, one_by_one, time.perf_counter() - started, len(log)))
        log.delete()

        events = make_events(n)
        started = time.perf_counter()
        log.append_many(events, chunk=1_000)
        rows.append((PIPELINED, n, time.perf_counter() - started, len(log)))
    finally:
        log.delete()
    frame = pd.DataFrame(rows, columns=["method", "events", "seconds", "in_stream"])
    frame.insert(0, "system", redis_label(r))
    frame["events_per_s"] = frame.events / frame.seconds
    return frame


def producer_processes(
    redis_url: str, processes=(1, 2, 4), per_process: int = 50_000, *, chunk: int = 1_000
) -> pd.DataFrame:
    """Aggregate events/s of k producer processes appending pipelined to one stream at once.

    Each process builds its ``per_process`` events, connects, and waits at a
    start gate; the clock runs from their release to the last process done.
    """
    bounds.at_least("per_process", per_process)
    r = client_from_url(redis_url)
    log = EventLog(r, "bench:producers")
    rows = []
    try:
        for k in bounds.counts("processes", processes):
            log.delete()
            jobs = [(redis_url, log.name, per_process, i * per_process, chunk) for i in range(k)]
            seconds, results = run_together(_produce, jobs, timeout=60 + 2 * k * per_process / 1_000)
            rows.append(
                {
                    "processes": k,
                    "events": k * per_process,
                    "in_stream": len(log),
                    "seconds": seconds,
                    "events_per_s": k * per_process / seconds,
                    "slowest_process_events_per_s": min(x["events"] / x["seconds"] for x in results),
                }
            )
        frame = pd.DataFrame(rows)
        frame.insert(0, "system", redis_label(r))
        return frame
    finally:
        log.delete()
        r.close()


def _produce(redis_url, log_name, count, start, chunk, gate, results) -> None:
    """Producer process: build the events, connect, wait for the others, append pipelined."""
    r = client_from_url(redis_url)
    try:
        log = EventLog(r, log_name)
        events = make_events(count, start=start)
        r.ping()
        wait_at_gate(gate)
        started = time.perf_counter()
        log.append_many(events, chunk=chunk)
        results.put({"events": count, "seconds": time.perf_counter() - started})
    except BaseException as error:
        report_failure(results, error)
    finally:
        r.close()


# --- Redis: the server's own ceiling ----------------------------------------------------------

_RPS = re.compile(r"([0-9]+(?:\.[0-9]+)?) requests per second")


def parse_requests_per_second(output: str) -> float:
    """The last "N requests per second" in ``redis-benchmark -q`` output."""
    found = _RPS.findall(output)
    if not found:
        raise ValueError(f"no 'requests per second' in redis-benchmark output: {output[-500:]!r}")
    return float(found[-1])


def redis_benchmark_command(
    binary: str, redis_url: str, key: str, requests: int, pipeline: int
) -> tuple[list[str], dict[str, str]]:
    """The ``redis-benchmark`` command line for pipelined ``XADD key * field value``, and its environment.

    A password goes in the environment (``REDISCLI_AUTH``, which redis-benchmark
    reads), never on the command line, where ``ps`` would show it to every user.
    """
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        where = ["-s", parts.path]
        db = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("db", "0")
    else:
        where = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
        db = parts.path.lstrip("/") or "0"
    if parts.scheme == "rediss":
        where.append("--tls")
    environment = {}
    if parts.password:
        environment["REDISCLI_AUTH"] = unquote(parts.password)
        if parts.username:
            where += ["--user", unquote(parts.username)]
    options = ["-q", "-n", str(requests), "-P", str(pipeline), "--dbnum", db]
    # the same three fields as the Python producers' events, so the ceiling is for the same event
    event = ["action", "placed", "order_id", "ord-1", "total", "89.99"]
    return [binary, *options, *where, "XADD", key, "*", *event], environment


def redis_benchmark_xadd(redis_url: str, requests: int, pipeline: int = 32) -> pd.DataFrame:
    """``redis-benchmark -q -n requests -P pipeline ... XADD <key> * action placed ...``: one row.

    ``events_per_s`` is what it reports (50 connections, its default), or
    None with a note when the binary is not installed. The key is a workshop
    key and is deleted afterwards.
    """
    bounds.at_least("requests", requests)
    bounds.at_least("pipeline", pipeline)
    key = workshop_key("stream", "{bench:redis-benchmark}")
    row = {"system": "redis-benchmark", "command": "XADD key * field value", "requests": requests}
    row |= {"pipeline": pipeline, "events_per_s": None, "note": ""}
    binary = shutil.which("redis-benchmark")
    if binary is None:
        row["note"] = "redis-benchmark not found on PATH: no ceiling measured"
        return pd.DataFrame([row])
    r = client_from_url(redis_url)
    try:
        r.unlink(key)
        command, environment = redis_benchmark_command(binary, redis_url, key, requests, pipeline)
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120 + requests / 10_000,
            env=os.environ | environment,
        )
        if run.returncode != 0:
            raise RuntimeError(f"redis-benchmark failed ({run.returncode}): {run.stderr[-500:]}")
        row["events_per_s"] = parse_requests_per_second(run.stdout)
        row["note"] = f"{r.xlen(key):,} entries written by 50 C clients"
    finally:
        r.unlink(key)
        r.close()
    return pd.DataFrame([row])


# --- Redis and PostgreSQL: producing at each durability setting ------------------------------


def durability_runs(db: SqlBaseline, n: int, *, one_by_one: int, repeats: int = 3) -> pd.DataFrame:
    """The producer benchmark of notebook 02 on each durability setting of both sides, ``repeats`` times.

    Redis: a throwaway server per mode of ``durability.REDIS_MODES`` (the learner's own
    server keeps its configuration), each running ``producer_throughput``. PostgreSQL: the
    outbox producer with ``synchronous_commit`` on (the default) and off, set for its
    session only. The settings take turns within each repeat, so a slow moment of the
    machine does not fall on one setting alone; ``durability_pairs`` takes the median.

    One row per repeat, system, setting and method; ``stored`` is the check (every event
    is there) and ``setting`` is read back from the server (or session) that ran it, to be
    compared with ``mode``, the setting asked for (``durability.NAMED`` says how a Redis
    mode reads back).
    """
    bounds.at_least("repeats", repeats)
    frames = []
    servers_by_mode = {}
    bar = tqdm(total=repeats * (len(durability.REDIS_MODES) + len(durability.SQL_MODES)), desc="durability")
    try:
        for mode, arguments in durability.REDIS_MODES.items():
            servers_by_mode[mode] = servers.start_redis(extra_args=arguments)
        for repeat in range(repeats):
            for mode, server in servers_by_mode.items():
                r = redis.Redis.from_url(server.url, decode_responses=True)
                try:
                    frame = producer_throughput(r, n, one_by_one=one_by_one)
                    frame["stored"] = frame.in_stream == frame.events
                    frame["setting"] = durability.redis_durability(r)
                finally:
                    r.close()
                frames.append(frame.drop(columns="in_stream").assign(mode=mode, repeat=repeat))
                bar.update()
            for mode in durability.SQL_MODES:
                frame = outbox_producer_throughput(db, n, one_by_one=one_by_one, synchronous_commit=mode)
                frame = frame[
                    frame.method != SQL_COPY
                ].copy()  # one transaction: one flush whatever the setting
                frame["stored"] = frame.in_table == frame.events
                frame["setting"] = "synchronous_commit=" + frame.pop("synchronous_commit")
                frames.append(
                    frame.drop(columns="in_table").assign(mode=f"synchronous_commit={mode}", repeat=repeat)
                )
                bar.update()
    finally:
        bar.close()
        for server in servers_by_mode.values():
            server.stop()
    return pd.concat(frames, ignore_index=True)


def durability_pairs(runs: pd.DataFrame) -> pd.DataFrame:
    """Redis against PostgreSQL events/s for each pair of ``durability.PAIRS``: one by one, and batched.

    Each rate is the median of the repeats; the ratio is Redis divided by SQL: how much
    faster Redis appends at that durability.
    """
    redis_runs = runs[~runs["mode"].str.startswith("synchronous_commit")]
    sql_runs = runs[runs["mode"].str.startswith("synchronous_commit")]

    def rate(frame: pd.DataFrame, mode: str, batched: bool) -> float:
        rows = frame[(frame["mode"] == mode) & (frame.method.str.contains("1,000") == batched)]
        return float(rows.events_per_s.median())

    rows = []
    for loses, redis_mode, sync in durability.PAIRS:
        row = {"a crash may lose": loses, "Redis": redis_mode, "PostgreSQL": f"synchronous_commit={sync}"}
        for batched, label in ((False, "one by one"), (True, "1,000 per round trip")):
            redis_rate = rate(redis_runs, redis_mode, batched)
            sql_rate = rate(sql_runs, f"synchronous_commit={sync}", batched)
            row[f"Redis/s, {label}"] = redis_rate
            row[f"SQL/s, {label}"] = sql_rate
            row[f"ratio, {label}"] = redis_rate / sql_rate
        rows.append(row)
    return pd.DataFrame(rows)


# --- Redis: consuming -------------------------------------------------------------------------


def consumer_throughput(
    redis_url: str,
    n_events: int,
    workers=(1, 2, 4),
    *,
    batch: int = 1_000,
    block_ms: int = 10,
    claim_idle_ms: int = 200,
    handler_ms: float = 0.0,
) -> pd.DataFrame:
    """Events/s read and acknowledged by k ``Worker`` processes of one group, per k.

    The stream is filled once with ``n_events``; each k gets its own group
    (created at ``0``), so every round reads the same events. The workers run
    ``Worker.run(until_idle=True)`` with a no-op handler; the clock runs from
    the release of the start gate to the last worker done. A worker that runs
    dry while others still hold entries waits ``claim_idle_ms / 4`` before
    looking again, so the time includes up to that much idle tail.

    ``handler_ms`` above 0 makes the handler wait that long per event (``time.sleep``:
    a call to another service, which takes no CPU), so the run shows what a group gives
    when the handler, not Redis, is the slow part.

    ``all_acked`` is the check: nothing pending, and the group's entries-read
    equals ``n_events``. ``handled`` above ``n_events`` means entries were claimed
    from a slow consumer and handled twice (at-least-once).

    CPU is counted on both sides, to tell what more cores would give: ``client_us``
    is the consumers' CPU time per event (all processes), ``server_us`` the Redis
    server's (``INFO cpu``, main thread where the server reports it). With a core
    per process, one consumer could reach about ``1e6 / client_us`` events/s and the
    group would stop at about ``1e6 / server_us``, where Redis's one command
    thread is full (``server_bound_per_s``).
    """
    bounds.at_least("n_events", n_events)
    r = client_from_url(redis_url)
    log = EventLog(r, "bench:consumers")
    log.delete()
    rows = []
    try:
        log.append_many(make_events(n_events), chunk=1_000)
        for k in bounds.counts("workers", workers):
            group = f"bench-{k}"
            ensure_group(r, log.key, group, "0")
            jobs = [
                (redis_url, log.name, group, f"worker-{i}", batch, block_ms, claim_idle_ms, handler_ms)
                for i in range(k)
            ]
            timeout = 60 + n_events / 2_000 + n_events * handler_ms / 1_000 / k
            server_cpu = server_cpu_seconds(r)
            seconds, results = run_together(_consume, jobs, timeout=timeout)
            server_cpu = server_cpu_seconds(r) - server_cpu
            info = next(g for g in r.xinfo_groups(log.key) if g["name"] == group)
            pending = r.xpending(log.key, group)["pending"]
            handled = sum(x["handled"] for x in results)
            rows.append(
                {
                    "workers": k,
                    "events": n_events,
                    "handled": handled,
                    "claimed": sum(x["claimed"] for x in results),
                    "pending_after": pending,
                    "entries_read": info.get("entries-read"),
                    "all_acked": pending == 0
                    and info.get("entries-read") == n_events
                    and handled >= n_events,
                    "seconds": seconds,
                    "events_per_s": n_events / seconds,
                    "client_us": sum(x["cpu_s"] for x in results) / n_events * 1e6,
                    "server_us": server_cpu / n_events * 1e6,
                    "server_bound_per_s": n_events / server_cpu if server_cpu > 0 else float("nan"),
                }
            )
        frame = pd.DataFrame(rows)
        frame.insert(0, "system", redis_label(r))
        frame.insert(1, "handler_ms", handler_ms)
        return frame
    finally:
        log.delete()
        r.close()


def server_cpu_seconds(r: redis.Redis) -> float:
    """CPU seconds the server has used: its main thread's where ``INFO cpu`` reports it (6.2+)."""
    cpu = r.info("cpu")
    if "used_cpu_user_main_thread" in cpu:
        return cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def _noop(entry_id: str, fields: dict) -> None:
    pass


def _wait(seconds: float, entry_id: str, fields: dict) -> None:
    time.sleep(seconds)  # stands for I/O: the process waits, its core is free for others


def _consume(
    redis_url, log_name, group, consumer, batch, block_ms, claim_idle_ms, handler_ms, gate, results
) -> None:
    """Consumer process: one ``Worker`` (a no-op handler, or one that waits ``handler_ms``) until idle."""
    r = client_from_url(redis_url)
    try:
        log = EventLog(r, log_name)
        handler = _noop if handler_ms <= 0 else functools.partial(_wait, handler_ms / 1_000)
        worker = Worker(
            log, group, consumer, handler, batch=batch, block_ms=block_ms, claim_idle_ms=claim_idle_ms
        )
        r.ping()
        wait_at_gate(gate)
        started, cpu = time.perf_counter(), time.process_time()
        stats = worker.run(until_idle=True)
        results.put(
            {
                "handled": stats.handled,
                "claimed": stats.claimed,
                "seconds": time.perf_counter() - started,
                "cpu_s": time.process_time() - cpu,
            }
        )
    except BaseException as error:
        report_failure(results, error)
    finally:
        r.close()


# --- Redis: producing and consuming at once ---------------------------------------------------


def produce_and_consume(
    redis_url: str, per_producer: int, pairs=TOGETHER_PAIRS, *, chunk: int = 1_000, batch: int = 1_000
) -> pd.DataFrame:
    """Events/s through one stream with producers appending and consumers reading it at the same time.

    The seed's claim ("up to about 200,000 events a second") is about this: a log that is written
    and read at once. For each ``(producers, consumers)`` pair, an empty stream and a group at ``0``;
    the producers append ``per_producer`` events each (pipelined, ``chunk`` per round trip) while
    the consumers read and acknowledge (``XREADGROUP`` ``batch`` at a time, then one ``XACK`` per
    batch), all released by one start gate. The clock stops when the last consumer saw the group
    hold every event, acknowledged; ``events_per_s`` is events through the log per second, produced
    *and* consumed. ``all_acked`` is the check: nothing pending, every event read once.
    """
    bounds.at_least("per_producer", per_producer)
    pairs = [(bounds.integer("producers", p, 1, 64), bounds.integer("consumers", c, 1, 64)) for p, c in pairs]
    r = client_from_url(redis_url)
    log = EventLog(r, "bench:together")
    rows = []
    try:
        for producers, consumers in pairs:
            log.delete()
            ensure_group(r, log.key, "together", "0")  # MKSTREAM: the stream exists, empty
            total = producers * per_producer
            jobs = [
                ("produce", redis_url, log.name, per_producer, i * per_producer, chunk)
                for i in range(producers)
            ]
            jobs += [("consume", redis_url, log.name, f"reader-{i}", total, batch) for i in range(consumers)]
            seconds, results = run_together(_together, jobs, timeout=60 + 4 * total / 1_000)
            info = next(g for g in r.xinfo_groups(log.key) if g["name"] == "together")
            pending = r.xpending(log.key, "together")["pending"]
            read = sum(x.get("read", 0) for x in results)
            acked = pending == 0 and read == total and info.get("entries-read") == total
            rows.append(
                {"producers": producers, "consumers": consumers, "events": total, "read": read,
                 "all_acked": acked, "seconds": seconds, "events_per_s": total / seconds}
            )  # fmt: skip
        frame = pd.DataFrame(rows)
        frame.insert(0, "system", redis_label(r))
        return frame
    finally:
        log.delete()
        r.close()


def _together(role, redis_url, log_name, *args) -> None:
    """One process of ``produce_and_consume``: a producer (``_produce``) or a reader (``_read_all``)."""
    (_produce if role == "produce" else _read_all)(redis_url, log_name, *args)


def _read_all(redis_url, log_name, consumer, total, batch, gate, results) -> None:
    """Reader process: XREADGROUP and XACK until the group has read every one of ``total`` events."""
    r = client_from_url(redis_url)
    try:
        log = EventLog(r, log_name)
        r.ping()
        wait_at_gate(gate)
        started, read = time.perf_counter(), 0
        while True:
            reply = r.xreadgroup("together", consumer, {log.key: ">"}, count=batch, block=5)
            entries = reply[0][1] if reply else []
            if entries:
                r.xack(log.key, "together", *(entry_id for entry_id, _ in entries))
                read += len(entries)
                continue
            info = next(g for g in r.xinfo_groups(log.key) if g["name"] == "together")
            if info["pending"] == 0 and (info.get("entries-read") or 0) >= total:
                break  # every event written, read and acknowledged (by someone)
        results.put({"read": read, "seconds": time.perf_counter() - started})
    except BaseException as error:
        report_failure(results, error)
    finally:
        r.close()


# --- Redis: end-to-end latency ----------------------------------------------------------------


def end_to_end_latency(
    redis_url: str, rate: int = 10_000, seconds: float = 5.0, *, batch: int = 100, block_ms: int = 100
) -> pd.DataFrame:
    """Latency from building an event to its consumer's handler, at a paced ``rate``.

    One consumer process runs ``Worker`` (blocking XREADGROUP, ``batch`` per
    read); its handler computes ``time.time_ns() - ts``. This process sends
    ``rate`` events/s for ``seconds``: every millisecond one pipeline of the
    events due by then, each stamped ``ts=time.time_ns()`` as it is built.
    One row: p50 / p99 / p99.9 / max in ms, events sent and received, achieved rate.
    """
    bounds.at_least("rate", rate)
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    r = client_from_url(redis_url)
    log = EventLog(r, "bench:latency")
    log.delete()
    group = "latency"
    ctx = spawn_context()
    ready, stop, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    consumer = ctx.Process(
        target=_latency_consumer,
        args=(redis_url, log.name, group, batch, block_ms, seconds * 3 + 30, ready, stop, results),
        daemon=True,
    )
    try:
        ensure_group(r, log.key, group, "0")
        consumer.start()
        wait_ready(ready, 1, [consumer], results)
        time.sleep(0.05)  # let it reach its blocking read

        pipe = r.pipeline(transaction=False)
        key = log.key

        def send(count: int, first: int) -> None:
            for i in range(first, first + count):
                pipe.xadd(
                    key, {"action": "placed", "order_id": f"ord-{i}", "total": "89.99", "ts": time.time_ns()}
                )
            pipe.execute()

        sent, elapsed = paced(send, rate, seconds)
        r.xadd(key, {"end": "1"})
        outcome = get(results, consumer, timeout=30 + seconds)
        pending = r.xpending(key, group)["pending"]
        return latency_frame(redis_label(r), rate, seconds, sent, elapsed, outcome, pending_after=pending)
    finally:
        stop.set()
        finish([consumer])
        results.close()
        log.delete()
        r.close()


def _latency_consumer(redis_url, log_name, group, batch, block_ms, budget_s, ready, stop, results) -> None:
    """Consumer process: a blocking ``Worker`` whose handler records now - ts, until the end marker."""
    r = client_from_url(redis_url)
    try:
        log = EventLog(r, log_name)
        latencies: list[float] = []

        def handle(entry_id: str, fields: dict) -> None:
            if "end" in fields:
                worker.stop()
            else:
                latencies.append((time.time_ns() - int(fields["ts"])) / 1e6)

        worker = Worker(log, group, "latency", handle, batch=batch, block_ms=block_ms, claim_idle_ms=60_000)
        stop_when(stop, worker.stop, budget_s)
        r.ping()
        ready.release()
        stats = worker.run()
        results.put({"latencies_ms": np.array(latencies), "handled": stats.handled})
    except BaseException as error:
        report_failure(results, error)
    finally:
        r.close()


# --- tables -----------------------------------------------------------------------------------


def _value(frame: pd.DataFrame | None, column: str, **where) -> float:
    """One figure from a result frame (NaN when absent or not measured)."""
    if frame is None or column not in frame.columns:
        return float("nan")
    rows = frame
    for name, value in where.items():
        rows = rows[rows[name] == value]
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else float("nan")


def _best(frame: pd.DataFrame | None, column: str, by: str) -> tuple[float, int | None]:
    """The highest ``column`` of a per-k frame and the k it was reached with."""
    if frame is None or column not in frame.columns:
        return float("nan"), None
    rows = frame
    values = pd.to_numeric(rows[column], errors="coerce")
    if values.dropna().empty:
        return float("nan"), None
    best = values.idxmax()
    return float(values[best]), int(rows.loc[best, by])


def summary_table(
    producer: pd.DataFrame,
    consumers: pd.DataFrame,
    latency: pd.DataFrame,
    outbox_producer: pd.DataFrame | None = None,
    outbox_consumers: pd.DataFrame | None = None,
    outbox_latency: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The same jobs, Redis and the SQL outbox side by side, with the ratio Redis / SQL."""
    redis_name = producer.system.iloc[0]
    sql_name = outbox_producer.system.iloc[0] if outbox_producer is not None else "SQL outbox"
    best_redis, best_k = _best(consumers, "events_per_s", "workers")
    best_sql, best_sql_k = _best(outbox_consumers, "events_per_s", "workers")
    pipelined = _value(producer, "events_per_s", method=PIPELINED)
    lines = [
        ("append one at a time (SQL: a commit each)", "events/s",
         _value(producer, "events_per_s", method=ONE_BY_ONE),
         _value(outbox_producer, "events_per_s", method=SQL_ONE_BY_ONE)),
        ("append 1,000 per round trip (SQL: per transaction)", "events/s", pipelined,
         _value(outbox_producer, "events_per_s", method=SQL_BATCHED)),
        ("bulk load (Redis: pipelined; SQL: COPY)", "events/s", pipelined,
         _value(outbox_producer, "events_per_s", method=SQL_COPY)),
        ("read + ack, 1 consumer", "events/s", _value(consumers, "events_per_s", workers=1),
         _value(outbox_consumers, "events_per_s", workers=1)),
        (f"read + ack, best (Redis k={best_k}, SQL k={best_sql_k})", "events/s", best_redis, best_sql),
    ]  # fmt: skip
    for column in ("p50_ms", "p99_ms", "p99.9_ms"):
        rate_label = f"{_value(latency, 'target_rate'):,.0f}/s"
        lines.append(
            (f"end to end at {rate_label}, {column[:-3]}", "ms", _value(latency, column),
             _value(outbox_latency, column))
        )  # fmt: skip
    frame = pd.DataFrame(lines, columns=["job", "unit", redis_name, sql_name])
    frame[f"{redis_name} / {sql_name}"] = frame[redis_name] / frame[sql_name]
    return frame


def claims_table(
    producer: pd.DataFrame,
    producers: pd.DataFrame,
    ceiling: pd.DataFrame,
    consumers: pd.DataFrame,
    latency: pd.DataFrame,
    outbox_producer: pd.DataFrame | None = None,
    outbox_consumers: pd.DataFrame | None = None,
    outbox_latency: pd.DataFrame | None = None,
    together: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each claim of notebook 02 with its target, the Redis figure, and the SQL outbox's beside it.

    ``together`` (from ``produce_and_consume``) adds the seed's claim, judged on the best pair.

    The SQL figures are for the same job: rows inserted 1,000 per transaction,
    one consumer's rows deleted per second, the outbox's p99. ``met`` is
    printed, never asserted: benchmarks here do not pass or fail.
    """
    best_producers, best_k = _best(producers, "events_per_s", "processes")
    sql = "SQL outbox"
    rows = [
        ("append", _value(producer, "events_per_s", method=PIPELINED),
         {sql: _value(outbox_producer, "events_per_s", method=SQL_BATCHED)}),
        ("consume", _value(consumers, "events_per_s", workers=1),
         {sql: _value(outbox_consumers, "events_per_s", workers=1)}),
        ("latency", _value(latency, "p99_ms"), {sql: _value(outbox_latency, "p99_ms")}),
        ("one producer", _value(producers, "events_per_s", processes=1), {sql: np.nan}),
        ("producers", best_producers, {sql: np.nan}),
        ("ceiling", _value(ceiling, "events_per_s"), {sql: np.nan}),
    ]  # fmt: skip
    best = {CLAIMS["producers"]: CLAIMS["producers"].text + (f" (best: {best_k})" if best_k else "")}
    if together is not None and len(together):
        top = together.loc[together.events_per_s.idxmax()]
        rows.append(("together", float(top.events_per_s), {sql: np.nan}))
        pair = f"{int(top.producers)} producers, {int(top.consumers)} consumers"
        best[CLAIMS["together"]] = f"{CLAIMS['together'].text} (best: {pair})"
    return claims.table(rows, label=best)


def main(r: redis.Redis, db: SqlBaseline) -> None:
    config = settings()
    url = url_of(r)
    print(
        f"workshop size: {config.size}; {config.stream_bench_events:,} events pipelined,"
        f" {config.stream_bench_one_by_one:,} one by one; consumers {config.stream_bench_processes};"
        f" latency at {config.stream_latency_rate:,}/s for {config.stream_latency_seconds} s",
        flush=True,
    )
    started = time.perf_counter()
    producer = producer_throughput(r, config.stream_bench_events, one_by_one=config.stream_bench_one_by_one)
    print("\nProducer, one process\n", producer.round(3).to_string(index=False), flush=True)
    producers = producer_processes(
        url, config.stream_bench_processes, per_process=config.stream_bench_per_process
    )
    print("\nProducer processes, one stream\n", producers.round(3).to_string(index=False), flush=True)
    ceiling = redis_benchmark_xadd(url, config.stream_redis_benchmark_requests)
    print("\nredis-benchmark, pipeline 32\n", ceiling.to_string(index=False), flush=True)
    consumers = consumer_throughput(url, config.stream_bench_events, config.stream_bench_processes)
    print("\nConsumer group (Worker, batch 1,000)\n", consumers.round(3).to_string(index=False), flush=True)
    latency = end_to_end_latency(url, config.stream_latency_rate, config.stream_latency_seconds)
    print("\nEnd-to-end latency\n", latency.round(3).to_string(index=False), flush=True)
    together = produce_and_consume(url, config.stream_bench_per_process, TOGETHER_PAIRS)
    print("\nProducers and consumers at once\n", together.round(3).to_string(index=False), flush=True)
    io_bound = consumer_throughput(
        url,
        config.stream_io_events,
        config.stream_io_workers,
        batch=20,
        handler_ms=config.stream_io_handler_ms,
    )
    print("\nConsumer group, a handler that waits\n", io_bound.round(3).to_string(index=False), flush=True)

    outbox_producer = outbox_producer_throughput(
        db, config.outbox_bench_events, one_by_one=config.outbox_bench_one_by_one
    )
    print("\nOutbox producer\n", outbox_producer.round(3).to_string(index=False), flush=True)
    outbox_consumers = outbox_consumer_throughput(
        db, config.outbox_bench_events, config.stream_bench_processes
    )
    print("\nOutbox consumers (SKIP LOCKED)\n", outbox_consumers.round(3).to_string(index=False), flush=True)
    outbox_latency = outbox_end_to_end_latency(db, config.stream_latency_rate, config.stream_latency_seconds)
    print("\nOutbox end-to-end latency\n", outbox_latency.round(3).to_string(index=False), flush=True)

    print(
        "\nSide by side\n",
        summary_table(producer, consumers, latency, outbox_producer, outbox_consumers, outbox_latency)
        .round(3)
        .to_string(index=False),
    )
    print(
        "\nClaims against figures\n",
        claims_table(
            producer,
            producers,
            ceiling,
            consumers,
            latency,
            outbox_producer,
            outbox_consumers,
            outbox_latency,
            together,
        )
        .round(3)
        .to_string(index=False),
    )
    pairs = durability_pairs(
        durability_runs(db, config.durability_events, one_by_one=config.durability_one_by_one)
    )
    print("\nProducers at equal durability\n", pairs.round(2).T.to_string(header=False), flush=True)
    print(f"\n(streams benchmark: {time.perf_counter() - started:.1f} s)")


# --- memory per entry, and trimming -------------------------------------------------------
def stream_by_entry_size(
    r: redis.Redis, *, entries: int | None = None, payload_sizes: Sequence[int] = (16, 64, 256, 1_024)
) -> pd.DataFrame:
    """Bytes per stream entry for entries of ``{"type", "id", "payload"}`` with growing payloads.

    Entries that repeat the first entry's field names store only the values, so
    the overhead per entry is small: the payload is most of the bill.
    """
    entries = settings().memory_stream_entries if entries is None else entries
    bounds.at_least("entries", entries)
    payload_sizes = bounds.counts("payload_sizes", payload_sizes, 0)
    key = workshop_key("stream", "{bench:memory}")
    rows = []
    for size in payload_sizes:
        r.unlink(key)
        payload = "x" * size
        _xadd_many(r, key, entries, lambda i: {"type": "order", "id": str(i), "payload": payload})  # noqa: B023
        used = r.memory_usage(key, samples=0)
        rows.append(
            {
                "payload_bytes": size,
                "entries": entries,
                "bytes_total": used,
                "bytes_per_entry": used / entries,
                "overhead_per_entry": used / entries - size,
            }
        )
        r.unlink(key)
    return pd.DataFrame(rows)


def stream_trimming(
    r: redis.Redis, *, entries: int | None = None, maxlen: int | None = None, payload_bytes: int = 64
) -> pd.DataFrame:
    """Append ``entries`` events with no trimming, ``MAXLEN maxlen`` and ``MAXLEN ~ maxlen``.

    Exact trimming keeps exactly ``maxlen`` entries; ``~`` lets Redis drop only
    whole listpack nodes (``stream-node-max-entries``, 100 by default), so it
    keeps a few more and does less work per append.
    """
    config = settings()
    entries = config.memory_stream_entries if entries is None else entries
    maxlen = config.memory_stream_maxlen if maxlen is None else maxlen
    bounds.at_least("entries", entries)
    bounds.at_least("maxlen", maxlen)
    key = workshop_key("stream", "{bench:memory}")
    payload = "x" * payload_bytes
    rows = []
    for label, trim in (("no trimming", None), (f"MAXLEN {maxlen}", False), (f"MAXLEN ~ {maxlen}", True)):
        r.unlink(key)
        started = time.perf_counter()
        fields = lambda i: {"id": str(i), "payload": payload}  # noqa: E731
        _xadd_many(r, key, entries, fields, maxlen=None if trim is None else maxlen, approximate=trim)
        seconds = time.perf_counter() - started
        kept, used = r.xlen(key), r.memory_usage(key, samples=0)
        rows.append(
            {
                "trimming": label,
                "appended": entries,
                "kept": kept,
                "bytes_total": used,
                "bytes_per_kept_entry": used / kept,
                "appends_per_s": entries / seconds,
            }
        )
        r.unlink(key)
    return pd.DataFrame(rows)


def _xadd_many(r, key: str, entries: int, fields, *, maxlen=None, approximate=None) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(entries):
        pipe.xadd(key, fields(i), maxlen=maxlen, approximate=bool(approximate))
        if len(pipe) == 5_000:
            pipe.execute()
    pipe.execute()
