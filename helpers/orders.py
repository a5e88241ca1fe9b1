"""The orders domain of notebook 02: events, the state they fold into, a worker process.

An order is ``placed``, usually ``paid``, then ``shipped`` or ``cancelled``.
Every event carries its order's ``total`` as a decimal string ("89.99").

The state (``empty_state``) is the latest action of every order plus, per
action, how many events and how many cents. ``reduce`` folds one event into
it in Python (the replay); ``Projection.apply`` applies the same event to the
live projection in Redis, once only and in order, so the two can be compared.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import numpy as np

from helpers import bounds, scripts
from helpers.clients import client_from_url
from helpers.streams import EventLog, Fields, Worker

ACTIONS = ("placed", "paid", "shipped", "cancelled")
_AMOUNT = re.compile(r"(?P<units>[0-9]+)(?:\.(?P<cents>[0-9]{1,2}))?")  # ASCII digits only


def generate(n_orders: int, *, seed: int = 42) -> list[dict[str, str]]:
    """Events for ``n_orders`` orders, interleaved in time, each order's own events in order."""
    rng = np.random.default_rng(seed)
    timed = []
    for i in range(n_orders):
        order_id = f"ord-{i}"
        total = f"{rng.integers(500, 50_000) / 100:.2f}"
        at = float(i) + rng.random()
        steps = ["placed"]
        if rng.random() < 0.85:
            steps.append("paid")
            steps.append("shipped" if rng.random() < 0.9 else "cancelled")
        elif rng.random() < 0.5:
            steps.append("cancelled")
        for step in steps:
            timed.append((at, {"action": step, "order_id": order_id, "total": total}))
            at += rng.exponential(3.0)
    timed.sort(key=lambda pair: pair[0])
    return [event for _, event in timed]


def cents(total: str) -> int:
    """ "89.99" -> 8999; anything that is not an amount in cents is an error (a poison event).

    ASCII digits only ("١٢.٣٤" is refused, not read as 12.34), and at most
    ``bounds.MAX_CENTS`` (2^53 - 1 cents: exact in the projection's Lua script).
    """
    found = _AMOUNT.fullmatch(total) if isinstance(total, str) and len(total) <= 32 else None
    if found is None:
        shown = bounds.shown(total)
        raise ValueError(f"total must be a non-negative amount with at most 2 decimals, got {shown}")
    amount = int(found["units"]) * 100 + int((found["cents"] or "").ljust(2, "0"))
    if amount > bounds.MAX_CENTS:
        raise ValueError(
            f"total {total!r} is more than 2^53 - 1 cents: a running total could not hold it exactly"
        )
    return amount


def empty_state() -> dict:
    return {"status": {}, "count": dict.fromkeys(ACTIONS, 0), "cents": dict.fromkeys(ACTIONS, 0)}


def reduce(state: dict, entry_id: str, fields: Fields) -> dict:
    """Fold one event into ``state`` (in place, and returned)."""
    action, amount = _parse(fields)
    state["status"][fields["order_id"]] = action
    state["count"][action] += 1
    state["cents"][action] += amount
    return state


def _parse(fields: Fields) -> tuple[str, int]:
    action = fields.get("action")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    if not fields.get("order_id"):
        raise ValueError("event has no order_id")
    return action, cents(fields.get("total", ""))


class Projection:
    """The live state in Redis, built by consumers: statuses, counts and cents, the applied IDs.

    ``apply`` runs ``lua/project_order_event.lua``: idempotent (an entry ID is
    applied once) and order-safe (a status is only replaced by a later event),
    because consumers of one group receive one order's events in any order.
    """

    def __init__(self, log: EventLog, name: str = "projection"):
        self.redis = log.redis
        self.status_key = log.derived_key(name, "status")
        self.status_id_key = log.derived_key(name, "status-id")
        self.count_key = log.derived_key(name, "count")
        self.cents_key = log.derived_key(name, "cents")
        self.done_key = log.derived_key(name, "applied")
        self._project = scripts.load(self.redis, "project_order_event")

    def apply(self, entry_id: str, fields: Fields) -> bool:
        """Apply one event exactly once; False if this entry was applied before."""
        action, amount = _parse(fields)  # raises on a poison event, before any write
        keys = [self.done_key, self.status_key, self.status_id_key, self.count_key, self.cents_key]
        return bool(self._project(keys=keys, args=[entry_id, fields["order_id"], action, amount]))

    def applied(self) -> int:
        return self.redis.scard(self.done_key)

    def read(self) -> dict:
        """The projection in the same shape as ``empty_state()``."""
        state = empty_state()
        state["status"] = self.redis.hgetall(self.status_key)
        for action, value in self.redis.hgetall(self.count_key).items():
            state["count"][action] = int(value)
        for action, value in self.redis.hgetall(self.cents_key).items():
            state["cents"][action] = int(value)
        return state

    def delete(self) -> None:
        self.redis.unlink(self.status_key, self.status_id_key, self.count_key, self.cents_key, self.done_key)


def save_snapshot(log: EventLog, state: dict, last_id: str) -> None:
    """Store a folded state with the ID of the last event in it."""
    log.redis.set(log.derived_key("snapshot"), json.dumps({"last_id": last_id, "state": state}))


def load_snapshot(log: EventLog) -> tuple[dict, str] | None:
    raw = log.redis.get(log.derived_key("snapshot"))
    if raw is None:
        return None
    snapshot = json.loads(raw)
    return snapshot["state"], snapshot["last_id"]


def run_worker(
    redis_url: str,
    log_name: str,
    group: str,
    consumer: str,
    *,
    until_idle: bool = True,
    handler_delay_ms: float = 0.0,
    claim_idle_ms: int = 1_000,
    max_deliveries: int = 3,
    batch: int = 50,
    block_ms: int = 500,
    projection: str = "projection",
) -> dict:
    """A worker process: projects ``log_name`` for ``group`` as ``consumer``; SIGTERM stops it cleanly.

    A module-level function, so ``multiprocessing`` can start it in a new process.
    ``handler_delay_ms`` slows each event down (to have time to kill the worker
    in the middle of a batch). Returns the worker's counters.
    """
    client = client_from_url(redis_url)  # redis+cluster:// gives a cluster client
    log = EventLog(client, log_name)
    projection = Projection(log, projection)

    duplicates = 0

    def handle(entry_id: str, fields: Fields) -> None:
        nonlocal duplicates
        if handler_delay_ms:
            time.sleep(handler_delay_ms / 1000)
        if not projection.apply(entry_id, fields):
            duplicates += 1  # delivered again after a crash: the script skipped it

    worker = Worker(
        log,
        group,
        consumer,
        handle,
        batch=batch,
        block_ms=block_ms,
        claim_idle_ms=claim_idle_ms,
        max_deliveries=max_deliveries,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    stats = worker.run(until_idle=until_idle)
    return {
        "consumer": consumer,
        "pid": os.getpid(),
        "handled": stats.handled,
        "failed": stats.failed,
        "dead_lettered": stats.dead_lettered,
        "claimed": stats.claimed,
        "pending_reread": stats.pending_reread,
        "duplicates_skipped": duplicates,
        "deleted": stats.deleted,
    }
