"""Notebook 03's "one Redis, many clients": what a rate limiter in Redis costs the server, and how many
decisions one Redis serves.

The seed says a Lua script in Redis replaces a rate-limiting microservice. A service's
first job is to answer many app servers fast, so two measurements, both on a throwaway
Redis of their own (``helpers.servers``: nothing else runs there, so its counters are ours):

* ``server_time``: the server's own time per decision, from ``INFO commandstats``
  (``cmdstat_evalsha``: calls and microseconds, read before and after), for each of the
  course's algorithms and, beside them, the equivalent strategy of the ``limits``
  library (``alisaifee/limits``, the library behind Flask-Limiter), each called through
  its own public API. Two paths: a request that is **admitted** and one that is
  **refused** (its key already at the limit). ``1e6 / µs`` is the most decisions one
  core can make, were reading requests and writing replies free.
* ``decisions_by_clients``: decisions per second against the number of clients, each
  with one request in flight (an app server waiting for its answer), then each with
  ``depth`` requests pipelined. The clients are ``RateLimiter``'s own EVALSHA calls,
  sent by a few spawned processes (``helpers.bench.processes``) that each drive their
  share of the connections in turn, so Python's per-call cost is spread over the machine's
  cores. Every reply is counted, and the admitted ones are checked against what the limit
  allows each key (``expected_admitted``).

The clients run on the same machine as the server and share its cores: on a laptop the
figures are a floor for what a server of its own would do.
"""

from __future__ import annotations

import os
import statistics
import time

import pandas as pd
import redis
from limits import parse
from limits import storage as limits_storage
from limits import strategies as limits_strategies
from tqdm.auto import tqdm

from helpers import bounds, keyspace, servers
from helpers.bench.processes import report_failure, run_together, wait_at_gate
from helpers.bench.race import CLASSIC, NAME, bench_key, now_ms, remove
from helpers.clients import client_from_url
from helpers.keyspace import key as workshop_key
from helpers.ratelimit import ALGORITHMS, RateLimiter
from helpers.scripts import load, source

SERVER_CLOCK, CALLER_CLOCK = "server (TIME)", "caller's"
FULL, YES_NO = "allowed, remaining, retry-after, reset", "yes or no"
ADMITTED, REFUSED = "admitted", "refused"
LIMITS = "limits 5"  # the library and its major version (requirements.txt pins it)
LIMITS_PREFIX = workshop_key("limits")
HOT_LIMIT = 5  # decisions_by_clients: the key every client also hits, to show no two clients share a place
HOT_EVERY = 100  # ... as one request in this many


def _evalsha_stats(client: redis.Redis) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA so far on this server (both 0 before the first)."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _variants(client: redis.Redis, url: str, limit: int, period_s: int) -> dict[tuple, object]:
    """``{(library, algorithm, clock, answer): decide(key) -> allowed}``: one decision a call, each
    library's own way. The caller gives every variant keys of its own."""
    ours = {
        algorithm: RateLimiter(client, limit, period_s, algorithm, name=NAME)
        for algorithm in ("fixed_window", "sliding_log", "sliding_counter", "gcra")
    }
    classic = load(client, CLASSIC)
    # its own connection pool, as an application would have; its keys under the workshop's prefix
    store = limits_storage.RedisStorage(url, key_prefix=LIMITS_PREFIX)
    item = parse(f"{limit}/{period_s} seconds")
    fixed = limits_strategies.FixedWindowRateLimiter(store)
    moving = limits_strategies.MovingWindowRateLimiter(store)
    counter = limits_strategies.SlidingWindowCounterRateLimiter(store)
    log = ours["sliding_log"]

    def with_headers(key: str) -> bool:  # what an API needs for its RateLimit headers: a second script
        allowed = moving.hit(item, NAME, key)
        moving.get_window_stats(item, NAME, key)
        return allowed

    course = "this course"
    return {
        (course, "fixed_window", SERVER_CLOCK, FULL): lambda key: ours["fixed_window"].hit(key).allowed,
        (course, "sliding_log", SERVER_CLOCK, FULL): lambda key: log.hit(key).allowed,
        (course, "sliding_log", CALLER_CLOCK, FULL): lambda key: log.hit(key, now_ms=now_ms()).allowed,
        (course, "sliding_counter", SERVER_CLOCK, FULL): lambda key: ours["sliding_counter"].hit(key).allowed,
        (course, "gcra", SERVER_CLOCK, FULL): lambda key: ours["gcra"].hit(key).allowed,
        (course, "classic (seed)", CALLER_CLOCK, YES_NO): lambda key: (
            classic(keys=[bench_key(key)], args=[period_s, limit, now_ms()]) == 1
        ),
        (LIMITS, "fixed window", CALLER_CLOCK, YES_NO): lambda key: fixed.hit(item, NAME, key),
        (LIMITS, "moving window", CALLER_CLOCK, YES_NO): lambda key: moving.hit(item, NAME, key),
        (LIMITS, "moving window + get_window_stats", CALLER_CLOCK, FULL): with_headers,
        (LIMITS, "sliding window counter", CALLER_CLOCK, YES_NO): lambda key: counter.hit(item, NAME, key),
    }


def server_time(*, calls: int = 1_000, rounds: int = 5, keys: int = 100, period_s: int = 3_600,
                server=None) -> pd.DataFrame:  # fmt: skip
    """The server's microseconds per decision, by library, algorithm and path (admitted, refused).

    On a throwaway Redis (or ``server``, a ``helpers.servers`` throwaway the caller owns),
    every variant makes ``calls`` decisions per round, one call at a time, on ``keys``
    keys of its own: for the admitted path fresh keys every round and a limit of 100 per
    ``period_s`` (no key reaches it, and logs stay as short on both sides), for the refused
    path a limit of 10, every key filled to it first. Variants take turns within a round, so
    a noisy moment touches them all; a row is the median of ``rounds``.
    ``usec_per_decision`` counts every script a decision ran (two for "+ get_window_stats");
    ``allowed_share`` is the share of decisions that admitted (1 on the admitted path, 0 on
    the refused one, or the path is not what it says).
    """
    bounds.at_least("calls", calls)
    bounds.at_least("rounds", rounds)
    bounds.at_least("keys", keys)
    owned = server is None
    server = server or servers.start_redis()
    samples: dict[tuple, list[tuple[float, float, float]]] = {}  # (µs, allowed share, scripts) per round
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        paths = {
            ADMITTED: _variants(client, server.url, 100, period_s),
            REFUSED: _variants(client, server.url, 10, period_s),
        }
        for number, decide in enumerate(paths[REFUSED].values()):
            for i in list(range(keys)) * 10:  # every refused-path key at its limit of 10
                decide(f"service:{number}:refused:{i}")
        total = rounds * sum(len(variants) for variants in paths.values())
        with tqdm(total=total, desc="server time per decision", leave=False) as progress:
            for round_ in range(rounds):
                for path, variants in paths.items():
                    for number, (variant, decide) in enumerate(variants.items()):
                        if path == ADMITTED:
                            names = [f"service:{number}:admitted:{round_}:{i % keys}" for i in range(calls)]
                        else:
                            names = [f"service:{number}:refused:{i % keys}" for i in range(calls)]
                        decide(names[0] + ":warm")  # the script is cached: no NOSCRIPT reload is timed
                        calls_before, usec_before = _evalsha_stats(client)
                        allowed = sum(bool(decide(name)) for name in names)
                        calls_after, usec_after = _evalsha_stats(client)
                        scripts_per_decision = (calls_after - calls_before) / calls
                        usec = (usec_after - usec_before) / calls
                        samples.setdefault((*variant, path), []).append(
                            (usec, allowed / calls, scripts_per_decision)
                        )
                        progress.update()
    finally:
        if owned:
            server.stop()
        else:
            remove(client, "service")
            keyspace.cleanup(client, LIMITS_PREFIX + ":")
        client.close()
    columns = ["library", "algorithm", "clock", "answer", "path"]
    rows = [
        dict(zip(columns, variant))
        | {
            "scripts_per_decision": statistics.median(scripts for _, _, scripts in values),
            "usec_per_decision": statistics.median(usec for usec, _, _ in values),
            "allowed_share": statistics.mean(share for _, share, _ in values),
            "rounds": len(values),
        }
        for variant, values in samples.items()
    ]
    frame = pd.DataFrame(rows)
    frame["ceiling_per_core"] = 1e6 / frame.usec_per_decision
    return frame


def ratio(frame: pd.DataFrame, path: str, ours: tuple[str, str], theirs: tuple[str, str]) -> float:
    """``server_time``'s µs of (library, algorithm, clock) ``ours`` over ``theirs`` on ``path``."""

    def usec(who: tuple[str, ...]) -> float:
        algorithm, clock = who
        found = frame[(frame.algorithm == algorithm) & (frame.clock == clock) & (frame.path == path)]
        if len(found) != 1:
            raise KeyError(f"no single server_time row for {algorithm}, {clock} clock, {path}")
        return float(found.usec_per_decision.iloc[0])

    return usec(ours) / usec(theirs)


# --- decisions per second against clients ---------------------------------------------------------------


def _server_cpu_s(client: redis.Redis) -> float:
    """CPU seconds the server process has used (INFO cpu: user + system, all its threads)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _drive(url, connections, depth, seconds, keys_per_connection, limit, period_s, hot_key, worker, gate,
           results):  # fmt: skip
    """Load process: ``connections`` connections in turn, each with ``depth`` EVALSHA in flight.

    Each connection cycles through its own keys; one request in ``HOT_EVERY`` goes to ``hot_key``
    instead, which every connection of the run shares, with a limit of ``HOT_LIMIT``: many clients
    at once on one key.
    Worker 0 also reads the server's CPU time when the run starts and ends.
    """
    try:
        client = client_from_url(url)
        limiter = RateLimiter(client, limit, period_s, name=NAME)  # the parent loaded its script
        hot = RateLimiter(client, HOT_LIMIT, period_s, name=NAME).arguments(hot_key)
        conns, commands = [], []
        for c in range(connections):
            conn = client.connection_pool.make_connection()
            conn.connect()
            calls = [hot if k % HOT_EVERY == 0 else limiter.arguments(f"load:{worker}:{c}:{k}")
                     for k in range(keys_per_connection)]  # fmt: skip
            # each key's EVALSHA, packed once; twice over, so any depth consecutive ones are one slice
            packed = [b"".join(conn.pack_command("EVALSHA", limiter.script.sha, len(keys), *keys, *args))
                      for keys, args in calls]  # fmt: skip
            conns.append(conn)
            commands.append(packed + packed)
        wait_at_gate(gate)
        cpu_before = _server_cpu_s(client) if worker == 0 else 0.0
        admitted = hot_admitted = errors = rounds = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            first = rounds * depth % keys_per_connection  # this round's keys: first ... first + depth - 1
            for c, conn in enumerate(conns):
                conn.send_packed_command([b"".join(commands[c][first : first + depth])], check_health=False)
            for conn in conns:
                for i in range(depth):
                    try:
                        reply = conn.read_response(disable_decoding=True)
                    except redis.ResponseError:  # an error reply (OOM, BUSY, ...): counted, the run goes on
                        errors += 1
                        continue
                    if (first + i) % keys_per_connection % HOT_EVERY == 0:
                        hot_admitted += int(reply[0])
                    else:
                        admitted += int(reply[0])
            rounds += 1
        elapsed = time.perf_counter() - started
        cpu_s = _server_cpu_s(client) - cpu_before if worker == 0 else None
        for conn in conns:
            conn.disconnect()
        client.close()
        # what the limit allows: each connection sent rounds * depth requests, cycling through its keys
        each, extra = divmod(rounds * depth, keys_per_connection)
        sent = [each + (1 if k < extra else 0) for k in range(keys_per_connection)]  # per position
        expected = connections * sum(min(n, limit) for k, n in enumerate(sent) if k % HOT_EVERY)
        hot_sent = connections * sum(n for k, n in enumerate(sent) if k % HOT_EVERY == 0)
        results.put({"replies": rounds * depth * connections, "admitted": admitted, "errors": errors,
                     "seconds": elapsed, "expected_admitted": expected, "hot_sent": hot_sent,
                     "hot_admitted": hot_admitted, "server_cpu_s": cpu_s})  # fmt: skip
    except BaseException as error:
        report_failure(results, error)


def decisions_by_clients(url: str, clients=(1, 2, 4, 8, 16, 32, 50), depths=(1, 16), *, seconds: float = 2.0,
                         limit: int = 100, period_s: int = 3_600, keys_per_connection: int = 2_000,
                         processes: int | None = None) -> pd.DataFrame:  # fmt: skip
    """Decisions/s of ``RateLimiter.hit``'s script (sliding log, the server's clock) for each number
    of clients and pipeline depth, on the server at ``url``.

    ``processes`` (default: the machine's cores, at most one per client) share the clients.
    One row per (clients, depth): decisions, decisions/s, the admitted ones against
    ``expected_admitted`` (what the limit allows each key, from what was sent), error replies;
    the hot key's requests, admitted and expected (``HOT_LIMIT``, once every client has sent
    more); the server's EVALSHA calls and µs per decision inside the script (INFO
    commandstats), and its CPU per decision and share of one core (INFO cpu) over the run.
    Keys are the workshop's benchmark keys (``RateLimiter(name=NAME)``), removed afterwards.
    """
    clients, depths = bounds.counts("clients", clients), bounds.counts("depths", depths)
    bounds.integer("keys_per_connection", keys_per_connection, max(depths), 1_000_000)
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    cores = processes or os.cpu_count() or 1
    rows = []
    cleaner = client_from_url(url)
    cleaner.script_load(source(ALGORITHMS["sliding_log"]))  # EVALSHA finds it
    try:
        runs = [(depth, count) for depth in depths for count in clients]
        for depth, count in tqdm(runs, desc="decisions by clients", leave=False):
            workers = min(cores, count)
            shares = [count // workers + (1 if w < count % workers else 0) for w in range(workers)]
            hot_key = f"load:hot:{depth}:{count}"
            jobs = [(url, share, depth, seconds, keys_per_connection, limit, period_s, hot_key, w)
                    for w, share in enumerate(shares)]  # fmt: skip
            calls_before, usec_before = _evalsha_stats(cleaner)
            wall, results = run_together(_drive, jobs, timeout=120 + 2 * seconds)
            calls_after, usec_after = _evalsha_stats(cleaner)
            remove(cleaner, "load")
            replies = sum(result["replies"] for result in results)
            slowest = max(result["seconds"] for result in results)
            cpu_s = next(result["server_cpu_s"] for result in results if result["server_cpu_s"] is not None)
            hot_sent = sum(result["hot_sent"] for result in results)
            rows.append({
                "clients": count, "depth": depth, "processes": workers, "decisions": replies,
                "seconds": slowest, "decisions_per_s": replies / slowest,
                "admitted": sum(result["admitted"] for result in results),
                "expected_admitted": sum(result["expected_admitted"] for result in results),
                "errors": sum(result["errors"] for result in results),
                "hot_requests": hot_sent, "hot_admitted": sum(result["hot_admitted"] for result in results),
                "hot_expected": min(hot_sent, HOT_LIMIT),
                "server_calls": calls_after - calls_before,
                "server_usec_per_decision": (usec_after - usec_before) / max(calls_after - calls_before, 1),
                "server_cpu_usec_per_decision": cpu_s * 1e6 / replies, "server_cpu_share": cpu_s / slowest,
            })  # fmt: skip
    finally:
        remove(cleaner, "load")
        cleaner.close()
    return pd.DataFrame(rows)
