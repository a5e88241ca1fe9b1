"""Persistence, measured: what each setting loses when redis-server is killed with kill -9.

For each setting in ``SETTINGS`` a throwaway ``redis-server`` is started, a
writer adds a player to a leaderboard (ZADD) and an event to a stream (XADD)
at a steady rate, one acknowledged write at a time, and records every
acknowledgement with its time. Mid-stream the server gets SIGKILL, is started
again on the same files, and every acknowledged write is looked for.

| setting | what Redis keeps on disk | what a kill -9 loses |
|---|---|---|
| ``none`` | nothing | everything |
| ``rdb`` | a snapshot every ~2-3 s while anything changes (``save 2 1``) | all since the last snapshot |
| ``aof_everysec`` | every write appended to a log, fsynced once a second | nothing (see below) |
| ``aof_always`` | every write appended and fsynced before the reply | nothing |

``rdb`` compresses time so the demo fits in seconds: Redis' default
(``save 3600 1 300 100 60 10000``) snapshots after 60 s under load and after
up to an hour when writes are rare, and loses everything since, the same way.

Why everysec loses nothing here: Redis writes the log to the operating system
before it replies, so a killed *process* loses nothing the OS already has (only
when a slow fsync makes Redis postpone that write, up to 2 s, can a kill lose it).
What everysec risks is a *machine* crash or power cut: the writes of the last
second, not yet fsynced (up to 2 s when the disk stalls). That cannot be
caused from here, so ``power_cut_bound`` is a bound computed from the ack
times, not a measurement. ``aof_everysec`` is docker-compose.yml's setting,
and the recommended one: almost the throughput of no persistence, at most
a second lost on a power cut. ``aof_always`` loses nothing even then, but pays
an fsync per write (per pipeline when writes are batched).

Sizes: the workshop run writes for 10 s at 100 ZADD+XADD pairs per second (a
rate ``aof_always`` keeps up with even on a busy machine) and times 10,000 writes
per setting, in 3 rounds with the settings taking turns; the ci run writes for
3 s and times 1,000 writes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd
import redis
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from helpers import bounds
from helpers.bench.sizes import settings
from helpers.keyspace import key
from helpers.servers import Throwaway, start_redis_binary

SETTINGS: dict[str, tuple[str, ...]] = {
    "none": ("--save", "", "--appendonly", "no"),
    "rdb": ("--save", "2 1", "--appendonly", "no"),
    "aof_everysec": ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
    "aof_always": ("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
}
RECOMMENDED = "aof_everysec"  # what docker-compose.yml runs
EVERYSEC_WINDOW_S = 1.0  # fsync period of appendfsync everysec (2 s when the disk stalls)


@dataclass
class KillRun:
    """One writer, one kill -9, one restart: what was acknowledged and what came back."""

    setting: str
    killed_at: float  # seconds since the writer started
    acked_board: list[tuple[int, float]] = field(default_factory=list)  # (player n, ack time)
    acked_stream: list[tuple[str, float]] = field(default_factory=list)  # (entry ID, ack time)
    survived_board: set[int] = field(default_factory=set)
    survived_stream: list[str] = field(default_factory=list)
    writer_error: BaseException | None = None  # anything but the connection dying under the writer

    def acked(self) -> list[tuple[str, float]]:
        """Every acknowledged write as (what, ack time), in order."""
        writes = [(f"ZADD player-{n}", t) for n, t in self.acked_board]
        writes += [(f"XADD {entry_id}", t) for entry_id, t in self.acked_stream]
        return sorted(writes, key=lambda write: write[1])

    def lost(self) -> list[tuple[str, float]]:
        """Acknowledged writes that are not there after the restart, as (what, ack time)."""
        stream = set(self.survived_stream)
        lost = [(f"ZADD player-{n}", t) for n, t in self.acked_board if n not in self.survived_board]
        lost += [(f"XADD {i}", t) for i, t in self.acked_stream if i not in stream]
        return sorted(lost, key=lambda write: write[1])

    def unacknowledged_survivors(self) -> int:
        """Writes found after the restart that were never acknowledged: the one in flight at the kill."""
        board = self.survived_board - {n for n, _ in self.acked_board}
        stream = set(self.survived_stream) - {i for i, _ in self.acked_stream}
        return len(board) + len(stream)

    def survivors_are_a_prefix(self) -> bool:
        """True if each key kept its acknowledged writes up to some point, and none after it: no gap."""
        stream = set(self.survived_stream)
        for kept in (
            [n in self.survived_board for n, _ in self.acked_board],
            [entry_id in stream for entry_id, _ in self.acked_stream],
        ):
            if kept != sorted(kept, reverse=True):  # True... then False...
                return False
        return True

    def row(self) -> dict:
        """One line of the table: acknowledged and lost writes, and ``lost_seconds``, how far back
        from the kill the loss reaches (the kill time minus the ack time of the last write kept).
        """
        acked, lost = self.acked(), self.lost()
        survived_until = max((t for _, t in _kept(acked, lost)), default=0.0)
        return {
            "setting": self.setting,
            "config": _config(self.setting),
            "acknowledged": len(acked),
            "lost": len(lost),
            "lost_%": round(100 * len(lost) / len(acked), 1) if acked else 0.0,
            "lost_seconds": round(self.killed_at - survived_until, 2) if lost else 0.0,
            "in_flight_kept": self.unacknowledged_survivors(),
            "power_cut_bound": power_cut_bound(self),
        }


def kill_during_writes(setting: str, *, seconds: float | None = None, rate: int | None = None) -> KillRun:
    """Write at a steady rate on a fresh server with ``setting``, kill -9 it mid-stream, restart, count."""
    extra_args = _check_setting(setting)
    size = settings()
    seconds = size.persistence_seconds if seconds is None else _positive("seconds", seconds)
    rate = size.persistence_rate if rate is None else int(_positive("rate", rate))
    server = start_redis_binary(extra_args=extra_args)
    try:
        run = KillRun(setting, killed_at=0.0)
        started = time.monotonic()
        writer = threading.Thread(target=_write_steadily, args=(server.url, rate, run, started), daemon=True)
        writer.start()
        _wait(seconds, desc=f"{setting}: writing, then kill -9")
        run.killed_at = time.monotonic() - started
        server.kill()
        writer.join(timeout=30)
        if writer.is_alive():
            raise RuntimeError("the writer did not notice the kill within 30 s")
        if run.writer_error is not None:
            raise RuntimeError(
                f"the writer failed before the kill: {run.writer_error!r}"
            ) from run.writer_error
        server.restart()
        _count_survivors(server, run)
        return run
    finally:
        server.stop()


def kill_each_setting(names=tuple(SETTINGS), *, seconds: float | None = None) -> pd.DataFrame:
    """``kill_during_writes`` for every setting: one row each (see ``KillRun.row``)."""
    for name in names:
        _check_setting(name)  # all of them, before the first server starts
    rows = [kill_during_writes(name, seconds=seconds).row() for name in names]  # one bar per setting
    return pd.DataFrame(rows).set_index("setting")


def throughput(setting: str, *, writes: int | None = None, batch: int | None = None) -> dict:
    """Unthrottled writes per second on a fresh server with ``setting``: one by one, then pipelined."""
    extra_args = _check_setting(setting)
    size = settings()
    writes = size.persistence_throughput_writes if writes is None else int(_positive("writes", writes))
    if writes < 2:
        raise ValueError(f"writes must be at least 2 (a ZADD and an XADD), got {writes!r}")
    batch = size.persistence_batch if batch is None else int(_positive("batch", batch))
    board, stream = _keys()
    server = start_redis_binary(extra_args=extra_args)
    try:
        client = redis.Redis.from_url(server.url)
        started = time.perf_counter()
        for n in range(writes // 2):
            client.zadd(board, {f"player-{n}": n})
            client.xadd(stream, {"n": n})
        one_by_one = 2 * (writes // 2) / (time.perf_counter() - started)
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for n in range(writes // 2):
            pipe.zadd(board, {f"batched-{n}": n})
            pipe.xadd(stream, {"n": n})
            if len(pipe) >= batch:
                pipe.execute()
        pipe.execute()
        pipelined = 2 * (writes // 2) / (time.perf_counter() - started)
        client.close()
    finally:
        server.stop()
    return {"setting": setting, "one_by_one_per_s": round(one_by_one), "pipelined_per_s": round(pipelined)}


def throughput_each_setting(
    names=tuple(SETTINGS), *, writes: int | None = None, rounds: int = 3
) -> pd.DataFrame:
    """``throughput`` for every setting, one row each: the median of ``rounds`` rounds.

    The settings take turns, round after round, so a burst of load from another
    program on the machine hits all of them alike instead of one.
    """
    for name in names:
        _check_setting(name)
    bounds.at_least("rounds", rounds)
    writes = settings().persistence_throughput_writes if writes is None else int(_positive("writes", writes))
    turns = [name for _ in range(rounds) for name in names]
    rows = [throughput(name, writes=max(writes // rounds, 2)) for name in tqdm(turns, desc="throughput")]
    return pd.DataFrame(rows).groupby("setting", sort=False).median().round().astype(int)


def power_cut_bound(run: KillRun) -> int:
    """Acknowledged writes a machine crash (not a kill -9) could lose: a bound from the ack times."""
    acked = run.acked()
    if run.setting == "aof_always":
        return 0
    if run.setting == "aof_everysec":
        return sum(1 for _, t in acked if t > run.killed_at - EVERYSEC_WINDOW_S)
    return len(run.lost())  # none and rdb: what only RAM held is lost either way


def plot(kills: pd.DataFrame, cost: pd.DataFrame) -> Figure:
    """Left: writes lost at kill -9 (measured) and on a power cut (bound). Right: throughput, log scale."""
    names = list(kills.index)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colors = ["C2" if name == RECOMMENDED else "C0" for name in names]
    if "power_cut_bound" in kills:
        left.bar(
            names,
            kills["power_cut_bound"],
            fill=False,
            hatch="//",
            edgecolor="grey",
            label="power cut (bound)",
        )
    bars = left.bar(names, kills["lost"], color=colors, label="kill -9 (measured)")
    left.bar_label(
        bars, labels=[f"{lost:,} of {acked:,}" for lost, acked in zip(kills["lost"], kills["acknowledged"])]
    )
    left.set(title="acknowledged writes lost", ylabel="writes lost")
    left.margins(y=0.15)
    left.legend(loc="upper right")
    cost = cost.reindex(names)
    positions = range(len(names))
    width = 0.4
    one = right.bar([p - width / 2 for p in positions], cost["one_by_one_per_s"], width, label="one by one")
    batched = right.bar([p + width / 2 for p in positions], cost["pipelined_per_s"], width, label="pipelined")
    right.bar_label(one, fmt="{:,.0f}", fontsize=7)
    right.bar_label(batched, fmt="{:,.0f}", fontsize=7)
    right.set_xticks(list(positions), names)
    right.set_yscale("log")
    rates = cost[["one_by_one_per_s", "pipelined_per_s"]].to_numpy()
    right.set_ylim(rates.min() / 2, rates.max() * 8)  # room above the bars for the legend
    right.set(title="write throughput, one connection", ylabel="writes per second (log scale)")
    right.legend(loc="upper left", ncol=2)
    figure.suptitle(f"green: {RECOMMENDED}, the docker-compose setting")
    figure.tight_layout()
    return figure


# --- the parts ------------------------------------------------------------------------------------


def _write_steadily(url: str, rate: int, run: KillRun, started: float) -> None:
    board, stream = _keys()
    client = redis.Redis.from_url(url, socket_timeout=5)
    period = 1.0 / rate
    due = time.monotonic()
    n = 0
    try:
        while True:
            client.zadd(board, {f"player-{n}": n})
            run.acked_board.append((n, time.monotonic() - started))
            entry_id = client.xadd(stream, {"n": n}).decode()
            run.acked_stream.append((entry_id, time.monotonic() - started))
            n += 1
            due = max(due + period, time.monotonic() - period)  # steady: no burst to catch up
            time.sleep(max(0.0, due - time.monotonic()))
    except (redis.ConnectionError, redis.TimeoutError):
        pass  # killed under us: the write in flight was never acknowledged
    except Exception as error:  # noqa: BLE001 - raised again by kill_during_writes, in the caller's thread
        run.writer_error = error
    finally:
        client.close()


def _count_survivors(server: Throwaway, run: KillRun) -> None:
    board, stream = _keys()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        run.survived_board = {int(member.removeprefix("player-")) for member in client.zrange(board, 0, -1)}
        run.survived_stream = [entry_id for entry_id, _ in client.xrange(stream)]
    finally:
        client.close()


def _keys() -> tuple[str, str]:
    return key("persistence", "board"), key("persistence", "stream")


def _wait(seconds: float, *, desc: str) -> None:
    end = time.monotonic() + seconds
    shape = "{desc}: {bar} {n:.1f}/{total:.1f} s"
    with tqdm(total=seconds, desc=desc, bar_format=shape) as bar:
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.1, left))
            bar.update(seconds - max(end - time.monotonic(), 0.0) - bar.n)


def _check_setting(name: object) -> tuple[str, ...]:
    if name not in SETTINGS:
        raise ValueError(f"unknown persistence setting {name!r}; known: {sorted(SETTINGS)}")
    return SETTINGS[name]


def _config(name: str) -> str:
    args = SETTINGS[name]
    return " ".join(f'{flag} "{value}"' for flag, value in zip(args[::2], args[1::2]))


def _positive(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} must be a number > 0, got {value!r}")
    return value


def _kept(acked: list[tuple[str, float]], lost: list[tuple[str, float]]) -> list[tuple[str, float]]:
    missing = set(lost)
    return [write for write in acked if write not in missing]
