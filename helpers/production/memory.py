"""Notebook 04's memory bill: what a board and a stream cost in RAM, and what a full Redis does.

* ``sorted_set_by_name_length``: bytes per member as names grow (notebook 01's
  ``helpers.bench.leaderboard.memory_by_name_length``, reused), and ``name_cost``: the
  fixed bytes of a member and the bytes each character of its name adds;
* ``encoding_switch``: bytes per member either side of the listpack/skiplist
  switch (``zset-max-listpack-entries``, ``zset-max-listpack-value``), read
  from the server, never changed on it;
* ``raised_listpack_limit``: what raising that limit buys and costs, on a
  throwaway server this function starts (CONFIG SET only there);
* ``board_growth`` and ``project``: MEMORY USAGE and INFO memory as a board
  grows, projected to 5 million players by a linear fit, with and without the
  hash table's bucket array (``hash_buckets``), which grows in doublings;
* ``eviction``: a leaderboard and a cache in a Redis that runs out of
  ``maxmemory``, under each ``maxmemory-policy``, on throwaway servers.

Measurements use keys under the workshop prefix and remove them afterwards.

Sizes (``settings().is_ci`` picks; ``workshop`` numbers first, ``ci`` second):
board growth 100K..1M members / 2K..20K; streams 100,000 / 5,000 entries,
trimmed to 10,000 / 1,000; eviction 16 MB maxmemory with a 100,000-player
board / 4 MB with 15,000 (about 40 s / 8 s for the three policies).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import redis
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from helpers import bounds, servers
from helpers.bench.leaderboard import load_padded_board, memory_by_name_length
from helpers.bench.sizes import settings
from helpers.keyspace import key as workshop_key

POLICIES = ("noeviction", "allkeys-lru", "volatile-lru")
KNOWN_POLICIES = (
    *POLICIES,
    "allkeys-lfu",
    "volatile-lfu",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
)
LISTPACK_DEFAULTS = {"zset-max-listpack-entries": 128, "zset-max-listpack-value": 64}
BATCH = 1_000  # commands per pipeline: big enough to be quick, small enough to see OOM start


# --- sorted sets --------------------------------------------------------------------------
def sorted_set_by_name_length(r: redis.Redis, *, members: int | None = None, lengths=(8, 16, 32, 64, 128)):
    """Bytes per member by member-name length (notebook 01's measurement, same function)."""
    members = settings().memory_members if members is None else members
    return memory_by_name_length(r, members=members, lengths=lengths)


def name_cost(by_length: pd.DataFrame) -> dict[str, float]:
    """What a member costs whatever its name, and what each character of the name adds.

    A straight line through ``sorted_set_by_name_length``'s bytes per member against name
    length: its intercept is the fixed part (the skiplist node, the hash table's entry,
    the allocator's rounding), its slope the bytes per character. The name is stored once
    (the hash table and the skiplist share it), so the slope is about one byte, a little
    more where the allocator rounds up to its size classes.
    """
    if not isinstance(by_length, pd.DataFrame) or not {"name_length", "bytes_per_member"} <= set(by_length):
        raise ValueError("by_length must be the DataFrame sorted_set_by_name_length() returns")
    if by_length.name_length.nunique() < 2:
        raise ValueError("a straight line needs at least two name lengths")
    slope, intercept = np.polyfit(by_length.name_length, by_length.bytes_per_member, 1)
    return {"fixed_bytes": float(intercept), "bytes_per_character": float(slope)}


def listpack_limits(r: redis.Redis) -> dict[str, int]:
    """The server's zset listpack limits (CONFIG GET; the defaults if CONFIG is not allowed)."""
    try:
        found = r.config_get("zset-max-listpack-*")
        return {name: int(found.get(name, default)) for name, default in LISTPACK_DEFAULTS.items()}
    except redis.ResponseError:
        return dict(LISTPACK_DEFAULTS)


def encoding_switch(
    r: redis.Redis,
    *,
    counts: Sequence[int] = (16, 64, 127, 128, 129, 256, 1_024),
    lengths: Sequence[int] = (16, 32, 64, 65, 128),
    name_length: int = 16,
    members_for_lengths: int = 100,
) -> pd.DataFrame:
    """Bytes per member either side of the listpack -> skiplist switch.

    Two sweeps: the member count (names of ``name_length`` characters) and the
    name length (``members_for_lengths`` members). Each row has the encoding
    Redis chose (OBJECT ENCODING) and MEMORY USAGE per member; ``jump`` is the
    ratio to the row before it in the same sweep. The limits are read from the
    server, not changed.
    """
    counts, lengths = bounds.counts("counts", counts), bounds.counts("lengths", lengths)
    if min([name_length, *lengths]) < 8:
        raise ValueError("member names shorter than 8 characters cannot hold a unique number")
    limits = listpack_limits(r)
    rows = []
    for varied, values in (("members", counts), ("name length", lengths)):
        for value in values:
            n, length = (value, name_length) if varied == "members" else (members_for_lengths, value)
            used, encoding = _measure_zset(r, n, length)
            rows.append(
                {
                    "varied": varied,
                    "members": n,
                    "name_length": length,
                    "encoding": encoding,
                    "bytes_total": used,
                    "bytes_per_member": used / n,
                    "max_listpack_entries": limits["zset-max-listpack-entries"],
                    "max_listpack_value": limits["zset-max-listpack-value"],
                }
            )
    frame = pd.DataFrame(rows)
    frame["jump"] = frame.groupby("varied").bytes_per_member.transform(lambda s: s / s.shift())
    return frame


def _measure_zset(r: redis.Redis, members: int, name_length: int) -> tuple[int, str]:
    key = workshop_key("memory", "zset")
    load_padded_board(r, key, members, name_length)
    used, encoding = r.memory_usage(key, samples=0), r.object("encoding", key)
    r.unlink(key)
    return used, encoding


def raised_listpack_limit(
    *, members: int = 2_000, limits: Sequence[int] = (128, 4_096), calls: int = 2_000
) -> pd.DataFrame:
    """A board of ``members`` under each ``zset-max-listpack-entries``: memory against speed.

    Runs on a throwaway server it starts and stops (CONFIG SET changes the
    whole server). Time is the server's own (INFO commandstats, microseconds
    per call), without the network round trip. A listpack is one flat array,
    scanned in O(N): that is why Redis switches to the skiplist past a small size.
    """
    bounds.at_least("members", members)
    bounds.at_least("calls", calls)
    limits = bounds.counts("limits", limits)
    server = servers.start_redis_binary()
    try:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        key = workshop_key("memory", "listpack")
        players = [f"p:{i}".ljust(16, "x") for i in range(members)]
        asked = np.random.default_rng(7).choice(players, size=calls).tolist()
        rows = []
        for limit in limits:
            r.config_set("zset-max-listpack-entries", limit)
            r.unlink(key)
            r.zadd(key, {p: i for i, p in enumerate(players)})
            r.config_resetstat()
            pipe = r.pipeline(transaction=False)
            for player in asked:
                pipe.zrevrank(key, player)
                pipe.zincrby(key, 1, player)
            pipe.execute()
            stats = r.info("commandstats")
            used = r.memory_usage(key, samples=0)
            rows.append(
                {
                    "max_listpack_entries": limit,
                    "members": members,
                    "encoding": r.object("encoding", key),
                    "bytes_per_member": used / members,
                    "zrevrank_us": stats["cmdstat_zrevrank"]["usec_per_call"],
                    "zincrby_us": stats["cmdstat_zincrby"]["usec_per_call"],
                }
            )
        r.close()
        return pd.DataFrame(rows)
    finally:
        server.stop()


def board_growth(
    r: redis.Redis, sizes_: Sequence[int] | None = None, *, name_length: int = 8, progress: bool = True
) -> pd.DataFrame:
    """MEMORY USAGE of a board at each size, and how much INFO's ``used_memory`` grew.

    ``used_memory`` is the whole server (other clients' keys included), so its
    growth is noisier; ``used_memory_rss`` is what the operating system sees
    (allocator fragmentation included).
    """
    sizes_ = tuple(settings().memory_growth if sizes_ is None else sizes_)
    sizes_ = bounds.counts("sizes", sizes_)
    if name_length < 8:
        raise ValueError("member names shorter than 8 characters cannot hold a unique number")
    key = workshop_key("memory", "growth")
    rows = []
    for n in tqdm(sizes_, desc="board growth", unit=" board", disable=not progress):
        r.unlink(key)
        before = _settled_memory(r)
        pipe = r.pipeline(transaction=False)
        for start in range(0, n, 10_000):
            stop = min(n, start + 10_000)
            pipe.zadd(key, {f"p:{i}".ljust(name_length, "x"): i for i in range(start, stop)})
        pipe.execute()
        after = _settled_memory(r)
        used = r.memory_usage(key, samples=0)
        rows.append(
            {
                "members": n,
                "name_length": name_length,
                "encoding": r.object("encoding", key),
                "memory_usage_bytes": used,
                "bytes_per_member": used / n,
                "used_memory_growth": after["used_memory"] - before["used_memory"],
                "rss_growth": after["used_memory_rss"] - before["used_memory_rss"],
            }
        )
        r.unlink(key)
    return pd.DataFrame(rows)


def _settled_memory(r: redis.Redis, timeout: float = 10.0) -> dict:
    """INFO memory once UNLINK's background frees are done (they would blur the difference)."""
    deadline = time.monotonic() + timeout
    while True:
        info = r.info("memory")
        if int(info.get("lazyfree_pending_objects", 0)) == 0 or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def hash_buckets(members: int) -> int:
    """Buckets in a skiplist board's hash table: the smallest power of two >= the member count.

    Redis doubles the table when an insert finds it full (4 buckets at least).
    """
    return max(4, 1 << (members - 1).bit_length()) if members > 0 else 0


def project(
    growth: pd.DataFrame, players: int = 5_000_000, *, small_board_bytes: float | None = None
) -> pd.DataFrame:
    """Memory for ``players`` from measured board sizes, in MiB, three or four ways.

    * a straight line through (members, MEMORY USAGE), least squares;
    * the same line for the nodes alone, plus the hash table's bucket array
      (8 bytes a bucket, ``hash_buckets``): that array doubles at each power of
      two, so real memory climbs in steps around a straight line;
    * that, mid-rehash: after the table doubles, old and new arrays exist
      together until it has moved every bucket, and a sorted set's table moves
      one bucket per command on that set, so a freshly loaded board can hold
      both for a long time (MEMORY USAGE counts both then; every server doubles,
      each at its own points: Redis at a power of two, Valkey at 7/8 of its capacity);
    * with ``small_board_bytes`` (bytes per member measured on a smaller board,
      as notebook 01 does), that figure times ``players``.
    """
    if not isinstance(growth, pd.DataFrame) or not {"members", "memory_usage_bytes"} <= set(growth):
        raise ValueError("growth must be the DataFrame board_growth() returns")
    if growth.members.nunique() < 2:
        raise ValueError("a linear fit needs at least two board sizes")
    if isinstance(players, bool) or not isinstance(players, int) or players < 1:
        raise ValueError(f"players must be a positive integer, got {players!r}")
    slope, intercept = np.polyfit(growth.members, growth.memory_usage_bytes, 1)
    buckets = np.array([8 * hash_buckets(int(n)) for n in growth.members])
    node_slope, node_intercept = np.polyfit(growth.members, growth.memory_usage_bytes - buckets, 1)
    with_buckets = node_intercept + node_slope * players + 8 * hash_buckets(players)
    estimates = [
        ("linear fit of MEMORY USAGE", intercept + slope * players),
        ("nodes (linear fit) + hash buckets", with_buckets),
        ("the same, mid-rehash", with_buckets + 4 * hash_buckets(players)),
    ]
    if small_board_bytes is not None:
        if isinstance(small_board_bytes, bool) or not small_board_bytes > 0:
            raise ValueError(f"small_board_bytes must be a positive number, got {small_board_bytes!r}")
        estimates.append(("bytes per member of a small board x players", small_board_bytes * players))
    return pd.DataFrame(
        [
            {"method": m, "players": players, "bytes_per_member": total / players, "MiB": total / 2**20}
            for m, total in estimates
        ]
    )


# --- eviction -----------------------------------------------------------------------------
def eviction(
    policies: Sequence[str] = POLICIES,
    *,
    maxmemory: str | None = None,
    players: int | None = None,
    cache_writes: int | None = None,
    new_players: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A leaderboard and a TTL cache share a Redis that runs out of ``maxmemory``.

    For each policy, on a fresh throwaway server: (1) load a board of
    ``players``; it then sits idle for a second (LRU clocks tick in seconds);
    (2) a cache writes ``cache_writes`` 1 KB values with a TTL, several times
    ``maxmemory``; (3) ``new_players`` join the board. Every write is counted
    as accepted or refused with OOM.

    Returns ``(table, timeline)``: one row per policy, and the board's size
    against the members it should hold after every pipeline of writes.
    """
    config = settings()
    maxmemory = config.eviction_maxmemory if maxmemory is None else maxmemory
    players = config.eviction_players if players is None else players
    cache_writes = config.eviction_cache_writes if cache_writes is None else cache_writes
    new_players = config.eviction_new_players if new_players is None else new_players
    if not policies or any(p not in KNOWN_POLICIES for p in policies):
        raise ValueError(f"policies must name maxmemory policies such as {POLICIES}, got {policies!r}")
    if not isinstance(maxmemory, str) or not re.fullmatch(r"[1-9][0-9]*(kb|mb|gb)", maxmemory.lower()):
        raise ValueError(f"maxmemory must be a size such as '4mb' (kb, mb or gb), got {maxmemory!r}")
    for what, value in (("players", players), ("cache_writes", cache_writes), ("new_players", new_players)):
        bounds.at_least(what, value)
    table, timeline = [], []
    for policy in tqdm(policies, desc="maxmemory policies", unit=" policy", disable=not progress):
        row, samples = _fill_until_full(policy, maxmemory, players, cache_writes, new_players)
        table.append(row)
        timeline.extend(samples)
    return pd.DataFrame(table), pd.DataFrame(timeline)


def _fill_until_full(policy: str, maxmemory: str, players: int, cache_writes: int, new_players: int):
    server = servers.start_redis_binary(extra_args=("--maxmemory", maxmemory, "--maxmemory-policy", policy))
    try:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        board, cache = workshop_key("lb", "{evict}"), workshop_key("cache", "{evict}")
        counts = {"accepted": 0, "oom": 0}
        expected: set[str] = set()  # players whose ZADD Redis accepted
        samples, step, on_board = [], 0, [0]
        value = "v" * 1_000

        def send(commands: list[tuple], phase: str) -> None:
            nonlocal step
            pipe = r.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            for command, reply in zip(commands, pipe.execute(raise_on_error=False)):
                if isinstance(reply, redis.exceptions.OutOfMemoryError):
                    counts["oom"] += 1
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    counts["accepted"] += 1
                    if command[0] == "ZADD":
                        expected.add(command[3])
            step += len(commands)
            if any(command[0] == "ZADD" for command in commands):
                on_board[0] = r.zcard(board)
            elif not r.exists(board):  # EXISTS leaves the idle time alone; ZCARD would reset it
                on_board[0] = 0  # eviction removes a whole key: the board, with every player
            samples.append(
                {
                    "policy": policy,
                    "writes": step,
                    "phase": phase,
                    "board_expected": len(expected),
                    "board_members": on_board[0],
                    "oom_errors": counts["oom"],
                }
            )

        def in_batches(make, n: int, phase: str) -> None:
            for start in range(0, n, BATCH):
                send([make(i) for i in range(start, min(n, start + BATCH))], phase)

        in_batches(lambda i: ("ZADD", board, i, f"p:{i}"), players, "board loaded")
        time.sleep(1.1)
        in_batches(lambda i: ("SET", f"{cache}:{i}", value, "EX", 3_600), cache_writes, "cache floods in")
        in_batches(lambda i: ("ZADD", board, i, f"p:{players + i}"), new_players, "board grows")
        stats, keys = r.info("stats"), r.dbsize()
        final = r.zcard(board)
        r.close()
        row = {
            "policy": policy,
            "maxmemory": maxmemory,
            "writes": players + cache_writes + new_players,
            "accepted": counts["accepted"],
            "oom_errors": counts["oom"],
            "board_expected": len(expected),
            "board_members": final,
            "board_members_lost": len(expected) - final,
            # how many times the board vanished whole (eviction takes a key, never some of its members)
            "board_evictions": sum(
                1 for a, b in zip(samples, samples[1:]) if b["board_members"] < a["board_members"]
            ),
            "cache_keys_left": keys - (1 if final else 0),
            "evicted_keys": stats["evicted_keys"],
        }
        return row, samples
    finally:
        server.stop()


def plot_eviction(timeline: pd.DataFrame, *, title: str = "A leaderboard in a full Redis") -> Figure:
    """One panel per policy: players the board should hold, players it holds, OOM errors."""
    if not isinstance(timeline, pd.DataFrame) or not {"policy", "writes", "board_members"} <= set(timeline):
        raise ValueError("timeline must be the second DataFrame eviction() returns")
    policies = list(dict.fromkeys(timeline.policy))
    figure, axes = plt.subplots(
        1, len(policies), figsize=(4.2 * len(policies), 3.6), sharey=True, squeeze=False
    )
    for ax, policy in zip(axes[0], policies):
        rows = timeline[timeline.policy == policy]
        ax.plot(rows.writes, rows.board_expected, color="grey", linestyle="--", label="players accepted")
        ax.plot(rows.writes, rows.board_members, color="C0", label="players on the board")
        ax.plot(rows.writes, rows.oom_errors, color="C3", alpha=0.8, label="writes refused (OOM)")
        for phase, first in rows.groupby("phase", sort=False).writes.min().items():
            ax.axvline(first, color="black", alpha=0.15)
            ax.annotate(
                f" {phase}",
                (first, 0.98),
                xycoords=ax.get_xaxis_transform(),
                fontsize=7,
                rotation=90,
                va="top",
            )
        ax.set(title=policy, xlabel="writes sent")
    axes[0][0].set_ylabel("count")
    handles = axes[0][0].get_lines()[:3]
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return figure


def plot_encoding_switch(frame: pd.DataFrame, *, title: str = "Listpack or skiplist") -> Figure:
    """Bytes per member against member count and against name length, coloured by encoding."""
    if not isinstance(frame, pd.DataFrame) or not {"varied", "encoding", "bytes_per_member"} <= set(frame):
        raise ValueError("frame must be the DataFrame encoding_switch() returns")
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"listpack": "C2", "skiplist": "C0"}
    for ax, (varied, x, limit_column) in zip(
        axes,
        (
            ("members", "members", "max_listpack_entries"),
            ("name length", "name_length", "max_listpack_value"),
        ),
    ):
        rows = frame[frame.varied == varied].reset_index(drop=True)
        labels = rows[x].astype(str)
        ax.bar(labels, rows.bytes_per_member, color=[colors.get(e, "grey") for e in rows.encoding])
        for i, value in enumerate(rows.bytes_per_member):
            ax.annotate(f"{value:.0f}", (i, value), ha="center", va="bottom", fontsize=8)
        limit = int(rows[limit_column].iloc[0])
        ax.set(xlabel=f"{x.replace('_', ' ')} (switch above {limit})", ylabel="bytes per member")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    figure.legend(handles, list(colors), loc="upper right", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
