"""helpers.orders: events, the state they fold into, the live projection and its worker, under faults.

The fault tests use real processes: a worker process killed with SIGKILL in the
middle of a batch, and a redis-server with AOF killed with SIGKILL mid-write.
"""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import threading
import time
from collections import defaultdict

import pytest
import redis
from mirakuru import TCPExecutor

from helpers import orders
from helpers.orders import ACTIONS, Projection, cents, empty_state, generate, load_snapshot, save_snapshot
from helpers.servers import start_redis_binary, wait_until_loaded
from helpers.streams import EventLog

GROUP = "projector"
pytestmark = pytest.mark.timeout(30)  # a regression that loops forever fails, not hangs
VALID_SEQUENCES = {
    ("placed",),
    ("placed", "cancelled"),
    ("placed", "paid", "shipped"),
    ("placed", "paid", "cancelled"),
}


def wait_until(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def fold(log: EventLog) -> dict:
    state, _ = log.fold(orders.reduce, empty_state())
    return state


def fold_events(events) -> dict:
    state = empty_state()
    for event in events:
        orders.reduce(state, "0-0", event)
    return state


@pytest.fixture
def run_worker(redis_url):
    """``orders.run_worker`` in this process; it installs a SIGTERM handler, put back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)

    def run(log_name: str, consumer: str, **kwargs) -> dict:
        try:
            return orders.run_worker(redis_url, log_name, GROUP, consumer, until_idle=True, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    yield run
    signal.signal(signal.SIGTERM, previous)


# --- generate -------------------------------------------------------------------------------------


def test_generate_is_deterministic_per_seed():
    assert generate(200, seed=7) == generate(200, seed=7)
    assert generate(200, seed=7) != generate(200, seed=8)
    assert generate(200) == generate(200, seed=42)


def test_generate_gives_each_order_a_valid_sequence_of_events_in_order():
    events = generate(500, seed=1)
    by_order: dict[str, list[str]] = defaultdict(list)
    totals: dict[str, set[str]] = defaultdict(set)
    for event in events:
        assert set(event) == {"action", "order_id", "total"}
        assert event["action"] in ACTIONS
        by_order[event["order_id"]].append(event["action"])
        totals[event["order_id"]].add(event["total"])
    assert set(by_order) == {f"ord-{i}" for i in range(500)}
    assert {tuple(steps) for steps in by_order.values()} <= VALID_SEQUENCES
    assert all(steps[0] == "placed" for steps in by_order.values())
    assert all(len(t) == 1 for t in totals.values())  # an order keeps its total
    assert all(500 <= cents(next(iter(t))) < 50_000 for t in totals.values())


def test_generate_interleaves_orders_and_uses_every_action():
    events = generate(300, seed=2)
    assert {e["action"] for e in events} == set(ACTIONS)
    order_of_first_events = [e["order_id"] for e in events[:40]]
    assert order_of_first_events != sorted(order_of_first_events, key=lambda o: int(o[4:]))  # interleaved


def test_generate_of_no_orders_is_empty():
    assert generate(0) == []


# --- cents ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "total, expected",
    [("89.99", 8999), ("0.00", 0), ("0", 0), ("5", 500), ("0.29", 29), ("1.10", 110), ("499.99", 49999)],
)
def test_cents_parses_decimal_amounts(total, expected):
    assert cents(total) == expected


@pytest.mark.parametrize("total", ["oops", "-1.00", "", " ", "1e3", "1,00", "1.2.3", "nan", "-0.5", "+1"])
def test_cents_rejects_what_is_not_a_non_negative_decimal_amount(total):
    with pytest.raises(ValueError):
        cents(total)


@pytest.mark.parametrize("total", ["inf", "Infinity", "1e400"])
def test_cents_rejects_infinite_totals_with_value_error_like_every_other_bad_total(total):
    with pytest.raises(ValueError):
        cents(total)


# --- reduce and fold ------------------------------------------------------------------------------


def test_reduce_tracks_the_latest_action_and_sums_per_action():
    state = fold_events(
        [
            {"action": "placed", "order_id": "a", "total": "10.00"},
            {"action": "placed", "order_id": "b", "total": "2.50"},
            {"action": "paid", "order_id": "a", "total": "10.00"},
            {"action": "cancelled", "order_id": "b", "total": "2.50"},
            {"action": "shipped", "order_id": "a", "total": "10.00"},
        ]
    )
    assert state["status"] == {"a": "shipped", "b": "cancelled"}
    assert state["count"] == {"placed": 2, "paid": 1, "shipped": 1, "cancelled": 1}
    assert state["cents"] == {"placed": 1250, "paid": 1000, "shipped": 1000, "cancelled": 250}


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "refunded", "order_id": "a", "total": "1.00"},
        {"order_id": "a", "total": "1.00"},
        {"action": "placed", "total": "1.00"},
        {"action": "placed", "order_id": "", "total": "1.00"},
        {"action": "placed", "order_id": "a", "total": "oops"},
        {"action": "placed", "order_id": "a"},
    ],
    ids=repr,
)
def test_reduce_rejects_a_bad_event_and_leaves_the_state_unchanged(fields):
    state = empty_state()
    with pytest.raises(ValueError):
        orders.reduce(state, "1-0", fields)
    assert state == empty_state()


def test_empty_state_is_a_fresh_dict_every_time():
    first = empty_state()
    first["count"]["placed"] += 1
    assert empty_state()["count"]["placed"] == 0


def test_fold_of_the_log_equals_the_fold_of_the_events(r):
    log = EventLog(r, "orders")
    events = generate(150, seed=4)
    log.append_many(events, chunk=64)
    state, last_id = log.fold(orders.reduce, empty_state(), page=37)
    assert state == fold_events(events)
    assert last_id == r.xrevrange(log.key, count=1)[0][0]


# --- snapshots ------------------------------------------------------------------------------------


def test_snapshot_plus_replay_of_the_tail_equals_a_full_replay(r):
    log = EventLog(r, "orders")
    ids = log.append_many(generate(200, seed=5))
    cut = ids[int(len(ids) * 0.7)]
    head, head_last = log.fold(orders.reduce, empty_state(), stop=cut)
    assert head_last == cut
    save_snapshot(log, head, cut)

    state, last_id = load_snapshot(log)
    assert (state, last_id) == (head, cut)
    state, _ = log.fold(orders.reduce, state, start="(" + last_id, page=50)
    assert state == fold(log)


def test_load_snapshot_without_one_is_none(r):
    assert load_snapshot(EventLog(r, "orders")) is None


def test_snapshot_lives_under_the_logs_hash_tag(r):
    log = EventLog(r, "orders")
    save_snapshot(log, empty_state(), "0-1")
    assert r.exists(log.derived_key("snapshot")) == 1
    assert log.derived_key("snapshot").startswith(log.key + ":")


# --- Projection -----------------------------------------------------------------------------------


def test_projection_applies_an_event_once_only(r):
    log = EventLog(r, "orders")
    projection = Projection(log)
    fields = {"action": "placed", "order_id": "a", "total": "10.00"}
    entry_id = log.append(fields)
    assert projection.apply(entry_id, fields) is True
    assert projection.apply(entry_id, fields) is False
    state = projection.read()
    assert (state["status"], state["count"]["placed"], state["cents"]["placed"]) == ({"a": "placed"}, 1, 1000)
    assert projection.applied() == 1


def test_projection_keeps_the_status_of_the_latest_event_whatever_the_apply_order(r):
    log = EventLog(r, "orders")
    events = [{"action": a, "order_id": "a", "total": "1.00"} for a in ("placed", "paid", "shipped")]
    ids = log.append_many(events)
    projection = Projection(log)
    for entry_id, fields in reversed(list(zip(ids, events))):
        projection.apply(entry_id, fields)
    assert projection.read() == fold(log)


def test_projection_rejects_a_poison_event_before_writing_anything(r):
    log = EventLog(r, "orders")
    projection = Projection(log)
    with pytest.raises(ValueError):
        projection.apply("1-0", {"action": "placed", "order_id": "a", "total": "oops"})
    assert projection.applied() == 0
    assert projection.read() == empty_state()


def test_projection_after_a_worker_consumed_the_log_equals_the_fold(r, run_worker):
    log = EventLog(r, "orders")
    log.append_many(generate(250, seed=6))
    stats = run_worker("orders", "w1", batch=40)
    projection = Projection(log)
    assert projection.read() == fold(log)
    assert projection.applied() == len(log) == stats["handled"]
    assert stats["duplicates_skipped"] == stats["failed"] == stats["dead_lettered"] == 0
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_a_poison_event_is_dead_lettered_by_run_worker_and_the_rest_is_projected(r, run_worker):
    log = EventLog(r, "orders")
    good = generate(40, seed=9)
    poison = {"action": "placed", "order_id": "ord-x", "total": "oops"}
    events = good[:30] + [poison] + good[30:]
    ids = log.append_many(events)

    stats = run_worker("orders", "w1", batch=16, claim_idle_ms=20, max_deliveries=3, block_ms=100)

    [(_, letter)] = log.dead_letters()
    assert letter["original_id"] == ids[30]
    assert letter["event"] == poison
    assert int(letter["deliveries"]) == 3  # its third and last delivery failed too
    assert "ValueError" in letter["error"] and "oops" in letter["error"]
    assert (stats["dead_lettered"], stats["failed"], stats["handled"]) == (1, 3, len(good))
    projection = Projection(log)
    assert projection.read() == fold_events(good)
    assert projection.applied() == len(good)
    assert r.xpending(log.key, GROUP)["pending"] == 0


# --- fault: a worker process killed with SIGKILL mid-batch ---------------------------------------


def start_and_kill_mid_batch(redis_url: str, log: EventLog, *, batch: int) -> int:
    """Start a worker process, kill -9 it in the middle of a batch; returns how many it had applied."""
    projection = Projection(log)
    spawn = multiprocessing.get_context("spawn")
    victim = spawn.Process(
        target=orders.run_worker,
        args=(redis_url, "orders:crash", GROUP, "worker-a"),
        kwargs={"handler_delay_ms": 8, "batch": batch, "claim_idle_ms": 60_000, "block_ms": 200},
        daemon=True,
    )
    victim.start()
    try:
        # past the first batch, and well inside the second: its entries are read, some applied, none acked
        wait_until(
            lambda: batch + 5 <= projection.applied() <= 2 * batch - 15 or not victim.is_alive(),
            timeout=60,
            what="the worker to be in the middle of its second batch",
        )
        assert victim.is_alive(), f"the worker ended before it could be killed (exit {victim.exitcode})"
        victim.kill()  # SIGKILL: no clean-up, no XACK
        victim.join(timeout=10)
        assert victim.exitcode == -signal.SIGKILL
    finally:
        if victim.is_alive():
            victim.kill()
            victim.join(timeout=10)
    return projection.applied()


@pytest.fixture
def crash_log(r) -> EventLog:
    log = EventLog(r, "orders:crash")
    log.append_many(generate(130, seed=3))
    assert len(log) > 300
    return log


def assert_every_event_applied_exactly_once(r, log: EventLog) -> None:
    projection = Projection(log)
    assert projection.read() == fold(log)
    assert projection.applied() == len(log)
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_a_worker_killed_mid_batch_leaves_pending_entries_another_worker_finishes_exactly_once(
    r, redis_url, crash_log, run_worker
):
    batch = 50
    applied_at_kill = start_and_kill_mid_batch(redis_url, crash_log, batch=batch)
    assert applied_at_kill < len(crash_log)
    pending = r.xpending(crash_log.key, GROUP)
    assert [c["name"] for c in pending["consumers"]] == ["worker-a"]
    assert pending["pending"] >= applied_at_kill - batch > 0  # applied but never acknowledged

    stats = run_worker("orders:crash", "worker-b", claim_idle_ms=50, batch=batch)

    assert stats["claimed"] >= pending["pending"]
    assert stats["duplicates_skipped"] == applied_at_kill - batch  # applied before the kill, not acked
    assert stats["pending_reread"] == 0
    assert_every_event_applied_exactly_once(r, crash_log)


def test_a_worker_killed_mid_batch_and_restarted_under_its_name_rereads_its_own_pending_first(
    r, redis_url, crash_log, run_worker
):
    batch = 50
    applied_at_kill = start_and_kill_mid_batch(redis_url, crash_log, batch=batch)
    left = r.xpending(crash_log.key, GROUP)["pending"]
    assert left > 0

    stats = run_worker("orders:crash", "worker-a", claim_idle_ms=60_000, batch=batch)

    assert stats["pending_reread"] == left
    assert stats["claimed"] == 0
    assert stats["duplicates_skipped"] == applied_at_kill - batch
    assert_every_event_applied_exactly_once(r, crash_log)


# --- fault: redis-server with appendfsync always, killed with SIGKILL mid-write ----------------------


def test_every_event_acknowledged_by_an_aof_always_redis_survives_its_kill_9():
    server = start_redis_binary(extra_args=("--appendonly", "yes", "--appendfsync", "always"))
    executor, data_dir = server.executor, server.data_dir
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    assert port != 6379
    restarted = None
    acknowledged: list[str] = []
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce():
        client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)
        log = EventLog(client, "orders")
        try:
            n = 0
            while not stop.is_set():
                acknowledged.append(log.append({"action": "placed", "order_id": f"ord-{n}", "total": "1.00"}))
                n += 1
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the server died under us: the last XADD was never acknowledged
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failure.append(error)
        finally:
            client.close()

    producer = threading.Thread(target=produce, daemon=True)
    try:
        producer.start()
        wait_until(lambda: len(acknowledged) >= 300 or not producer.is_alive(), timeout=30, what="300 XADDs")
        executor.kill(sig=signal.SIGKILL)  # kill -9 while the producer is still writing
        producer.join(timeout=30)
        assert not producer.is_alive()
        assert not failure, failure
        assert len(acknowledged) >= 300

        restarted = TCPExecutor(executor.command_parts, host="127.0.0.1", port=port, timeout=30)
        restarted.start()  # same port, same --dir: it loads the AOF
        wait_until_loaded(server.url)  # the port opens before the AOF is loaded (LOADING until then)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            log = EventLog(client, "orders")
            stored = [entry_id for entry_id, _ in log.replay()]
        finally:
            client.close()
        missing = [entry_id for entry_id in acknowledged if entry_id not in set(stored)]
        assert missing == [], f"{len(missing)} acknowledged events lost, first {missing[:3]}"
        assert stored[: len(acknowledged)] == acknowledged
        assert len(stored) - len(acknowledged) in (0, 1)  # at most the one in flight at the kill
    finally:
        stop.set()
        if restarted is not None:
            restarted.stop()
        if executor.running():
            executor.kill(sig=signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
