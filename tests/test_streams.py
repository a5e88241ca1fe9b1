"""helpers.streams: EventLog, ensure_group, Worker, apply_once and validate_event, on a real Redis."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter

import pytest
import redis
from redis.crc import key_slot

from helpers.clients import client_from_url
from helpers.streams import (
    AppendInterrupted,
    EventLog,
    Worker,
    WorkerStats,
    apply_once,
    ensure_group,
    validate_event,
)

GROUP = "svc"
pytestmark = pytest.mark.timeout(30)  # a regression that loops forever fails, not hangs


def workshop_keys(r) -> list[str]:
    return sorted(r.scan_iter(match="workshop:*", count=1_000))


def ids_of(entries) -> list[str]:
    return [entry_id for entry_id, _ in entries]


def wait_until(condition, *, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def pending_by_consumer(r, log: EventLog, group: str = GROUP) -> dict[str, int]:
    info = r.xpending(log.key, group)
    return {c["name"]: int(c["pending"]) for c in info["consumers"]}


@pytest.fixture
def log(r) -> EventLog:
    return EventLog(r, "orders")


@pytest.fixture
def filled(log) -> tuple[EventLog, list[str]]:
    """A log of 12 events ``{"n": i}``."""
    return log, log.append_many([{"n": i} for i in range(12)])


def read_as(r, log: EventLog, consumer: str, count: int, group: str = GROUP) -> list[str]:
    """XREADGROUP ``count`` new entries as ``consumer`` and never acknowledge them (a consumer that dies)."""
    ensure_group(r, log.key, group)
    reply = r.xreadgroup(group, consumer, {log.key: ">"}, count=count)
    return ids_of(reply[0][1]) if reply else []


# --- validate_event -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"action": "placed"},
        {"action": "placed", "order_id": "ord-1", "total": "89.99"},
        {"n": 0, "x": -3, "big": 2**63 - 1, "f": 1.5, "neg": -0.25, "empty": ""},
    ],
    ids=["one-field", "strings", "numbers"],
)
def test_validate_event_accepts_flat_mappings_of_strings_and_finite_numbers(event):
    assert validate_event(event) == event


def test_validate_event_returns_a_copy_not_the_callers_mapping():
    event = {"a": "1"}
    checked = validate_event(event)
    checked["b"] = "2"
    assert event == {"a": "1"}


@pytest.mark.parametrize(
    "event",
    [
        {"a": {"nested": "dict"}},
        {"a": ["a", "list"]},
        {"a": ("a", "tuple")},
        {"a": None},
        {"a": True},
        {"a": False},
        {"a": math.nan},
        {"a": math.inf},
        {"a": -math.inf},
        {"a": b"bytes"},
        {},
        {"": "empty field name"},
        {1: "int field name"},
        {None: "None field name"},
        [("a", "1")],
        "a=1",
        None,
        42,
    ],
    ids=repr,
)
def test_validate_event_rejects_anything_but_a_flat_non_empty_mapping(event):
    with pytest.raises(ValueError):
        validate_event(event)


@pytest.mark.parametrize("event", [{"a": {"x": 1}}, {"a": None}, {"a": True}, {"a": math.nan}, {}, {"": "x"}])
def test_append_of_a_bad_event_writes_nothing(r, log, event):
    with pytest.raises(ValueError):
        log.append(event)
    assert r.exists(log.key) == 0
    assert workshop_keys(r) == []


def test_append_many_with_one_bad_event_in_the_middle_writes_nothing(r, log):
    events = [{"n": i} for i in range(2_500)]
    events[1_700] = {"n": [1, 2]}
    with pytest.raises(ValueError):
        log.append_many(events, chunk=100)
    assert r.exists(log.key) == 0
    assert len(log) == 0


def test_append_many_consumes_a_generator_once_and_validates_it_all_first(r, log):
    def events():
        yield {"n": 1}
        yield {"n": None}

    with pytest.raises(ValueError):
        log.append_many(events())
    assert r.exists(log.key) == 0


# --- EventLog: names, keys, argument checks -------------------------------------------------------


@pytest.mark.parametrize("name", ["", " ", "\t\n", "{orders}", "a{b", "a}b", None, 7, b"orders"], ids=repr)
def test_event_log_rejects_empty_blank_braced_or_non_string_names(r, name):
    with pytest.raises(ValueError):
        EventLog(r, name)


def test_event_log_key_is_under_the_prefix_with_the_name_as_hash_tag(r, log):
    assert log.key == "workshop:stream:{orders}"
    assert "workshop:stream:{orders}" in repr(log)


def test_log_dead_letters_and_derived_keys_share_one_hash_tag_and_slot(r):
    log = EventLog(r, "orders:eu")
    keys = [log.key, log.dead_key, log.derived_key("projection", "status"), log.derived_key("snapshot")]
    assert all(k.startswith("workshop:stream:{orders:eu}") for k in keys)
    assert len(set(keys)) == len(keys)
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{orders:eu}")}


@pytest.mark.parametrize("parts", [(), ("",), ("ok", ""), (None,), (3,)], ids=repr)
def test_derived_key_rejects_empty_or_non_string_parts(log, parts):
    with pytest.raises(ValueError):
        log.derived_key(*parts)


def test_creating_a_log_writes_nothing(r):
    EventLog(r, "nothing")
    assert workshop_keys(r) == []


@pytest.mark.parametrize("chunk", [0, -1, 1.5, True, "10", None], ids=repr)
def test_append_many_rejects_a_chunk_that_is_not_a_positive_integer(r, log, chunk):
    with pytest.raises(ValueError):
        log.append_many([{"n": 1}], chunk=chunk)
    assert r.exists(log.key) == 0


@pytest.mark.parametrize("page", [0, -5, 2.0, True], ids=repr)
def test_replay_and_fold_reject_a_page_that_is_not_a_positive_integer(filled, page):
    log, _ = filled
    with pytest.raises(ValueError):
        list(log.replay(page=page))
    with pytest.raises(ValueError):
        log.fold(lambda s, i, f: s, None, page=page)


@pytest.mark.parametrize("maxlen", [-1, -100, 1.5, True, "10"], ids=repr)
def test_append_rejects_a_negative_or_non_integer_maxlen_and_writes_nothing(r, log, maxlen):
    with pytest.raises(ValueError):
        log.append({"n": 1}, maxlen=maxlen)
    assert r.exists(log.key) == 0


def test_append_with_maxlen_zero_never_returns_the_id_of_an_event_it_dropped(r, log):
    """XADD ... MAXLEN ~ 0 trims the new entry away at once; refusing maxlen=0 (ValueError) is fine too."""
    try:
        entry_id = log.append({"n": 1}, maxlen=0)
    except ValueError:
        assert r.exists(log.key) == 0
        return
    assert r.xrange(log.key, min=entry_id, max=entry_id), (
        f"append(maxlen=0) acknowledged {entry_id}, which is not in the log (XLEN {r.xlen(log.key)})"
    )


@pytest.mark.parametrize("maxlen", [-1, 2.5, True], ids=repr)
def test_trim_rejects_a_negative_or_non_integer_maxlen(filled, maxlen):
    log, ids = filled
    with pytest.raises(ValueError):
        log.trim(maxlen=maxlen)
    assert len(log) == len(ids)


@pytest.mark.parametrize("kwargs", [{}, {"maxlen": 5, "minid": "0-1"}], ids=["neither", "both"])
def test_trim_needs_exactly_one_of_maxlen_and_minid(filled, kwargs):
    log, ids = filled
    with pytest.raises(ValueError, match="exactly one"):
        log.trim(**kwargs)
    assert len(log) == len(ids)


@pytest.mark.parametrize("minid", ["", 5], ids=repr)
def test_trim_rejects_an_empty_or_non_string_minid(filled, minid):
    log, ids = filled
    with pytest.raises(ValueError):
        log.trim(minid=minid)
    assert len(log) == len(ids)


# --- EventLog: append, replay, fold, trim ---------------------------------------------------------


def stream_id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def test_append_returns_strictly_increasing_ids_and_stores_the_fields_as_strings(r, log):
    ids = [log.append({"n": i, "f": 0.5, "s": "x"}) for i in range(50)]
    assert [stream_id(i) for i in ids] == sorted({stream_id(i) for i in ids})
    assert len(log) == 50
    assert r.xrange(log.key, count=1)[0] == (ids[0], {"n": "0", "f": "0.5", "s": "x"})


@pytest.mark.parametrize("chunk", [1, 7, 100, 1_000])
def test_append_many_returns_one_id_per_event_in_log_order(r, log, chunk):
    events = [{"n": i} for i in range(250)]
    ids = log.append_many(events, chunk=chunk)
    assert len(ids) == len(events) == len(log)
    assert [stream_id(i) for i in ids] == sorted({stream_id(i) for i in ids})
    assert r.xrange(log.key) == [(i, {"n": str(n)}) for n, i in enumerate(ids)]


def test_append_many_that_cannot_get_a_connection_says_nothing_was_sent(r, log, monkeypatch):
    if not isinstance(r, redis.Redis):
        pytest.skip("a cluster client appends through its pipeline")

    def closed(*args, **kwargs):
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(r.connection_pool, "get_connection", closed)
    with pytest.raises(AppendInterrupted) as raised:
        log.append_many([{"n": 1}, {"n": 2}])
    monkeypatch.undo()
    assert raised.value.ids == [] and raised.value.unknown == 0 and raised.value.total == 2
    assert len(log) == 0


def test_append_many_of_nothing_returns_no_ids_and_writes_nothing(r, log):
    assert log.append_many([]) == []
    assert r.exists(log.key) == 0


def test_len_of_a_missing_log_is_zero(log):
    assert len(log) == 0


@pytest.mark.parametrize("page", [1, 5, 6, 12, 13, 1_000], ids=lambda p: f"page={p}")
def test_replay_yields_every_entry_once_in_order_whatever_the_page_size(filled, page):
    log, ids = filled
    entries = list(log.replay(page=page))
    assert ids_of(entries) == ids
    assert [fields["n"] for _, fields in entries] == [str(i) for i in range(12)]


def test_replay_pages_with_as_many_round_trips_as_needed(r, filled):
    """12 entries, pages of 4: three full pages, then one empty read that ends the replay."""
    log, ids = filled
    calls = []
    original = r.xrange

    def counting_xrange(*args, **kwargs):
        calls.append(kwargs.get("min"))
        return original(*args, **kwargs)

    r.xrange = counting_xrange
    try:
        assert ids_of(log.replay(page=4)) == ids
    finally:
        del r.xrange
    assert calls == ["-", "(" + ids[3], "(" + ids[7], "(" + ids[11]]


def test_replay_from_an_exclusive_start_skips_that_entry(filled):
    log, ids = filled
    assert ids_of(log.replay("(" + ids[4], page=3)) == ids[5:]
    assert ids_of(log.replay(ids[4], page=3)) == ids[4:]


def test_replay_between_start_and_stop_is_inclusive_unless_marked_exclusive(filled):
    log, ids = filled
    assert ids_of(log.replay(ids[2], ids[6], page=2)) == ids[2:7]
    assert ids_of(log.replay("(" + ids[2], "(" + ids[6], page=2)) == ids[3:6]


def test_replay_of_a_missing_log_yields_nothing(log):
    assert list(log.replay()) == []


def test_fold_returns_the_folded_state_and_the_last_id(filled):
    log, ids = filled

    def add(total, entry_id, fields):
        return total + int(fields["n"])

    assert log.fold(add, 0, page=5) == (sum(range(12)), ids[-1])
    assert log.fold(add, 100, start="(" + ids[9]) == (100 + 10 + 11, ids[-1])
    assert log.fold(add, 0, stop=ids[2]) == (0 + 1 + 2, ids[2])


def test_fold_sees_entries_in_log_order_with_their_ids(filled):
    log, ids = filled
    seen, last = log.fold(lambda acc, i, f: [*acc, (i, f["n"])], [], page=5)
    assert seen == [(i, str(n)) for n, i in enumerate(ids)]
    assert last == ids[-1]


def test_fold_of_an_empty_range_returns_the_initial_state_and_no_id(filled):
    log, ids = filled
    assert log.fold(lambda s, i, f: s + 1, 0, start="(" + ids[-1]) == (0, None)


def test_trim_by_exact_maxlen_keeps_the_newest_entries(r, log):
    ids = log.append_many([{"n": i} for i in range(300)])
    assert log.trim(maxlen=120, approximate=False) == 180
    assert len(log) == 120
    assert ids_of(r.xrange(log.key)) == ids[-120:]


def test_trim_by_approximate_maxlen_keeps_at_least_maxlen_entries(r, log):
    ids = log.append_many([{"n": i} for i in range(1_000)])
    trimmed = log.trim(maxlen=120)
    assert trimmed == 1_000 - len(log)
    assert len(log) >= 120
    assert ids_of(r.xrange(log.key)) == ids[-len(log) :]


def test_trim_to_maxlen_zero_empties_the_log(filled):
    log, ids = filled
    assert log.trim(maxlen=0, approximate=False) == len(ids)
    assert len(log) == 0


def test_trim_by_minid_keeps_that_entry_and_every_later_one(r, log):
    ids = log.append_many([{"n": i} for i in range(300)])
    assert log.trim(minid=ids[200], approximate=False) == 200
    assert ids_of(r.xrange(log.key)) == ids[200:]


def test_append_with_maxlen_caps_the_log_approximately(r, log):
    for i in range(1_000):
        log.append({"n": i}, maxlen=100)
    assert 100 <= len(log) < 1_000
    assert r.xrevrange(log.key, count=1)[0][1] == {"n": "999"}


def test_delete_removes_the_log_and_its_dead_letters(r, log):
    log.append({"n": 1})
    r.xadd(log.dead_key, {"event": '{"n": "2"}', "original_id": "0-1"})
    log.delete()
    assert r.exists(log.key, log.dead_key) == 0


# --- dead letters ---------------------------------------------------------------------------------


def plant_dead_letter(r, log: EventLog, fields: dict, original_id: str = "1-0") -> str:
    letter = {
        "event": json.dumps(fields),
        "original_id": original_id,
        "group": "g",
        "deliveries": 6,
        "error": "boom",
    }
    return r.xadd(log.dead_key, letter)


def test_requeue_dead_letter_appends_its_original_fields_and_removes_it(r, log):
    log.append({"n": 0})
    dead_id = plant_dead_letter(r, log, {"action": "placed", "total": "oops"})
    other = plant_dead_letter(r, log, {"action": "paid", "total": "1.00"})
    new_id = log.requeue_dead_letter(dead_id)
    assert r.xrange(log.key)[-1] == (new_id, {"action": "placed", "total": "oops"})
    assert len(log) == 2
    assert ids_of(log.dead_letters()) == [other]


def test_requeue_dead_letter_with_fixed_fields_appends_the_fix(r, log):
    dead_id = plant_dead_letter(r, log, {"action": "placed", "total": "oops"})
    new_id = log.requeue_dead_letter(dead_id, {"action": "placed", "total": "20.00"})
    assert r.xrange(log.key) == [(new_id, {"action": "placed", "total": "20.00"})]
    assert log.dead_letters() == []


def test_requeue_dead_letter_with_a_bad_fix_changes_nothing(r, log):
    dead_id = plant_dead_letter(r, log, {"action": "placed"})
    with pytest.raises(ValueError):
        log.requeue_dead_letter(dead_id, {"action": {"nested": 1}})
    assert r.exists(log.key) == 0
    assert ids_of(log.dead_letters()) == [dead_id]


def test_requeue_of_an_unknown_dead_letter_raises_key_error_and_changes_nothing(r, log):
    dead_id = plant_dead_letter(r, log, {"action": "placed"})
    with pytest.raises(KeyError):
        log.requeue_dead_letter("1-1")
    with pytest.raises(KeyError):
        EventLog(r, "empty").requeue_dead_letter(dead_id)
    assert r.exists(log.key) == 0
    assert ids_of(log.dead_letters()) == [dead_id]


def test_requeue_dead_letter_keeps_original_fields_whose_names_start_with_an_underscore(r, log):
    """validate_event accepts ``_trace``; a dead letter of such an event must come back with it."""
    ensure_group(r, log.key, GROUP)
    log.append({"action": "placed", "_trace": "abc"})

    def always_fails(entry_id, fields):
        raise RuntimeError("down")

    Worker(log, GROUP, "w", always_fails, max_deliveries=1, claim_idle_ms=0, block_ms=50).run(until_idle=True)
    [(dead_id, _)] = log.dead_letters()
    log.requeue_dead_letter(dead_id)
    assert r.xrange(log.key)[-1][1] == {"action": "placed", "_trace": "abc"}


def pausing_client(redis_url: str, barrier: threading.Barrier, paused: list[bool]):
    """A real client whose transactions, once, wait for a second client right after reading a dead letter.

    This forces the interleaving two operators hit when they requeue the same
    dead letter at the same moment: both read it, then both write. The read
    happens on the transaction's pipeline (after WATCH), so the pause is put
    there; ``paused`` records that it really happened.
    """
    client = client_from_url(redis_url)
    make_pipeline = client.pipeline

    def pipeline(*args, **kwargs):
        pipe = make_pipeline(*args, **kwargs)
        read = pipe.xrange

        def xrange(name, *args, **kwargs):
            found = read(name, *args, **kwargs)
            if name.endswith(":dead-letters") and not paused:
                paused.append(True)
                barrier.wait(timeout=5)
            return found

        pipe.xrange = xrange
        return pipe

    client.pipeline = pipeline
    return client


def test_requeueing_one_dead_letter_twice_at_once_appends_it_only_once(r, redis_url, log):
    dead_id = plant_dead_letter(r, log, {"action": "placed"})
    barrier = threading.Barrier(2)
    outcomes: list[object] = []
    pauses: list[list[bool]] = []

    def requeue():
        paused: list[bool] = []
        pauses.append(paused)
        client = pausing_client(redis_url, barrier, paused)
        try:
            outcomes.append(EventLog(client, "orders").requeue_dead_letter(dead_id))
        except KeyError as error:
            outcomes.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=requeue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert pauses == [[True], [True]]  # both read the dead letter before either wrote
    assert len(outcomes) == 2
    assert log.dead_letters() == []
    assert len(log) == 1, f"the dead letter was requeued {len(log)} times: {outcomes}"
    assert sum(isinstance(o, KeyError) for o in outcomes) == 1


# --- ensure_group ---------------------------------------------------------------------------------


def test_ensure_group_creates_the_stream_and_group_once(r, log):
    assert ensure_group(r, log.key, GROUP) is True
    assert ensure_group(r, log.key, GROUP) is False
    assert r.exists(log.key) == 1
    assert [g["name"] for g in r.xinfo_groups(log.key)] == [GROUP]


def test_ensure_group_raises_other_errors(r, log):
    r.set(log.key, "not a stream")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        ensure_group(r, log.key, GROUP)


def test_a_group_created_at_dollar_never_sees_entries_written_before_it(r, log):
    first = log.append({"n": 1})
    ensure_group(r, log.key, "late", start_id="$")
    ensure_group(r, log.key, "from-start", start_id="0")
    assert r.xreadgroup("late", "c", {log.key: ">"}, count=10) == []
    assert ids_of(r.xreadgroup("from-start", "c", {log.key: ">"}, count=10)[0][1]) == [first]
    second = log.append({"n": 2})
    assert ids_of(r.xreadgroup("late", "c", {log.key: ">"}, count=10)[0][1]) == [second]


# --- Worker ---------------------------------------------------------------------------------------


class Recorder:
    """A handler that records every call and fails for the IDs in ``fail``."""

    def __init__(self, fail: set[str] = frozenset()):
        self.calls: list[tuple[str, dict]] = []
        self.fail = set(fail)
        self.lock = threading.Lock()

    def __call__(self, entry_id: str, fields: dict) -> None:
        with self.lock:
            self.calls.append((entry_id, fields))
        if entry_id in self.fail:
            raise RuntimeError(f"cannot handle {entry_id}")

    def ids(self) -> list[str]:
        with self.lock:
            return [i for i, _ in self.calls]


def test_worker_handles_every_entry_once_and_acknowledges_it(r, log):
    ids = log.append_many([{"n": i} for i in range(230)])
    handler = Recorder()
    stats = Worker(log, GROUP, "w", handler, batch=50, block_ms=100).run(until_idle=True)
    assert handler.ids() == ids
    assert handler.calls[7][1] == {"n": "7"}
    assert isinstance(stats, WorkerStats)
    assert (stats.handled, stats.failed, stats.dead_lettered, stats.deleted) == (230, 0, 0, 0)
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_worker_on_an_empty_log_with_until_idle_returns_at_once_and_creates_its_group(r, log):
    stats = Worker(log, GROUP, "w", Recorder(), block_ms=100).run(until_idle=True)
    assert stats.handled == 0
    assert [g["name"] for g in r.xinfo_groups(log.key)] == [GROUP]


def test_worker_start_id_dollar_skips_what_was_written_before_its_group(r, log):
    log.append({"n": 1})
    handler = Recorder()
    Worker(log, GROUP, "w", handler, start_id="$", block_ms=100).run(until_idle=True)
    assert handler.calls == []


def test_worker_rereads_its_own_pending_entries_first_after_a_restart(r, log):
    ids = log.append_many([{"n": i} for i in range(25)])
    taken = read_as(r, log, "w", 15)  # "w" read 15 and died before acknowledging
    assert taken == ids[:15]
    handler = Recorder()
    worker = Worker(log, GROUP, "w", handler, batch=4, block_ms=100, claim_idle_ms=60_000)
    stats = worker.run(until_idle=True)
    assert handler.ids() == ids  # its own pending ones first, then the new ones
    assert stats.pending_reread == 15
    assert stats.claimed == 0
    assert stats.handled == 25
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_worker_does_not_claim_another_consumers_entries_before_claim_idle_ms(r, log):
    log.append_many([{"n": i} for i in range(5)])
    read_as(r, log, "dead", 5)
    worker = Worker(log, GROUP, "alive", Recorder(), claim_idle_ms=60_000)
    assert worker.claim_stale() == 0
    assert pending_by_consumer(r, log) == {"dead": 5}


def test_worker_claims_every_stale_entry_of_a_dead_consumer_even_more_than_one_batch(r, log):
    ids = log.append_many([{"n": i} for i in range(40)])
    taken = read_as(r, log, "dead", 35)
    handler = Recorder()
    stats = Worker(log, GROUP, "alive", handler, batch=10, claim_idle_ms=50, block_ms=100).run(
        until_idle=True
    )
    assert sorted(handler.ids()) == sorted(ids)
    assert Counter(handler.ids()) == Counter(ids)  # each once
    assert stats.claimed == len(taken) == 35
    assert stats.handled == 40
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_claim_stale_keeps_its_cursor_so_it_gets_past_the_first_batch(r, log):
    """Entries that stay pending (the handler fails) would be claimed again and again from 0-0."""
    ids = log.append_many([{"n": i} for i in range(25)])
    read_as(r, log, "dead", 25)
    handler = Recorder(fail=set(ids))
    worker = Worker(log, GROUP, "alive", handler, batch=10, claim_idle_ms=0)
    assert [worker.claim_stale() for _ in range(3)] == [10, 10, 5]
    assert handler.ids() == ids
    assert worker.stats.claimed == 25
    assert pending_by_consumer(r, log) == {"alive": 25}


def test_a_poison_entry_is_dead_lettered_after_max_deliveries_and_the_rest_is_handled(r, log):
    ids = log.append_many([{"n": i, "kind": "ok"} for i in range(10)])
    poison = ids[4]
    handler = Recorder(fail={poison})
    worker = Worker(log, GROUP, "w", handler, batch=3, block_ms=100, claim_idle_ms=20, max_deliveries=3)
    stats = worker.run(until_idle=True)

    calls = Counter(handler.ids())
    assert calls[poison] == 3
    assert all(calls[i] == 1 for i in ids if i != poison)
    [(_, letter)] = log.dead_letters()
    assert letter["event"] == {"n": "4", "kind": "ok"}
    assert letter["original_id"] == poison
    assert letter["group"] == GROUP
    assert int(letter["deliveries"]) == 3  # dead-lettered when its third delivery failed, not on a fourth
    assert f"RuntimeError: cannot handle {poison}" in letter["error"]
    assert (stats.handled, stats.failed, stats.dead_lettered) == (9, 3, 1)
    assert r.xpending(log.key, GROUP)["pending"] == 0
    assert len(log) == 10  # the log itself is never rewritten


def test_a_poison_entry_left_by_another_consumer_is_dead_lettered_without_its_error(r, log):
    ids = log.append_many([{"n": i} for i in range(3)])
    read_as(r, log, "dead", 3)
    for _ in range(3):  # three earlier deliveries that all failed somewhere else
        r.xclaim(log.key, GROUP, "dead", 0, [ids[1]])
    handler = Recorder()
    stats = Worker(log, GROUP, "w", handler, claim_idle_ms=0, max_deliveries=3, block_ms=100).run(
        until_idle=True
    )
    assert sorted(handler.ids()) == [ids[0], ids[2]]
    [(_, letter)] = log.dead_letters()
    assert letter["original_id"] == ids[1]
    assert letter["error"] == "failed on another consumer"
    assert stats.dead_lettered == 1
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_a_dead_letter_requeued_with_a_fix_is_handled_by_the_group(r, log):
    ids = log.append_many([{"total": "1"}, {"total": "oops"}, {"total": "3"}])
    seen = []

    def handler(entry_id, fields):
        seen.append(int(fields["total"]))

    Worker(log, GROUP, "w", handler, claim_idle_ms=0, max_deliveries=2, block_ms=100).run(until_idle=True)
    [(dead_id, letter)] = log.dead_letters()
    assert letter["original_id"] == ids[1]
    log.requeue_dead_letter(dead_id, {"total": "2"})
    Worker(log, GROUP, "w", handler, claim_idle_ms=0, block_ms=100).run(until_idle=True)
    assert sorted(seen) == [1, 2, 3]
    assert log.dead_letters() == []
    assert r.xpending(log.key, GROUP)["pending"] == 0


@pytest.mark.parametrize("consumer", ["w", "other"], ids=["own-pending", "claimed"])
def test_entries_deleted_or_trimmed_while_pending_are_acknowledged_not_handled(r, log, consumer):
    ids = log.append_many([{"n": i} for i in range(8)])
    read_as(r, log, "w", 8)
    r.xdel(log.key, ids[3], ids[5])
    assert log.trim(minid=ids[2], approximate=False) == 2  # ids[0], ids[1]
    gone = {ids[0], ids[1], ids[3], ids[5]}
    handler = Recorder()
    stats = Worker(log, GROUP, consumer, handler, claim_idle_ms=0, block_ms=100).run(until_idle=True)
    assert sorted(handler.ids()) == sorted(set(ids) - gone)
    assert all(fields for _, fields in handler.calls)
    assert stats.deleted == 4
    assert stats.handled == 4
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_stop_from_another_thread_ends_a_blocking_run(r, log):
    worker = Worker(log, GROUP, "w", Recorder(), block_ms=200)
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("stats", worker.run()), daemon=True)
    thread.start()
    wait_until(lambda: r.exists(log.key) and r.xinfo_groups(log.key), what="the worker's group")
    ids = log.append_many([{"n": i} for i in range(5)])
    wait_until(lambda: worker.handler.ids() == ids, what="the new entries to be handled")
    worker.stop()
    thread.join(timeout=5)  # generous bound; stop takes effect within one block_ms
    assert not thread.is_alive(), "run() did not return after stop()"
    assert outcome["stats"].handled == 5
    assert r.xpending(log.key, GROUP)["pending"] == 0


def test_stop_before_run_makes_run_return_without_handling(r, log):
    log.append({"n": 1})
    handler = Recorder()
    worker = Worker(log, GROUP, "w", handler, block_ms=100)
    worker.stop()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert handler.calls == []


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"group": ""}, ValueError),
        ({"group": None}, ValueError),
        ({"consumer": ""}, ValueError),
        ({"consumer": 3}, ValueError),
        ({"handler": None}, TypeError),
        ({"handler": "print"}, TypeError),
        ({"batch": 0}, ValueError),
        ({"batch": -1}, ValueError),
        ({"batch": 2.5}, ValueError),
        ({"batch": True}, ValueError),
        ({"block_ms": 0}, ValueError),
        ({"claim_idle_ms": -1}, ValueError),
        ({"max_deliveries": 0}, ValueError),
        ({"max_deliveries": "5"}, ValueError),
    ],
    ids=repr,
)
def test_worker_rejects_bad_arguments_before_touching_redis(r, log, kwargs, error):
    args = {"group": GROUP, "consumer": "w", "handler": Recorder(), **kwargs}
    with pytest.raises(error):
        Worker(log, args.pop("group"), args.pop("consumer"), args.pop("handler"), **args)
    assert workshop_keys(r) == []


# --- apply_once -----------------------------------------------------------------------------------


def test_apply_once_applies_then_skips_the_same_id(r, log):
    done, total = log.derived_key("applied"), log.derived_key("revenue")
    effect = lambda pipe: pipe.incrby(total, 8999)  # noqa: E731
    assert apply_once(r, done, "1700000000000-0", effect) is True
    assert apply_once(r, done, "1700000000000-0", effect) is False
    assert r.get(total) == "8999"
    assert apply_once(r, done, "1700000000000-1", effect) is True
    assert r.get(total) == str(2 * 8999)
    assert r.smembers(done) == {"1700000000000-0", "1700000000000-1"}


def test_apply_once_applies_an_effect_of_several_commands_together(r, log):
    done, a, b = log.derived_key("applied"), log.derived_key("a"), log.derived_key("b")

    def effect(pipe):
        pipe.incr(a)
        pipe.hset(b, "k", "v")

    assert apply_once(r, done, "1-0", effect) is True
    assert apply_once(r, done, "1-0", effect) is False
    assert (r.get(a), r.hgetall(b)) == ("1", {"k": "v"})


def test_apply_once_from_many_threads_applies_each_id_exactly_once(r, redis_url, log):
    done, total = log.derived_key("applied"), log.derived_key("count")
    n_threads, entry_ids = 8, [f"1-{i}" for i in range(25)]
    barrier = threading.Barrier(n_threads)
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def race():
        client = client_from_url(redis_url)
        try:
            for entry_id in entry_ids:
                barrier.wait(timeout=10)
                applied = apply_once(client, done, entry_id, lambda pipe: pipe.incr(total))
                with lock:
                    results.append((entry_id, applied))
        finally:
            client.close()

    threads = [threading.Thread(target=race) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == n_threads * len(entry_ids)
    applied = Counter(entry_id for entry_id, ok in results if ok)
    assert applied == dict.fromkeys(entry_ids, 1)
    assert r.get(total) == str(len(entry_ids))
    assert r.scard(done) == len(entry_ids)
