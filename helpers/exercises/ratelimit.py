"""Checks for notebook 03's "Your turn" exercises (rate limiters as Lua scripts).

In the notebook: ``from helpers.exercises import ratelimit as check``, then

1. ``check.fixed_window_hit(r, fixed_window_hit)``: a fixed-window limiter, one EVAL per decision;
2. ``check.hit_without_lua(r, hit_without_lua)``: a sliding log with no script that still
   never over-admits (one MULTI/EXEC that writes first, or WATCH with retries);
3. ``check.token_bucket_hit(r, token_bucket_hit)``: a token bucket that allows bursts.

Each replays a fixed trace, with its own ``now_ms``, for two clients, through the
learner's function and through an exact oracle in Python, and compares every decision.
When the learner's decisions match a known mistake (off by one, no cap on the bucket...)
the message names it. In 1 and 3 each decision must be one script call (EVAL/EVALSHA/FCALL):
a separate read and write would race (section 2 of the notebook). In 2 no script may be
sent, and the race is made deterministic: with one place left in the window, another
client's request runs right after each of the learner's round trips in turn.

Each returns a ``helpers.exercises.checker.Verdict``; solutions are in ``notebooks/solutions/03_*.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

import redis

from helpers.exercises.checker import (
    SCRIPT_COMMANDS,
    NotDone,
    Recorder,
    Wrong,
    attempt,
    evaluate,
    not_one_script,
)

__all__ = ["fixed_window_hit", "hit_without_lua", "token_bucket_hit"]

START_MS = 1_000_000  # the trace's clock: a multiple of every window used
LUA_FALSE = (
    "(If your script answers false to refuse: Lua's false reaches Python as None. Return 1 or 0 "
    "from the script, and True or False from the function.)"
)
Request = tuple[int, str, int]  # (now_ms, client, cost)


def _replay(r: redis.Redis, fn: Callable, prefix: str, trace: list[Request], call: Callable) -> list[bool]:
    """The learner's decisions for the whole trace; stops at the first call that is not one script."""
    recorder = Recorder(r)
    decisions: list[bool] = []
    for position, (now, client, cost) in enumerate(trace):
        start = len(recorder.sent)
        args, shown = call(recorder, prefix + client, now, cost)
        answer = attempt(fn, *args, shown=shown)
        if answer is None and position == 0:
            raise NotDone
        if answer is None or not isinstance(answer, (bool, int)):
            raise Wrong(f"{shown} returned {answer!r}: return True (allowed) or False. {LUA_FALSE}")
        others = not_one_script(recorder, start)
        scripts = [c for _, _, c, _ in recorder.sent[start:] if c in ("EVAL", "EVALSHA", "FCALL")]
        if len(scripts) > 1:
            others = scripts
        if others:
            raise Wrong(
                f"{shown} sent {', '.join(others)}, not one script call: between separate "
                "commands another server can decide on the same count (section 2). Make each decision one "
                "EVAL, with the key in KEYS and the numbers in ARGV."
            )
        decisions.append(bool(answer))
    return decisions


def _first_difference(trace, got, expected, describe) -> str:
    for i, (request, mine, right) in enumerate(zip(trace, got, expected)):
        if mine != right:
            return describe(i, request, mine, right)
    return ""


def _never_expiring(r: redis.Redis, prefix: str) -> list[str]:
    """Keys under the prefix that never expire."""
    return sorted(k for k in r.scan_iter(match=prefix + "*") if r.pttl(k) == -1)


def _verdict(decisions: list[bool], expected: list[bool], mistakes: list[tuple[list[bool], str]], first: str):
    """Stop with the first difference, and the mistake it matches if it matches one."""
    if decisions == expected:
        return
    for mistaken, hint in mistakes:
        if mistaken != expected and decisions == mistaken:
            raise Wrong(f"{first} {hint}")
    raise Wrong(first)


# --- 1. fixed window -------------------------------------------------------------
FIXED_LIMIT, FIXED_WINDOW_MS = 5, 1_000


def fixed_window_hit(r: redis.Redis, fn: object) -> object:
    """``fixed_window_hit(r, key, limit, window_ms, now_ms) -> bool``, one EVAL per decision."""
    return evaluate(
        r, fn, name="fixed_window_hit", scratch="fixed-window", body=_fixed_window, not_done_hint=LUA_FALSE
    )


def fixed_window_trace(seed: int = 3) -> list[Request]:
    """Two clients: steady traffic, a burst on each side of a window edge, then random requests."""
    rng = random.Random(seed)
    trace = [(START_MS + w * 1_000 + offset, "user:1", 1) for w in range(3) for offset in (100, 600)]
    trace += [(START_MS + 3_950 + i * 5, "user:1", 1) for i in range(8)]  # the end of window 3...
    trace += [(START_MS + 4_000 + i * 5, "user:1", 1) for i in range(8)]  # ...and the start of window 4
    trace += [(START_MS + 4_100 + i, "user:2", 1) for i in range(7)]  # another client: its own count
    trace += [(START_MS + 4_999, "user:1", 1), (START_MS + 5_000, "user:1", 1)]
    trace += [
        (START_MS + 6_000 + rng.randrange(0, 6_000), rng.choice(["user:1", "user:2"]), 1) for _ in range(40)
    ]
    return sorted(trace)


def fixed_window_oracle(
    trace: list[Request], limit: int, window_ms: int, *, shared: bool = False, from_first_hit: bool = False
) -> list[bool]:
    """Allowed if fewer than ``limit`` were allowed in the request's window, [k, k + 1) * window_ms.

    ``shared`` (one count for every client) and ``from_first_hit`` (windows starting at a
    client's first request, as with SET ... PX) are the mistakes the check recognises.
    """
    counts: dict[tuple, int] = {}
    starts: dict[str, int] = {}
    decisions = []
    for now, client, cost in trace:
        who = "everyone" if shared else client
        if from_first_hit:
            if who not in starts or now >= starts[who] + window_ms:
                starts[who] = now
            window = starts[who]
        else:
            window = now // window_ms
        allowed = counts.get((who, window), 0) + cost <= limit
        if allowed:
            counts[(who, window)] = counts.get((who, window), 0) + cost
        decisions.append(allowed)
    return decisions


def _fixed_window(r: redis.Redis, fn, prefix: str) -> str:
    trace = fixed_window_trace()

    def call(client_r, key, now, cost):
        shown = f"fixed_window_hit(r, key, {FIXED_LIMIT}, {FIXED_WINDOW_MS}, {now})"
        return (client_r, key, FIXED_LIMIT, FIXED_WINDOW_MS, now), shown

    decisions = _replay(r, fn, prefix, trace, call)
    expected = fixed_window_oracle(trace, FIXED_LIMIT, FIXED_WINDOW_MS)

    def describe(i, request, mine, right):
        now, client, _ = request
        window = now // FIXED_WINDOW_MS
        before = sum(
            1
            for (t, c, _), ok in zip(trace[:i], expected[:i])
            if c == client and ok and t // FIXED_WINDOW_MS == window
        )
        return (
            f"request {i + 1} of the trace ({client} at now_ms={now}, window [{window * FIXED_WINDOW_MS}, "
            f"{(window + 1) * FIXED_WINDOW_MS})): you {'allowed' if mine else 'refused'} it; {before} of "
            f"{client}'s requests were already allowed in that window, so a limit of {FIXED_LIMIT} "
            f"{'allows' if right else 'refuses'} it."
        )

    def variant(limit: int = FIXED_LIMIT, window_ms: int = FIXED_WINDOW_MS, **kwargs) -> list[bool]:
        return fixed_window_oracle(trace, limit, window_ms, **kwargs)

    mistakes = [
        (variant(FIXED_LIMIT + 1), f"You let {FIXED_LIMIT + 1} through in one window: refuse when the count "
         "has reached the limit (count >= limit), before adding."),
        (variant(FIXED_LIMIT - 1), f"You let only {FIXED_LIMIT - 1} through in one window: allow while "
         "count < limit."),
        (variant(shared=True), "user:1 and user:2 share one count: keep one count per key (KEYS[1])."),
        (variant(from_first_hit=True), "Your windows start at each client's first request (as with SET ... "
         "PX): a fixed window is aligned to the clock, window = floor(now_ms / window_ms)."),
        (variant(window_ms=10**12), "Nothing is allowed after a client's first window: the count must start "
         "again in each window of now_ms. Keep the window's number, floor(now_ms / window_ms), with the "
         "count, or use a key per window (a PEXPIRE runs on the server's real clock, not on now_ms)."),
    ]  # fmt: skip
    _verdict(decisions, expected, mistakes, _first_difference(trace, decisions, expected, describe))
    forever = _never_expiring(r, prefix)
    if forever:
        raise Wrong(
            f"every decision was right, but {forever[0]} never expires: each client (or each window) "
            "would leave a key behind for good. PEXPIRE it to the end of its window."
        )
    allowed = sum(expected)
    return (
        f"fixed_window_hit made all {len(trace)} decisions of the trace as the oracle did ({allowed} "
        f"allowed, {FIXED_LIMIT} per window per client, bursts on both sides of a window edge), one script "
        "call each, and its keys expire."
    )


# --- 3. token bucket ---------------------------------------------------------------
RATE_PER_S, BURST = 4, 6


def token_bucket_hit(r: redis.Redis, fn: object) -> object:
    """``token_bucket_hit(r, key, rate_per_s, burst, now_ms, cost) -> bool``, one EVAL per decision."""
    return evaluate(
        r, fn, name="token_bucket_hit", scratch="token-bucket", body=_token_bucket, not_done_hint=LUA_FALSE
    )


def token_bucket_trace(seed: int = 8) -> list[Request]:
    """Times are multiples of 125 ms, so every refill (4 per second) is a multiple of half a token:
    exact in floating point, whatever the order of the arithmetic in the learner's script."""
    rng = random.Random(seed)
    trace = [(START_MS, "user:1", 1)] * 8  # a burst from a full bucket
    trace += [(START_MS + 125 * i, "user:1", 1) for i in range(1, 17)]  # faster than the rate
    trace += [(START_MS + 7_000, "user:1", 1)] * 9  # after 5 s idle: a full bucket, not more
    trace += [
        (START_MS + 7_000, "user:1", 3),
        (START_MS + 7_750, "user:1", 3),
        (START_MS + 7_875, "user:1", 1),
    ]
    trace += [(START_MS + 2_000 + 125 * i, "user:2", 2) for i in range(6)]  # another bucket, costlier calls
    trace += [
        (
            START_MS + 8_000 + 125 * rng.randrange(0, 64),
            rng.choice(["user:1", "user:2"]),
            rng.choice([1, 1, 1, 2, 3]),
        )
        for _ in range(40)
    ]
    return sorted(trace, key=lambda request: request[0])  # stable: same-time requests keep their order


def token_bucket_oracle(
    trace: list[Request],
    rate_per_s: float,
    burst: int,
    *,
    cap: bool = True,
    start_full: bool = True,
    refill: bool = True,
    whole_refill: bool = False,
    costs: bool = True,
    denied_take: bool = False,
) -> tuple[list[bool], list[Fraction]]:
    """A bucket per client, refilled continuously at ``rate_per_s`` up to ``burst``; exact (fractions).

    A request takes ``cost`` tokens if there are that many, else it is refused and takes
    nothing. Returns the decisions and the tokens each request found. The keyword
    arguments switch on the mistakes the check recognises.
    """
    buckets: dict[str, tuple[Fraction, int]] = {}
    decisions, found = [], []
    for now, client, cost in trace:
        cost = cost if costs else 1
        tokens, last = buckets.get(client, (Fraction(burst if start_full else 0), now))
        if refill:
            added = Fraction(now - last) * Fraction(rate_per_s) / 1000
            tokens += added // 1 if whole_refill else added
        if cap:
            tokens = min(tokens, Fraction(burst))
        found.append(tokens)
        allowed = tokens >= cost
        if allowed or denied_take:
            tokens -= cost
        buckets[client] = (tokens, now)
        decisions.append(allowed)
    return decisions, found


def _token_bucket(r: redis.Redis, fn, prefix: str) -> str:
    trace = token_bucket_trace()

    def call(client_r, key, now, cost):
        shown = f"token_bucket_hit(r, key, {RATE_PER_S}, {BURST}, {now}, {cost})"
        return (client_r, key, RATE_PER_S, BURST, now, cost), shown

    decisions = _replay(r, fn, prefix, trace, call)
    expected, found = token_bucket_oracle(trace, RATE_PER_S, BURST)

    def describe(i, request, mine, right):
        now, client, cost = request
        return (
            f"request {i + 1} of the trace ({client} at now_ms={now}, cost {cost}): you "
            f"{'allowed' if mine else 'refused'} it; {client}'s bucket (refilled at {RATE_PER_S}/s, at most "
            f"{BURST}) held {float(found[i]):g} token{'' if found[i] == 1 else 's'} then, so it must be "
            f"{'allowed' if right else 'refused'}."
        )

    def variant(**kwargs) -> list[bool]:
        return token_bucket_oracle(trace, RATE_PER_S, BURST, **kwargs)[0]

    mistakes = [
        (variant(cap=False), f"The bucket grew past the burst while idle: cap the tokens at burst ({BURST}), "
         "tokens = min(burst, tokens + refill)."),
        (variant(start_full=False), "A new bucket starts full (burst tokens): a client's first requests are "
         "the burst it may make."),
        (variant(refill=False), "The bucket never refilled: add (now_ms - last_ms) * rate_per_s / 1000 "
         "tokens since the last request."),
        (variant(whole_refill=True), "You refill whole tokens only and lose the fractions: keep the fraction "
         "(tokens need not be whole), or move the stored time on only by the time the whole tokens took."),
        (variant(costs=False), "Every request took one token: take cost tokens."),
        (variant(denied_take=True), "Refused requests took tokens too: take tokens only when you allow."),
    ]  # fmt: skip
    _verdict(decisions, expected, mistakes, _first_difference(trace, decisions, expected, describe))
    note = ""
    if _never_expiring(r, prefix):
        note = (
            " Tip: your keys never expire; a bucket that has filled up again is the same as no key, so "
            "PEXPIRE it for the time it takes to fill."
        )
    return (
        f"token_bucket_hit made all {len(trace)} decisions of the trace as the oracle did ({sum(expected)} "
        f"allowed): bursts up to {BURST}, then {RATE_PER_S} per second, costs counted, one script call each."
        + note
    )


# --- 2. a sliding log without Lua ---------------------------------------------------
SAFE_LIMIT, SAFE_WINDOW_MS = 3, 1_000


def hit_without_lua(r: redis.Redis, fn: object) -> object:
    """``hit_without_lua(r, key, limit, window_ms, now_ms, member) -> bool``: no script, never over."""
    return evaluate(r, fn, name="hit_without_lua", scratch="hit-without-lua", body=_without_lua)


def without_lua_trace(seed: int = 11) -> list[Request]:
    """Two clients: a burst past the limit, entries that age out of the window, then random requests."""
    rng = random.Random(seed)
    trace = [(START_MS + i * 50, "user:1", 1) for i in range(6)]  # 3 allowed, 3 refused
    trace += [(START_MS + 1_020 + i * 100, "user:1", 1) for i in range(4)]  # the first ones have aged out
    trace += [(START_MS + 1_100 + i, "user:2", 1) for i in range(4)]  # another client: its own log
    trace += [
        (START_MS + 3_000 + rng.randrange(0, 4_000), rng.choice(["user:1", "user:2"]), 1) for _ in range(30)
    ]
    return sorted(trace)


def _without_lua(r: redis.Redis, fn, prefix: str) -> str:
    from helpers.ratelimit import sliding_window_oracle

    trace = without_lua_trace()
    recorder = Recorder(r)
    decisions = []
    for i, (now, client, _) in enumerate(trace):
        shown = f"hit_without_lua(r, key, {SAFE_LIMIT}, {SAFE_WINDOW_MS}, {now}, 'req-{i}')"
        answer = attempt(
            fn, recorder, prefix + client, SAFE_LIMIT, SAFE_WINDOW_MS, now, f"req-{i}", shown=shown
        )
        if answer is None and i == 0:
            raise NotDone
        if answer is None or not isinstance(answer, (bool, int)):
            raise Wrong(f"{shown} returned {answer!r}: return True (allowed) or False.")
        decisions.append(bool(answer))
    scripts = [c for c in recorder.commands() if c in SCRIPT_COMMANDS]
    if scripts:
        raise Wrong(f"you sent {scripts[0]}: this time, no script. Use MULTI/EXEC (r.pipeline()).")
    expected = [False] * len(trace)
    for client in ("user:1", "user:2"):
        positions = [i for i, (_, c, _) in enumerate(trace) if c == client]
        oracle = sliding_window_oracle([trace[i][0] for i in positions], SAFE_LIMIT, SAFE_WINDOW_MS)
        for i, allowed in zip(positions, oracle):
            expected[i] = allowed

    def describe(i, request, mine, right):
        now, client, _ = request
        recent = sum(
            1 for (t, c, _), ok in zip(trace[:i], expected[:i]) if c == client and ok and t > now - 1_000
        )
        return (
            f"request {i + 1} ({client} at now_ms={now}): you {'allowed' if mine else 'refused'} it; "
            f"{recent} of {client}'s requests were allowed in the second before it, so a limit of "
            f"{SAFE_LIMIT} {'allows' if right else 'refuses'} it."
        )

    mistakes = [
        (
            _counting_refused(trace),
            "A refused request still counts: remove its entry (ZREM) when over the limit.",
        )
    ]
    _verdict(decisions, expected, mistakes, _first_difference(trace, decisions, expected, describe))

    _race(r, fn, prefix)
    forever = _never_expiring(r, prefix)
    if forever:
        raise Wrong(f"every decision was right, but {forever[0]} never expires: PEXPIRE it by the window.")
    return (
        f"hit_without_lua made all {len(trace)} decisions of the trace as a sliding log does, with no "
        "script, and with one place left and another client's request after each of your round trips "
        "in turn, exactly one of the two got in every time."
    )


def _counting_refused(trace: list[Request]) -> list[bool]:
    """The decisions of a log that keeps refused requests too (add, count, but never remove)."""
    decisions, logs = [], {}
    for now, client, _ in trace:
        log = [t for t in logs.get(client, []) if t > now - SAFE_WINDOW_MS] + [now]
        logs[client] = log
        decisions.append(len(log) <= SAFE_LIMIT)
    return decisions


def _race(r: redis.Redis, fn, prefix: str) -> None:
    """With one place left in the window, another client's request at each point of the learner's.

    The other client is the learner's own function on a plain connection, so the two race
    on the same logic. For each round trip p of the learner's request, a fresh key is filled
    to ``SAFE_LIMIT - 1`` and the other request runs right after round trip p: exactly one of
    the two may get in. The other's member sorts first, for answers that rank by member.
    """
    now = START_MS + 100_000

    def call(client: redis.Redis, key: str, member: str, who: str = "") -> bool:
        shown = f"{who}hit_without_lua(r, key, {SAFE_LIMIT}, {SAFE_WINDOW_MS}, {now}, {member!r})"
        return bool(attempt(fn, client, key, SAFE_LIMIT, SAFE_WINDOW_MS, now, member, shown=shown))

    def fill(key: str) -> None:
        for i in range(SAFE_LIMIT - 1):
            if not call(r, key, f"fill-{i}"):
                raise Wrong(
                    f"hit_without_lua refused a request with {SAFE_LIMIT - i} places left in the window."
                )

    fill(prefix + "probe")
    probe = Recorder(r)
    call(probe, prefix + "probe", "z-mine")
    numbers = sorted({batch for batch, _, _, _ in probe.sent})
    trips = [[command for batch, _, command, _ in probe.sent if batch == number] for number in numbers]

    def race_at(position: int) -> int:
        """How many got in: the learner's request, and the other's right after its round trip ``position``."""
        key = prefix + f"race:{position}"
        fill(key)
        other = {"pending": True, "admitted": False}

        def between(how, args) -> None:
            if other["pending"] and recorder.sent[-1][0] == position + 1:
                other["pending"] = False  # once: a retrying answer (WATCH) then runs alone
                other["admitted"] = call(r, key, "a-other", who="the other client's ")

        recorder = Recorder(r, after=between)
        return call(recorder, key, "z-mine") + other["admitted"]

    for position, commands in enumerate(trips):
        admitted = race_at(position)
        after = f"round trip {position + 1} of {len(trips)} ({', '.join(commands)})"
        if admitted > 1:
            raise Wrong(
                f"every decision of the trace was right, but with one place left in the window, another "
                f"client's request right after your {after} got in, and so did yours: {SAFE_LIMIT + 1} for "
                f"a limit of {SAFE_LIMIT}. Make the write and the count one MULTI/EXEC: add this request "
                "first, count with it in, and remove it again when the count is over the limit (or WATCH "
                "the key and retry when EXEC fails)."
            )
        if admitted == 0:
            raise Wrong(
                f"with one place left in the window and another client's request right after your {after}, "
                "neither got in: one must."
            )
