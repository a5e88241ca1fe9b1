"""Checks for notebook 02's "Your turn" exercises (streams and consumer groups).

In the notebook: ``from helpers.exercises import streams as check``, then

1. ``check.revenue_at(r, revenue_at)``: replay the log up to a moment (stream IDs are times);
2. ``check.claim_from(r, claim_from)``: take over what a dead consumer left pending, and only that;
3. ``check.settle(r, settle)``: ack, retry, or move to a dead-letter stream on the 3rd failed delivery.

Each returns a ``helpers.exercises.checker.Verdict``; solutions are in ``notebooks/solutions/02_*.py``.
Streams get explicit IDs (``<ms>-<seq>``), so the data, and every message, is the same on each run.
"""

from __future__ import annotations

import numbers
import random
from decimal import Decimal

import redis

from helpers.exercises.checker import NotDone, Recorder, Wrong, attempt, evaluate

__all__ = ["revenue_at", "claim_from", "settle"]

BASE_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC


# --- 1. revenue at a moment -------------------------------------------------------
def revenue_at(r: redis.Redis, fn: object) -> object:
    """``revenue_at(r, stream, at_ms) -> number``: the sum of 'paid' totals up to and including at_ms."""
    return evaluate(r, fn, name="revenue_at", scratch="revenue-at", body=_revenue_at)


def _shop_log(seed: int = 21) -> tuple[list[tuple[str, dict[str, str]]], int]:
    """About 800 order events over two hours, and one millisecond holding three of them (two paid)."""
    rng = random.Random(seed)
    boundary = BASE_MS + 1_800_000
    timed: list[tuple[int, dict[str, str]]] = []
    for n in range(300):
        order, total = f"ord-{n}", f"{rng.randrange(500, 40_000) / 100:.2f}"
        at = BASE_MS + n * 20_000 + rng.randrange(0, 10_000)
        timed.append((at, {"action": "placed", "order_id": order, "total": total}))
        if rng.random() < 0.85:
            at += rng.randrange(1_000, 60_000)
            timed.append((at, {"action": "paid", "order_id": order, "total": total}))
        at += rng.randrange(60_000, 600_000)
        timed.append(
            (
                at,
                {
                    "action": "shipped" if rng.random() < 0.9 else "cancelled",
                    "order_id": order,
                    "total": total,
                },
            )
        )
    timed = [(at, fields) for at, fields in timed if at != boundary]
    timed += [
        (boundary, {"action": "placed", "order_id": "ord-900", "total": "19.99"}),
        (boundary, {"action": "paid", "order_id": "ord-901", "total": "42.50"}),
        (boundary, {"action": "paid", "order_id": "ord-902", "total": "7.25"}),
    ]
    timed.sort(key=lambda event: event[0])  # stable: the three keep their order inside the millisecond
    entries, last, seq = [], None, 0
    for at, fields in timed:
        seq = seq + 1 if at == last else 0
        entries.append((f"{at}-{seq}", fields))
        last = at
    return entries, boundary


def _ms_seq(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _paid(entries, keep, action: str | None = "paid") -> Decimal:
    return sum(
        (
            Decimal(f["total"])
            for i, f in entries
            if (action is None or f["action"] == action) and keep(_ms_seq(i))
        ),
        Decimal(0),
    )


def _revenue_at(r: redis.Redis, fn, prefix: str) -> str:
    entries, boundary = _shop_log()
    stream = prefix + "orders"
    for entry_id, fields in entries:
        r.xadd(stream, fields, id=entry_id)
    last_ms = _ms_seq(entries[-1][0])[0]
    moments = [
        (boundary, "the millisecond holding three events"),
        (BASE_MS + 4_321_987, "a moment halfway"),
        (BASE_MS - 1, "before the first event"),
        (last_ms + 60_000, "after the last event"),
    ]
    for position, (at, what) in enumerate(moments):
        shown = f"revenue_at(r, stream, {at})"
        answer = attempt(fn, r, stream, at, shown=shown)
        if answer is None and position == 0:
            raise NotDone
        if r.xlen(stream) != len(entries):
            raise Wrong(f"the log changed during {shown}: replaying it is a read.")
        if isinstance(answer, bool) or not isinstance(answer, (numbers.Real, Decimal)):
            raise Wrong(f"{shown} returned {answer!r}: return the amount, a number.")
        expected = _paid(entries, lambda t, at=at: t[0] <= at)
        got = Decimal(str(answer))
        if abs(got - expected) >= Decimal("0.005"):
            raise Wrong(_revenue_hint(shown, what, got, expected, entries, at))
    return (
        "revenue_at sums the paid totals up to and including the moment asked, at 4 moments (one of them "
        "a millisecond holding three events; before the first event it is 0)."
    )


def _revenue_hint(shown: str, what: str, got: Decimal, expected: Decimal, entries, at: int) -> str:
    said = f"{shown} ({what}) returned {got:,.2f}; the paid totals up to {at} add up to {expected:,.2f}"
    mistakes = [
        (
            _paid(entries, lambda t: t[0] < at or t == (at, 0)),
            "you stopped at the first entry of that millisecond: as the end of XRANGE, an ID of just "
            f"milliseconds ({at}) covers the whole millisecond; {at}-0 stops at its first entry.",
        ),
        (
            _paid(entries, lambda t: t[0] < at),
            "you left out the millisecond at_ms itself (did you stop at at_ms - 1?): XRANGE's bounds are "
            "inclusive, and an ID of just milliseconds covers every entry of that millisecond.",
        ),
        (
            _paid(entries, lambda t: t[0] <= at, action=None),
            "you added the totals of every event: only 'paid' events are money taken.",
        ),
        (_paid(entries, lambda t: True), "you summed the whole log: stop at at_ms (the end of XRANGE)."),
        (
            _paid(entries, lambda t: t[0] >= at),
            "you summed the events after at_ms: the end of XRANGE is at_ms.",
        ),
        (expected * 100, "that looks like cents: return the amount in currency units (42.50, not 4250)."),
    ]
    for amount, hint in mistakes:
        if amount != expected and abs(got - amount) < Decimal("0.005"):
            return f"{said}: {hint}"
    return said + "."


# --- 2. claim from a dead consumer ------------------------------------------------
def claim_from(r: redis.Redis, fn: object) -> object:
    """``claim_from(r, stream, group, dead, me, min_idle_ms) -> [IDs]``: take over dead's pending entries."""
    return evaluate(r, fn, name="claim_from", scratch="claim-from", body=_claim_from)


def _claim_from(r: redis.Redis, fn, prefix: str) -> str:
    stream, group = prefix + "orders", "shipping"
    for i in range(160):
        r.xadd(stream, {"action": "placed", "order_id": f"ord-{i}", "total": "10.00"}, id=f"{BASE_MS + i}-0")
    r.xgroup_create(stream, group, id="0")
    dead_ids = [
        entry_id for entry_id, _ in r.xreadgroup(group, "worker-dead", {stream: ">"}, count=150)[0][1]
    ]
    # worker-dead died a minute ago: make its entries look idle for 60 s (JUSTID: not a delivery)
    r.xclaim(stream, group, "worker-dead", 0, dead_ids, idle=60_000, justid=True)
    r.xreadgroup(group, "worker-alive", {stream: ">"}, count=5)  # just read: busy with them right now

    shown = "claim_from(r, stream, 'shipping', 'worker-dead', 'worker-new', 30000)"
    answer = attempt(fn, r, stream, group, "worker-dead", "worker-new", 30_000, shown=shown)
    if answer is None:
        raise NotDone
    owners = {c["name"]: c["pending"] for c in r.xpending(stream, group)["consumers"]}
    alive, dead, new = (owners.get(name, 0) for name in ("worker-alive", "worker-dead", "worker-new"))
    total = sum(owners.values())
    if alive != 5:
        raise Wrong(
            f"worker-alive now owns {alive} of the 5 entries it read a moment ago: you took entries it is "
            "still working on. Claim only entries idle for at least min_idle_ms (the min-idle-time argument "
            "of XCLAIM and XAUTOCLAIM), and only worker-dead's."
        )
    if total < 155:
        raise Wrong(
            f"only {total} entries are still pending in the group, expected 155: you acknowledged some. "
            "Claiming is not acknowledging: worker-new has not done their work yet."
        )
    if total > 155:
        raise Wrong(
            f"{total} entries are pending, expected 155: you also read the 5 entries nobody had read (>). "
            "Claim only what worker-dead left pending."
        )
    if dead:
        raise Wrong(
            f"worker-new owns {new} of worker-dead's 150 pending entries; worker-dead still holds {dead}. "
            "XAUTOCLAIM and XPENDING answer one page at a time (XAUTOCLAIM: 100 by default): "
            "go on until there is nothing left (XAUTOCLAIM's cursor comes back as 0-0)."
        )
    ids = _claimed_ids(answer)
    if ids is None or set(ids) != set(dead_ids):
        said = f"{len(ids)} IDs, not those" if ids is not None else repr(answer)
        raise Wrong(
            f"worker-new took all 150 entries, but claim_from returned {said}: return the list of the IDs "
            "it claimed."
        )
    return (
        "claim_from took over all 150 entries worker-dead left pending (past the first page), left "
        "worker-alive's 5 fresh ones alone, and acknowledged nothing."
    )


def _claimed_ids(answer: object) -> list[str] | None:
    """IDs from a list of IDs, or of (id, fields) pairs as XCLAIM and XAUTOCLAIM return them."""
    if not isinstance(answer, (list, tuple)):
        return None
    ids = [item[0] if isinstance(item, (list, tuple)) and item else item for item in answer]
    return ids if all(isinstance(i, str) for i in ids) else None


# --- 3. settle one delivery: ack, retry or dead-letter ----------------------------
OUTCOMES = ("acked", "retry", "dead")
EVENTS = [
    {"action": "placed", "order_id": "ord-1", "total": "10.00"},
    {"action": "placed", "order_id": "ord-2", "total": "oops"},  # poison: the handler always fails
    {"action": "paid", "order_id": "ord-1", "total": "10.00"},
    {"action": "placed", "order_id": "ord-3", "total": "25.50"},  # flaky: fails on its 1st delivery only
    {"action": "paid", "order_id": "ord-3", "total": "25.50"},
    {"action": "shipped", "order_id": "ord-1", "total": "10.00"},
]
POISON, FLAKY = 1, 3


def settle(r: redis.Redis, fn: object) -> object:
    """``settle(r, stream, group, entry_id, fields, handler, dead_stream, max_deliveries=3) -> str``."""
    return evaluate(r, fn, name="settle", scratch="settle", body=_settle)


class _Handler:
    """The service's work: fails for the poison event, and once for the flaky one (a time-out)."""

    def __init__(self, ids: list[str]):
        self.ids = ids
        self.calls: dict[str, int] = {}
        self.misuse: str | None = None

    def __call__(self, *args, **kwargs) -> None:
        if kwargs or len(args) != 2 or args[0] not in self.ids or not isinstance(args[1], dict):
            self.misuse = f"handler{args!r}"
            raise TypeError("call the handler as handler(entry_id, fields)")
        entry_id = args[0]
        self.calls[entry_id] = self.calls.get(entry_id, 0) + 1
        index = self.ids.index(entry_id)
        if index == POISON:
            raise ValueError("total must be an amount, got 'oops'")
        if index == FLAKY and self.calls[entry_id] == 1:
            raise TimeoutError("the warehouse did not answer")


def _expected_outcome(index: int, delivery: int) -> str:
    if index == POISON:
        return "dead" if delivery >= 3 else "retry"
    if index == FLAKY and delivery == 1:
        return "retry"
    return "acked"


def _settle(r: redis.Redis, fn, prefix: str) -> str:
    stream, dead_stream, group = prefix + "orders", prefix + "orders:dead-letters", "billing"
    ids = [f"{BASE_MS + i}-0" for i in range(len(EVENTS))]
    for entry_id, fields in zip(ids, EVENTS):
        r.xadd(stream, fields, id=entry_id)
    r.xgroup_create(stream, group, id="0")
    handler = _Handler(ids)
    recorder = Recorder(r)
    deliveries: dict[str, int] = {}
    first = True
    for _ in range(6):  # delivery rounds: worker-1's own pending entries again first, else new ones
        entries = _read(r, stream, group, "0") or _read(r, stream, group, ">")
        if not entries:
            break
        for entry_id, fields in entries:
            deliveries[entry_id] = deliveries.get(entry_id, 0) + 1
            index, delivery = ids.index(entry_id), deliveries[entry_id]
            shown = f"settle(..., {entry_id!r}, <{fields['action']} {fields['order_id']}>, ...)"
            calls_before = handler.calls.get(entry_id, 0)
            answer = attempt(
                fn, recorder, stream, group, entry_id, dict(fields), handler, dead_stream, 3, shown=shown
            )
            if answer is None and first:
                raise NotDone
            first = False
            if handler.misuse:
                raise Wrong(f"{shown} called {handler.misuse}: call it as handler(entry_id, fields).")
            if handler.calls.get(entry_id, 0) != calls_before + 1:
                raise Wrong(f"{shown} did not call the handler exactly once: call it once per delivery.")
            _check_outcome(r, stream, group, entry_id, fields, index, delivery, answer)
    _check_dead_letter(r, dead_stream, ids[POISON], recorder)
    if r.xpending(stream, group)["pending"]:
        raise Wrong("entries are still pending after every delivery was settled.")
    return (
        "settle acks what the handler did, leaves failures pending for another delivery (the flaky event "
        "then succeeded), and on the 3rd failed delivery moves the poison event, with its ID and error, to "
        "the dead letters and acks it, in one transaction."
    )


def _read(r: redis.Redis, stream: str, group: str, cursor: str) -> list:
    reply = r.xreadgroup(group, "worker-1", {stream: cursor}, count=100)
    return reply[0][1] if reply else []


def _check_outcome(r, stream, group, entry_id, fields, index, delivery, answer) -> None:
    expected = _expected_outcome(index, delivery)
    what = f"delivery {delivery} of <{fields['action']} {fields['order_id']} total={fields['total']}>"
    failed = index == POISON or (index == FLAKY and delivery == 1)
    happened = "the handler failed" if failed else "the handler succeeded"
    if answer not in OUTCOMES:
        raise Wrong(f"{what}: settle returned {answer!r}; return 'acked', 'retry' or 'dead'.")
    if answer != expected:
        if expected == "acked":
            hint = "XACK it and return 'acked'."
        elif expected == "retry" and answer == "dead":
            hint = (
                f"only the 3rd failed delivery goes to the dead letters; this was delivery {delivery}: "
                "leave it pending (no XACK) and return 'retry'. It may well work next time."
            )
        elif expected == "retry":
            hint = "do not XACK it: it must stay pending to be delivered again. Return 'retry'."
        else:
            hint = (
                "it has now been delivered 3 times (max_deliveries) and failed again: move it to "
                "dead_stream and XACK it. XPENDING tells how many times an entry was delivered "
                "(times_delivered)."
            )
        raise Wrong(f"{what}: {happened} and you returned {answer!r}, expected {expected!r}: {hint}")
    still_pending = bool(r.xpending_range(stream, group, min=entry_id, max=entry_id, count=1))
    if expected == "retry" and not still_pending:
        raise Wrong(f"{what}: you returned 'retry' but it is no longer pending: do not XACK a failed entry.")
    if expected != "retry" and still_pending:
        raise Wrong(f"{what}: you returned {answer!r} but it is still pending: XACK it, or it comes back.")


def _check_dead_letter(r: redis.Redis, dead_stream: str, poison_id: str, recorder: Recorder) -> None:
    letters = r.xrange(dead_stream) if r.exists(dead_stream) else []
    if len(letters) != 1:
        raise Wrong(f"dead_stream holds {len(letters)} entries, expected 1 (the poison event).")
    letter = letters[0][1]
    missing = [name for name in EVENTS[POISON] if letter.get(name) != EVENTS[POISON][name]]
    if missing:
        raise Wrong(
            f"the dead letter {letter} lacks the event's own fields {missing}: copy them all, so it "
            "can be fixed and requeued."
        )
    if letter.get("original_id") != poison_id:
        raise Wrong(f"the dead letter {letter} needs original_id = {poison_id}, the entry's ID in the log.")
    if "oops" not in letter.get("error", ""):
        raise Wrong(
            f"the dead letter {letter} needs an error field saying why it failed (the handler's "
            "error: total must be an amount, got 'oops')."
        )
    adds = [
        (batch, how) for batch, how, command, key in recorder.sent if command == "XADD" and key == dead_stream
    ]
    acks = {batch for batch, _, command, _ in recorder.sent if command == "XACK"}
    for batch, how in adds:  # none: written from a script, which is atomic too
        if how != "multi" or batch not in acks:
            raise Wrong(
                "the dead letter's XADD and the XACK went out separately: a crash between them loses the "
                "event or dead-letters it twice. Send both in one MULTI/EXEC: r.pipeline(transaction=True)."
            )
