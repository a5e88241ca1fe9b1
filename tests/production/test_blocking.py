"""helpers.production.blocking and lua/busy_loop.lua: a slow script blocks every client, BUSY, SCRIPT KILL.

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
    assert summary.loc["during", "max_ms"] == round(pings.latency_ms.max(), 2)
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


def test_course_scripts_are_every_lua_file_but_the_slow_one():
    every = scripts.names()
    assert blocking.course_scripts() == [name for name in every if name != "busy_loop"]
    assert "sliding_window" in blocking.course_scripts()


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
    ],
)
def test_bad_inputs_are_clear_errors(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
