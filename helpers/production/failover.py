"""A primary killed under load: what the course's patterns see, and what a failover loses.

``failover_under_load()`` starts a fresh throwaway cluster of three primaries,
each with a replica (``cluster.start_cluster(replicas=1)``), and runs the course's
patterns against it from client threads, each through the unchanged helpers and
a cluster client of its own, at a steady rate:

| pattern | what each call does | its key |
|---|---|---|
| ``leaderboard`` | ``Leaderboard.incr("player:1", 1)``: one player's score, +1 | on the primary killed |
| ``stream`` | ``EventLog.append({"seq": n})`` | on the primary killed |
| ``worker`` | a ``streams.Worker`` reading that log and acknowledging each entry | (the same) |
| ``ratelimit`` | ``RateLimiter.hit(user)`` (sliding log), three users in turn | on the primary killed |
| ``bystander`` | ``Leaderboard.incr`` on a board of *another* primary | never killed |

Every acknowledged write is recorded with its time. After ``seconds_before`` the
primary owning those keys gets kill -9 (``cluster.kill_primary``), its replica
takes over, the killed node is started again and rejoins as a replica
(``cluster.restart_node``), and the load goes on for ``seconds_after``; then every
acknowledged write is looked for:

* leaderboard: each ZINCRBY's reply is the score it made (1, 2, 3, ...), so a reply
  that goes *back* shows the node that answered had lost the writes above it;
  the final score is checked against the acknowledged increments;
* stream: each acknowledged XADD ID (and its ``seq``) looked for in the log;
* worker: every delivery counted: entries handled twice (redelivered after the
  failover, an acknowledgement lost), never handled, or handled and then lost
  with the log (the worker acted on an event the cluster forgot);
* ratelimit: each user may make ``limit`` requests per 300 s (nothing expires during
  a run), the limit sized so every user reaches it during the run: any admission
  beyond it is a request let through because the log of admitted requests went back;
* every client's errors: first and last, their classes, and what redis-py's cluster
  client handled itself (connection errors, MOVED: its debug log, read for the run).

The bystander shows what a failover costs the rest of the cluster: with the
default ``cluster-require-full-coverage yes`` every node answers CLUSTERDOWN
once the failure is agreed, until the promotion.

**What a plain kill -9 loses, and the replica lag.** On loopback a primary sends
each write to its replica in the same event-loop turn as the reply to the client,
and what it wrote to a socket is delivered even after the process dies: a plain
kill -9 of the process loses (almost) nothing, measured (``replica_lag_s=0``). The
loss asynchronous replication allows comes from a replica that is *behind*: a slow
network, a partition, a machine (not a process) dying. ``replica_lag_s`` makes the
replica that far behind, fairly: ``replica_lag_s`` seconds before the kill its
replication link is cut and kept down (the replica is given a wrong ``masterauth``
and its link dropped, CLIENT KILL TYPE master, so it cannot resync), as a partition
between the two would, while clients still reach the primary and get their
acknowledgements. The promoted replica then lacks exactly what the primary
acknowledged in those seconds.

**WAIT and WAITAOF.** ``wait_replicas=1`` sends ``WAIT 1 <wait_timeout_ms>`` after each
write, and counts a write as acknowledged only if WAIT answers that one replica has
it (an unconfirmed write is reported apart; the limiter then denies the request,
failing closed). WAIT must go on the *connection that made the write*: the server
waits for that connection's last write (on Redis 8.2 and Valkey 8.1 a connection that
wrote nothing gets an immediate answer, whatever the replica has). With redis-py
8.1's ``RedisCluster`` that is
``client.execute_command("WAIT", 1, timeout, target_nodes=client.get_node_from_key(key))``
from the thread that made the write, on the client the helper wrote with
(``clients.without_retries(r)``, the twin the helpers write through): each node's
connection pool hands back the connection released last, and each thread here has
clients of its own. ``waitaof=True`` sends ``WAITAOF 0 1 <timeout>`` instead (the
replica has the write *and* fsynced it to its AOF; the nodes then run
``appendonly yes`` with ``appendfsync`` as given, everysec by default: each write
then waits for the replica's next fsync, about a second). WAITAOF exists from
Redis 7.2 (Valkey 8.1 has it); Redis 7.0 answers ``ERR unknown command 'WAITAOF'``,
and the run says so instead of measuring. Neither makes Redis a consensus
system: a write WAIT could not confirm was still applied on the primary (readers,
and the worker, may have seen it), and is lost or kept by chance.

**Scripts and Functions after a promotion.** The script cache (SCRIPT LOAD, EVALSHA)
is per node and not replicated: the replica never has the limiter's script, and
after the promotion its first EVALSHA answers NOSCRIPT; redis-py's ``Script`` loads
the script again and retries (counted on the promoted node: INFO errorstats and
commandstats). Functions (FUNCTION LOAD) are replicated and persisted like data:
the replica has the library before the kill, and FCALL works on it once promoted.

Sizes (``helpers.bench.sizes``): the workshop
run writes ``failover_rate`` = 100 calls/s per pattern for ``failover_seconds_before``
= 3 s before the kill and ``failover_seconds_after`` = 4 s after the cluster is ok
again; ci: 50 calls/s, 1 s and 1.5 s.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import redis
from matplotlib.figure import Figure
from redis.crc import key_slot

from helpers import bounds
from helpers.bench.sizes import settings
from helpers.bench.timing import countdown
from helpers.clients import without_retries
from helpers.leaderboard import Leaderboard
from helpers.production import cluster
from helpers.ratelimit import FUNCTION_LIBRARY, RateLimiter, load_functions
from helpers.streams import EventLog, Worker

PATTERNS = ("leaderboard", "stream", "worker", "ratelimit", "bystander")
WAIT_TIMEOUT_MS = 100  # WAIT 1 100: on loopback a healthy replica answers in well under 1 ms
WAITAOF_TIMEOUT_MS = 1_500  # WAITAOF with appendfsync everysec waits up to a second for the fsync
APPENDFSYNC = ("everysec", "always")
REPLICA_LAG_S = 0.5  # what the notebook uses to make the loss of asynchronous replication visible
LIMIT_PERIOD_S = 300.0  # longer than any run: no admitted request leaves the log while it runs
LIMITED_USERS = 3
PLAYER = "player:1"
DRAIN_TIMEOUT_S = 10.0  # after the load: until the worker has handled everything (claims included)
MODES: dict[str, dict] = {  # the runs the notebook compares (each_mode runs the first three)
    "no WAIT": {},
    f"WAIT 1 {WAIT_TIMEOUT_MS}": {"wait_replicas": 1},
    f"WAITAOF 0 1 {WAITAOF_TIMEOUT_MS}": {"wait_replicas": 1, "waitaof": True},
    f"WAITAOF 0 1 {WAITAOF_TIMEOUT_MS}, appendfsync always": {
        "wait_replicas": 1,
        "waitaof": True,
        "appendfsync": "always",
    },
}
DEFAULT_MODES = tuple(MODES)[:3]
_OK = ("acknowledged", "unconfirmed")  # the write was applied and answered (WAIT aside)


@dataclass
class Op:
    """One call of one pattern: when, how it ended, what it returned."""

    pattern: str
    n: int
    sent: float  # time.monotonic()
    done: float
    outcome: str  # "acknowledged", "unconfirmed" (WAIT fell short), "error" (raised, or limiter degraded)
    write_ms: float
    wait_ms: float | None = None
    replicas: int | None = None  # what WAIT (or WAITAOF's replica count) answered
    value: object = None  # ZINCRBY's score, XADD's ID, the limiter's (user, Decision)
    error: str | None = None  # "ConnectionError: ..." for an error (or a failed WAIT)
    lost: bool = False  # acknowledged (or unconfirmed), and not there after the failover


@dataclass
class FailoverRun:
    """One run: the settings, the failover, every call, and what was found afterwards."""

    mode: str
    replica_lag_s: float
    server: str
    limit: int
    failover: cluster.Failover | None = None
    events: dict[str, float] = field(default_factory=dict)  # seconds after the kill: cut, failed, ok, ...
    ops: list[Op] = field(default_factory=list)
    deliveries: list[tuple[int, str, float]] = field(default_factory=list)  # worker: (seq, entry ID, time)
    found: dict = field(default_factory=dict)  # what the analysis counted, per pattern
    redis_py_saw: dict[str, Counter] = field(
        default_factory=dict
    )  # pattern -> "ConnectionError (XADD)" -> count
    kept_seqs: set[int] = field(default_factory=set, repr=False)  # the stream's entries at the end
    scripts: dict = field(default_factory=dict)
    note: str = ""  # why nothing was measured (WAITAOF on Redis 7.0), or ""

    @property
    def measured(self) -> bool:
        return self.failover is not None

    def table(self) -> pd.DataFrame:
        """One row per pattern: calls, acknowledged, lost, errors and their window, latency.

        Columns: ``mode``, ``replica_lag_s``, ``server``, ``pattern``; ``calls`` (made),
        ``acknowledged`` (answered, and with WAIT confirmed by a replica),
        ``unconfirmed`` (answered, WAIT fell short), ``errors`` (raised, or for the
        limiter a degraded decision); ``lost`` (acknowledged, missing after the failover),
        ``lost_unconfirmed``, ``kept_without_ack`` (applied though the client saw an
        error); worker: ``deliveries``, ``duplicates``, ``never_handled``,
        ``handled_but_lost``; ratelimit: ``admitted``, ``over_admitted`` (beyond the
        limit); ``error_window_s`` (first to last error), ``first_error_s`` and
        ``last_error_s`` (after the kill), ``exceptions`` (class x count),
        ``redis_py_saw`` (every error redis-py's cluster client met, retried or raised: its debug log);
        ``latency_p50_ms``/``latency_p99_ms`` (per acknowledged
        write before the replica fell behind or the kill, WAIT included) and
        ``wait_p50_ms``/``wait_p99_ms`` (the WAIT alone); ``note``.
        """
        rows = []
        for pattern in PATTERNS:
            found = self.found.get(pattern, {})
            ops = [op for op in self.ops if op.pattern == pattern]
            window = _error_window(self, ops)
            steady = [op for op in ops if op.outcome == "acknowledged" and op.sent < self._steady_until]
            steady = _without_first(steady)
            total = [op.write_ms + (op.wait_ms or 0.0) for op in steady]
            waits = [op.wait_ms for op in steady if op.wait_ms is not None]
            rows.append(
                {
                    "mode": self.mode,
                    "replica_lag_s": self.replica_lag_s,
                    "server": self.server,
                    "pattern": pattern,
                    "calls": None if pattern == "worker" else len(ops),
                    "acknowledged": None
                    if pattern == "worker"
                    else sum(op.outcome == "acknowledged" for op in ops),
                    "unconfirmed": None
                    if pattern == "worker"
                    else sum(op.outcome == "unconfirmed" for op in ops),
                    "errors": sum(op.outcome == "error" for op in ops),
                    "lost": found.get("lost"),
                    "lost_unconfirmed": found.get("lost_unconfirmed"),
                    "kept_without_ack": found.get("kept_without_ack"),
                    "deliveries": found.get("deliveries"),
                    "duplicates": found.get("duplicates"),
                    "never_handled": found.get("never_handled"),
                    "handled_but_lost": found.get("handled_but_lost"),
                    "admitted": found.get("admitted"),
                    "over_admitted": found.get("over_admitted"),
                    **window,
                    "redis_py_saw": _counts(self.redis_py_saw.get(pattern, Counter())),
                    "latency_p50_ms": _percentile(total, 50),
                    "latency_p99_ms": _percentile(total, 99),
                    "wait_p50_ms": _percentile(waits, 50),
                    "wait_p99_ms": _percentile(waits, 99),
                    "note": self.note or found.get("note", ""),
                }
            )
        if not self.measured:  # only what identifies the row, and why nothing was measured
            kept = ("mode", "replica_lag_s", "server", "pattern", "note")
            rows = [{name: value if name in kept else None for name, value in row.items()} for row in rows]
        return pd.DataFrame(rows)

    def timeline(self) -> pd.DataFrame:
        """Every call (and every worker delivery), ``t_s`` seconds after the kill, for plots.

        Columns: ``mode``, ``pattern``, ``n``, ``t_s`` (when it ended), ``outcome``
        (acknowledged, unconfirmed, error; worker: delivered, redelivered), ``lost``,
        ``latency_ms`` (WAIT included), ``wait_ms``, ``error``.
        """
        zero = self.failover.killed_at if self.failover else 0.0
        rows = [
            {
                "mode": self.mode,
                "pattern": op.pattern,
                "n": op.n,
                "t_s": op.done - zero,
                "outcome": op.outcome,
                "lost": op.lost,
                "latency_ms": op.write_ms + (op.wait_ms or 0.0),
                "wait_ms": op.wait_ms,
                "error": op.error,
            }
            for op in self.ops
        ]
        seen: Counter[int] = Counter()
        for seq, _, at in self.deliveries:
            seen[seq] += 1
            rows.append(
                {
                    "mode": self.mode,
                    "pattern": "worker",
                    "n": seq,
                    "t_s": at - zero,
                    "outcome": "delivered" if seen[seq] == 1 else "redelivered",
                    "lost": seq not in self.kept_seqs,  # handled, then lost with the log
                    "latency_ms": np.nan,
                    "wait_ms": np.nan,
                    "error": None,
                }
            )
        columns = ["mode", "pattern", "n", "t_s", "outcome", "lost", "latency_ms", "wait_ms", "error"]
        return pd.DataFrame(rows, columns=columns).sort_values("t_s", ignore_index=True)

    def scripts_table(self) -> pd.DataFrame:
        """What the script cache and Functions did on the promoted replica: one row per question."""
        return pd.DataFrame(
            [
                {"mode": self.mode, "question": question, "answer": answer}
                for question, answer in self.scripts.items()
            ]
        )

    @property
    def _steady_until(self) -> float:
        if not self.failover:
            return float("inf")
        return self.failover.killed_at + self.events.get("cut_s", 0.0)


def failover_under_load(
    *,
    wait_replicas: int = 0,
    wait_timeout_ms: int | None = None,
    waitaof: bool = False,
    appendfsync: str = "everysec",
    replica_lag_s: float = 0.0,
    seconds_before: float | None = None,
    seconds_after: float | None = None,
    rate: int | None = None,
    node_timeout_ms: int = cluster.FAILOVER_NODE_TIMEOUT_MS,
    rejoin: bool = True,
    progress: bool = True,
) -> FailoverRun:
    """Run the patterns on a fresh cluster with replicas, kill -9 the primary of their keys, count.

    ``wait_replicas=1``: WAIT 1 ``wait_timeout_ms`` after every write (default
    ``WAIT_TIMEOUT_MS``); with ``waitaof=True``, WAITAOF 0 1 instead (default timeout
    ``WAITAOF_TIMEOUT_MS``; nodes run ``appendonly yes`` with ``appendfsync``).
    ``replica_lag_s``: how long before the kill the replica stops receiving (see the
    module's docstring). ``rejoin``: restart the killed node once the cluster is ok,
    so the new primary has a replica again. ``rate``: calls per second per pattern.
    """
    wait_replicas = bounds.integer("wait_replicas", wait_replicas, 0, 1)
    if not isinstance(waitaof, bool) or (waitaof and not wait_replicas):
        raise ValueError("waitaof=True needs wait_replicas=1 (WAITAOF 0 1: one replica's AOF)")
    if appendfsync not in APPENDFSYNC:
        raise ValueError(f"appendfsync must be one of {APPENDFSYNC}, got {appendfsync!r}")
    if wait_timeout_ms is None:
        wait_timeout_ms = WAITAOF_TIMEOUT_MS if waitaof else WAIT_TIMEOUT_MS
    wait_timeout_ms = bounds.integer("wait_timeout_ms", wait_timeout_ms, 1, 60_000)
    replica_lag_s = bounds.number("replica_lag_s", replica_lag_s, 0.0, 5.0)
    size = settings()
    seconds_before = size.failover_seconds_before if seconds_before is None else seconds_before
    seconds_before = bounds.number("seconds_before", seconds_before, 0.3, 600)
    seconds_after = size.failover_seconds_after if seconds_after is None else seconds_after
    seconds_after = bounds.number("seconds_after", seconds_after, 0.3, 600)
    rate = bounds.integer(
        "rate (calls per second per pattern)", size.failover_rate if rate is None else rate, 1, 2_000
    )
    if seconds_before + replica_lag_s + seconds_after + 60 > LIMIT_PERIOD_S:
        raise ValueError(f"a run must stay well within the limiter's period of {LIMIT_PERIOD_S:g} s")
    mode = "no WAIT"
    if wait_replicas:
        mode = f"WAITAOF 0 1 {wait_timeout_ms}" if waitaof else f"WAIT 1 {wait_timeout_ms}"
        mode += ", appendfsync always" if waitaof and appendfsync == "always" else ""
    # every user reaches its limit half-way through the time after the failover
    limit = max(1, round(rate / LIMITED_USERS * (seconds_before + replica_lag_s + seconds_after / 2)))
    extra = ("--appendonly", "yes", "--appendfsync", appendfsync) if waitaof else ()
    grid = cluster.start_cluster(replicas=1, node_timeout_ms=node_timeout_ms, extra_args=extra)
    try:
        run = FailoverRun(mode, replica_lag_s, _server_label(grid), limit)
        if waitaof:
            run.note = _waitaof_missing(grid)
            if run.note:
                return run
        _run(grid, run, wait_replicas, wait_timeout_ms, waitaof, seconds_before, seconds_after, rate,
             rejoin, progress)  # fmt: skip
        return run
    finally:
        grid.stop()


def each_mode(
    modes: Iterable[str] = DEFAULT_MODES, *, replica_lag_s: float = 0.0, **kwargs
) -> list[FailoverRun]:
    """``failover_under_load`` once per mode of ``MODES`` ("no WAIT", "WAIT 1 100", "WAITAOF 0 1 1500")."""
    runs = []
    for name in modes:
        if name not in MODES:
            raise ValueError(f"unknown mode {name!r}; known: {list(MODES)}")
        runs.append(failover_under_load(replica_lag_s=replica_lag_s, **MODES[name], **kwargs))
    return runs


def summary(runs: Sequence[FailoverRun]) -> pd.DataFrame:
    """Every run's ``table()``, one row per pattern per run."""
    return pd.concat([run.table() for run in runs], ignore_index=True)


def failovers(runs: Sequence[FailoverRun]) -> pd.DataFrame:
    """One row per run: the failover's times (seconds after the kill) and who replaced whom."""
    rows = []
    for run in runs:
        row = {"mode": run.mode, "replica_lag_s": run.replica_lag_s, "server": run.server}
        if run.failover:
            row |= run.failover.row() | {"rejoined_s": run.events.get("rejoined_s")}
        rows.append(row | {"note": run.note})
    return pd.DataFrame(rows)


def scripts_summary(runs: Sequence[FailoverRun]) -> pd.DataFrame:
    """Every run's ``scripts_table()``."""
    return pd.concat([run.scripts_table() for run in runs if run.scripts], ignore_index=True)


def plot(runs: Sequence[FailoverRun]) -> Figure:
    """For each run, the calls around the kill (errors, acknowledged-but-lost writes); then the
    latency per acknowledged write of each run (WAIT included)."""
    runs = [run for run in runs if run.measured]
    if not runs:
        raise ValueError("no run measured anything to plot")
    fig, axes = plt.subplots(len(runs) + 1, 1, figsize=(10, 2.6 * len(runs) + 3), squeeze=False)
    axes = axes[:, 0]
    rows = {pattern: index for index, pattern in enumerate(reversed(PATTERNS))}
    styles = {
        "acknowledged": dict(marker="|", color="0.75", s=30),
        "delivered": dict(marker="|", color="0.75", s=30),
        "unconfirmed": dict(marker="|", color="tab:orange", s=40),
        "redelivered": dict(marker="o", color="tab:purple", s=25),
        "error": dict(marker="x", color="tab:red", s=18),
    }
    for ax, run in zip(axes, runs):
        frame = run.timeline()
        for outcome, style in styles.items():
            part = frame[frame["outcome"] == outcome]
            ax.scatter(part["t_s"], part["pattern"].map(rows), label=outcome, **style)
        lost = frame[frame["lost"] & (frame["outcome"] != "unconfirmed")]
        ax.scatter(lost["t_s"], lost["pattern"].map(rows), marker="o", color="black", s=30,
                   label="acknowledged (worker: handled), then lost")  # fmt: skip
        lost = frame[frame["lost"] & (frame["outcome"] == "unconfirmed")]
        ax.scatter(lost["t_s"], lost["pattern"].map(rows), marker="o", facecolor="none",
                   edgecolor="tab:orange", s=30, label="unconfirmed by WAIT, then lost")  # fmt: skip
        ax.axvspan(0, run.events["ok_s"], color="tab:red", alpha=0.08)
        if "cut_s" in run.events:
            ax.axvspan(run.events["cut_s"], 0, color="tab:orange", alpha=0.12)
        for name in ("failed_s", "promoted_s", "ok_s", "rejoined_s"):
            if run.events.get(name) is not None:
                ax.axvline(run.events[name], color="0.4", lw=0.8, ls=":")
                ax.text(run.events[name], len(PATTERNS) - 0.4, name[:-2], fontsize=7, rotation=90, va="top")
        ax.axvline(0, color="tab:red", lw=1)
        ax.set_yticks(list(rows.values()), list(rows))
        ax.set_ylim(-0.6, len(PATTERNS) - 0.2)
        ax.set_title(
            f"{run.server}, {run.mode}, replica {run.replica_lag_s:g} s behind: kill -9 at 0", fontsize=10
        )
        ax.set_xlabel("seconds after the kill -9")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", fontsize=8, ncol=4, frameon=False)
    ax = axes[-1]
    for run in runs:
        steady = [op for op in run.ops if op.outcome == "acknowledged" and op.sent < run._steady_until]
        latencies = np.sort([op.write_ms + (op.wait_ms or 0.0) for op in _without_first(steady)])
        if len(latencies):
            ax.plot(latencies, np.arange(1, len(latencies) + 1) / len(latencies), label=run.mode)
    ax.set_xscale("log")
    ax.set_xlabel("latency per acknowledged write before the kill, ms (log scale; WAIT included)")
    ax.set_ylabel("share of writes")
    ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return fig


# --- the run ----------------------------------------------------------------------------------------


def _run(
    grid: cluster.LocalCluster,
    run: FailoverRun,
    wait_replicas: int,
    wait_timeout_ms: int,
    waitaof: bool,
    seconds_before: float,
    seconds_after: float,
    rate: int,
    rejoin: bool,
    progress: bool,
) -> None:
    admin = grid.client()
    clients: list = [admin]
    stop, stop_worker = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    crashes: list[BaseException] = []
    try:
        ranges = cluster.slot_ranges(admin)
        board = Leaderboard(admin, "failover")
        target = _owner_of(ranges, board.key)
        stream_name = _name_on(ranges, target, lambda name: EventLog(admin, name).key, "failover")
        other = next(node for _, _, node in ranges if node != target)
        bystander = _name_on(ranges, other, lambda name: Leaderboard(admin, name).key, "other")
        function = load_functions(admin)  # FUNCTION LOAD on every primary

        def client():
            made = grid.client()
            clients.append(made)
            return made

        command = None
        if wait_replicas and waitaof:
            command = ("WAITAOF", 0, wait_replicas, wait_timeout_ms)
        elif wait_replicas:
            command = ("WAIT", wait_replicas, wait_timeout_ms)

        def waiter(base, key: str, timeout_s: float | None = None):
            """WAIT on the connection the helper wrote with: its twin, the node of ``key``, this thread."""
            if command is None:
                return None
            twin = without_retries(base, timeout_s=timeout_s)

            def wait() -> int:
                reply = twin.execute_command(*command, target_nodes=twin.get_node_from_key(key))
                return int(reply[1]) if isinstance(reply, list) else int(reply)

            return wait

        base = client()
        lb = Leaderboard(base, "failover")
        write_lb = _Writer("leaderboard", lambda n: lb.incr(PLAYER, 1), waiter(base, lb.key))
        base = client()
        by = Leaderboard(base, bystander)
        write_by = _Writer("bystander", lambda n: by.incr(PLAYER, 1), waiter(base, by.key))
        base = client()
        log = EventLog(base, stream_name)
        write_st = _Writer("stream", lambda n: log.append({"seq": n}), waiter(base, log.key))
        base = client()
        # its timeout_s bounds each reply, WAIT's included: above the WAIT timeout
        timeout_s = max(1.0, wait_timeout_ms / 1000 + 1.0) if command else 1.0
        limiter = RateLimiter(base, run.limit, LIMIT_PERIOD_S, name="failover", timeout_s=timeout_s)
        users = _names_on(ranges, target, lambda name: limiter.keys(name)[0], "user", LIMITED_USERS)
        recorder = _ScriptRecorder(limiter.script)
        limiter.script = recorder  # the limiter swallows errors (on_error="closed"): this names them
        limiter_keys = {user: limiter.keys(user)[0] for user in users}
        limiter_waits = {
            user: waiter(base, key, timeout_s=limiter.timeout_s) for user, key in limiter_keys.items()
        }

        def hit(n: int):
            user = users[n % len(users)]
            decision = limiter.hit(user)
            if decision.degraded:
                raise _Degraded(recorder.last_error)
            return user, decision

        write_rl = _Writer("ratelimit", hit, None)
        write_rl.waits = {user: limiter_waits[user] for user in users}
        write_rl.user_of = lambda n: users[n % len(users)]

        worker_log = EventLog(client(), stream_name)
        worker = Worker(worker_log, "failover", "worker-1",
                        lambda entry_id, fields: run.deliveries.append(
                            (int(fields["seq"]), entry_id, time.monotonic())),
                        batch=50, block_ms=100, claim_idle_ms=500)  # fmt: skip

        with _RedisPyLog() as seen:
            threads.append(_thread("worker", _consume, worker, stop_worker, run.ops, crashes))
            worker_started = time.monotonic()
            while not worker_log.redis.exists(worker_log.key) and time.monotonic() < worker_started + 10:
                time.sleep(0.01)  # the group exists (MKSTREAM) before the first append
            for writer in (write_lb, write_by, write_st, write_rl):
                threads.append(_thread(writer.pattern, writer.loop, rate, stop, run.ops, crashes))
            countdown(seconds_before, f"{run.mode}: load before the kill", progress=progress)
            replica = grid.replicas_of[target][0]
            run.scripts.update(_before_kill(grid, replica, limiter.script.sha))
            cut_at = None
            if run.replica_lag_s:
                cut_at = time.monotonic()
                _cut_replication(grid, replica)
                countdown(
                    run.replica_lag_s,
                    f"{run.mode}: replica cut off, primary still acknowledging",
                    progress=progress,
                )
            if progress:
                print(f"{run.mode}: kill -9 {target}, waiting for its replica to take over", flush=True)
            failover = cluster.kill_primary(grid, node=target)
            run.failover = failover
            zero = failover.killed_at
            run.events = {
                **({"cut_s": cut_at - zero} if cut_at else {}),
                "suspected_s": failover.suspected_s,
                "failed_s": failover.failed_s,
                "promoted_s": failover.promoted_s,
                "ok_s": failover.ok_s,
            }
            if cut_at:
                promoted = _node(grid, failover.promoted)
                promoted.config_set("masterauth", "")  # undo the cut: it may be a replica again one day
                promoted.close()
            if rejoin:
                cluster.restart_node(grid, failover.killed)
                run.events["rejoined_s"] = time.monotonic() - zero
            countdown(seconds_after, f"{run.mode}: load after the failover", progress=progress)
            stop.set()
            for thread in threads[1:]:
                thread.join(timeout=30)
            _drain(admin, worker_log, run)
            stop_worker.set()
            worker.stop()
            threads[0].join(timeout=30)
        if any(thread.is_alive() for thread in threads):
            raise RuntimeError("a load thread did not stop within 30 s")
        if crashes:
            raise RuntimeError(f"a load thread failed: {crashes[0]!r}") from crashes[0]
        run.redis_py_saw = seen.by_pattern
        _analyse(run, admin, lb, by, log, limiter, limiter_keys)
        run.scripts.update(_after_promotion(grid, run, admin, function, limiter_keys, limiter.script.sha))
    finally:
        stop.set()
        stop_worker.set()
        for made in clients:
            made.close()


class _Degraded(redis.RedisError):
    """The limiter could not ask Redis (``Decision.degraded``): its cause, for the error table."""

    def __init__(self, cause: BaseException | None):
        self.cause = cause
        super().__init__(f"{type(cause).__name__}: {cause}" if cause else "degraded")


class _ScriptRecorder:
    """Stands in for the limiter's script object: calls it, remembers the last exception, re-raises."""

    def __init__(self, script):
        self._script = script
        self.last_error: BaseException | None = None

    def __call__(self, *args, **kwargs):
        try:
            return self._script(*args, **kwargs)
        except Exception as error:
            self.last_error = error
            raise

    def __getattr__(self, name):
        return getattr(self._script, name)


class _Writer:
    """One pattern's load: ``write(n)`` at a steady rate, then WAIT (if any) on the same connection."""

    def __init__(self, pattern: str, write: Callable[[int], object], wait: Callable[[], int] | None):
        self.pattern, self.write, self.wait = pattern, write, wait
        self.waits: dict | None = None  # the limiter: one WAIT per user (each user's key, its node)
        self.user_of: Callable[[int], str] | None = None

    def loop(self, rate: int, stop: threading.Event, ops: list[Op]) -> None:
        interval, next_at, n = 1.0 / rate, time.monotonic(), 0
        while not stop.is_set():
            n += 1
            sent = time.monotonic()
            try:
                value = self.write(n)
            except redis.RedisError as error:
                cause = error.cause if isinstance(error, _Degraded) and error.cause else error
                ops.append(
                    Op(self.pattern, n, sent, time.monotonic(), "error", _ms(sent), error=_named(cause))
                )
            else:
                wrote = time.monotonic()
                op = Op(self.pattern, n, sent, wrote, "acknowledged", (wrote - sent) * 1000, value=value)
                wait = self.waits[self.user_of(n)] if self.waits else self.wait
                if wait is not None:
                    try:
                        op.replicas = wait()
                    except redis.RedisError as error:
                        op.replicas, op.error = 0, _named(error)
                    op.done = time.monotonic()
                    op.wait_ms = (op.done - wrote) * 1000
                    if op.replicas < 1:
                        op.outcome = "unconfirmed"
                ops.append(op)
            next_at = max(next_at + interval, time.monotonic())  # no burst to catch up after a stall
            stop.wait(max(0.0, next_at - time.monotonic()))


def _consume(worker: Worker, stop: threading.Event, ops: list[Op]) -> None:
    """Run the worker; when it raises (its node died under it), note it and start it again, as a
    supervisor would: on start it re-reads its own pending entries."""
    n = 0
    while not stop.is_set():
        sent = time.monotonic()
        try:
            worker.run()
        except redis.RedisError as error:
            n += 1
            ops.append(Op("worker", n, sent, time.monotonic(), "error", _ms(sent), error=_named(error)))
            stop.wait(0.05)


def _thread(pattern: str, target, *args) -> threading.Thread:
    crashes = args[-1]

    def body() -> None:
        try:
            target(*args[:-1])
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            crashes.append(error)

    thread = threading.Thread(target=body, name=f"failover:{pattern}", daemon=True)
    thread.start()
    return thread


def _drain(admin, log: EventLog, run: FailoverRun) -> None:
    """Until the worker has handled every entry in the log and nothing is pending (claims included)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            present = {int(fields["seq"]) for _, fields in log.replay()}
            pending = admin.xpending(log.key, "failover")["pending"]
        except redis.RedisError:
            time.sleep(0.05)
            continue
        if not pending and present <= {seq for seq, _, _ in list(run.deliveries)}:
            return
        time.sleep(0.05)


def _cut_replication(grid: cluster.LocalCluster, replica: str) -> None:
    """Stop ``replica`` from receiving its primary's writes, and keep it so: a wrong ``masterauth``
    (its primary has no password: the AUTH of each reconnection fails), then its link dropped."""
    client = _node(grid, replica)
    try:
        client.config_set("masterauth", secrets.token_hex(8))
        client.client_kill_filter(_type="master")
        deadline = time.monotonic() + 5
        while client.info("replication").get("master_link_status") != "down":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica {replica} kept its link to its primary")
            time.sleep(0.005)
    finally:
        client.close()


def _waitaof_missing(grid: cluster.LocalCluster) -> str:
    """Empty if the nodes know WAITAOF, else what they answered (Redis 7.0: unknown command)."""
    client = _node(grid, grid.addresses[0])
    try:
        client.execute_command("WAITAOF", 0, 0, 0)
        return ""
    except redis.ResponseError as error:
        return f"not measured: {_server_label(grid)} answers WAITAOF with: {error}"
    finally:
        client.close()


def _before_kill(grid: cluster.LocalCluster, replica: str, sha: str) -> dict:
    client = _node(grid, replica)
    try:
        return {
            "limiter script in the replica's script cache before the kill": bool(
                client.script_exists(sha)[0]
            ),
            "Functions library on the replica before the kill": _has_library(client),
        }
    finally:
        client.close()


def _after_promotion(grid, run: FailoverRun, admin, function: str, limiter_keys: dict, sha: str) -> dict:
    promoted = _node(grid, run.failover.promoted)
    try:
        errors = promoted.info("errorstats")
        commands = promoted.info("commandstats")
        key = next(iter(limiter_keys.values()))
        try:  # a request of a new user, by FCALL: the library must be on the promoted node
            reply = admin.fcall(function, 1, key + ":fcall", LIMIT_PERIOD_S, run.limit, "", 1)  # same slot
            fcall = f"works: {reply}"
        except redis.RedisError as error:
            fcall = f"{type(error).__name__}: {error}"
        after_ok = [
            op
            for op in run.ops
            if op.pattern == "ratelimit" and op.done > run.failover.killed_at + run.failover.ok_s
        ]
        by_redis = sum(op.outcome != "error" for op in after_ok)
        return {
            "NOSCRIPT answered by the promoted node": errors.get("errorstat_NOSCRIPT", {}).get("count", 0),
            "SCRIPT LOAD calls on the promoted node": commands.get("cmdstat_script|load", {}).get("calls", 0),
            "limiter script in its cache at the end": bool(promoted.script_exists(sha)[0]),
            "limiter decisions after the cluster was ok: by Redis / degraded": (
                f"{by_redis} / {len(after_ok) - by_redis}"
            ),
            "Functions library on the promoted node": _has_library(promoted),
            "FCALL after the promotion": fcall,
        }
    finally:
        promoted.close()


def _analyse(run: FailoverRun, admin, lb: Leaderboard, by: Leaderboard, log: EventLog, limiter, keys) -> None:
    ops: dict[str, list[Op]] = defaultdict(list)
    for op in run.ops:
        ops[op.pattern].append(op)
    for pattern, board in (("leaderboard", lb), ("bystander", by)):
        score = admin.zscore(board.key, PLAYER)
        run.found[pattern] = _counter_losses(ops[pattern], int(score or 0))
    entries = list(log.replay())
    run.kept_seqs = {int(fields["seq"]) for _, fields in entries}
    run.found["stream"] = _stream_losses(ops["stream"], entries)
    run.found["worker"] = _worker_counts(run.deliveries, entries, ops["worker"])
    admitted_on_server = {user: admin.zcard(key) for user, key in keys.items()}
    promoted_at = run.failover.killed_at + run.failover.promoted_s
    run.found["ratelimit"] = _limiter_losses(ops["ratelimit"], admitted_on_server, run.limit, promoted_at)


def _counter_losses(ops: list[Op], final: int) -> dict:
    """One member +1 per call: each reply is the score it made. A reply v at or below an earlier one
    means the node that answered had v - 1: every earlier acknowledged write that made v or more is
    lost (replication keeps a prefix). The final score settles the last ones."""
    answered = [op for op in ops if op.outcome in _OK]
    lowest_later = final + 1  # walking back: the lowest reply after this one, or what the final score allows
    for op in reversed(answered):
        value = int(op.value)
        if value >= lowest_later:
            op.lost = True
        lowest_later = min(lowest_later, value)
    lost = sum(op.lost for op in answered)
    return {
        "lost": sum(op.lost and op.outcome == "acknowledged" for op in answered),
        "lost_unconfirmed": sum(op.lost and op.outcome == "unconfirmed" for op in answered),
        "kept_without_ack": final - (len(answered) - lost),
        "final_score": final,
    }


def _stream_losses(ops: list[Op], entries: list[tuple[str, dict]]) -> dict:
    kept = {int(fields["seq"]): entry_id for entry_id, fields in entries}
    answered = [op for op in ops if op.outcome in _OK]
    for op in answered:
        op.lost = kept.get(op.n) != op.value
    ids = {entry_id: int(fields["seq"]) for entry_id, fields in entries}
    reused = sum(op.lost and op.value in ids for op in answered)  # a later entry got a lost entry's ID
    return {
        "lost": sum(op.lost and op.outcome == "acknowledged" for op in answered),
        "lost_unconfirmed": sum(op.lost and op.outcome == "unconfirmed" for op in answered),
        "kept_without_ack": len(set(kept) - {op.n for op in answered}),
        "note": f"{reused} lost IDs given to later entries" if reused else "",
    }


def _worker_counts(deliveries: list[tuple[int, str, float]], entries: list[tuple[str, dict]], errors) -> dict:
    kept = {int(fields["seq"]) for _, fields in entries}
    times = Counter(seq for seq, _, _ in deliveries)
    return {
        "deliveries": len(deliveries),
        "duplicates": sum(count - 1 for count in times.values()),
        "never_handled": len(kept - set(times)),
        "handled_but_lost": len(set(times) - kept),
    }


def _limiter_losses(
    ops: list[Op], admitted_on_server: dict[str, int], limit: int, promoted_at: float
) -> dict:
    """Per user: admissions the client counted (answered by Redis, and with WAIT confirmed) beyond
    the limit; and admissions the log lost: those answered minus those it holds at the end. The
    lost ones are the last answered by the killed primary (replication keeps a prefix), which is
    how they are marked for the plot."""
    by_user: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        user, decision = op.value if op.outcome in _OK else (None, None)
        if decision is not None and decision.allowed:
            by_user[user].append(op)
    over = 0
    for user, admitted in by_user.items():
        confirmed = [op for op in admitted if op.outcome == "acknowledged"]
        over += max(0, len(confirmed) - limit)
        missing = max(0, len(admitted) - admitted_on_server.get(user, 0))
        before = [op for op in admitted if op.done < promoted_at]
        for op in before[len(before) - missing :] if missing else ():
            op.lost = True
    admitted = [op for ops_ in by_user.values() for op in ops_]
    return {
        "admitted": sum(op.outcome == "acknowledged" for op in admitted),
        "over_admitted": over,
        "lost": sum(op.lost and op.outcome == "acknowledged" for op in admitted),
        "lost_unconfirmed": sum(op.lost and op.outcome == "unconfirmed" for op in admitted),
        "kept_without_ack": sum(admitted_on_server.values()) - sum(not op.lost for op in admitted),
    }


# --- small pieces -----------------------------------------------------------------------------------


class _RedisPyLog(logging.Handler):
    """What redis-py's cluster client handled by itself during the run, per pattern (thread).

    ``RedisCluster`` logs at DEBUG each error it handles (a refused connection, MOVED,
    ASK, TRYAGAIN) before refreshing its slot map; the handler counts them by thread.
    Records of WARNING and above go on to the ``redis`` logger as usual.
    """

    _SEEN = re.compile(r"^(\w+?)(?: error)? received for command (\S+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.by_pattern: dict[str, Counter] = defaultdict(Counter)
        self._logger = logging.getLogger("redis.cluster")

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            logging.getLogger("redis").handle(record)
            return
        found = self._SEEN.match(record.getMessage())
        if found and record.threadName.startswith("failover:"):
            self.by_pattern[record.threadName.split(":", 1)[1]][f"{found.group(1)} ({found.group(2)})"] += 1

    def __enter__(self) -> _RedisPyLog:
        self._saved = (self._logger.level, self._logger.propagate)
        self._logger.setLevel(logging.DEBUG)
        self._logger.propagate = False  # its DEBUG records are for this count, not for the page
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]


def _error_window(run: FailoverRun, ops: list[Op]) -> dict:
    errors = [op for op in ops if op.outcome == "error"]
    zero = run.failover.killed_at if run.failover else 0.0
    if not errors:
        return {"error_window_s": 0.0, "first_error_s": None, "last_error_s": None, "exceptions": "",
                "first_message": ""}  # fmt: skip
    first, last = errors[0].done - zero, errors[-1].done - zero
    return {
        "error_window_s": round(last - first, 3),
        "first_error_s": round(first, 3),
        "last_error_s": round(last, 3),
        "exceptions": _counts(Counter(op.error.split(":", 1)[0] for op in errors)),
        "first_message": errors[0].error,
    }


def _without_first(ops: list[Op]) -> list[Op]:
    """The steady calls: the first (it opens connections) left out when there are enough others."""
    return [op for op in ops if op.n > 1] if len(ops) > 10 else ops


def _counts(counter: Counter) -> str:
    return ", ".join(f"{name} x{count}" for name, count in counter.most_common())


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def _named(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:200]}"


def _ms(since: float) -> float:
    return (time.monotonic() - since) * 1000


def _node(grid: cluster.LocalCluster, address: str) -> redis.Redis:
    return redis.Redis.from_url(grid.server(address).url, decode_responses=True, socket_timeout=5)


def _has_library(client: redis.Redis) -> bool:
    return bool(client.function_list(library=FUNCTION_LIBRARY))


def _server_label(grid: cluster.LocalCluster) -> str:
    """``Redis 8.2.3``: what the nodes run."""
    binary = grid.nodes[0].binary
    return f"{binary.product} {binary.version}"


def _owner_of(ranges: list[tuple[int, int, str]], key: str) -> str:
    slot = key_slot(key.encode())
    return next(node for first, last, node in ranges if first <= slot <= last)


def _names_on(ranges, node: str, key_of: Callable[[str], str], stem: str, count: int) -> list[str]:
    """The first ``count`` names ``stem-0``, ``stem-1``, ... whose key lives on ``node``."""
    names = (f"{stem}-{i}" for i in range(10_000) if _owner_of(ranges, key_of(f"{stem}-{i}")) == node)
    return list(itertools.islice(names, count))


def _name_on(ranges, node: str, key_of: Callable[[str], str], stem: str) -> str:
    return _names_on(ranges, node, key_of, stem, 1)[0]
