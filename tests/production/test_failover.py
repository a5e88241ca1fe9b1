"""helpers.production.cluster with replicas, and helpers.production.failover: a primary killed for real.

Every test here runs real clusters of six nodes (three primaries, a replica each,
``cluster-node-timeout`` 1,000 ms): one for the module, on which a primary is
killed, promoted over, restarted and killed again; and one per
``failover_under_load`` run (each starts and stops its own). The whole file takes
about a minute on a 2-core machine, on each server of the matrix.
"""

from __future__ import annotations

import os
import signal
import time

import matplotlib
import pandas as pd
import pytest
import redis
from matplotlib.figure import Figure

from helpers.clients import product_version, without_retries
from helpers.leaderboard import Leaderboard
from helpers.production import cluster, failover
from helpers.production.cluster import kill_primary, restart_node, start_cluster
from helpers.ratelimit import RateLimiter
from helpers.streams import EventLog, Worker

matplotlib.use("Agg")

pytestmark = pytest.mark.timeout(120)

FAILOVER_BOUND_S = 10.0  # kill -9 to every node ok: about 2-3 s measured with a 1,000 ms node timeout


@pytest.fixture(scope="module")
def grid():
    local = start_cluster(replicas=1)
    yield local
    local.stop()


def once_more(write):
    """A write through a helper (no retries) on a client made before a failover: its first call may
    go to the dead node (connection refused: nothing written), which refreshes the slot map."""
    try:
        return write()
    except redis.ConnectionError:
        return write()


def node_client(address: str) -> redis.Redis:
    host, port = cluster._host_port(address)
    return redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=5)


# --- a cluster with replicas ----------------------------------------------------------------------------


def test_a_cluster_with_replicas_has_one_live_replica_per_primary_with_its_data(grid):
    assert grid.node_timeout_ms == cluster.FAILOVER_NODE_TIMEOUT_MS
    assert len(grid.nodes) == len(grid.node_urls) == 6
    view = grid.topology()
    primaries = {n.address for n in view if n.role == "primary"}
    assert primaries == set(grid.addresses[:3]) == set(grid.replicas_of)
    assert sum(n.slots for n in view) == cluster.SLOTS
    for primary, replicas in grid.replicas_of.items():
        assert len(replicas) == 1
        assert {n.address for n in view if n.primary == primary} == set(replicas)
        info = node_client(replicas[0]).info("replication")
        assert (info["role"], info["master_link_status"]) == ("slave", "up")
        assert f"{info['master_host']}:{info['master_port']}" == primary
    assert not any(n.failed for n in view)
    client = grid.client()
    try:
        assert len(client.get_primaries()) == 3  # (CLUSTER SLOTS lists a replica once it has data)
        board = Leaderboard(client, "replicated")
        board.add("ann", 3)
        primary = cluster.locate(client, board.key).node
        without_retries(client).execute_command(
            "WAIT", 1, 1_000, target_nodes=without_retries(client).get_node_from_key(board.key)
        )
        replica = node_client(grid.replicas_of[primary][0])
        replica.execute_command("READONLY")  # a cluster replica serves reads of its primary's slots
        assert replica.zscore(board.key, "ann") == 3
    finally:
        client.close()


def test_start_cluster_refuses_a_bad_replica_count_and_starts_nothing():
    before = set(cluster.servers.WORK_DIR.glob("redis-*"))
    for bad in (-1, 4, True, 1.0, "1"):
        with pytest.raises(ValueError, match="replicas"):
            start_cluster(replicas=bad)
    with pytest.raises(ValueError, match="extra_args"):
        start_cluster(replicas=1, extra_args=("--appendonly", 1))
    assert set(cluster.servers.WORK_DIR.glob("redis-*")) == before


def test_parse_cluster_nodes_reads_roles_primaries_slots_and_failure_flags():
    text = (
        "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n"
        "b2 127.0.0.1:7002@17002 master,fail - 0 0 2 disconnected\n"
        "c3 127.0.0.1:7003@17003,host.example master - 0 0 4 connected 5461-16383 [100->-zz]\n"
        "d4 127.0.0.1:7004@17004 slave c3 0 0 4 connected\n"
        "e5 127.0.0.1:7005@17005 slave,fail? a1 0 0 1 connected\n"
    )
    nodes = cluster.parse_cluster_nodes(text)
    assert [(n.address, n.role, n.primary, n.slots, n.failed) for n in nodes] == [
        ("127.0.0.1:7001", "primary", None, 5461, False),
        ("127.0.0.1:7002", "primary", None, 0, True),
        ("127.0.0.1:7003", "primary", None, 10923, False),
        ("127.0.0.1:7004", "replica", "127.0.0.1:7003", 0, False),
        ("127.0.0.1:7005", "replica", "127.0.0.1:7001", 0, True),
    ]
    assert nodes[0].flags == "master" and nodes[4].flags == "slave,fail?"


def test_wait_after_a_helper_write_goes_on_the_connection_that_wrote(grid):
    """With the replica frozen (SIGSTOP: connected, but acknowledging nothing), WAIT on the
    helper's own connection times out (0 replicas): it waits for that write. Once the replica
    runs again it answers 1. (Redis 8.2 and Valkey 8.1 answer 1 at once to a WAIT on a connection
    that wrote nothing, frozen replica or not: WAIT elsewhere would wait for nothing.)"""
    client = grid.client()
    try:
        board = Leaderboard(client, "wait-probe")
        board.incr("ann", 1)  # connections opened, so the WAIT below reuses the write's
        primary = cluster.locate(client, board.key).node
        replica = grid.server(grid.replicas_of[primary][0])
        twin = without_retries(client)

        def wait(timeout_ms: int) -> int:
            return twin.execute_command("WAIT", 1, timeout_ms, target_nodes=twin.get_node_from_key(board.key))

        os.kill(replica.executor.process.pid, signal.SIGSTOP)
        try:
            board.incr("ann", 1)
            started = time.monotonic()
            on_its_connection = wait(150)
            waited = time.monotonic() - started
            elsewhere = node_client(primary).execute_command("WAIT", 1, 150)
        finally:
            os.kill(replica.executor.process.pid, signal.SIGCONT)
        assert on_its_connection == 0 and waited >= 0.14
        assert wait(2_000) == 1
        version = tuple(int(part) for part in product_version(client)[1].split(".")[:2])
        if version >= (7, 2):  # (Redis 7.0.15 made this one wait too, measured)
            assert elsewhere == 1
    finally:
        client.close()


# --- kill -9, promotion, restart ------------------------------------------------------------------------


def test_a_killed_primary_is_replaced_by_its_replica_and_the_helpers_keep_working(grid):
    client = grid.client()
    try:
        board = Leaderboard(client, "survivors")
        owner = cluster.locate(client, board.key).node
        ranges = cluster.slot_ranges(client)
        log = EventLog(client, failover._name_on(ranges, owner, lambda name: EventLog(client, name).key, "s"))
        limiter = RateLimiter(client, 3, 60, name="survivors")
        user = failover._name_on(ranges, owner, lambda name: limiter.keys(name)[0], "u")
        for i in range(20):
            board.incr("ann", 1)
            log.append({"seq": i})
        assert [limiter.hit(user).allowed for _ in range(2)] == [True, True]
        twin = without_retries(client)
        assert twin.execute_command("WAIT", 1, 1_000, target_nodes=twin.get_node_from_key(board.key)) == 1
        expected_replica = grid.replicas_of[owner][0]

        record = kill_primary(grid, board.key)

        assert (record.killed, record.promoted) == (owner, expected_replica)
        assert record.node_timeout_ms == 1_000
        steps = [record.failed_s, record.promoted_s, record.ok_s]
        assert steps == sorted(steps) and 0 < record.failed_s and record.ok_s < FAILOVER_BOUND_S
        assert record.suspected_s is None or record.suspected_s <= record.failed_s
        assert record.failed_s >= 0.9 * grid.node_timeout_ms / 1000  # nobody calls it failed sooner
        view = {n.address: n for n in grid.topology()}
        assert view[owner].failed and view[expected_replica].role == "primary"
        assert view[expected_replica].slots == cluster.SLOTS // 3 + (owner == grid.addresses[0])
        # the same client objects, made before the kill: the first call may meet the dead node
        # (the limiter then degrades, once), then their slot maps are refreshed
        assert cluster.locate(client, board.key).node == expected_replica
        decisions = [limiter.hit(user) for _ in range(3)]
        assert [d.allowed for d in decisions if not d.degraded][:2] == [True, False]
        assert sum(d.degraded for d in decisions) <= 1 and not decisions[-1].degraded
        assert once_more(lambda: board.incr("ann", 1)) == 21  # nothing lost: WAIT said the replica had it
        assert board.rank("ann") == 1  # a script: NOSCRIPT on the promoted node, loaded again
        assert [int(f["seq"]) for _, f in log.replay()] == list(range(20))
        once_more(lambda: log.append({"seq": 20}))
        seen = []
        Worker(log, "g", "w", lambda entry_id, fields: seen.append(int(fields["seq"]))).run(until_idle=True)
        assert seen == list(range(21))
        # the promoted node has no live replica now: nothing could replace it
        with pytest.raises(ValueError, match="no live replica"):
            kill_primary(grid, node=expected_replica)

        assert restart_node(grid, owner) == expected_replica
        view = {n.address: n for n in grid.topology()}
        assert (view[owner].role, view[owner].primary, view[owner].failed) == (
            "replica",
            expected_replica,
            False,
        )
        assert node_client(owner).info("replication")["master_link_status"] == "up"

        again = kill_primary(grid, node=expected_replica)  # a second run: the old primary takes over
        assert (again.killed, again.promoted) == (expected_replica, owner)
        assert again.ok_s < FAILOVER_BOUND_S
        assert restart_node(grid, expected_replica) == owner
        fresh = grid.client()
        try:
            assert fresh.zscore(board.key, "ann") == 21
            assert Leaderboard(fresh, "survivors").incr("ann", 1) == 22
        finally:
            fresh.close()
    finally:
        client.close()


def test_kill_primary_refuses_what_is_not_a_live_primary_with_a_replica_before_killing_anything(grid):
    replica = next(n.address for n in grid.topology() if n.role == "replica")
    with pytest.raises(ValueError, match="not a live primary"):
        kill_primary(grid, node=replica)
    with pytest.raises(ValueError, match="exactly one of"):
        kill_primary(grid)
    with pytest.raises(ValueError, match="exactly one of"):
        kill_primary(grid, "workshop:x", node=replica)
    with pytest.raises(ValueError, match="no node"):
        kill_primary(grid, node="127.0.0.1:1")
    assert all(cluster._running(node) for node in grid.nodes)
    with pytest.raises(KeyError, match="no node"):
        grid.server("127.0.0.1:1")


def test_restart_node_refuses_a_node_that_is_running(grid):
    with pytest.raises(RuntimeError, match="still running"):
        restart_node(grid, grid.addresses[0])


# --- failover_under_load --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lagging():
    """Two runs with the replica cut off 0.5 s before the kill: without WAIT, and with WAIT 1."""
    runs = [
        failover.failover_under_load(replica_lag_s=0.5, progress=False),
        failover.failover_under_load(replica_lag_s=0.5, wait_replicas=1, progress=False),
    ]
    return runs


def by_pattern(run: failover.FailoverRun) -> dict:
    return {row["pattern"]: row for row in run.table().to_dict("records")}


def test_the_tables_have_one_row_per_pattern_and_the_counts_add_up(lagging):
    table = failover.summary(lagging)
    assert list(table["pattern"]) == list(failover.PATTERNS) * 2
    assert list(table["mode"].unique()) == ["no WAIT", f"WAIT 1 {failover.WAIT_TIMEOUT_MS}"]
    for column in ("lost", "lost_unconfirmed", "error_window_s", "latency_p50_ms", "wait_p99_ms", "note"):
        assert column in table.columns
    writers = table[table["pattern"] != "worker"]
    assert (writers["calls"] == writers["acknowledged"] + writers["unconfirmed"] + writers["errors"]).all()
    assert (writers["acknowledged"] > 0).all()
    times = failover.failovers(lagging)
    assert len(times) == 2 and (times["ok_s"] < FAILOVER_BOUND_S).all()
    assert (times["failed_s"] <= times["promoted_s"]).all() and (times["promoted_s"] <= times["ok_s"]).all()
    assert (times["rejoined_s"] >= times["ok_s"]).all()
    for run in lagging:
        timeline = run.timeline()
        assert set(timeline["outcome"]) <= {
            "acknowledged",
            "unconfirmed",
            "error",
            "delivered",
            "redelivered",
        }
        assert len(timeline[timeline["pattern"] != "worker"]) == len(run.ops) - sum(
            op.pattern == "worker" for op in run.ops
        )
    figure = failover.plot(lagging)
    assert isinstance(figure, Figure) and len(figure.axes) == 3


def test_without_wait_the_promoted_replica_lacks_exactly_what_the_primary_acknowledged_after_the_cut(lagging):
    run = lagging[0]
    rows = by_pattern(run)
    cut, kill = run.failover.killed_at + run.events["cut_s"], run.failover.killed_at
    for pattern in ("leaderboard", "stream", "ratelimit"):
        assert rows[pattern]["lost"] > 0, pattern
        assert rows[pattern]["lost_unconfirmed"] == 0 and rows[pattern]["unconfirmed"] == 0
        lost = [op for op in run.ops if op.pattern == pattern and op.lost]
        assert all(cut - 0.05 <= op.done <= kill + 0.2 for op in lost), pattern  # acknowledged in the lag
    assert rows["bystander"]["lost"] == 0  # its primary was never killed
    # every increment sent once the replica was cut off (and acknowledged) is gone, none from before
    leaderboard = [op for op in run.ops if op.pattern == "leaderboard" and op.outcome == "acknowledged"]
    assert all(op.lost for op in leaderboard if cut + 0.05 < op.sent and op.done < kill)
    assert not any(op.lost for op in leaderboard if op.done < cut - 0.05)
    found = run.found["leaderboard"]
    assert (
        found["final_score"]
        == rows["leaderboard"]["acknowledged"] - rows["leaderboard"]["lost"] + found["kept_without_ack"]
    )
    assert found["kept_without_ack"] in (0, 1)
    # each admission the log lost let one more request through: every user reaches the limit
    assert rows["ratelimit"]["over_admitted"] == rows["ratelimit"]["lost"]
    # the worker had handled (most of) the lost entries before the kill: it acted on events now gone
    assert 0 < rows["worker"]["handled_but_lost"] <= rows["stream"]["lost"]
    assert rows["worker"]["never_handled"] == 0


def test_with_wait_1_no_acknowledged_write_is_lost_and_the_unconfirmed_ones_paid_the_timeout(lagging):
    run = lagging[1]
    rows = by_pattern(run)
    for pattern in ("leaderboard", "stream", "ratelimit", "bystander"):
        assert rows[pattern]["lost"] == 0, pattern
        assert rows[pattern]["lost_unconfirmed"] <= rows[pattern]["unconfirmed"]
    for pattern in ("leaderboard", "stream", "ratelimit"):
        assert rows[pattern]["unconfirmed"] > 0, pattern  # the writes made while the replica was cut off
        assert rows[pattern]["wait_p50_ms"] < failover.WAIT_TIMEOUT_MS / 2  # a healthy replica: fast
    assert rows["ratelimit"]["over_admitted"] == 0
    # unconfirmed: while the replica was cut off, and after the promotion until the killed node rejoined
    cut = run.failover.killed_at + run.events["cut_s"]
    rejoined = run.failover.killed_at + run.events["rejoined_s"]
    unconfirmed = [op for op in run.ops if op.outcome == "unconfirmed"]
    assert all(cut - 0.05 <= op.done <= rejoined + 0.5 for op in unconfirmed)
    waited = [op.wait_ms for op in unconfirmed if op.error is None]
    assert waited and min(waited) >= 0.9 * failover.WAIT_TIMEOUT_MS


def test_errors_are_connection_errors_on_the_dead_primary_and_clusterdown_elsewhere(lagging):
    for run in lagging:
        rows = by_pattern(run)
        ok = run.failover.ok_s
        for pattern in ("leaderboard", "stream", "ratelimit"):
            assert rows[pattern]["exceptions"].startswith("ConnectionError"), rows[pattern]["exceptions"]
            assert 0 <= rows[pattern]["first_error_s"] < 0.5
            assert run.failover.promoted_s - 0.5 < rows[pattern]["last_error_s"] < ok + 1.0
            assert rows[pattern]["error_window_s"] > 1.0
        bystander = [op for op in run.ops if op.pattern == "bystander" and op.outcome == "error"]
        assert all(op.error.startswith("ClusterDownError") for op in bystander)
        # CLUSTERDOWN once the failure is agreed, until the promotion (redis-py sleeps 0.25 s on it)
        assert all(
            run.failover.failed_s - 0.1 <= op.done - run.failover.killed_at <= ok + 0.6 for op in bystander
        )


def test_the_script_cache_is_not_replicated_and_functions_are(lagging):
    for run in lagging:
        answers = run.scripts
        assert answers["limiter script in the replica's script cache before the kill"] is False
        assert answers["NOSCRIPT answered by the promoted node"] >= 1
        assert answers["SCRIPT LOAD calls on the promoted node"] >= 1
        assert answers["limiter script in its cache at the end"] is True
        assert answers["Functions library on the replica before the kill"] is True
        assert answers["Functions library on the promoted node"] is True
        assert answers["FCALL after the promotion"].startswith("works")
        by_redis, degraded = (int(n) for n in answers[
            "limiter decisions after the cluster was ok: by Redis / degraded"].split(" / "))  # fmt: skip
        assert by_redis > 0 and degraded <= 1
        assert set(run.scripts_table()["question"]) == set(answers)


def test_waitaof_is_measured_where_the_server_has_it_and_named_where_it_does_not():
    run = failover.failover_under_load(
        wait_replicas=1,
        waitaof=True,
        replica_lag_s=0.3,
        seconds_before=4.0,  # each write waits for the replica's next fsync (about 1.3 s): room for a few
        seconds_after=1.0,
        progress=False,
    )
    table = run.table()
    assert list(table["pattern"]) == list(failover.PATTERNS)
    if run.server.startswith("Redis 7.0"):
        assert not run.measured
        assert "unknown command 'WAITAOF'" in run.note
        assert table["note"].str.contains("unknown command").all()
        assert table["lost"].isna().all()
        assert failover.failovers([run])["note"].iloc[0] == run.note
        return
    assert run.measured and run.mode == f"WAITAOF 0 1 {failover.WAITAOF_TIMEOUT_MS}"
    assert (table["lost"].fillna(0) == 0).all()  # a replica had (and had fsynced) every acknowledged write
    assert (table.loc[table["pattern"] != "worker", "acknowledged"] > 0).all()
    waits = [op.wait_ms for op in run.ops if op.pattern == "leaderboard" and op.outcome == "acknowledged"]
    assert max(waits) > 100  # WAITAOF waits for the replica's next fsync (appendfsync everysec)


def test_failover_under_load_checks_its_arguments_before_starting_anything():
    before = set(cluster.servers.WORK_DIR.glob("redis-*"))
    with pytest.raises(ValueError, match="waitaof=True needs wait_replicas=1"):
        failover.failover_under_load(waitaof=True)
    with pytest.raises(ValueError, match="appendfsync"):
        failover.failover_under_load(wait_replicas=1, waitaof=True, appendfsync="no")
    with pytest.raises(ValueError, match="wait_replicas"):
        failover.failover_under_load(wait_replicas=2)
    with pytest.raises(ValueError, match="replica_lag_s"):
        failover.failover_under_load(replica_lag_s=-1)
    with pytest.raises(ValueError, match="rate"):
        failover.failover_under_load(rate=0)
    with pytest.raises(ValueError, match="unknown mode"):
        failover.each_mode(["WAIT 7"])
    with pytest.raises(ValueError, match="no run"):
        failover.plot([])
    assert set(cluster.servers.WORK_DIR.glob("redis-*")) == before


def test_a_run_table_is_a_dataframe_even_when_nothing_was_measured():
    run = failover.FailoverRun("WAITAOF 0 1 1500", 0.0, "Redis 7.0.15", 10, note="not measured: ...")
    table = run.table()
    assert isinstance(table, pd.DataFrame) and len(table) == len(failover.PATTERNS)
    assert table["calls"].isna().all() and (table["note"] == "not measured: ...").all()
