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
What everysec risks is a *machine* crash or power cut: what was written but not
yet fsynced. Redis fsyncs once a second, so typically the writes of the last
second; when the disk stalls, an fsync still running makes Redis postpone the
next one, and up to 2 s of writes can be lost (Redis' documentation says the
same). A power cut cannot be caused from here, so both are bounds computed from
the ack times, not measurements: ``power_cut_typical_1s`` counts the writes
acknowledged in the last second before the kill, ``power_cut_worst_2s`` those of
the last two. ``aof_everysec`` is docker-compose.yml's setting, and the
recommended one: almost the throughput of no persistence, about a second (at
worst two) lost on a power cut. ``aof_always`` loses nothing even then, but pays
an fsync per write (per pipeline when writes are batched).

The traps around persistence, each measured on throwaway servers of its own:

* ``fork_cost``: BGSAVE and the AOF rewrite fork the server; every page the
  parent changes while the child writes is copied (copy-on-write). How much, with
  the board idle and under a stream of ZINCRBY, and what that means for maxmemory.
* ``switch_rdb_to_aof``: restarting an RDB server with ``appendonly yes`` starts
  it EMPTY (the AOF wins, and there is none yet); ``CONFIG SET appendonly yes``
  on the live server first is the safe way.
* ``replicas_are_not_backups``: a delete on the primary empties the replica
  within milliseconds. ``primary_restart_empties_replicas``: a primary without
  persistence that restarts (kill -9, then a supervisor starting it) comes back
  empty, and its replicas resync to empty too; with AOF on the primary, both keep
  the board.

Sizes: the workshop run writes for 10 s at 100 ZADD+XADD pairs per second (a
rate ``aof_always`` keeps up with even on a busy machine) and times 10,000 writes
per setting, in 3 rounds with the settings taking turns; the ci run writes for
3 s and times 1,000 writes. ``fork_cost`` forks a 1,000,000-player board
(ci: 100,000); ``switch_rdb_to_aof`` and the replica experiments use 100,000
players (ci: 10,000).
"""

from __future__ import annotations

import random
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import matplotlib.pyplot as plt
import pandas as pd
import redis
from matplotlib.figure import Figure
from redis.backoff import NoBackoff
from redis.retry import Retry
from tqdm.auto import tqdm

from helpers import bounds
from helpers.bench.sizes import settings
from helpers.bench.timing import countdown
from helpers.keyspace import key
from helpers.servers import Throwaway, start_redis_binary, wait_until_loaded

SETTINGS: dict[str, tuple[str, ...]] = {
    "none": ("--save", "", "--appendonly", "no"),
    "rdb": ("--save", "2 1", "--appendonly", "no"),
    "aof_everysec": ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
    "aof_always": ("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
}
RECOMMENDED = "aof_everysec"  # what docker-compose.yml runs
MIB = 1024 * 1024
# fork_cost's server: AOF on as in docker-compose.yml, no automatic snapshot or rewrite to get in the way
FORK_SERVER = ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
               "--auto-aof-rewrite-percentage", "0")  # fmt: skip
FORKS = {  # command, its INFO persistence copy-on-write field, in-progress flag, and counter of forks done
    "BGSAVE": ("rdb_last_cow_size", "rdb_bgsave_in_progress", "rdb_saves"),
    "BGREWRITEAOF": ("aof_last_cow_size", "aof_rewrite_in_progress", "aof_rewrites"),
}
DEFAULT_SAVE_POINTS = ("--save", "3600 1 300 100 60 10000")  # redis.conf's default: SHUTDOWN then saves
EVERYSEC_TYPICAL_S = 1.0  # appendfsync everysec fsyncs once a second: a power cut loses about that
EVERYSEC_WORST_S = 2.0  # ...and up to 2 s when the disk stalls and Redis postpones the fsync


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
        """Writes found after the restart whose acknowledgement never came: the one in flight at the kill.

        The server had applied (and logged) it, but died before its reply reached the
        writer, which saw a connection error. So an error does not mean "not written":
        a client that retries must make the write idempotent.
        """
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
        """One line of the table.

        * ``acknowledged``, ``lost``, ``lost_%``: writes acknowledged, and those missing
          after the kill -9 and restart (measured);
        * ``lost_seconds``: how far back from the kill the loss reaches (the kill time
          minus the ack time of the last write kept);
        * ``kept_without_ack``: writes found after the restart whose reply never came
          (the one in flight at the kill, 0 or 1): the writer saw an error, yet the write
          is there (see ``unacknowledged_survivors``);
        * ``power_cut_typical_1s`` and ``power_cut_worst_2s``: what a power cut could
          lose (a bound from the ack times, see ``power_cut_bound``): typically, and
          when the disk stalls.
        """
        acked, lost = self.acked(), self.lost()
        survived_until = max((t for _, t in _kept(acked, lost)), default=0.0)
        return {
            "setting": self.setting,
            "config": described(SETTINGS[self.setting]),
            "acknowledged": len(acked),
            "lost": len(lost),
            "lost_%": round(100 * len(lost) / len(acked), 1) if acked else 0.0,
            "lost_seconds": round(self.killed_at - survived_until, 2) if lost else 0.0,
            "kept_without_ack": self.unacknowledged_survivors(),
            "power_cut_typical_1s": power_cut_bound(self, worst=False),
            "power_cut_worst_2s": power_cut_bound(self, worst=True),
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
        countdown(seconds, desc=f"{setting}: writing, then kill -9")
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


def power_cut_bound(run: KillRun, *, worst: bool = False) -> int:
    """Acknowledged writes a machine crash (not a kill -9) could lose: a bound from the ack times.

    ``aof_everysec``: the writes acknowledged in the last ``EVERYSEC_TYPICAL_S`` (1 s)
    before the kill, or with ``worst`` the last ``EVERYSEC_WORST_S`` (2 s, a stalled
    disk). ``aof_always``: 0. ``none`` and ``rdb``: what the kill lost, since only RAM
    held it either way.
    """
    if run.setting == "aof_always":
        return 0
    if run.setting == "aof_everysec":
        window = EVERYSEC_WORST_S if worst else EVERYSEC_TYPICAL_S
        return sum(1 for _, t in run.acked() if t > run.killed_at - window)
    return len(run.lost())


def fork_cost(players: int | None = None, *, batch: int = 100, timeout_s: float = 120.0) -> pd.DataFrame:
    """Copy-on-write memory of a fork, measured: BGSAVE and BGREWRITEAOF, on an idle board and under writes.

    A throwaway server (AOF everysec, no automatic snapshot or rewrite) holds a board
    of ``players`` members. Each fork is started on the idle board, then again while a
    writer thread sends ZINCRBY to random players as fast as it can (pipelines of
    ``batch``), from before the fork until the server reports it done. Every page the
    server changes while the child still needs it is copied: that copy is what the
    child reports as it ends, ``rdb_last_cow_size`` / ``aof_last_cow_size`` (INFO
    persistence).

    One row per (fork, load): ``cow_mib``; ``cow_%_of_dataset`` (of
    ``used_memory_dataset``); ``fork_ms`` (``latest_fork_usec``, INFO stats: the
    server is frozen that long, copying its page tables); ``child_ms`` (from the
    command to INFO saying it is done, polled every 5 ms; the server notices a
    finished child in its cron, up to 100 ms later); ``writes_during`` and
    ``writes_per_s`` (ZINCRBYs acknowledged meanwhile); ``dataset_mib``,
    ``used_memory_mib``, ``rss_mib``; ``ram_during_fork_mib`` (rss plus the copies: what
    the machine must hold at the fork's end); ``maxmemory_at_most_%_of_ram``
    (``used_memory / (used_memory + copies)``: the largest maxmemory, as a share of
    the RAM Redis may use, that leaves room for this fork).

    The copy grows with the writes spread over the dataset and with how long the
    child runs (seconds per GB on a real dataset): a busy large server can copy
    nearly all of it, which is why the usual advice is maxmemory at about half the
    RAM on a box that snapshots or rewrites under load.

    Fields: Redis 7.0 and 8.2 and Valkey 8.1 all have ``rdb_last_cow_size``,
    ``aof_last_cow_size``, ``current_cow_size``, ``current_cow_peak`` and
    ``latest_fork_usec`` (a missing field would read as NaN). ``current_cow_size`` is
    refreshed by the child only about once a second, so it stays 0 through a sub-second
    fork (measured on all three): the table uses the figure the child sends at its end.
    Linux: the server reads the child's Private_Dirty from /proc/<pid>/smaps. macOS:
    Redis asks proc_pidinfo for one memory region only, so these fields do not measure
    the dataset's copies there (expect figures near 0); a warning says so.
    """
    players = settings().fork_players if players is None else players
    players = bounds.integer("players", players, 1_000, 50_000_000)
    batch = bounds.integer("batch", batch, 1, 10_000)
    timeout_s = bounds.number("timeout_s", timeout_s, 1, 3_600)
    if not sys.platform.startswith("linux"):
        warnings.warn(
            "fork_cost: only Linux reports copy-on-write sizes (from /proc/<pid>/smaps); "
            f"on {sys.platform} rdb_last_cow_size and aof_last_cow_size do not measure them",
            stacklevel=2,
        )
    board = key("persistence", "fork", "board")
    server = start_redis_binary(extra_args=FORK_SERVER)
    rows = []
    try:
        client = no_retry_client(server.url)
        _fill(client, board, players)
        for command in FORKS:
            for load in ("idle", "writing"):
                rows.append(_one_fork(server.url, client, command, load, board, players, batch, timeout_s))
        client.close()
    finally:
        server.stop()
    return pd.DataFrame(rows).set_index(["fork", "load"])


def switch_rdb_to_aof(players: int | None = None, *, timeout_s: float = 60.0) -> pd.DataFrame:
    """Switching a server with data from RDB to AOF: the trap, then the safe way. One row per way.

    Each way starts with a throwaway server, RDB only, holding ``players`` players
    (acknowledged) and a snapshot of them (SAVE), then stopped.

    * ``restart with --appendonly yes``: the same data folder, started with
      ``--appendonly yes``. With AOF on, a server loads the AOF and ignores dump.rdb;
      there is no AOF yet, so it creates an empty one and starts EMPTY (measured on
      Redis 7.0 and 8.2 and Valkey 8.1). dump.rdb is still on disk, until the first
      snapshot overwrites it: this server has redis.conf's default save points, so
      its SHUTDOWN saves, and the snapshot then holds nothing.
    * ``CONFIG SET appendonly yes, then restart``: restarted RDB only (the board is
      back), ``CONFIG SET appendonly yes`` on the live server, which writes the AOF
      from memory (a rewrite: INFO persistence ``aof_rewrite_in_progress`` and
      ``aof_rewrite_scheduled`` back to 0, ``aof_last_bgrewrite_status:ok``), stopped,
      then started with ``--appendonly yes`` (and the default save points).

    Columns: ``players_saved`` (acknowledged, then snapshotted), ``players_after_restart``
    (on the server started with ``--appendonly yes``), ``snapshot_after_shutdown`` (what
    dump.rdb holds once that server has shut down: read by starting it RDB only once
    more), ``aof_rewrite_ms`` (the live switch's rewrite; NaN for the trap).

    A real server also needs the change in its configuration file, or the next restart
    comes back with AOF off: ``CONFIG REWRITE`` after the ``CONFIG SET`` (or edit
    redis.conf). These throwaways are started from the command line with no file, where
    CONFIG REWRITE has nothing to write to, so the restart passes ``--appendonly yes``.
    """
    players = settings().switch_players if players is None else players
    players = bounds.integer("players", players, 1, 10_000_000)
    timeout_s = bounds.number("timeout_s", timeout_s, 1, 3_600)
    board = key("persistence", "switch", "board")
    rdb_only = SETTINGS["none"]
    aof_on = ("--appendonly", "yes", *DEFAULT_SAVE_POINTS)
    started: list[Throwaway] = []

    def start(args: tuple[str, ...], port: int | None = None, binary=None) -> Throwaway:
        server = start_redis_binary(extra_args=args, port=port, binary=binary)
        started.append(server)
        wait_until_loaded(server.url, timeout=timeout_s)  # the port opens before the data is loaded
        return server

    def count(server: Throwaway) -> int:
        client = no_retry_client(server.url)
        try:
            return client.zcard(board)
        finally:
            client.close()

    rows = []
    try:
        for way in ("restart with --appendonly yes", "CONFIG SET appendonly yes, then restart"):
            server = start(rdb_only)
            port, binary = urlsplit(server.url).port, server.binary
            client = no_retry_client(server.url)
            saved = _fill(client, board, players)
            client.save()
            client.close()
            _stop_keeping_files(server)
            rewrite_ms = float("nan")
            if way.startswith("CONFIG SET"):
                server = start(rdb_only, port, binary)
                client = no_retry_client(server.url)
                before = client.info("persistence")
                started_at = time.perf_counter()
                client.config_set("appendonly", "yes")
                _wait_for_rewrite(client, before.get("aof_rewrites", 0), timeout_s)
                rewrite_ms = round((time.perf_counter() - started_at) * 1000, 1)
                client.close()
                _stop_keeping_files(server)
            server = start(aof_on, port, binary)
            after_restart = count(server)
            _stop_keeping_files(server)  # a SHUTDOWN, which saves: the server has save points
            server = start(rdb_only, port, binary)
            in_snapshot = count(server)
            _stop_keeping_files(server)
            rows.append(
                {
                    "way": way,
                    "players_saved": saved,
                    "players_after_restart": after_restart,
                    "snapshot_after_shutdown": in_snapshot,
                    "aof_rewrite_ms": rewrite_ms,
                }
            )
    finally:
        for server in reversed(started):  # each removes the shared folder: only once all are down
            server.stop()
    return pd.DataFrame(rows).set_index("way")


def replicas_are_not_backups(
    players: int | None = None, *, sync_delay_s: int = 0, timeout_s: float = 30.0
) -> pd.DataFrame:
    """UNLINK the board on a primary and time how soon its replica has lost it too. One row.

    A throwaway primary (no persistence) and a throwaway replica (``--replicaof``),
    in sync (``_wait_in_sync``); ``players`` players added on the primary (acknowledged)
    and replicated; UNLINK on the primary; the replica is read until the board is gone.
    A replica copies every write, the mistakes too: it is no backup.

    Columns: ``players``, ``replica_before``, ``replica_after`` (board size on the
    replica), ``unlink_reply_ms`` (UNLINK's own round trip to the primary),
    ``gone_from_replica_ms`` (from sending UNLINK to the replica answering 0), and
    ``replica_reads`` (reads of the replica that still found the board: 0 when the
    first read after UNLINK's reply already missed it, the usual case on loopback).
    ``sync_delay_s`` is the primary's repl-diskless-sync-delay (Redis' default is 5:
    each full sync then waits 5 s for more replicas to join; 0 here so it starts at once).
    """
    players = settings().replica_players if players is None else players
    players = bounds.integer("players", players, 1, 10_000_000)
    timeout_s = bounds.number("timeout_s", timeout_s, 1, 3_600)
    board = key("persistence", "replica", "board")
    primary, replica = _primary_and_replica(SETTINGS["none"], sync_delay_s, timeout_s)
    try:
        on_primary, on_replica = no_retry_client(primary.url), no_retry_client(replica.url)
        _fill(on_primary, board, players)
        _wait_in_sync(on_primary, on_replica, timeout_s)
        before = on_replica.zcard(board)
        reads = 0
        sent = time.perf_counter()
        on_primary.unlink(board)
        unlinked = time.perf_counter()
        while on_replica.exists(board):
            reads += 1
            if time.perf_counter() - sent > timeout_s:
                raise TimeoutError(
                    f"the replica still had the board {timeout_s} s after UNLINK on the primary"
                )
        gone_ms = (time.perf_counter() - sent) * 1000
        after = on_replica.zcard(board)
        on_primary.close()
        on_replica.close()
    finally:
        replica.stop()
        primary.stop()
    row = {"players": players, "replica_before": before, "replica_after": after,
           "unlink_reply_ms": round((unlinked - sent) * 1000, 2),
           "gone_from_replica_ms": round(gone_ms, 2), "replica_reads": reads}  # fmt: skip
    return pd.DataFrame([row])


def primary_restart_empties_replicas(
    players: int | None = None,
    *,
    names: tuple[str, ...] = ("none", "aof_everysec"),
    sync_delay_s: int = 0,
    timeout_s: float = 30.0,
) -> pd.DataFrame:
    """kill -9 a primary and restart it: with no persistence it comes back empty, and so does its replica.

    For each primary setting in ``names`` (``SETTINGS``): a throwaway primary and
    replica in sync, ``players`` players added on the primary and replicated; the
    primary gets kill -9 and is started again at once (as a supervisor such as systemd
    or Kubernetes would); the replica is watched until it is in sync with the new
    primary (link up, no sync in progress, same replication ID and offset).

    One row per setting: ``config``; ``players``; ``replica_before_kill``;
    ``replica_while_primary_down`` (the replica still serves its copy); ``primary_after_restart``;
    ``replica_after_resync``; ``primary_restart_ms`` (from the kill to the primary
    answering, data loaded); ``resync_ms`` (from then to the replica in sync).

    Measured on Redis 7.0 and 8.2 and Valkey 8.1: with ``none`` the restarted primary
    is empty, it has a new replication ID, so the replica's next reconnection (its
    cron retries about once a second) is a full sync, which empties it. With
    ``aof_everysec`` the primary reloads its AOF and both keep the board. The fix is
    persistence on the primary, or no automatic restart of a primary without it (let
    a replica be promoted instead). ``sync_delay_s``: see ``replicas_are_not_backups``.
    """
    players = settings().replica_players if players is None else players
    players = bounds.integer("players", players, 1, 10_000_000)
    timeout_s = bounds.number("timeout_s", timeout_s, 1, 3_600)
    for name in names:
        _check_setting(name)
    board = key("persistence", "replica", "board")
    rows = []
    for name in names:
        primary, replica = _primary_and_replica(SETTINGS[name], sync_delay_s, timeout_s)
        try:
            on_primary, on_replica = no_retry_client(primary.url), no_retry_client(replica.url)
            acked = _fill(on_primary, board, players)
            _wait_in_sync(on_primary, on_replica, timeout_s)
            before = on_replica.zcard(board)
            killed = time.perf_counter()
            primary.kill()
            while_down = on_replica.zcard(board)
            primary.restart(timeout=timeout_s)
            restarted = time.perf_counter()
            on_primary.close()
            on_primary = no_retry_client(primary.url)
            primary_after = on_primary.zcard(board)
            _wait_in_sync(on_primary, on_replica, timeout_s)
            resynced = time.perf_counter()
            replica_after = on_replica.zcard(board)
            on_primary.close()
            on_replica.close()
        finally:
            replica.stop()
            primary.stop()
        rows.append(
            {
                "primary_setting": name,
                "config": described(SETTINGS[name]),
                "players": acked,
                "replica_before_kill": before,
                "replica_while_primary_down": while_down,
                "primary_after_restart": primary_after,
                "replica_after_resync": replica_after,
                "primary_restart_ms": round((restarted - killed) * 1000, 1),
                "resync_ms": round((resynced - restarted) * 1000, 1),
            }
        )
    return pd.DataFrame(rows).set_index("primary_setting")


def plot(kills: pd.DataFrame, cost: pd.DataFrame) -> Figure:
    """Left: writes lost at kill -9 (measured) and on a power cut (bounds, typical and worst case).
    Right: throughput, log scale."""
    names = list(kills.index)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colors = ["C2" if name == RECOMMENDED else "C0" for name in names]
    bounds_drawn = (
        ("power_cut_worst_2s", "..", "power cut, disk stalled (bound, 2 s)"),
        ("power_cut_typical_1s", "//", "power cut, typical (bound, 1 s)"),
    )
    for column, hatch, label in bounds_drawn:
        if column in kills:
            left.bar(names, kills[column], fill=False, hatch=hatch, edgecolor="grey", label=label)
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


def _one_fork(
    url: str,
    client: redis.Redis,
    command: str,
    load: str,
    board: str,
    players: int,
    batch: int,
    timeout_s: float,
) -> dict:
    cow_field, in_progress, done_counter = FORKS[command]
    stop, writes = threading.Event(), [0]
    writer = threading.Thread(
        target=_zincrby_until, args=(url, board, players, batch, stop, writes), daemon=True
    )
    try:
        if load == "writing":
            writer.start()
            deadline = time.monotonic() + timeout_s
            while writes[0] < 10 * batch:  # running at full speed before the fork
                if not writer.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the ZINCRBY writer did not get going")
                time.sleep(0.005)
        before = client.info("persistence")
        counted, started = writes[0], time.perf_counter()
        client.execute_command(command)
        deadline = time.monotonic() + timeout_s
        while True:
            info = client.info("persistence")
            finished = info.get(done_counter, 0) > before.get(done_counter, 0) and not info[in_progress]
            if finished and not info.get("aof_rewrite_scheduled", 0):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command} did not finish in {timeout_s} s")
            time.sleep(0.005)
        child_s = time.perf_counter() - started
        during = writes[0] - counted
        if load == "writing" and not writer.is_alive():
            raise RuntimeError(f"the ZINCRBY writer stopped during {command}")
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(timeout=30)
    status = info["rdb_last_bgsave_status" if command == "BGSAVE" else "aof_last_bgrewrite_status"]
    if status != "ok":
        raise RuntimeError(f"{command} failed: status {status!r}; see the server's log")
    stats, memory = client.info("stats"), client.info("memory")
    cow = info.get(cow_field, float("nan"))
    used = memory["used_memory"]
    return {
        "fork": command,
        "load": load,
        "cow_mib": round(cow / MIB, 1),
        "cow_%_of_dataset": round(100 * cow / memory["used_memory_dataset"], 1),
        "fork_ms": round(stats.get("latest_fork_usec", float("nan")) / 1000, 2),
        "child_ms": round(child_s * 1000, 1),
        "writes_during": during,
        "writes_per_s": round(during / child_s),
        "dataset_mib": round(memory["used_memory_dataset"] / MIB, 1),
        "used_memory_mib": round(used / MIB, 1),
        "rss_mib": round(memory["used_memory_rss"] / MIB, 1),
        "ram_during_fork_mib": round((memory["used_memory_rss"] + cow) / MIB, 1),
        "maxmemory_at_most_%_of_ram": round(100 * used / (used + cow), 1),
    }


def _zincrby_until(url: str, board: str, players: int, batch: int, stop: threading.Event, done: list) -> None:
    client = no_retry_client(url)
    rng = random.Random(9)
    try:
        while not stop.is_set():
            pipe = client.pipeline(transaction=False)
            for _ in range(batch):
                pipe.zincrby(board, 1, f"player-{rng.randrange(players)}")
            pipe.execute()
            done[0] += batch
    finally:
        client.close()


def _fill(client: redis.Redis, board: str, players: int) -> int:
    """Add ``player-0`` ... to ``board`` with random scores; the number the server acknowledged as added."""
    rng = random.Random(3)
    added = 0
    for start in range(0, players, 100_000):
        pipe = client.pipeline(transaction=False)
        for chunk in range(start, min(start + 100_000, players), 10_000):
            pipe.zadd(
                board,
                {f"player-{n}": rng.randrange(10**6) for n in range(chunk, min(chunk + 10_000, players))},
            )
        added += sum(pipe.execute())
    return added


def no_retry_client(url: str) -> redis.Redis:
    """A client that never sends a command twice (redis-py retries when a connection drops, and
    these servers are killed and restarted under it: a retried write, SHUTDOWN NOSAVE or EVALSHA
    could reach the restarted server)."""
    return redis.Redis.from_url(
        url, decode_responses=True, retry=Retry(NoBackoff(), 0), socket_timeout=60, socket_connect_timeout=5
    )


def _stop_keeping_files(server: Throwaway) -> None:
    """SHUTDOWN the server (SIGTERM: it saves if it has save points, fsyncs its AOF) and keep its folder, for
    a server started again on the same port, hence the same folder, with other arguments."""
    server.executor.stop()


def _wait_for_rewrite(client: redis.Redis, rewrites_before: int, timeout_s: float) -> None:
    """Until the AOF rewrite that ``CONFIG SET appendonly yes`` started is done, and done well."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = client.info("persistence")
        done = info.get("aof_rewrites", rewrites_before + 1) > rewrites_before
        if done and not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the AOF rewrite after CONFIG SET appendonly yes took over {timeout_s} s")
        time.sleep(0.005)
    if info["aof_last_bgrewrite_status"] != "ok":
        raise RuntimeError(
            f"the AOF rewrite failed: aof_last_bgrewrite_status {info['aof_last_bgrewrite_status']!r}"
        )


def _primary_and_replica(primary_args: tuple[str, ...], sync_delay_s: int, timeout_s: float):
    """A throwaway primary and a throwaway replica of it, in sync (an empty dataset replicated)."""
    delay = bounds.integer("sync_delay_s", sync_delay_s, 0, 60)
    primary = start_redis_binary(extra_args=(*primary_args, "--repl-diskless-sync-delay", str(delay)))
    try:
        port = str(urlsplit(primary.url).port)
        replica = start_redis_binary(extra_args=("--replicaof", "127.0.0.1", port), binary=primary.binary)
    except BaseException:
        primary.stop()
        raise
    try:
        on_primary, on_replica = no_retry_client(primary.url), no_retry_client(replica.url)
        _wait_in_sync(on_primary, on_replica, timeout_s + delay)
        on_primary.close()
        on_replica.close()
    except BaseException:
        replica.stop()
        primary.stop()
        raise
    return primary, replica


def _wait_in_sync(on_primary: redis.Redis, on_replica: redis.Redis, timeout_s: float) -> None:
    """Until the replica is linked to this primary, done loading, and at its replication ID and offset."""
    deadline = time.monotonic() + timeout_s
    while True:
        mine, theirs = on_replica.info("replication"), on_primary.info("replication")
        if (
            mine.get("master_link_status") == "up"
            and not mine.get("master_sync_in_progress")
            and not on_replica.info("persistence").get("loading")
            and mine.get("master_replid") == theirs.get("master_replid")
            and mine.get("slave_repl_offset") == theirs.get("master_repl_offset")
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the replica was not in sync with its primary within {timeout_s} s: link "
                f"{mine.get('master_link_status')}, offsets {mine.get('slave_repl_offset')} "
                f"and {theirs.get('master_repl_offset')}"
            )
        time.sleep(0.005)


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


def _check_setting(name: object) -> tuple[str, ...]:
    if name not in SETTINGS:
        raise ValueError(f"unknown persistence setting {name!r}; known: {sorted(SETTINGS)}")
    return SETTINGS[name]


def described(args: tuple[str, ...]) -> str:
    """``--save "" --appendonly "no"``: a server's arguments as the tables show them."""
    return " ".join(f'{flag} "{value}"' for flag, value in zip(args[::2], args[1::2]))


def _positive(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} must be a number > 0, got {value!r}")
    return value


def _kept(acked: list[tuple[str, float]], lost: list[tuple[str, float]]) -> list[tuple[str, float]]:
    missing = set(lost)
    return [write for write in acked if write not in missing]
