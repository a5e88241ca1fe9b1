"""Redis Streams as an event log, and a consumer-group worker: notebook 02's pattern.

``EventLog`` appends events (one, or many pipelined), replays them in pages
(XRANGE) to fold them into state, and trims the log (MAXLEN / MINID).

``Worker`` consumes a log as one member of a consumer group, the way a
service should:

1. it creates its group if needed (BUSYGROUP from a concurrent start is fine);
2. on start it first re-reads *its own* pending entries (``XREADGROUP ... 0``):
   what it had read and not acknowledged before it died;
3. then it blocks for new entries (``>``), and acknowledges each entry only
   after its handler returned;
4. it claims entries other consumers left pending too long (XAUTOCLAIM, its
   cursor kept between calls, so it gets past the first page);
5. an entry gets at most ``max_deliveries`` deliveries: when the last one fails too, it
   is a poison message, copied to the dead-letter stream and acknowledged in one
   transaction (one that comes back more often, because a worker died in its handler,
   goes there without being handled again);
6. entries deleted or trimmed under it (they come back empty, or as XAUTOCLAIM's
   deleted IDs) are acknowledged and counted, not handed to the handler;
7. ``stop()`` ends the loop within one BLOCK timeout.

Delivery is at least once: a handler may see an entry twice (after a crash,
before the ACK). ``apply_once`` makes an effect idempotent by recording the
entry's ID in the same transaction as the effect.

All keys share the log's hash tag (``workshop:stream:{orders}...``), so the
log, its dead letters and the state derived from it sit on one cluster slot.

Bad input raises ``ValueError`` before anything is sent (``helpers.bounds``:
field names and text that are UTF-8, integers within 64 bits, at most 100,000
events a round trip); ``append_many`` checks every event before its first batch.
Appends and dead letters are sent without redis-py's retries
(``clients.without_retries``): a retried XADD whose reply was lost would
store the event twice. If the connection drops in the middle of ``append_many``,
``AppendInterrupted`` says which events were stored and how many are unknown.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import redis
from tqdm.auto import tqdm

from helpers import bounds
from helpers.clients import without_retries
from helpers.keyspace import key as workshop_key

Fields = dict[str, str]
Handler = Callable[[str, Fields], None]


class AppendInterrupted(redis.ConnectionError):
    """``append_many`` lost its connection part way: ``ids`` were stored (in order, the first
    ``len(ids)`` events), the next ``unknown`` may or may not have been, the rest were not sent."""

    def __init__(self, ids: list[str], unknown: int, total: int, cause: BaseException):
        self.ids, self.unknown, self.total = ids, unknown, total
        super().__init__(
            f"append_many lost its connection ({type(cause).__name__}: {cause}): the first {len(ids):,} of "
            f"{total:,} events are stored (their IDs are in .ids), the next {unknown:,} may or may not be, "
            f"the other {total - len(ids) - unknown:,} were not sent"
        )


class EventLog:
    """An append-only log of flat events in one stream: ``EventLog(r, "orders")``."""

    def __init__(self, r: redis.Redis, name: str):
        if not isinstance(name, str) or not name.strip() or "{" in name or "}" in name:
            raise ValueError(f"stream name must be a non-empty string without braces, got {name!r}")
        bounds.text("stream name", name)
        self.redis = r
        self._writer = without_retries(r)
        self.name = name
        self.key = workshop_key("stream", "{" + name + "}")
        self.dead_key = self.derived_key("dead-letters")

    def __repr__(self) -> str:
        return f"EventLog({self.key!r})"

    def derived_key(self, *parts: str) -> str:
        """A key for state derived from this log, in the same cluster slot."""
        if not parts or any(not isinstance(p, str) or not p for p in parts):
            raise ValueError(f"key parts must be non-empty strings, got {parts!r}")
        for part in parts:
            bounds.text("key part", part)
        return ":".join((self.key, *parts))

    def append(self, event: Mapping[str, object], *, maxlen: int | None = None) -> str:
        """XADD one event; returns its ID. ``maxlen`` trims approximately (``MAXLEN ~``)."""
        fields = validate_event(event)
        if maxlen is not None:  # MAXLEN 0 would drop the event just added
            bounds.integer("maxlen", maxlen, 1, bounds.MAX_STREAM_LENGTH)
        return self._writer.xadd(self.key, fields, maxlen=maxlen, approximate=True)

    def append_many(
        self, events: Iterable[Mapping[str, object]], *, chunk: int = 1_000, progress: bool = False
    ) -> list[str]:
        """XADD many events, ``chunk`` per round trip, in order; returns their IDs.

        Every event is validated before the first one is sent. On a single
        Redis the commands are packed and sent on one connection while Redis
        still works on the previous chunk (pipelining without the wait), which
        keeps the order and is about 1.5x faster than a plain pipeline; a
        cluster client gets the plain pipeline.
        """
        bounds.integer("chunk", chunk, 1, bounds.MAX_CHUNK)
        commands = [("XADD", self.key, "*", *_flat(event)) for event in events]
        batches = [commands[i : i + chunk] for i in range(0, len(commands), chunk)]
        ids: list[str] = []
        bar = tqdm(total=len(commands), unit=" events", desc=f"XADD {self.key}", disable=not progress)
        with bar:
            if not isinstance(self.redis, redis.Redis):
                pipe = self._writer.pipeline(transaction=False)
                for batch in batches:
                    for command in batch:
                        pipe.execute_command(*command)
                    try:
                        ids.extend(pipe.execute())
                    except (redis.ConnectionError, redis.TimeoutError) as error:
                        raise AppendInterrupted(ids, len(batch), len(commands), error) from error
                    bar.update(len(batch))
                return ids
            pool = self.redis.connection_pool
            try:
                connection = pool.get_connection()  # it may find its socket closed, and fail to reconnect
            except (redis.ConnectionError, redis.TimeoutError) as error:
                raise AppendInterrupted(ids, 0, len(commands), error) from error  # nothing was sent
            in_flight = 0  # commands sent (or being sent) whose replies are not read yet
            try:
                for batch in batches:
                    in_flight += len(batch)
                    connection.send_packed_command(connection.pack_commands(batch))
                    while in_flight > len(batch):  # the previous batch's replies, while Redis works
                        ids.append(connection.read_response())
                        in_flight -= 1
                    bar.update(len(ids) - bar.n)
                while in_flight:
                    ids.append(connection.read_response())
                    in_flight -= 1
                bar.update(len(ids) - bar.n)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                connection.disconnect()  # replies may be left unread: never reuse this socket
                raise AppendInterrupted(ids, in_flight, len(commands), error) from error
            except BaseException:
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
        return ids

    def __len__(self) -> int:
        return self.redis.xlen(self.key)

    def replay(self, start: str = "-", stop: str = "+", *, page: int = 1_000) -> Iterator[tuple[str, Fields]]:
        """Every entry from ``start`` to ``stop`` (``"(id"`` excludes ``id``), read ``page`` at a time."""
        bounds.at_least("page", page, 1)
        while True:
            entries = self.redis.xrange(self.key, min=start, max=stop, count=page)
            yield from entries
            if len(entries) < page:
                return
            start = "(" + entries[-1][0]

    def fold(
        self,
        reducer: Callable[[object, str, Fields], object],
        state: object,
        *,
        start: str = "-",
        stop: str = "+",
        page: int = 1_000,
    ) -> tuple[object, str | None]:
        """Replay into ``state`` with ``reducer(state, id, fields)``; returns (state, last ID seen)."""
        last_id = None
        for entry_id, fields in self.replay(start, stop, page=page):
            state = reducer(state, entry_id, fields)
            last_id = entry_id
        return state, last_id

    def trim(self, *, maxlen: int | None = None, minid: str | None = None, approximate: bool = True) -> int:
        """XTRIM by length or by minimum ID; returns how many entries went.

        ``approximate`` (``~``) lets Redis drop whole internal nodes only: much
        cheaper, and the log may keep a few more entries than asked.
        """
        if (maxlen is None) == (minid is None):
            raise ValueError("trim needs exactly one of maxlen= or minid=")
        if maxlen is not None:
            bounds.integer("maxlen", maxlen, 0, bounds.MAX_STREAM_LENGTH)
        if minid is not None:
            bounds.text("minid", minid)
        return self.redis.xtrim(self.key, maxlen=maxlen, minid=minid, approximate=approximate)

    def dead_letters(self) -> list[tuple[str, dict]]:
        """Entries moved to the dead-letter stream: ``event`` (the original fields, decoded),
        ``original_id``, ``group``, ``deliveries`` and ``error``."""
        return [
            (dead_id, {**letter, "event": json.loads(letter["event"])})
            for dead_id, letter in self.redis.xrange(self.dead_key)
        ]

    def requeue_dead_letter(self, dead_id: str, fields: Mapping[str, object] | None = None) -> str:
        """Append a dead letter (its original fields, or ``fields`` if given: a fix) to the log
        again and remove it from the dead-letter stream, in one transaction. Returns the new ID.

        WATCH on the dead-letter stream: two requeues of one letter at once append it once.
        """
        if fields is not None:
            fields = validate_event(fields)

        def move(pipe) -> str:
            found = pipe.xrange(self.dead_key, min=dead_id, max=dead_id)
            if not found:
                raise KeyError(f"no dead letter {dead_id!r} in {self.dead_key}")
            event = fields if fields is not None else validate_event(json.loads(found[0][1]["event"]))
            pipe.multi()
            pipe.xadd(self.key, event)
            pipe.xdel(self.dead_key, dead_id)

        # the caller's client: a retry after a lost EXEC reply finds its WATCH gone and reruns move()
        return self.redis.transaction(move, self.dead_key)[0]

    def delete(self) -> None:
        self.redis.unlink(self.key, self.dead_key)


def ensure_group(r: redis.Redis, stream_key: str, group: str, start_id: str = "0") -> bool:
    """XGROUP CREATE ... MKSTREAM; True if created, False if it already existed.

    ``start_id="0"`` delivers what is already in the stream; ``"$"`` only what
    comes after, which silently skips events written before the group existed.
    An existing group is found first with XINFO GROUPS, a read: a server at
    maxmemory refuses XGROUP CREATE even when there is nothing to create.
    """
    try:
        if any(info["name"] == group for info in r.xinfo_groups(stream_key)):
            return False
    except redis.ResponseError as error:
        if "no such key" not in str(error).lower():
            raise
    try:
        r.xgroup_create(stream_key, group, id=start_id, mkstream=True)
        return True
    except redis.ResponseError as error:
        if "BUSYGROUP" in str(error):
            return False
        raise


@dataclass
class WorkerStats:
    handled: int = 0  # handler returned, entry acknowledged
    failed: int = 0  # handler raised; the entry stays pending and is retried
    dead_lettered: int = 0
    deleted: int = 0  # deleted or trimmed under us: acknowledged without handling
    claimed: int = 0  # taken over from other consumers by XAUTOCLAIM
    pending_reread: int = 0  # own pending entries re-read on start
    last_errors: dict[str, str] = field(default_factory=dict)


class Worker:
    """One consumer of a consumer group; ``handler(entry_id, fields)`` does the work.

    ``claim_idle_ms``: how long another consumer's entry must sit unacknowledged
    before this one takes it over. ``max_deliveries``: the deliveries an entry gets; when the
    last one fails, it is dead-lettered.
    """

    def __init__(
        self,
        log: EventLog,
        group: str,
        consumer: str,
        handler: Handler,
        *,
        batch: int = 100,
        block_ms: int = 1_000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        start_id: str = "0",
    ):
        for what, value in (("group", group), ("consumer", consumer), ("start_id", start_id)):
            bounds.text(what, value)
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        bounds.integer("batch", batch, 1, bounds.MAX_CHUNK)
        bounds.integer("block_ms", block_ms, 1, bounds.MAX_TTL_S * 1000)
        bounds.integer("claim_idle_ms", claim_idle_ms, 0, bounds.MAX_TTL_S * 1000)
        bounds.integer("max_deliveries", max_deliveries, 1, bounds.MAX_INT64)
        self.log, self.redis = log, log.redis
        self._writer = without_retries(log.redis)
        self.group, self.consumer, self.handler = group, consumer, handler
        self.batch, self.block_ms = batch, block_ms
        self.claim_idle_ms, self.max_deliveries = claim_idle_ms, max_deliveries
        self.start_id = start_id
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._claim_cursor = "0-0"

    def stop(self) -> None:
        """Ask the loop to end; it does within one ``block_ms``."""
        self._stop.set()

    def run(self, *, until_idle: bool = False) -> WorkerStats:
        """Consume until ``stop()``; with ``until_idle``, also stop when nothing is left to do."""
        ensure_group(self.redis, self.log.key, self.group, self.start_id)
        self.recover_own_pending()
        next_claim = 0.0
        while not self._stop.is_set():
            worked = 0
            if time.monotonic() >= next_claim:
                # nothing can turn stale faster than claim_idle_ms: look a few times per period
                next_claim = time.monotonic() + min(self.claim_idle_ms / 4_000, 1.0)
                worked += self.claim_stale()
            worked += self.read_new(block=not until_idle)
            if until_idle and not worked:
                if self.redis.xpending(self.log.key, self.group)["pending"] == 0:
                    break
                # entries are still pending somewhere: wait for them to become claimable
                self._stop.wait(max(self.claim_idle_ms, 10) / 4_000)
        return self.stats

    def recover_own_pending(self) -> int:
        """Re-read and handle this consumer's own pending entries (``XREADGROUP ... 0``)."""
        seen, cursor = 0, "0"
        while True:
            reply = self.redis.xreadgroup(self.group, self.consumer, {self.log.key: cursor}, count=self.batch)
            entries = reply[0][1] if reply else []
            if not entries:
                return seen
            seen += len(entries)
            self.stats.pending_reread += len(entries)
            self._handle(entries, self._deliveries(entries))
            cursor = entries[-1][0]

    def read_new(self, *, block: bool = True) -> int:
        """Read up to ``batch`` new entries (``>``), blocking up to ``block_ms``; handle them."""
        reply = self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.log.key: ">"},
            count=self.batch,
            block=self.block_ms if block else None,
        )
        entries = reply[0][1] if reply else []
        if entries:
            self._handle(entries, {})
        return len(entries)

    def claim_stale(self) -> int:
        """XAUTOCLAIM entries idle longer than ``claim_idle_ms`` from any consumer; handle them.

        XAUTOCLAIM scans at most 10 x COUNT pending entries per call and answers
        where it stopped; the cursor is kept across calls so that one sweep covers
        the whole pending list ("0-0": the sweep is done, the next starts again).
        """
        cursor, entries, deleted = self.redis.xautoclaim(
            self.log.key, self.group, self.consumer, self.claim_idle_ms, self._claim_cursor, count=self.batch
        )
        self._claim_cursor = cursor
        self.stats.deleted += len(deleted)  # Redis 7 already dropped these from the pending list
        if entries:
            self.stats.claimed += len(entries)
            self._handle(entries, self._deliveries(entries))
        return len(entries) + len(deleted)

    def _deliveries(self, entries: list[tuple[str, Fields]]) -> dict[str, int]:
        """How many times each entry has been delivered (XPENDING over the batch's ID range).

        Paged: this consumer may own other pending entries inside the same range.
        """
        counts: dict[str, int] = {}
        low, high = entries[0][0], entries[-1][0]
        while True:
            page = self.redis.xpending_range(
                self.log.key, self.group, min=low, max=high, count=1_000, consumername=self.consumer
            )
            counts.update((p["message_id"], p["times_delivered"]) for p in page)
            if len(page) < 1_000:
                return counts
            low = "(" + page[-1]["message_id"]

    def _handle(self, entries: list[tuple[str, Fields]], deliveries: dict[str, int]) -> None:
        done: list[str] = []
        for entry_id, fields in entries:
            if not fields:  # deleted or trimmed while pending: nothing left to handle
                done.append(entry_id)
                self.stats.deleted += 1
            elif deliveries.get(entry_id, 1) > self.max_deliveries:
                self._dead_letter(entry_id, fields, deliveries[entry_id])
            else:
                try:
                    self.handler(entry_id, fields)
                except Exception as error:  # noqa: BLE001 - any failure leaves the entry pending
                    self.stats.failed += 1
                    self.stats.last_errors[entry_id] = f"{type(error).__name__}: {error}"
                    delivered = deliveries.get(entry_id, 1)
                    if delivered >= self.max_deliveries:  # its last delivery failed too
                        self._dead_letter(entry_id, fields, delivered)
                    continue
                done.append(entry_id)
                self.stats.handled += 1
                self.stats.last_errors.pop(entry_id, None)
        if done:
            self.redis.xack(self.log.key, self.group, *done)

    def _dead_letter(self, entry_id: str, fields: Fields, deliveries: int) -> None:
        reason = self.stats.last_errors.pop(entry_id, "failed on another consumer")
        letter = {
            "event": json.dumps(fields, sort_keys=True),  # kept whole, whatever its field names
            "original_id": entry_id,
            "group": self.group,
            "deliveries": deliveries,
            "error": reason,
        }
        with self._writer.pipeline(transaction=True) as pipe:  # no retry: one letter, not two
            pipe.xadd(self.log.dead_key, letter)
            pipe.xack(self.log.key, self.group, entry_id)
            pipe.execute()
        self.stats.dead_lettered += 1


def group_lag(r: redis.Redis, stream_key: str, group: str) -> dict[str, int | None]:
    """XINFO GROUPS for one group: ``lag`` (not yet delivered) and ``pending`` (delivered, not acked).

    Redis reports no lag (None) when it cannot know it, e.g. after entries were deleted.
    """
    for info in r.xinfo_groups(stream_key):
        if info["name"] == group:
            return {"lag": info.get("lag"), "pending": info["pending"]}
    raise KeyError(f"no group {group!r} on {stream_key}")


def apply_once(
    r: redis.Redis, done_key: str, entry_id: str, effect: Callable[[redis.client.Pipeline], None]
) -> bool:
    """Apply ``effect(pipe)`` and record ``entry_id`` in the set ``done_key``, atomically.

    WATCH on ``done_key`` + MULTI/EXEC: if the ID is already recorded the effect
    is skipped (a redelivery changes nothing); if another consumer records it
    between our check and our EXEC, the transaction retries and then skips.
    Returns True if the effect was applied now.
    """

    def attempt(pipe) -> bool:
        if pipe.sismember(done_key, entry_id):
            return False
        pipe.multi()
        effect(pipe)
        pipe.sadd(done_key, entry_id)
        return True

    return r.transaction(attempt, done_key, value_from_callable=True)


def validate_event(event: object) -> dict[str, str | int | float]:
    """A flat, non-empty mapping of non-empty UTF-8 string keys to UTF-8 strings or finite numbers
    (integers within 64 bits)."""
    if not isinstance(event, Mapping) or not event:
        raise ValueError(f"an event must be a non-empty mapping of field -> value, got {bounds.shown(event)}")
    for name, value in event.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"event field names must be non-empty strings, got {bounds.shown(name)}")
        bounds.text("an event field name", name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(
                f"event field {name!r} must be a string or a number (events are flat), "
                f"got {bounds.shown(value)}"
            )
        if isinstance(value, str):
            bounds.text(f"event field {name!r}", value, empty=True)
        elif isinstance(value, int):
            bounds.integer(f"event field {name!r}", value, -bounds.MAX_INT64, bounds.MAX_INT64)
        elif not math.isfinite(value):
            raise ValueError(f"event field {name!r} must be finite, got {value!r}")
    return dict(event)


def _flat(event: object) -> list:
    """``{"a": 1, "b": "x"}`` -> ``["a", 1, "b", "x"]``, validated; plain strings take the fast path."""
    if (
        type(event) is dict
        and event
        and all(
            type(k) is str and k and type(v) is str and k.isascii() and v.isascii() for k, v in event.items()
        )
    ):
        return [part for pair in event.items() for part in pair]
    return [part for pair in validate_event(event).items() for part in pair]
