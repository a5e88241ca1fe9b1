"""A real-time leaderboard on one Redis sorted set: the finished pattern of notebook 01.

Scores live in a sorted set (ZADD, ZINCRBY, ZREVRANK: O(log N)); optional
per-member metadata (a display name, a country...) lives in one hash beside
it and is removed with the member, and expires with the board.

Both keys share a hash tag, ``workshop:lb:{name}...``, so a board, its
metadata and its daily boards sit in one Redis Cluster slot and multi-key
commands (MULTI, ZUNIONSTORE) keep working there.

Ranks are 1-based. ``ties="competition"`` (the default) gives equal scores
equal ranks, 1, 1, 3, computed as one plus the number of strictly higher
scores; ``ties="unique"`` is Redis' own ZREVRANK order, which breaks ties by
member name. Every argument is checked before anything is written, against the
bounds of ``helpers.bounds`` (a TTL of at most ten years, at most 10,000 entries
per read, scores exact as doubles, members that are UTF-8 text); ``add_many``
checks every member and score before its first batch.

Writes are sent without redis-py's retries (``clients.without_retries``): a
retried ZINCRBY whose first reply was lost would count twice, so a dropped
connection raises ``ConnectionError`` instead, and the write may or may not have
landed. Reads are retried as the caller's client says.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import NamedTuple

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from tqdm.auto import tqdm

from helpers import bounds, scripts
from helpers.clients import without_retries
from helpers.keyspace import key as workshop_key

MAX_EXACT_INT = bounds.MAX_EXACT_INT  # scores are IEEE doubles: integers beyond this lose digits
TIES = ("competition", "unique")
AGGREGATES = ("SUM", "MAX", "MIN")


class Entry(NamedTuple):
    rank: int
    member: str
    score: float


class Leaderboard:
    """``Leaderboard(r, "global")``: a board stored at ``workshop:lb:{global}``.

    ``period`` names a time slice of the board (``"day:2026-11-26"``), ``ttl``
    (seconds) makes every write renew an expiry on the board and its metadata.
    """

    def __init__(self, r: redis.Redis, name: str, *, period: str | None = None, ttl: int | None = None):
        _check_name("name", name)
        if period is not None:
            _check_name("period", period)
            if period.split(":")[-1] == "meta":
                raise ValueError(f"period must not end in 'meta' (metadata keys do), got {period!r}")
        if ttl is not None:
            bounds.integer("ttl (seconds)", ttl, 1, bounds.MAX_TTL_S)
        self.redis = r
        self._writer = without_retries(r)
        self.name = name
        self.period = period
        self.ttl = ttl
        self.key = workshop_key("lb", "{" + name + "}" + (f":{period}" if period else ""))
        self.meta_key = self.key + ":meta"
        self._rank = scripts.load(r, "leaderboard_rank")
        self._standing = scripts.load(r, "leaderboard_standing")
        self._range = scripts.load(r, "leaderboard_range")
        self._around = scripts.load(r, "leaderboard_around")

    def __repr__(self) -> str:
        return f"Leaderboard({self.key!r}, ttl={self.ttl})"

    # --- time-windowed boards -------------------------------------------------
    @classmethod
    def daily(cls, r: redis.Redis, name: str, day: date, *, keep_days: int = 8) -> Leaderboard:
        """The board for one day; it expires ``keep_days`` after its last write."""
        day = _as_date("day", day)
        bounds.integer("keep_days", keep_days, 1, bounds.MAX_KEEP_DAYS)
        return cls(r, name, period=f"day:{day.isoformat()}", ttl=keep_days * 86_400)

    @classmethod
    def weekly(
        cls, r: redis.Redis, name: str, any_day: date, *, aggregate: str = "SUM", keep_days: int = 35
    ) -> Leaderboard:
        """Roll the seven daily boards of ``any_day``'s ISO week into a weekly board.

        ``aggregate="SUM"`` adds a member's daily scores, ``"MAX"`` keeps their best day.
        """
        any_day = _as_date("any_day", any_day)
        aggregate = _check_aggregate(aggregate)
        bounds.integer("keep_days", keep_days, 1, bounds.MAX_KEEP_DAYS)
        year, week, weekday = any_day.isocalendar()
        monday = any_day - timedelta(days=weekday - 1)
        days = [cls.daily(r, name, monday + timedelta(days=i)) for i in range(7)]
        board = cls(r, name, period=f"week:{year}-W{week:02d}:{aggregate.lower()}", ttl=keep_days * 86_400)
        board.rollup(days, aggregate=aggregate)
        return board

    def rollup(self, sources: Iterable[Leaderboard], *, aggregate: str = "SUM") -> int:
        """Replace this board with the union of ``sources`` (ZUNIONSTORE); returns its size.

        Members' metadata is merged too, later sources winning. On a Redis Cluster
        the sources must be in this board's slot (boards of the same name are).
        """
        aggregate = _check_aggregate(aggregate)
        sources = list(sources)
        if not sources or not all(isinstance(s, Leaderboard) for s in sources):
            raise ValueError("sources must be a non-empty list of Leaderboard objects")
        if isinstance(self.redis, RedisCluster):
            foreign = [s.key for s in sources if key_slot(s.key.encode()) != key_slot(self.key.encode())]
            if foreign:
                raise ValueError(
                    f"on a Redis Cluster a rollup reads its sources in one transaction, so they must share "
                    f"{self.key}'s hash tag {{{self.name}}}; {foreign} do not. Boards of one name share it "
                    f"(Leaderboard(r, {self.name!r}, period=...)), or merge boards of other names in Python."
                )

        def write(pipe) -> None:
            metadata: dict[str, str] = {}
            for source in sources:  # later sources win
                metadata.update(pipe.hgetall(source.meta_key))
            pipe.multi()
            pipe.zunionstore(self.key, [s.key for s in sources], aggregate=aggregate)
            pipe.unlink(self.meta_key)
            if metadata:
                pipe.hset(self.meta_key, mapping=metadata)
            self._expire(pipe)

        results = self._writer.transaction(write, *(s.meta_key for s in sources))
        return results[0]

    # --- writes ---------------------------------------------------------------
    def add(self, member: str, score: float, *, meta: Mapping[str, object] | None = None) -> None:
        """Set ``member``'s score (and, if given, its metadata)."""
        _check_member(member)
        score = _check_score(score)
        encoded = _encode_meta(meta)
        with self._writer.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {member: score})
            if encoded is not None:
                pipe.hset(self.meta_key, member, encoded)
            self._expire(pipe)
            pipe.execute()

    def add_many(self, scores: Mapping[str, float], *, chunk: int = 10_000, progress: bool = True) -> int:
        """Bulk-load ``{member: score}``; returns the number of members sent.

        Everything is validated first, so bad input writes nothing. Members go
        in pipelines of variadic ZADDs of ``chunk`` members each, over two
        connections, so Python packs one batch while Redis inserts another.
        """
        if not isinstance(scores, Mapping):
            raise TypeError(f"scores must be a mapping of member -> score, got {type(scores).__name__}")
        bounds.integer("chunk", chunk, 1, bounds.MAX_CHUNK)
        batches: list[list] = [[]]
        for member, score in scores.items():
            # the fast path for plain ints and floats, and ASCII names; anything else gets the full check
            if type(member) is not str or not member or not member.isascii():
                _check_member(member)
            if not (
                (type(score) is int and -MAX_EXACT_INT <= score <= MAX_EXACT_INT)
                or (type(score) is float and math.isfinite(score))
            ):
                score = _check_score(score, member)
            if len(batches[-1]) == 2 * chunk:
                batches.append([])
            batches[-1] += (score, member)

        def send(group: list[list]) -> int:
            pipe = self._writer.pipeline(transaction=False)
            for batch in group:
                pipe.execute_command("ZADD", self.key, *batch)
            pipe.execute()
            return sum(len(batch) // 2 for batch in group)

        groups = [batches[i : i + 2] for i in range(0, len(batches), 2) if batches[i]]
        with (
            tqdm(total=len(scores), unit=" members", desc=f"ZADD {self.key}", disable=not progress) as bar,
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            for sent in pool.map(send, groups):
                bar.update(sent)
        if self.ttl is not None:
            with self._writer.pipeline(transaction=True) as pipe:
                self._expire(pipe)
                pipe.execute()
        return len(scores)

    def incr(self, member: str, delta: float) -> float:
        """Add ``delta`` to ``member``'s score (ZINCRBY; a new member starts at 0)."""
        _check_member(member)
        delta = _check_score(delta)
        if self.ttl is None:
            return self._writer.zincrby(self.key, delta, member)
        with self._writer.pipeline(transaction=True) as pipe:
            pipe.zincrby(self.key, delta, member)
            self._expire(pipe)
            return pipe.execute()[0]

    def submit_best(self, member: str, score: float) -> bool:
        """Keep ``member``'s best score, atomically (``ZADD GT``). True if it improved."""
        _check_member(member)
        score = _check_score(score)
        with self._writer.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {member: score}, gt=True, ch=True)
            self._expire(pipe)
            return bool(pipe.execute()[0])

    def set_meta(self, member: str, meta: Mapping[str, object]) -> None:
        """Attach metadata to a member who is on the board.

        WATCH makes the check and the write one step: if the member is removed
        in between, the transaction retries and the check fails.
        """
        _check_member(member)
        encoded = _encode_meta(meta)
        if encoded is None:
            raise ValueError("meta must be a non-empty mapping")

        def write(pipe) -> None:
            if pipe.zscore(self.key, member) is None:
                raise KeyError(f"{member!r} is not on {self.key}")
            pipe.multi()
            pipe.hset(self.meta_key, member, encoded)
            self._expire(pipe)

        self._writer.transaction(write, self.key)

    def remove(self, member: str) -> bool:
        """Remove a member and its metadata; True if it was on the board."""
        _check_member(member)
        with self._writer.pipeline(transaction=True) as pipe:
            pipe.zrem(self.key, member)
            pipe.hdel(self.meta_key, member)
            return bool(pipe.execute()[0])

    def delete(self) -> None:
        """Remove the whole board and its metadata."""
        self.redis.unlink(self.key, self.meta_key)

    # --- reads ----------------------------------------------------------------
    def __len__(self) -> int:
        return self.redis.zcard(self.key)

    def score(self, member: str) -> float | None:
        _check_member(member)
        return self.redis.zscore(self.key, member)

    def meta(self, member: str) -> dict | None:
        _check_member(member)
        raw = self.redis.hget(self.meta_key, member)
        return None if raw is None else json.loads(raw)

    def rank(self, member: str, ties: str = "competition") -> int | None:
        """1-based rank, best first; ``None`` if the member is not on the board."""
        _check_member(member)
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
        if ties == "unique":
            position = self.redis.zrevrank(self.key, member)
            return None if position is None else position + 1
        found = self._rank(keys=[self.key], args=[member])  # ZSCORE + ZCOUNT, one round trip
        return None if found is None else int(found[1]) + 1

    def percentile(self, member: str) -> float | None:
        """Share of the other members with a strictly lower score, in percent.

        The best player of 10 distinct scores gets 100.0, the worst 0.0; a
        board of one gives 100.0. ``None`` if the member is not on the board.
        """
        _check_member(member)
        standing = self._standing(keys=[self.key], args=[member])
        if standing is None:
            return None
        lower, total = int(standing[2]), int(standing[3])
        return 100.0 if total == 1 else 100.0 * lower / (total - 1)

    def top(self, n: int = 10) -> list[Entry]:
        bounds.integer("n", n, 1, bounds.MAX_RESULTS)
        return self._slice(0, n - 1)

    def page(self, number: int, size: int = 10) -> list[Entry]:
        """Page ``number`` (1-based) of ``size`` entries; past the end it is empty."""
        bounds.integer("size", size, 1, bounds.MAX_RESULTS)
        bounds.integer("number", number, 1, bounds.MAX_POSITION // size)
        return self._slice((number - 1) * size, number * size - 1)

    def around(self, member: str, radius: int = 5) -> list[Entry] | None:
        """The member and up to ``radius`` neighbours either side; ``None`` if absent."""
        _check_member(member)
        bounds.integer("radius", radius, 0, (bounds.MAX_RESULTS - 1) // 2)
        found = self._around(keys=[self.key], args=[member, radius])
        return None if found is None else _entries(*found)

    def _slice(self, start: int, stop: int) -> list[Entry]:
        higher, flat = self._range(keys=[self.key], args=[start, stop])
        return _entries(start, higher, flat)

    def _expire(self, pipe) -> None:
        if self.ttl is not None:
            pipe.expire(self.key, self.ttl)
            pipe.expire(self.meta_key, self.ttl)


def _entries(start: int, higher: int, flat: list) -> list[Entry]:
    """Turn ``[member, score, ...]`` from position ``start`` into entries with competition ranks."""
    entries: list[Entry] = []
    rank = int(higher) + 1
    for offset in range(0, len(flat), 2):
        member, score = flat[offset], float(flat[offset + 1])
        if entries and score != entries[-1].score:
            rank = int(start) + offset // 2 + 1  # everyone above scored strictly more
        entries.append(Entry(rank, member, score))
    return entries


def _as_date(what: str, value: object) -> date:
    """A date; a datetime counts as its date (one board per day, not per timestamp)."""
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise TypeError(f"{what} must be a datetime.date, got {value!r}")
    return value


def _check_aggregate(aggregate: object) -> str:
    if not isinstance(aggregate, str) or aggregate.upper() not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    return aggregate.upper()


def _check_name(what: str, value: object) -> None:
    bounds.text(what, value)
    if "{" in value or "}" in value:
        raise ValueError(f"{what} must be a non-empty string without braces, got {value!r}")


def _check_member(member: object) -> None:
    bounds.text("member", member)


def _check_score(score: object, member: object = None) -> float:
    whose = f" for {member!r}" if member is not None else ""
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(f"score{whose} must be a number, got {score!r}")
    if isinstance(score, numbers.Integral) and abs(int(score)) > MAX_EXACT_INT:
        raise ValueError(
            f"score{whose} {bounds.shown(score)} is beyond 2**53: a double cannot hold it exactly"
        )
    try:
        value = float(score)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"score{whose} must be finite, got {bounds.shown(score)}")
    return value


def _encode_meta(meta: Mapping[str, object] | None) -> str | None:
    if meta is None:
        return None
    if not isinstance(meta, Mapping) or not meta:
        raise ValueError(f"meta must be a non-empty mapping, got {meta!r}")
    try:
        encoded = json.dumps(dict(meta), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from exc
    return bounds.text("meta", encoded)
