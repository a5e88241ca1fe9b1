"""Scripts block the server: measured on throwaway servers, never on one someone uses.

Redis runs one command at a time, and a Lua script is one command. While
``lua/busy_loop.lua`` spins, every other client waits; past
``busy-reply-threshold`` (5 s by default, ``lua-time-limit`` before Redis 7)
they get ``BUSY`` errors instead, and only SCRIPT KILL (for a script that has
not written) or SHUTDOWN NOSAVE get through.

* ``ping_during_script``: a client sends a PING every few ms, without waiting
  for replies (as users keep arriving), while the slow script runs; each ping's
  latency is how long a request arriving at that moment waited. ``plot_pings``,
  ``ping_summary``.
* ``busy_then_script_kill``: the BUSY error another client gets, SCRIPT KILL
  from a third connection, and the error the script's caller gets.
* ``course_script_costs``: how long each of the course's own scripts holds the
  server, from SLOWLOG (every call logged, with its duration in microseconds).
* ``script_clocks``: what a script's clocks do on a given server: whether TIME
  stands still for the whole script (Redis 7.2 and later, Valkey) and whether
  ``os.clock()`` exists (the clock busy_loop.lua then uses).

Sizes: the workshop run spins 1,500 ms and times 10,000 calls per course script
on a 100,000-player board; the ci run 600 ms, 500 calls, 10,000 players.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import redis
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from helpers import bounds, scripts
from helpers.bench.sizes import settings
from helpers.keyspace import key
from helpers.servers import Throwaway, start_redis_binary

SLOW_SCRIPT = "busy_loop"
MAX_SCRIPT_MS = 60_000  # busy_loop.lua refuses more
PING = b"*1\r\n$4\r\nPING\r\n"
CHUNK = 500  # calls between two SLOWLOG reads
SLOWLOG_LEN = 100_000  # room for CHUNK calls of up to 199 commands each


@dataclass
class PingRun:
    """What one pinging client saw while busy_loop ran (times in ms since the script was called)."""

    pings: pd.DataFrame  # sent_ms, latency_ms, reply
    script_ms: int  # how long the script was asked to spin
    script_returned_ms: float  # when its caller got the reply
    script_reply: str  # "[elapsed_ms, loops, clock]" or the error
    busy_threshold_ms: int


def start_server(busy_threshold_ms: int | None = None, extra_args: tuple[str, ...] = ()) -> Throwaway:
    """A throwaway redis-server; ``busy_threshold_ms`` sets busy-reply-threshold (Redis' default: 5000)."""
    if busy_threshold_ms is not None:
        threshold = bounds.integer("busy_threshold_ms", busy_threshold_ms, 1, MAX_SCRIPT_MS)
        extra_args = ("--busy-reply-threshold", str(threshold), *extra_args)
    return start_redis_binary(extra_args=extra_args)


def ping_during_script(
    script_ms: int | None = None,
    *,
    busy_threshold_ms: int | None = None,
    interval_ms: float = 5.0,
    margin_ms: int = 300,
) -> PingRun:
    """PING every ``interval_ms`` from ``margin_ms`` before busy_loop starts to ``margin_ms`` after it ends.

    ``busy_threshold_ms`` None keeps Redis' 5 s: the pings just wait for the script.
    """
    script_ms = (
        settings().blocking_script_ms
        if script_ms is None
        else bounds.integer("script_ms", script_ms, 0, MAX_SCRIPT_MS)
    )
    if (
        isinstance(interval_ms, bool)
        or not isinstance(interval_ms, (int, float))
        or not 0.1 <= interval_ms <= 1000
    ):
        raise ValueError(f"interval_ms must be a number from 0.1 to 1000, got {interval_ms!r}")
    margin_ms = bounds.integer("margin_ms", margin_ms, 0, MAX_SCRIPT_MS)
    server = start_server(busy_threshold_ms)
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        threshold = int(client.config_get("busy-reply-threshold")["busy-reply-threshold"])
        slow = scripts.load(client, SLOW_SCRIPT)
        slow(args=[0])  # loaded now, so the timed call is one EVALSHA
        pinger = _Pinger(server.url, interval_ms / 1000)
        pinger.start()
        time.sleep(margin_ms / 1000)
        called = time.perf_counter()
        try:
            reply = str(slow(args=[script_ms]))
        except redis.ResponseError as error:
            reply = str(error)
        returned = time.perf_counter()
        time.sleep(margin_ms / 1000)
        pings = pinger.finish()
        client.close()
    finally:
        server.stop()
    pings["sent_ms"] = (pings.pop("sent") - called) * 1000
    pings["latency_ms"] = pings.pop("latency") * 1000
    pings = pings[["sent_ms", "latency_ms", "reply"]]
    return PingRun(pings, script_ms, (returned - called) * 1000, reply, threshold)


def plot_pings(run: PingRun) -> Figure:
    """Each ping's latency against when it was sent; the script's run shaded; BUSY replies in red."""
    figure, axes = plt.subplots(figsize=(10, 4))
    axes.axvspan(0, run.script_returned_ms, color="orange", alpha=0.2, label=f"{SLOW_SCRIPT}.lua running")
    pings = run.pings
    busy = pings.reply.str.startswith("BUSY")
    axes.scatter(pings.sent_ms[~busy], pings.latency_ms[~busy], s=8, color="C0", label="PONG")
    if busy.any():
        axes.scatter(pings.sent_ms[busy], pings.latency_ms[busy], s=8, color="C3", label="BUSY error")
    if run.busy_threshold_ms < run.script_returned_ms:
        axes.axvline(run.busy_threshold_ms, color="C3", linestyle=":", label="busy-reply-threshold")
    axes.set_yscale("log")
    axes.set(
        xlabel="time the PING was sent (ms since the script was called)",
        ylabel="PING latency (ms)",
        title=f"a client PINGing while a {run.script_ms} ms script runs "
        f"(busy-reply-threshold {run.busy_threshold_ms} ms)",
    )
    axes.legend(loc="upper right")
    axes.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    return figure


def ping_summary(run: PingRun) -> pd.DataFrame:
    """PING latency before, during and after the script: pings, p50, max, and how many got BUSY."""
    pings = run.pings
    phase = pd.cut(
        pings.sent_ms,
        [-np.inf, 0, run.script_returned_ms, np.inf],
        labels=["before", "during", "after"],
        right=False,
    )
    grouped = pings.assign(busy=pings.reply.str.startswith("BUSY")).groupby(phase, observed=False)
    return pd.DataFrame(
        {
            "pings": grouped.size(),
            "p50_ms": grouped.latency_ms.median().round(2),
            "max_ms": grouped.latency_ms.max().round(2),
            "busy_errors": grouped.busy.sum(),
        }
    ).rename_axis("sent")


def busy_then_script_kill(script_ms: int = 10_000, *, busy_threshold_ms: int = 100) -> pd.DataFrame:
    """Start a ``script_ms`` busy_loop, show another client's BUSY error, SCRIPT KILL it; the events in order.

    Columns: at_ms (when the reply came, since the script was called), client, command, reply, waited_ms.
    """
    script_ms = bounds.integer("script_ms", script_ms, 0, MAX_SCRIPT_MS)
    busy_threshold_ms = bounds.integer("busy_threshold_ms", busy_threshold_ms, 1, MAX_SCRIPT_MS)
    if script_ms < busy_threshold_ms + 1_000:
        raise ValueError(
            f"script_ms ({script_ms}) must be at least busy_threshold_ms + 1000 "
            f"({busy_threshold_ms + 1000}): the script must still run when SCRIPT KILL comes"
        )
    server = start_server(busy_threshold_ms)
    events: list[dict] = []
    try:
        caller, other, admin = (redis.Redis.from_url(server.url, decode_responses=True) for _ in range(3))
        slow = scripts.load(caller, SLOW_SCRIPT)
        slow(args=[0])
        called = time.perf_counter()

        def record(client: str, command: str, run: Callable[[], object], success: str = "OK") -> str:
            sent = time.perf_counter()
            try:
                reply = run()
                reply = success if reply is True else str(reply)  # redis-py turns OK and PONG into True
            except redis.ResponseError as error:
                reply = str(error)
            done = time.perf_counter()
            events.append(
                {
                    "at_ms": round((done - called) * 1000, 1),
                    "client": client,
                    "command": command,
                    "reply": reply,
                    "waited_ms": round((done - sent) * 1000, 1),
                }
            )
            return reply

        caller_thread = threading.Thread(
            target=record,
            args=("caller", f"EVALSHA {SLOW_SCRIPT} {script_ms}", lambda: slow(args=[script_ms])),
        )
        caller_thread.start()
        probe = key("blocking", "probe")
        deadline = time.monotonic() + 30
        while not record("other client", f"GET {probe}", lambda: other.get(probe)).startswith("BUSY"):
            if time.monotonic() > deadline:
                raise RuntimeError("the server never answered BUSY: is the script running?")
            events.pop()  # answered before the script started: not part of the story
            time.sleep(0.01)
        record("admin", "SCRIPT KILL", admin.script_kill)
        caller_thread.join(timeout=30)
        record("other client", "PING", other.ping, "PONG")
        for client in (caller, other, admin):
            client.close()
    finally:
        server.stop()
    return pd.DataFrame(events).sort_values("at_ms", kind="stable").reset_index(drop=True)


def course_script_costs(calls: int | None = None, *, board_size: int | None = None) -> pd.DataFrame:
    """How long each course script holds the server, per call, from SLOWLOG: one row per script.

    Every script is called ``calls`` times, one EVALSHA at a time, with valid
    arguments, on a throwaway server logging every command (slowlog-log-slower-than 0).
    Redis 7 logs the commands a script runs too; the EVALSHA entry's duration includes them.
    Columns: calls, p50_us, p99_us, max_us, mean_us.
    """
    size = settings()
    calls = size.blocking_calls if calls is None else bounds.integer("calls", calls, 1, 1_000_000)
    board_size = (
        size.blocking_board_size
        if board_size is None
        else bounds.integer("board_size", board_size, 10, 10_000_000)
    )
    server = start_server(
        extra_args=("--slowlog-log-slower-than", "0", "--slowlog-max-len", str(SLOWLOG_LEN))
    )
    rows = []
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        board = _fill_board(client, board_size)
        calls_of = _course_calls(board, board_size)
        with tqdm(total=calls * len(calls_of), desc="course scripts", unit=" calls") as bar:
            for name, make_call in calls_of.items():
                script = scripts.load(client, name)
                client.script_load(script.script)
                durations: list[int] = []
                for start in range(0, calls, CHUNK):
                    client.slowlog_reset()
                    for i in range(start, min(start + CHUNK, calls)):
                        keys, args = make_call(i)
                        script(keys=keys, args=args)
                    durations += _evalsha_durations(client, script.sha, expected=min(CHUNK, calls - start))
                    bar.update(min(CHUNK, calls - start))
                rows.append(_row(name, durations))
        client.close()
    finally:
        server.stop()
    return pd.DataFrame(rows).set_index("script")


# a script that reads TIME, burns a few milliseconds of CPU, reads TIME again, and says if os.clock exists
_CLOCK_PROBE = """
local first = redis.call('TIME')
local x = 0
for i = 1, 2000000 do x = x + i end
local second = redis.call('TIME')
local os_library = rawget(_G, 'os')
local has_clock = type(os_library) == 'table' and type(os_library.clock) == 'function'
local moved = (tonumber(second[1]) - tonumber(first[1])) * 1000000 + tonumber(second[2]) - tonumber(first[2])
return {moved, has_clock and 1 or 0}
"""


def script_clocks(client: redis.Redis) -> dict:
    """What a script sees of time on ``client``'s server (a read-only EVAL of a few ms).

    ``time_moved_us``: how far TIME moved across a few ms of work inside one
    script (0 where TIME is frozen for the whole script); ``time_frozen``;
    ``has_os_clock``; ``busy_loop_clock``: the clock busy_loop.lua uses there.
    """
    moved, has_clock = client.eval(_CLOCK_PROBE, 0)
    return {
        "time_moved_us": int(moved),
        "time_frozen": int(moved) == 0,
        "has_os_clock": bool(has_clock),
        "busy_loop_clock": "os.clock" if has_clock else "TIME",
    }


def course_scripts() -> list[str]:
    """The course's scripts: every file in lua/ but the deliberately slow one."""
    return [name for name in scripts.names() if name != SLOW_SCRIPT]


# --- the parts ------------------------------------------------------------------------------------


class _Pinger:
    """Sends a PING every ``interval`` s on a raw socket; a second thread reads the replies in order."""

    def __init__(self, url: str, interval: float):
        parts = urlsplit(url)
        self.socket = socket.create_connection((parts.hostname, parts.port), timeout=60)
        self.interval = interval
        self.sent: list[float] = []
        self.replies: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._read)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> pd.DataFrame:
        self.stop.set()
        self.threads[0].join(timeout=60)
        deadline = time.monotonic() + 60
        while len(self.replies) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.socket.shutdown(socket.SHUT_RDWR)  # the reader sees the end of the stream and returns
        self.threads[1].join(timeout=60)
        self.socket.close()
        if len(self.replies) != len(self.sent):
            raise RuntimeError(f"{len(self.sent)} PINGs sent, {len(self.replies)} replies read")
        sent = np.array(self.sent)
        received = np.array([at for at, _ in self.replies])
        return pd.DataFrame({"sent": sent, "latency": received - sent, "reply": [r for _, r in self.replies]})

    def _send(self) -> None:
        due = time.perf_counter()
        while not self.stop.is_set():
            self.sent.append(time.perf_counter())
            self.socket.sendall(PING)
            due += self.interval
            time.sleep(max(0.0, due - time.perf_counter()))

    def _read(self) -> None:
        lines = self.socket.makefile("rb")
        while line := lines.readline():  # one line per reply: +PONG or -BUSY ...
            self.replies.append((time.perf_counter(), line.decode().strip().lstrip("+-")))


def _fill_board(client: redis.Redis, players: int) -> str:
    board = key("blocking", "lb", "{costs}")
    rng = random.Random(4)
    pipe = client.pipeline(transaction=False)
    for start in range(0, players, 10_000):
        pipe.zadd(
            board,
            {f"player-{n}": rng.randrange(1_000_000) for n in range(start, min(start + 10_000, players))},
        )
    pipe.execute()
    return board


def _course_calls(board: str, players: int) -> dict[str, Callable[[int], tuple[list[str], list]]]:
    """For each course script, valid (keys, args) for its i-th call, as the helpers call it."""
    rng = random.Random(7)
    limiter = key("blocking", "ratelimit", "{costs}")
    orders = [
        key("blocking", "orders", "{costs}", part)
        for part in ("applied", "status", "status-id", "count", "cents")
    ]
    actions = ("placed", "paid", "shipped", "cancelled")
    calls = {
        "leaderboard_rank": lambda i: ([board], [f"player-{rng.randrange(players)}"]),
        "leaderboard_standing": lambda i: ([board], [f"player-{rng.randrange(players)}"]),
        "leaderboard_range": lambda i: ([board], _page(rng.randrange(players - 9))),
        "leaderboard_around": lambda i: ([board], [f"player-{rng.randrange(players)}", 5]),
        "project_order_event": lambda i: (orders, [f"{i + 1}-0", f"ord-{i // 4}", actions[i % 4], 1999]),
        "sliding_window": lambda i: ([limiter + ":log"], [1, 100, "", 1]),
        "sliding_window_classic": lambda i: ([limiter + ":classic"], [1, 100, int(time.time() * 1000)]),
        "sliding_window_counter": lambda i: ([limiter + ":counter"], [1, 100, "", 1]),
        "fixed_window": lambda i: ([limiter + ":fixed"], [1, 100, "", 1]),
        "gcra": lambda i: ([limiter + ":gcra"], [1, 100, "", 1]),
    }
    unknown = sorted(set(course_scripts()) - set(calls))
    if unknown:
        raise RuntimeError(f"no valid call known for {unknown}: add one to helpers/production/blocking.py")
    return calls


def _page(start: int) -> list[int]:
    return [start, start + 9]


def _evalsha_durations(client: redis.Redis, sha: str, *, expected: int) -> list[int]:
    entries = client.slowlog_get(SLOWLOG_LEN)
    durations = [entry["duration"] for entry in entries if _words(entry["command"])[:2] == ["EVALSHA", sha]]
    if len(durations) != expected:  # the log overflowed, or calls were not logged
        raise RuntimeError(
            f"SLOWLOG holds {len(durations)} EVALSHA {sha[:8]}... entries, expected {expected}"
        )
    return durations


def _row(name: str, durations_us: list[int]) -> dict:
    if not durations_us:
        raise RuntimeError(f"SLOWLOG has no EVALSHA of {name}: was slowlog-log-slower-than 0 applied?")
    values = np.array(durations_us, dtype=float)
    return {
        "script": name,
        "calls": len(values),
        "p50_us": float(np.percentile(values, 50)),
        "p99_us": float(np.percentile(values, 99)),
        "max_us": float(values.max()),
        "mean_us": round(float(values.mean()), 1),
    }


def _words(command: object) -> list[str]:
    text = command.decode() if isinstance(command, bytes) else str(command)
    return text.split()
