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
| ``gcra`` | ``lua/gcra.lua`` | one number | a token bucket: smooth, bursts up to the limit |

Each script checks its own arguments, reads the server's clock (``TIME``)
unless a time is passed (for tests and replayed traces), and runs atomically, so
no two clients can both see "one left" and both take it. Scripts are called by
SHA and reloaded on NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
Keys are ``workshop:ratelimit:{<name>:<key>}...``: the hash tag keeps a key's
two keys (the sliding log has two) on one Redis Cluster slot.

When Redis cannot be reached the limiter does what ``on_error`` says: ``"closed"``
(the default) denies, ``"open"`` allows; either way ``Decision.degraded`` is True.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import redis

from helpers import scripts
from helpers.keyspace import key as workshop_key

ALGORITHMS = {
    "fixed_window": "fixed_window",
    "sliding_log": "sliding_window",
    "sliding_counter": "sliding_window_counter",
    "gcra": "gcra",
}
ON_ERROR = ("closed", "open")


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
    """``limit`` requests per ``period_s`` seconds for each key, with the chosen algorithm."""

    def __init__(
        self,
        r: redis.Redis,
        limit: int,
        period_s: float,
        algorithm: str = "sliding_log",
        *,
        name: str = "api",
        on_error: str = "closed",
    ):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        if (
            isinstance(period_s, bool)
            or not isinstance(period_s, numbers.Real)
            or not math.isfinite(period_s)
            or period_s < 0.001
        ):
            raise ValueError(f"period_s must be a finite number of seconds >= 0.001, got {period_s!r}")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
        _check_name("name", name)
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.redis, self.limit, self.period_s = r, limit, float(period_s)
        self.algorithm, self.name, self.on_error = algorithm, name, on_error
        self.script = scripts.load(r, ALGORITHMS[algorithm])
        self._root = workshop_key("ratelimit") + ":"  # read once: hit() is on every request's path

    def __repr__(self) -> str:
        return f"RateLimiter({self.limit} per {self.period_s:g} s, {self.algorithm}, name={self.name!r})"

    def keys(self, key: str) -> list[str]:
        """The Redis keys behind one limited key (two for the sliding log, one otherwise)."""
        _check_name("key", key)
        # the algorithm is part of the name: two limiters on one key never read each other's data
        base = f"{self._root}{{{self.name}:{key}}}:{self.algorithm}"
        return [base, base + ":seq"] if self.algorithm == "sliding_log" else [base]

    def hit(self, key: str, cost: int = 1, *, now_ms: int | None = None) -> Decision:
        """Count one request (of weight ``cost``) for ``key`` and decide; ``now_ms`` overrides TIME."""
        keys, args = self._call(key, cost, now_ms)
        try:
            reply = self.script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError):
            return self._degraded()
        return _decision(reply)

    def hit_many(self, requests: list[tuple[str, int]], *, now_ms: int | None = None) -> list[Decision]:
        """Decide ``[(key, cost), ...]`` in one pipeline round trip, in order.

        redis-py loads the script before the pipeline runs; if the cache is
        flushed while the pipeline runs, the calls that got NOSCRIPT (and only
        those: the others already counted) are sent again.
        """
        calls = [self._call(key, cost, now_ms) for key, cost in requests]
        pipe = self.redis.pipeline(transaction=False)
        positions = []  # where each call sits in the pipeline (others may share it)
        for keys, args in calls:
            positions.append(len(pipe))
            self.script(keys=keys, args=args, client=pipe)
        try:
            replies = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError):
            return [self._degraded() for _ in calls]
        decisions = []
        for (keys, args), position in zip(calls, positions):
            reply = replies[position]
            if isinstance(reply, redis.exceptions.NoScriptError):
                # only this call did not run: ask again, one by one (Script reloads itself)
                reply = self.script(keys=keys, args=args)
            elif isinstance(reply, Exception):
                raise reply
            decisions.append(_decision(reply))
        return decisions

    def reset(self, key: str) -> None:
        """Forget everything about ``key``: its next request starts with the full limit."""
        self.redis.unlink(*self.keys(key))

    def _call(self, key: str, cost: object, now_ms: object) -> tuple[list[str], list]:
        if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= self.limit:
            raise ValueError(f"cost must be an integer from 1 to the limit ({self.limit}), got {cost!r}")
        if now_ms is not None and (isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0):
            raise ValueError(f"now_ms must be None or an integer >= 0, got {now_ms!r}")
        args = [self.period_s, self.limit, "" if now_ms is None else now_ms, cost]
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
    if not isinstance(value, str) or not value or "{" in value or "}" in value:
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
        f"local function {name}(KEYS, ARGV)\n{scripts.source(name)}\nend\n"
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
