"""helpers.bench.limiter_service: the server's time per decision and decisions against clients.

Benchmarks are not timed tests: only the tables' shapes and exact facts are checked (every
decision is counted by the server, every reply is a decision, the admitted ones are what the
limit allows), never a rate.
"""

from __future__ import annotations

import pandas as pd
import pytest
import redis

from helpers import servers
from helpers.bench import limiter_service as service


@pytest.fixture(scope="module")
def server():
    own = servers.start_redis()
    yield own
    own.stop()


def test_server_time_has_every_variant_on_both_paths_from_the_servers_own_counters(server):
    frame = service.server_time(calls=20, rounds=2, keys=5, server=server)
    assert set(frame.path) == {service.ADMITTED, service.REFUSED}
    assert len(frame) == 2 * 10  # 6 of the course's, 4 of limits', on each path
    assert set(frame.library) == {"this course", service.LIMITS}
    assert (frame.rounds == 2).all() and (frame.usec_per_decision > 0).all()
    # each path is what it says: every admitted-path decision admitted, every refused-path one refused
    assert (frame[frame.path == service.ADMITTED].allowed_share == 1).all()
    assert (frame[frame.path == service.REFUSED].allowed_share == 0).all()
    two = frame.algorithm == "moving window + get_window_stats"
    assert (frame[two].scripts_per_decision == 2).all() and (frame[~two].scripts_per_decision == 1).all()
    assert frame.ceiling_per_core.tolist() == pytest.approx((1e6 / frame.usec_per_decision).tolist())
    ratio = service.ratio(frame, service.ADMITTED, ("sliding_log", service.SERVER_CLOCK),
                          ("moving window", service.CALLER_CLOCK))  # fmt: skip
    assert ratio > 0


def test_server_time_starts_and_stops_its_own_server_when_given_none():
    frame = service.server_time(calls=5, rounds=1, keys=5)
    assert len(frame) == 20


def test_ratio_names_a_missing_row():
    empty = pd.DataFrame(columns=["algorithm", "clock", "path", "usec_per_decision"])
    with pytest.raises(KeyError, match="no single server_time row for gcra"):
        service.ratio(empty, service.ADMITTED, ("gcra", service.SERVER_CLOCK), ("moving window", "x"))


def test_decisions_by_clients_counts_every_reply_and_admits_what_the_limit_allows(server):
    frame = service.decisions_by_clients(server.url, (1, 3), (1, 4), seconds=0.2, keys_per_connection=8,
                                         limit=3)  # fmt: skip
    assert list(zip(frame.clients, frame.depth)) == [(1, 1), (3, 1), (1, 4), (3, 4)]
    assert (frame.errors == 0).all() and (frame.decisions > 0).all()
    # a key sees many requests in 0.2 s, so most are refused: the count is exact either way
    assert (frame.admitted == frame.expected_admitted).all()
    assert (frame.admitted < frame.decisions).all()
    assert (frame.server_calls == frame.decisions).all()  # the server counted every decision sent
    # every client also hit one shared key with a limit of 5: exactly 5 got in, in every run
    assert (frame.hot_requests > service.HOT_LIMIT).all()
    assert (frame.hot_admitted == frame.hot_expected).all() and (
        frame.hot_expected == service.HOT_LIMIT
    ).all()
    assert (frame.server_cpu_usec_per_decision > 0).all() and (frame.server_cpu_share > 0).all()
    assert (frame.processes <= frame.clients).all()
    client = redis.Redis.from_url(server.url)
    assert list(client.scan_iter(match="workshop:*")) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda url: service.decisions_by_clients(url, ()),
        lambda url: service.decisions_by_clients(url, (0,)),
        lambda url: service.decisions_by_clients(url, (1,), seconds=0),
        lambda url: service.decisions_by_clients(url, (1,), (16,), keys_per_connection=8),
        lambda url: service.server_time(calls=0),
    ],
)
def test_bad_arguments_are_value_errors(server, call):
    with pytest.raises(ValueError):
        call(server.url)
