"""What the helpers accept: every bound in one place, and the checks that enforce them.

Each bound keeps a value inside what Redis, a Lua double or a short script run can
hold, and is checked in Python before anything is sent (and again inside the Lua
scripts, which carry the same numbers in their headers; a test keeps them equal):

| bound | value | why |
|---|---|---|
| ``MAX_EXACT_INT`` | 2**53 | scores and Lua numbers are doubles: integers beyond it lose digits |
| ``MAX_INT64`` | 2**63 - 1 | Redis integers (counters, stream field values sent as numbers) |
| ``MAX_TTL_S`` | 10 years | an expiry Redis stores in ms from now, far from overflow |
| ``MAX_KEEP_DAYS`` | 3,660 | daily and weekly boards: ``MAX_TTL_S`` in days |
| ``MAX_RESULTS`` | 10,000 | entries one read returns (``top``, ``page`` size, ``around``'s window) |
| ``MAX_POSITION`` | 10**15 | a position on a board (``page`` number x size): exact as a Lua double |
| ``MAX_LIMIT`` | 10**9 | requests per period for the counting limiters |
| ``MAX_LOG_LIMIT`` | 10,000 | the sliding log keeps one entry per admitted request: at most this many |
| ``MIN_PERIOD_S`` / ``MAX_PERIOD_S`` | 0.001 s / 366 days | a limiter's period, in whole milliseconds |
| ``MAX_NOW_MS`` | 10**13 | a time in ms (the year 2286): room to add a period in a double |
| ``MAX_STREAM_LENGTH`` | 2**53 | ``MAXLEN`` |
| ``MAX_CHUNK`` | 100,000 | entries per round trip of a bulk write |
| ``MAX_CENTS`` | 2**53 - 1 | an order amount, and a running total, in cents |

Under these bounds the slowest script call is the sliding log at ``MAX_LOG_LIMIT``
(removing 10,000 expired entries and adding 10,000), then a 10,000-entry page of a
1,000,000-player board: measured on the course's 2-core machine, 20 to 43 ms and 13 to
28 ms of server time (Redis 8.2, Valkey 8.1, Redis 7.0; SLOWLOG). Milliseconds, not
seconds: a least-privilege user who may only call the limiter cannot stall the server
(before these bounds, one call of cost 3,000,000 held Redis 7.7 s, unkillably).

Strings must be encodable as UTF-8 (a lone surrogate is not), checked before the
first byte is sent, so a bulk write either writes everything or nothing.
"""

from __future__ import annotations

import math
import numbers

MAX_EXACT_INT = 2**53
MAX_INT64 = 2**63 - 1
MAX_TTL_S = 10 * 366 * 86_400
MAX_KEEP_DAYS = MAX_TTL_S // 86_400
MAX_RESULTS = 10_000
MAX_POSITION = 10**15
MAX_LIMIT = 10**9
MAX_LOG_LIMIT = 10_000
MIN_PERIOD_S = 0.001
MAX_PERIOD_S = 366 * 86_400
MAX_NOW_MS = 10**13
MAX_STREAM_LENGTH = 2**53
MAX_CHUNK = 100_000
MAX_CENTS = 2**53 - 1


def integer(what: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) from ``low`` to ``high``, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer from {low:,} to {high:,}, got {shown(value)}")
    return value


def at_least(what: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum:,}, got {shown(value)}")
    return value


def counts(what: str, values: object, minimum: int = 1) -> tuple[int, ...]:
    """``values`` as a non-empty tuple of ints of at least ``minimum`` each (process counts, sizes)."""
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{what} must be a sequence of integers, got {shown(values)}") from None
    if not values:
        raise ValueError(f"{what} must hold at least one integer")
    return tuple(at_least(what, value, minimum) for value in values)


def number(what: str, value: object, low: float, high: float) -> float:
    """``value`` as a float if it is a real number from ``low`` to ``high``, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number from {low:g} to {high:g}, got {shown(value)}")
    if isinstance(value, numbers.Integral) and not -MAX_INT64 <= value <= MAX_INT64:
        raise ValueError(f"{what} must be a number from {low:g} to {high:g}, got {shown(value)}")
    as_float = float(value)
    if not math.isfinite(as_float) or not low <= as_float <= high:
        raise ValueError(f"{what} must be a number from {low:g} to {high:g}, got {shown(value)}")
    return as_float


def text(what: str, value: object, *, empty: bool = False) -> str:
    """``value`` if it is a string Redis can take (UTF-8 encodable; non-empty unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value):
        kind = "a string" if empty else "a non-empty string"
        raise ValueError(f"{what} must be {kind}, got {shown(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"{what} cannot be sent to Redis: it is not valid UTF-8 text ({error.reason} at position "
                f"{error.start}), got {shown(value)}"
            ) from None
    return value


def shown(value: object) -> str:
    """``repr(value)``, cut short: a huge int or string must not flood (or crash) the message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length():,} bits"
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:60] + f"... ({len(shown):,} characters)"
