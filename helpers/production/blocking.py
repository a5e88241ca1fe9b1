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
* ``unkillable``: the same with ``lua/write_then_spin.lua``, a script that
  writes before it spins: SCRIPT KILL answers UNKILLABLE, SHUTDOWN NOSAVE is the
  only way out, and a restart shows what each persistence setting kept.
* ``course_script_costs``: how long each of the course's own scripts holds the
  server, from SLOWLOG (every call logged, with its duration in microseconds).
* ``script_clocks``: what a script's clocks do on a given server: whether TIME
  stands still for the whole script (Redis 7.2 and later, Valkey) and whether
  ``os.clock()`` exists (the clock busy_loop.lua then uses).

Sizes: the workshop run spins 1,500 ms and times 10,000 calls per course script
on a 100,000-player board; the ci run 600 ms, 500 calls, 10,000 players.
``unkillable`` loads 100,000 players before the snapshot and 10,000 after it
(ci: 10,000 and 1,000).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
from helpers.production.persistence import SETTINGS, described, no_retry_client
from helpers.servers import Throwaway, start_redis_binary

SLOW_SCRIPT = "busy_loop"
MAX_SCRIPT_MS = 60_000  # busy_loop.lua refuses more
WRITING_SCRIPT = "write_then_spin"  # writes, then spins: SCRIPT KILL answers UNKILLABLE
MAX_WRITING_SCRIPT_MS = 5_000  # write_then_spin.lua refuses more: its safety net
# the two settings of the UNKILLABLE lesson; no automatic snapshot: the only one is the SAVE it runs
UNKILLABLE_SETTINGS: dict[str, tuple[str, ...]] = {
    "rdb": SETTINGS["none"],
    "aof_everysec": SETTINGS["aof_everysec"],
}
MARKER = "write_then_spin-marker"  # the member write_then_spin.lua adds before it spins
AOF_FSYNC_LOG = "Calling fsync() on the AOF file"  # what the server logs as SHUTDOWN flushes the AOF
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


@dataclass
class UnkillableRun:
    """What ``unkillable``'s clients were told, and what each setting kept after SHUTDOWN NOSAVE."""

    events: pd.DataFrame  # setting, at_ms, client, command, reply, raw_reply, waited_ms
    counts: pd.DataFrame  # one row per setting, see ``unkillable``
    busy_threshold_ms: int
    hold_ms: int  # how long the other client kept getting BUSY before SCRIPT KILL was tried


def unkillable(
    players: int | None = None,
    *,
    after_save: int | None = None,
    names: tuple[str, ...] = tuple(UNKILLABLE_SETTINGS),
    busy_threshold_ms: int = 100,
    hold_ms: int = 300,
    spin_ms: int = MAX_WRITING_SCRIPT_MS,
) -> UnkillableRun:
    """The UNKILLABLE lesson, measured once per persistence setting in ``names`` (``UNKILLABLE_SETTINGS``).

    On a throwaway server with busy-reply-threshold ``busy_threshold_ms``: ``players``
    players are added (acknowledged), SAVE takes a snapshot, ``after_save`` more are
    added (acknowledged); then ``lua/write_then_spin.lua`` adds a marker member to the
    same board and spins for ``spin_ms``. From other connections, in this order:
    ZSCORE of the marker (nil: the script has not run), ZSCORE again until the answer
    is BUSY, then again ``hold_ms`` later (still BUSY: passing busy-reply-threshold
    does not stop a script, it only makes the others get BUSY), SCRIPT KILL
    (UNKILLABLE: the script has written), SHUTDOWN (BUSY: a shutdown that could save
    is refused too), SHUTDOWN NOSAVE (the server exits: the connection closes, and the
    script's caller never gets a reply). The server is then started again on the
    same files and the board is counted.

    ``events``: every reply in order, ``at_ms`` since the script was called;
    ``reply`` is the server-neutral part (the error code: ``BUSY``, ``UNKILLABLE``;
    ``nil``; ``OK``; ``connection closed``), ``raw_reply`` the text as sent (Valkey
    says "Valkey is busy running a script", Redis "Redis is busy ..."; UNKILLABLE's
    text is the same on Redis 7.0, 8.2 and Valkey 8.1).

    ``counts``, one row per setting: ``acked_before_save`` / ``back_before_save``,
    ``acked_after_save`` / ``back_after_save`` (players acknowledged, and found after the
    restart), ``script_write_back`` (the marker is on the board after the restart),
    ``script_write_seen`` (another client ever read the marker: it could not, every
    command during the script was answered BUSY), ``busy_first_ms`` and
    ``busy_last_ms`` (the first and the last BUSY the other client got), and
    ``aof_fsync_at_shutdown`` (the server logged "Calling fsync() on the AOF file" as
    SHUTDOWN NOSAVE ran: it flushes the AOF even with NOSAVE).

    Measured on Redis 7.0 and 8.2 and Valkey 8.1: with ``rdb`` everything after the
    SAVE is gone; with ``aof_everysec`` every acknowledged write is back and the
    marker is not: a script's writes reach the AOF when the script ends, and this one
    never ended.
    """
    players = settings().unkillable_players if players is None else players
    players = bounds.integer("players", players, 1, 10_000_000)
    after_save = settings().unkillable_after_save if after_save is None else after_save
    after_save = bounds.integer("after_save", after_save, 1, 10_000_000)
    for name in names:
        if name not in UNKILLABLE_SETTINGS:
            raise ValueError(f"unknown setting {name!r}; known: {sorted(UNKILLABLE_SETTINGS)}")
    busy_threshold_ms = bounds.integer("busy_threshold_ms", busy_threshold_ms, 1, 1_000)
    hold_ms = bounds.integer("hold_ms", hold_ms, 0, 2_000)
    spin_ms = bounds.integer("spin_ms", spin_ms, 0, MAX_WRITING_SCRIPT_MS)
    if spin_ms < busy_threshold_ms + hold_ms + 1_000:
        raise ValueError(
            f"spin_ms ({spin_ms}) must be at least busy_threshold_ms + hold_ms + 1000 "
            f"({busy_threshold_ms + hold_ms + 1_000}): the script must still run at SHUTDOWN NOSAVE"
        )
    events, rows = [], []
    for name in names:
        run_events, row = _unkillable_once(name, players, after_save, busy_threshold_ms, hold_ms, spin_ms)
        events += run_events
        rows.append(row)
    return UnkillableRun(
        pd.DataFrame(events), pd.DataFrame(rows).set_index("setting"), busy_threshold_ms, hold_ms
    )


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
    """The course's scripts: every file in lua/ but the two deliberately slow ones."""
    return [name for name in scripts.names() if name not in (SLOW_SCRIPT, WRITING_SCRIPT)]


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


class _Replies:
    """The replies of an experiment's clients, timed; ``at_ms`` counts from ``zero`` (set when the script
    is called, so what came before is negative)."""

    def __init__(self, setting: str):
        self.setting = setting
        self.rows: list[dict] = []
        self.zero = time.perf_counter()

    def record(self, client: str, command: str, run: Callable[[], object]) -> str:
        """Run ``run``, note its reply, and return the server-neutral part of it."""
        sent = time.perf_counter()
        try:
            raw = run()
        except redis.ConnectionError as error:  # SHUTDOWN NOSAVE: the server exited
            reply, raw = "connection closed", str(error)
        except redis.ResponseError as error:
            raw = str(error)
            reply = raw.split(" ", 1)[0]  # the error code: BUSY, UNKILLABLE, ERR
        else:
            raw = "OK" if raw is True else "nil" if raw is None else str(raw)
            reply = raw
        done = time.perf_counter()
        self.rows.append(
            {
                "setting": self.setting,
                "done": done,
                "client": client,
                "command": command,
                "reply": reply,
                "raw_reply": raw,
                "waited_ms": round((done - sent) * 1000, 1),
            }
        )
        return reply

    def at_ms(self, row: dict) -> float:
        return round((row["done"] - self.zero) * 1000, 1)

    def last(self, client: str) -> dict:
        """The latest reply ``client`` got (rows come from several threads: not simply the last row)."""
        return next(row for row in reversed(self.rows) if row["client"] == client)

    def table(self) -> list[dict]:
        """The rows in the order the replies came, ``done`` turned into ``at_ms``."""
        rows = sorted(self.rows, key=lambda row: row["done"])
        return [
            {"setting": r["setting"], "at_ms": self.at_ms(r), **{k: r[k] for k in list(r)[2:]}} for r in rows
        ]


def _unkillable_once(
    name: str, players: int, after_save: int, threshold_ms: int, hold_ms: int, spin_ms: int
) -> tuple[list[dict], dict]:
    board = key("blocking", "unkillable", "board")
    server = start_server(threshold_ms, extra_args=UNKILLABLE_SETTINGS[name])
    replies = _Replies(name)
    try:
        loader = no_retry_client(server.url)
        acked_before = _add_players(loader, board, "before", players)
        loader.save()
        acked_after = _add_players(loader, board, "after", after_save)
        caller, other, admin = (no_retry_client(server.url) for _ in range(3))
        sha = caller.script_load(scripts.source(WRITING_SCRIPT))
        ask = f"ZSCORE board {MARKER}"

        def read_marker() -> str:
            return replies.record("other client", ask, lambda: other.zscore(board, MARKER))

        read_marker()  # nil: the script has not run
        call = f"EVALSHA {WRITING_SCRIPT} board {spin_ms} {MARKER}"
        caller_thread = threading.Thread(
            target=replies.record,
            args=("caller", call, lambda: caller.evalsha(sha, 1, board, spin_ms, MARKER)),
            daemon=True,
        )
        replies.zero = time.perf_counter()
        caller_thread.start()
        deadline = time.monotonic() + 30
        while read_marker() == "nil":  # answered before the script started: not part of the story
            replies.rows.remove(replies.last("other client"))
            if time.monotonic() > deadline:
                raise RuntimeError("the server never answered BUSY: is write_then_spin running?")
            time.sleep(0.005)
        first_busy = replies.at_ms(replies.last("other client"))
        time.sleep(max(0.0, first_busy + hold_ms - (time.perf_counter() - replies.zero) * 1000) / 1000)
        read_marker()  # hold_ms later: BUSY still, the script runs on past the threshold
        last_busy = replies.at_ms(replies.last("other client"))
        replies.record("admin", "SCRIPT KILL", admin.script_kill)
        replies.record("admin", "SHUTDOWN", lambda: admin.execute_command("SHUTDOWN"))
        replies.record("admin", "SHUTDOWN NOSAVE", lambda: admin.execute_command("SHUTDOWN", "NOSAVE"))
        caller_thread.join(timeout=30)
        during = [row for row in replies.rows if row["client"] == "other client"][1:]
        seen = any(row["reply"] not in ("BUSY", "nil") for row in during)
        caller_reply = next((row["reply"] for row in replies.rows if row["client"] == "caller"), "no reply")
        if caller_reply != "connection closed":
            raise RuntimeError(
                f"{WRITING_SCRIPT} answered {caller_reply!r} before SHUTDOWN NOSAVE ended it: "
                "the machine is too slow for spin_ms, or the server did not obey"
            )
        _reap(server)
        log = Path(server.data_dir, "redis.log").read_text(errors="replace")
        server.restart()
        after = no_retry_client(server.url)
        replies.record("other client, after the restart", ask, lambda: after.zscore(board, MARKER))
        members = after.zrange(board, 0, -1)
        for client in (loader, caller, other, admin, after):
            client.close()
    finally:
        server.stop()
    row = {
        "setting": name,
        "config": described(UNKILLABLE_SETTINGS[name]),
        "acked_before_save": acked_before,
        "back_before_save": sum(member.startswith("before-") for member in members),
        "acked_after_save": acked_after,
        "back_after_save": sum(member.startswith("after-") for member in members),
        "script_write_back": MARKER in members,
        "script_write_seen": seen,
        "busy_first_ms": first_busy,
        "busy_last_ms": last_busy,
        "aof_fsync_at_shutdown": AOF_FSYNC_LOG in log,
    }
    return replies.table(), row


def _add_players(client: redis.Redis, board: str, prefix: str, count: int) -> int:
    """Add ``<prefix>-0`` ... to ``board``; the number the server acknowledged as added."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, 10_000):
        pipe.zadd(board, {f"{prefix}-{n}": n for n in range(start, min(start + 10_000, count))})
    return sum(pipe.execute())


def _reap(server: Throwaway, *, timeout: float = 30.0) -> None:
    """Wait for a server that exits on its own (SHUTDOWN) to be gone, so ``restart()`` can start it."""
    deadline = time.monotonic() + timeout
    while server.executor.running():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not exit within {timeout} s of SHUTDOWN NOSAVE")
        time.sleep(0.01)
    server.executor.stop()  # collects the exited process; its files stay


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
