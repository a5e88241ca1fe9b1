"""helpers.production.blocking, lua/busy_loop.lua and lua/write_then_spin.lua: a slow script blocks every
client, BUSY, SCRIPT KILL, and UNKILLABLE once the script has written.

Everything that blocks runs on a throwaway server of its own. The latency checks
are properties of blocking (a ping sent during the script waited for it), not
speed thresholds.
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import pytest
import redis

from helpers import clients, scripts
from helpers.production import blocking

BUSY = "BUSY "  # then "Redis is busy running a script..." (or "Valkey is busy ...")
WRITE_THEN_SPIN = "write_then_spin"


@pytest.fixture(scope="module")
def private():
    server = blocking.start_server()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()
    server.stop()


def test_busy_loop_holds_the_server_for_the_time_asked(private):
    started = time.perf_counter()
    elapsed_ms, loops, clock = private.eval(scripts.source("busy_loop"), 0, 300)
    waited_ms = (time.perf_counter() - started) * 1000
    assert elapsed_ms >= 300
    assert loops > 0
    assert 300 <= waited_ms < 300 + 1_000  # held for the time asked, not until busy-reply-threshold
    assert clock == blocking.script_clocks(private)["busy_loop_clock"]


def test_time_stands_still_in_a_script_from_redis_7_2_and_on_valkey_and_busy_loop_uses_os_clock_there(
    private,
):
    clocks = blocking.script_clocks(private)
    product, version = clients.product_version(private)
    frozen_expected = product == "Valkey" or tuple(int(p) for p in version.split(".")[:2]) >= (7, 2)
    assert clocks["time_frozen"] == frozen_expected, (product, version, clocks)
    if clocks["time_frozen"]:
        assert clocks["has_os_clock"]  # else busy_loop.lua could not time itself here
        assert clocks["busy_loop_clock"] == "os.clock"
    else:
        assert clocks["time_moved_us"] > 0


def test_busy_loop_writes_nothing(private):
    before = private.dbsize()
    private.eval(scripts.source("busy_loop"), 0, 10)
    assert private.dbsize() == before


@pytest.mark.parametrize("bad", ["x", "-5", "1.5", "60001", "", "nan", "inf"])
def test_busy_loop_called_with_eval_and_a_bad_duration_errors(r, bad):
    with pytest.raises(redis.ResponseError) as raised:
        r.eval(scripts.source("busy_loop"), 0, bad)
    assert "busy_loop: ARGV[1] (milliseconds) must be an integer" in str(raised.value)


def test_busy_loop_without_a_duration_or_with_a_key_errors(r):
    with pytest.raises(redis.ResponseError, match="ARGV"):
        r.eval(scripts.source("busy_loop"), 0)
    with pytest.raises(redis.ResponseError, match="expected no keys"):
        r.eval(scripts.source("busy_loop"), 1, "workshop:blocking:key", 5)


def test_pings_sent_while_the_script_runs_wait_for_it():
    run = blocking.ping_during_script(600, interval_ms=5, margin_ms=200)
    pings = run.pings
    assert run.busy_threshold_ms == 5000  # Redis' default: the pings wait instead of failing
    assert (pings.reply == "PONG").all()
    elapsed_ms = int(run.script_reply.strip("[]").split(",")[0])
    assert run.script_returned_ms < 600 + 1_000  # the script ended when asked, not at the threshold
    assert elapsed_ms >= 600
    assert pings.latency_ms.max() > 0.5 * 600  # a ping sent as the script began waited for most of it
    during = pings[(pings.sent_ms > 100) & (pings.sent_ms < 300)]  # surely after EVALSHA got there
    assert len(during) > 0
    # every ping sent while the script ran came back after it ended
    assert ((during.sent_ms + during.latency_ms) >= 0.95 * elapsed_ms).all()
    assert (pings.sent_ms < 0).any() and (pings.sent_ms > run.script_returned_ms).any()
    summary = blocking.ping_summary(run)
    assert list(summary.index) == ["before", "during", "after"]
    assert summary.pings.sum() == len(pings)
    assert summary.max_ms.max() == round(pings.latency_ms.max(), 2)  # the phases split the pings, none lost
    assert summary.busy_errors.sum() == 0
    plt.close(blocking.plot_pings(run))


def test_past_the_threshold_other_clients_get_busy_errors_and_a_plot_shows_them():
    run = blocking.ping_during_script(1_000, busy_threshold_ms=100, margin_ms=200)
    pings = run.pings
    busy = pings.reply.str.startswith(BUSY)
    assert busy.any()
    assert set(pings.reply[~busy]) == {"PONG"}
    assert not busy[pings.sent_ms < -50].any()  # well before the script: answered normally
    assert not busy[pings.sent_ms > run.script_returned_ms + 50].any()  # after it: normal again
    assert blocking.ping_summary(run).busy_errors.sum() == busy.sum()
    figure = blocking.plot_pings(run)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "BUSY error" in labels and "busy-reply-threshold" in labels
    plt.close(figure)


def test_script_kill_ends_the_script_and_its_caller_gets_killed_by_user():
    events = blocking.busy_then_script_kill(10_000, busy_threshold_ms=100)
    by_client = {client: rows for client, rows in events.groupby("client")}
    assert by_client["other client"].reply.iloc[0].startswith(BUSY)
    assert by_client["other client"].reply.iloc[-1] == "PONG"
    assert by_client["admin"].reply.tolist() == ["OK"]
    caller = by_client["caller"].iloc[0]
    assert "killed by user with SCRIPT KILL" in caller.reply  # "Script killed ..." or "... script killed ..."
    assert caller.at_ms < 5_000  # killed, not finished: it was asked to spin for 10 s
    assert events.at_ms.is_monotonic_increasing


def test_course_script_costs_has_a_row_per_course_script():
    costs = blocking.course_script_costs(50, board_size=1_000)
    assert sorted(costs.index) == blocking.course_scripts()
    assert (costs.calls == 50).all()
    assert (costs.p50_us <= costs.p99_us).all() and (costs.p99_us <= costs.max_us).all()
    assert (costs.p50_us > 0).all()


def test_course_scripts_are_every_lua_file_but_the_two_slow_ones():
    every = scripts.names()
    assert blocking.course_scripts() == [name for name in every if name not in ("busy_loop", WRITE_THEN_SPIN)]
    assert "sliding_window" in blocking.course_scripts()


# --- write_then_spin.lua and the UNKILLABLE lesson ------------------------------------------------


def test_write_then_spin_adds_its_marker_then_holds_the_server_for_the_time_asked(private):
    board = "workshop:blocking:spin"
    started = time.perf_counter()
    elapsed_ms, loops, clock = private.eval(scripts.source(WRITE_THEN_SPIN), 1, board, 200, "marker")
    waited_ms = (time.perf_counter() - started) * 1000
    assert private.zscore(board, "marker") == 0
    assert elapsed_ms >= 200 and loops > 0
    assert 200 <= waited_ms < 200 + 1_000
    assert clock == blocking.script_clocks(private)["busy_loop_clock"]  # the same clock as busy_loop
    private.delete(board)


@pytest.mark.parametrize(
    ("keys", "args", "says"),
    [
        (["workshop:blocking:spin"], ["x", "m"], "ARGV[1] (milliseconds) must be an integer from 0 to 5000"),
        (["workshop:blocking:spin"], ["-5", "m"], "ARGV[1]"),
        (["workshop:blocking:spin"], ["1.5", "m"], "ARGV[1]"),
        (["workshop:blocking:spin"], ["007", "m"], "ARGV[1]"),
        (["workshop:blocking:spin"], ["5001", "m"], "ARGV[1]"),  # the safety net: at most 5 s
        (["workshop:blocking:spin"], ["", "m"], "ARGV[1]"),
        (["workshop:blocking:spin"], [], "ARGV[1]"),
        (["workshop:blocking:spin"], ["10"], "ARGV[2] (the marker member) must be a non-empty string"),
        (["workshop:blocking:spin"], ["10", ""], "ARGV[2]"),
        (["workshop:blocking:spin"], ["10", "m", "extra"], "expected 2 arguments"),
        ([], ["10", "m"], "expected 1 key"),
        (["workshop:blocking:spin", "workshop:blocking:other"], ["10", "m"], "expected 1 key"),
    ],
)
def test_write_then_spin_with_bad_arguments_errors_at_once_and_writes_nothing(r, keys, args, says):
    before = r.dbsize()
    started = time.perf_counter()
    with pytest.raises(redis.ResponseError) as raised:
        r.eval(scripts.source(WRITE_THEN_SPIN), len(keys), *keys, *args)
    assert f"write_then_spin: {says}" in str(raised.value)
    assert time.perf_counter() - started < 1.0  # refused before any spinning
    assert r.dbsize() == before


@pytest.fixture(scope="module")
def unkillable_run():
    return blocking.unkillable(2_000, after_save=500, busy_threshold_ms=100, hold_ms=300)


def _story(run: blocking.UnkillableRun, setting: str) -> list[tuple[str, str, str]]:
    events = run.events[run.events.setting == setting]
    return [(e.client, " ".join(e.command.split()[:2]), e.reply) for e in events.itertuples()]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("setting", ["rdb", "aof_everysec"])
def test_script_kill_of_a_script_that_wrote_is_unkillable_and_only_shutdown_nosave_ends_it(
    unkillable_run, setting
):
    story = _story(unkillable_run, setting)
    assert story[:5] == [
        ("other client", "ZSCORE board", "nil"),  # before the script
        ("other client", "ZSCORE board", "BUSY"),  # past busy-reply-threshold
        ("other client", "ZSCORE board", "BUSY"),  # hold_ms later: the script still runs
        ("admin", "SCRIPT KILL", "UNKILLABLE"),  # it wrote: it cannot be stopped halfway
        ("admin", "SHUTDOWN", "BUSY"),  # a plain SHUTDOWN, which could save, is refused as well
    ]
    # SHUTDOWN NOSAVE: the server exits, both connections close (in either order)
    assert sorted(story[5:7]) == [
        ("admin", "SHUTDOWN NOSAVE", "connection closed"),
        ("caller", "EVALSHA write_then_spin", "connection closed"),
    ]
    assert story[7:] == [
        ("other client, after the restart", "ZSCORE board", "nil")
    ]  # the partial write is gone
    events = unkillable_run.events[unkillable_run.events.setting == setting]
    raw = dict(zip(events.reply, events.raw_reply))
    assert "busy running a script" in raw["BUSY"]  # "Redis is busy ..." or "Valkey is busy ..."
    assert "already executed write commands" in raw["UNKILLABLE"] and "SHUTDOWN NOSAVE" in raw["UNKILLABLE"]


@pytest.mark.timeout(60)
def test_passing_busy_reply_threshold_does_not_stop_a_script(unkillable_run):
    counts = unkillable_run.counts
    assert (counts.busy_first_ms >= unkillable_run.busy_threshold_ms * 0.9).all()
    # BUSY still, hold_ms later: the threshold only turns the others away; the script runs on
    assert (counts.busy_last_ms - counts.busy_first_ms >= unkillable_run.hold_ms).all()


@pytest.mark.timeout(60)
def test_shutdown_nosave_under_rdb_loses_every_write_since_the_snapshot(unkillable_run):
    rdb = unkillable_run.counts.loc["rdb"]
    assert rdb.back_before_save == rdb.acked_before_save == 2_000
    assert rdb.acked_after_save == 500 and rdb.back_after_save == 0
    assert not rdb.script_write_back
    assert not rdb.aof_fsync_at_shutdown


@pytest.mark.timeout(60)
def test_shutdown_nosave_under_aof_keeps_every_acknowledged_write_but_not_the_scripts_partial_write(
    unkillable_run,
):
    aof = unkillable_run.counts.loc["aof_everysec"]
    assert aof.back_before_save == aof.acked_before_save == 2_000
    assert aof.back_after_save == aof.acked_after_save == 500
    assert aof.aof_fsync_at_shutdown  # SHUTDOWN NOSAVE still flushed and fsynced the AOF
    assert not aof.script_write_back  # a script reaches the AOF when it ends: this one never did


@pytest.mark.timeout(60)
def test_no_other_client_could_read_the_scripts_partial_write(unkillable_run):
    assert not unkillable_run.counts.script_write_seen.any()
    during = unkillable_run.events[
        (unkillable_run.events.client == "other client") & (unkillable_run.events.at_ms > 0)
    ]
    assert set(during.reply) == {"BUSY"}


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: blocking.ping_during_script(-1), "script_ms"),
        (lambda: blocking.ping_during_script(1.5), "script_ms"),
        (lambda: blocking.ping_during_script(60_001), "script_ms"),
        (lambda: blocking.ping_during_script(100, interval_ms=0), "interval_ms"),
        (lambda: blocking.ping_during_script(100, busy_threshold_ms=0), "busy_threshold_ms"),
        (lambda: blocking.busy_then_script_kill(-10), "script_ms"),
        (lambda: blocking.busy_then_script_kill(500, busy_threshold_ms=100), "SCRIPT KILL"),
        (lambda: blocking.course_script_costs(0), "calls"),
        (lambda: blocking.course_script_costs(10, board_size=True), "board_size"),
        (lambda: blocking.unkillable(0), "players"),
        (lambda: blocking.unkillable(10, after_save=-1), "after_save"),
        (lambda: blocking.unkillable(10, names=("rdb", "nope")), "nope"),
        (lambda: blocking.unkillable(10, busy_threshold_ms=0), "busy_threshold_ms"),
        (lambda: blocking.unkillable(10, spin_ms=5_001), "spin_ms"),
        (lambda: blocking.unkillable(10, spin_ms=1_000), "SHUTDOWN NOSAVE"),
    ],
)
def test_bad_inputs_are_clear_errors(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
