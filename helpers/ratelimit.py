"""Rate limiters on Redis: four algorithms behind one interface, each one Lua script.

``RateLimiter(r, limit=100, period_s=60, algorithm="sliding_log")`` and then
``hit("user:42")`` returns a ``Decision``: allowed or not, how many requests
remain, when to retry and when the limit is whole again, what an HTTP API puts
in its ``RateLimit-*`` and ``Retry-After`` headers.

| algorithm | script | memory per key | exact? |
|---|---|---|---|
| ``fixed_window`` | ``lua/fixed_window.lua`` | one small hash | no: 2x the limit across a window edge |
| ``sliding_log`` | ``lua/sliding_window.lua`` | one entry per request | yes |
| ``sliding_counter`` | ``lua/sliding_window_counter.lua`` | one small hash | approximate |
| ``gcra`` | ``lua/gcra.lua`` | one number | a token bucket: smooth, bursts up to ``burst`` |

GCRA keeps one time per key, the theoretical arrival time (TAT) of the next request:
each request moves it on by the emission interval (``period_s / limit``), and a request
is let through while the TAT stays within the tolerance (``burst`` intervals, the limit
by default) of now. ``RateLimiter(..., algorithm="gcra", burst=5)`` lets 5 through at once
after a quiet spell, then one per interval.

Each script checks its own arguments, reads the server's clock (``TIME``)
unless a time is passed (for tests and replayed traces), and runs atomically, so
no two clients can both see "one left" and both take it. Scripts are called by
SHA and reloaded on NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
Each limited key is one Redis key, ``workshop:ratelimit:{<name>:<key>}:<algorithm>``: the
hash tag names the Redis Cluster slot, so keys a script may ever share stay together.

When Redis cannot decide, the limiter does what ``on_error`` says: ``"closed"``
(the default) denies, ``"open"`` allows; either way ``Decision.degraded`` is True.
"Cannot decide" is any of ``REFUSALS``: the connection is lost or times out
(``timeout_s``, 1 s by default, bounds connecting and the reply, so the policy
decides within it), or the server refuses the script: ``OOM`` (maxmemory with
noeviction: the scripts declare they write, so a full server refuses them before
their first write), ``BUSY`` (another script is running), ``READONLY`` (a replica,
after a failover), ``LOADING``, ``CLUSTERDOWN``, ``TRYAGAIN``, ``MASTERDOWN``. A
``NOSCRIPT`` never gets this far: the script is loaded again, or sent whole.

The limiter sends its calls without redis-py's retries (its own client,
``clients.without_retries``): a retried call whose reply was lost would count
the request twice. Arguments are checked against ``helpers.bounds`` first (at most
10,000 per window for the sliding log, which keeps one entry per request, 10^9
for the others; periods up to 366 days), so one call stays in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
)

from helpers import bounds, scripts
from helpers.clients import without_retries
from helpers.keyspace import key as workshop_key

ALGORITHMS = {
    "fixed_window": "fixed_window",
    "sliding_log": "sliding_window",
    "sliding_counter": "sliding_window_counter",
    "gcra": "gcra",
}
ON_ERROR = ("closed", "open")
# what makes the limiter fall back to on_error: Redis could not be asked, or refused to run the script
REFUSALS = (
    redis.ConnectionError,  # lost, refused, or past timeout_s (BusyLoadingError, LOADING, is one)
    redis.TimeoutError,
    OutOfMemoryError,  # OOM: maxmemory reached with noeviction
    ReadOnlyError,  # READONLY: a replica (the primary failed over)
    ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    TryAgainError,  # TRYAGAIN: a slot being moved
    BusyLoadingError,
)
MAX_LIMITS = {"sliding_log": bounds.MAX_LOG_LIMIT}  # the others: bounds.MAX_LIMIT


def refused(error: BaseException) -> bool:
    """True if ``error`` means Redis cannot decide now (``REFUSALS``, or BUSY: another script runs)."""
    if isinstance(error, REFUSALS):
        return True
    return isinstance(error, redis.ResponseError) and str(error).startswith("BUSY ")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_ms: int
    degraded: bool = False  # True when Redis could not be asked and ``on_error`` decided

    def headers(self, limit: int) -> dict[str, str]:
        """The HTTP response headers for this decision (RateLimit fields, draft standard)."""
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_ms / 1000)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(math.ceil(self.retry_after_ms / 1000))
        return headers


class RateLimiter:
    """``limit`` requests per ``period_s`` seconds for each key, with the chosen algorithm.

    ``burst`` (GCRA only) is the most requests let through at once; the default is the limit.
    """

    def __init__(
        self,
        r: redis.Redis,
        limit: int,
        period_s: float,
        algorithm: str = "sliding_log",
        *,
        name: str = "api",
        on_error: str = "closed",
        timeout_s: float = 1.0,
        burst: int | None = None,
    ):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
        bounds.integer(f"limit ({algorithm})", limit, 1, MAX_LIMITS.get(algorithm, bounds.MAX_LIMIT))
        if burst is not None:
            if algorithm != "gcra":
                raise ValueError(f"burst is a GCRA parameter; {algorithm} lets the limit through at once")
            bounds.integer("burst", burst, 1, bounds.MAX_LIMIT)
        period_s = bounds.number("period_s", period_s, bounds.MIN_PERIOD_S, bounds.MAX_PERIOD_S)
        _check_name("name", name)
        if ":" in name:  # "api:v2" + "alice" and "api" + "v2:alice" would share keys
            raise ValueError(f"name must not contain ':' (keys may), got {name!r}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        timeout_s = bounds.number("timeout_s", timeout_s, 0.001, 60)
        self.redis, self.limit, self.period_s, self.burst = r, limit, period_s, burst
        self.algorithm, self.name, self.on_error, self.timeout_s = algorithm, name, on_error, timeout_s
        self._client = without_retries(r, timeout_s=timeout_s)
        self.script = scripts.load(self._client, ALGORITHMS[algorithm])
        self._root = workshop_key("ratelimit") + ":"  # read once: hit() is on every request's path

    def __repr__(self) -> str:
        return f"RateLimiter({self.limit} per {self.period_s:g} s, {self.algorithm}, name={self.name!r})"

    def keys(self, key: str) -> list[str]:
        """The Redis keys behind one limited key: one, whatever the algorithm."""
        _check_name("key", key)
        # the algorithm is part of the name: two limiters on one key never read each other's data
        base = f"{self._root}{{{self.name}:{key}}}:{self.algorithm}"
        return [base]

    def hit(self, key: str, cost: int = 1, *, now_ms: int | None = None) -> Decision:
        """Count one request (of weight ``cost``) for ``key`` and decide; ``now_ms`` overrides TIME."""
        return self._run(*self.arguments(key, cost, now_ms))

    def hit_many(self, requests: list[tuple[str, int]], *, now_ms: int | None = None) -> list[Decision]:
        """Decide ``[(key, cost), ...]`` in one pipeline round trip, in order.

        redis-py loads the script before the pipeline runs; if the cache is
        flushed while the pipeline runs, the calls that got NOSCRIPT (and only
        those: the others already counted) are sent again.
        """
        calls = [self.arguments(key, cost, now_ms) for key, cost in requests]
        pipe = self._client.pipeline(transaction=False)
        positions = []  # where each call sits in the pipeline (others may share it)
        for keys, args in calls:
            positions.append(len(pipe))
            self.script(keys=keys, args=args, client=pipe)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as error:
            if refused(error):
                return [self._degraded() for _ in calls]
            raise
        decisions = []
        for (keys, args), position in zip(calls, positions):
            reply = replies[position]
            if isinstance(reply, redis.exceptions.NoScriptError):
                # only this call did not run: ask again, one by one (Script reloads itself)
                decisions.append(self._run(keys, args))
                continue
            if isinstance(reply, Exception):
                if refused(reply):
                    decisions.append(self._degraded())
                    continue
                raise reply
            decisions.append(_decision(reply))
        return decisions

    def reset(self, key: str) -> None:
        """Forget everything about ``key``: its next request starts with the full limit."""
        self._client.unlink(*self.keys(key))

    def _run(self, keys: list[str], args: list) -> Decision:
        try:
            reply = self.script(keys=keys, args=args)
        except redis.RedisError as error:
            if refused(error):
                return self._degraded()
            raise
        return _decision(reply)

    def arguments(self, key: str, cost: object = 1, now_ms: object = None) -> tuple[list[str], list]:
        """The KEYS and ARGV that ``hit(key, cost, now_ms=now_ms)`` sends to the script, checked."""
        most = self.limit if self.burst is None else min(self.limit, self.burst)
        bounds.integer(f"cost (1 to the limit, {most})", cost, 1, most)
        if now_ms is not None:
            bounds.integer("now_ms", now_ms, 0, bounds.MAX_NOW_MS)
        args = [self.period_s, self.limit, "" if now_ms is None else now_ms, cost]
        if self.burst is not None:
            args.append(self.burst)
        return self.keys(key), args

    def _degraded(self) -> Decision:
        allowed = self.on_error == "open"
        return Decision(
            allowed, 0, 0 if allowed else int(self.period_s * 1000), int(self.period_s * 1000), degraded=True
        )


def _decision(reply: list) -> Decision:
    allowed, remaining, retry_after_ms, reset_ms = (int(value) for value in reply)
    return Decision(bool(allowed), remaining, retry_after_ms, reset_ms)


def _check_name(what: str, value: object) -> None:
    bounds.text(what, value)
    if "{" in value or "}" in value:
        raise ValueError(f"{what} must be a non-empty string without braces, got {value!r}")


def sliding_window_oracle(
    times_ms: list[int], limit: int, window_ms: int, costs: list[int] | None = None
) -> list[bool]:
    """The exact answer, in Python: is each request allowed by a sliding log of ``limit`` per ``window_ms``?

    A request at t is allowed if the admitted cost in (t - window_ms, t] plus its
    own cost stays within the limit. Requests must come in time order.
    """
    costs = costs or [1] * len(times_ms)
    admitted: list[tuple[int, int]] = []
    decisions = []
    for t, cost in zip(times_ms, costs):
        admitted = [(s, c) for s, c in admitted if s > t - window_ms]
        allowed = sum(c for _, c in admitted) + cost <= limit
        if allowed:
            admitted.append((t, cost))
        decisions.append(allowed)
    return decisions


FUNCTION_LIBRARY = "workshop_ratelimit"


def function_library(algorithm: str = "sliding_log") -> str:
    """The algorithm's script wrapped as a Redis 7 Functions library (FUNCTION LOAD).

    Built from the same file in ``lua/``, one source of truth: the script body
    becomes the body of ``workshop_<script name>``, called with FCALL.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
    name = ALGORITHMS[algorithm]
    return (
        f"#!lua name={FUNCTION_LIBRARY}\n"
        f"local function {name}(KEYS, ARGV)\n{scripts.body(name)}\nend\n"
        f"redis.register_function('workshop_{name}', {name})\n"
    )


def load_functions(r: redis.Redis, algorithm: str = "sliding_log") -> str:
    """FUNCTION LOAD REPLACE the library; returns the function's name for FCALL.

    Functions live with the data (RDB/AOF, replicas), so a restart or a
    failover does not lose them as it loses the script cache. They are
    server-wide: load them only on a server you own, and FUNCTION DELETE them.
    """
    r.function_load(function_library(algorithm), replace=True)
    return f"workshop_{ALGORITHMS[algorithm]}"
