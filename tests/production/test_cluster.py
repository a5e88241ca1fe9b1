"""helpers.production.cluster: a throwaway three-primary cluster, CROSSSLOT and hash tags, where a key lives.

One test starts (and stops) a cluster of its own; the others use the session's
cluster (``REDIS_CLUSTER_URL``, started by the root ``conftest.py``).
"""

from __future__ import annotations

import os

import port_for
import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ClusterCrossSlotError, RedisClusterException

from helpers import scripts, servers
from helpers.clients import client_from_url
from helpers.keyspace import cleanup, key
from helpers.leaderboard import Leaderboard
from helpers.production import cluster
from helpers.production.cluster import (
    KeyLocation,
    hash_tag,
    keys_per_node,
    locate,
    slot_ranges,
    start_cluster,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cluster_url() -> str:
    if not os.environ.get("REDIS_CLUSTER_URL"):
        pytest.skip("no local Redis Cluster in this session (REDIS_CLUSTER_URL unset: see the warning)")
    return os.environ["REDIS_CLUSTER_URL"]


@pytest.fixture
def rc(cluster_url):
    client = client_from_url(cluster_url)
    cleanup(client)
    yield client
    cleanup(client)
    client.close()


def node_client(rc: RedisCluster, name: str) -> redis.Redis:
    """A plain client to one node, bypassing the cluster client's routing."""
    host, port = name.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), decode_responses=True)


def workshop_dirs() -> set:
    return set(servers.WORK_DIR.glob("redis-*")) if servers.WORK_DIR.exists() else set()


# --- start and stop -----------------------------------------------------------------------------------


def test_a_started_cluster_has_three_primaries_covering_every_slot_and_stop_removes_everything():
    with start_cluster() as local:
        assert local.url.startswith("redis+cluster://127.0.0.1:")
        assert len(local.node_urls) == 3
        assert (local.replicas_of, local.node_timeout_ms) == ({}, cluster.NODE_TIMEOUT_MS)  # no replicas
        roles = local.topology()
        assert sorted(n.address for n in roles) == sorted(local.addresses)
        assert {(n.role, n.primary, n.failed) for n in roles} == {("primary", None, False)}
        data_dirs = [node.data_dir for node in local.nodes]
        assert all((d / "nodes.conf").is_file() for d in data_dirs)  # each node's own cluster config
        client = local.client()
        try:
            assert len(client.get_primaries()) == 3
            assert client.get_replicas() == []
            ranges = slot_ranges(client)
            assert sum(last - first + 1 for first, last, _ in ranges) == cluster.SLOTS
            assert [r[0] for r in ranges] == [0] + [r[1] + 1 for r in ranges[:-1]]  # no gap, no overlap
            assert len({node for _, _, node in ranges}) == 3
            for url in local.node_urls:
                info = redis.Redis.from_url(url, decode_responses=True).cluster("INFO")
                assert info["cluster_state"] == "ok"
                assert (int(info["cluster_slots_assigned"]), int(info["cluster_size"])) == (cluster.SLOTS, 3)
            client.set("workshop:probe", 1)
        finally:
            client.close()
    assert local.stopped
    assert not any(d.exists() for d in data_dirs)
    for url in local.node_urls:
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    local.stop()  # a second stop is harmless


def test_start_cluster_refuses_fewer_than_three_primaries_or_a_bad_timeout_and_starts_nothing():
    before = workshop_dirs()
    for bad in (2, 0, True, "3"):
        with pytest.raises(ValueError, match="at least 3 primaries"):
            start_cluster(bad)
    with pytest.raises(ValueError, match="node_timeout_ms"):
        start_cluster(node_timeout_ms=0)
    assert workshop_dirs() == before


def test_without_a_server_binary_the_error_says_what_to_run_and_starts_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(servers, "_package_file", lambda module, relative: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    before = workshop_dirs()
    with pytest.raises(servers.NoServer, match="make setup"):
        start_cluster()
    assert workshop_dirs() == before


def test_the_cluster_is_made_without_redis_cli_and_runs_the_chosen_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-cli, no redis-server on PATH
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    if not any(b.choice != "system" for b in servers.redis_binaries()):
        pytest.skip("no pip server binary on this machine")
    with start_cluster() as local:
        binary = servers.redis_binary()
        assert all(node.binary == binary for node in local.nodes)
        assert local.how == f"3 nodes of {binary.label}"
        client = local.client()
        try:
            assert len(client.get_primaries()) == 3
        finally:
            client.close()


def test_cluster_ports_leave_room_for_the_cluster_bus_port():
    ports = cluster._cluster_ports(3)
    assert len(set(ports)) == 3
    for port in ports:
        assert port + 10_000 <= 65_535
        assert port_for.is_available(port) and port_for.is_available(port + 10_000)


# --- CROSSSLOT and hash tags --------------------------------------------------------------------------


def test_a_multi_key_command_on_keys_of_different_slots_is_crossslot_and_works_with_one_hash_tag(rc):
    daily, weekly = key("lb", "daily"), key("lb", "weekly")
    assert key_slot(daily.encode()) != key_slot(weekly.encode())
    rc.zadd(daily, {"ann": 3})
    rc.zadd(weekly, {"bob": 5})
    with pytest.raises(RedisClusterException, match="same key slot"):  # redis-py refuses before sending
        rc.zunionstore(key("lb", "total"), [daily, weekly])
    owner = node_client(rc, locate(rc, daily).node)
    try:
        # so does the server: "CROSSSLOT Keys in request don't hash to the same slot"
        with pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
            owner.zunionstore(key("lb", "total"), [daily, weekly])
    finally:
        owner.close()
    tagged = [key("lb", "{arena}", "daily"), key("lb", "{arena}", "weekly"), key("lb", "{arena}", "total")]
    assert len({locate(rc, k).slot for k in tagged}) == 1
    rc.zadd(tagged[0], {"ann": 3})
    rc.zadd(tagged[1], {"bob": 5, "ann": 1})
    assert rc.zunionstore(tagged[2], tagged[:2]) == 2
    assert rc.zrange(tagged[2], 0, -1, withscores=True) == [("ann", 4.0), ("bob", 5.0)]


def test_a_transaction_on_keys_of_one_slot_is_atomic_and_on_two_slots_is_refused(rc):
    with rc.pipeline(transaction=True) as pipe:
        pipe.incr(key("{t}", "a"))
        pipe.incr(key("{t}", "b"))
        assert pipe.execute() == [1, 1]
    with pytest.raises(RedisClusterException, match="same slot"):
        with rc.pipeline(transaction=True) as pipe:
            pipe.incr(key("a"))
            pipe.incr(key("b"))
            pipe.execute()
    assert rc.exists(key("a"), key("b")) == 0


@pytest.mark.parametrize(
    "name, tag",
    [
        ("workshop:lb:{daily}", "daily"),
        ("workshop:lb:{daily}:meta", "daily"),
        ("{a}{b}", "a"),  # the first tag counts
        ("a{}b{c}", None),  # an empty first tag: the whole key is hashed
        ("a{b", None),
        ("a}b{c}", "c"),
        ("plain", None),
    ],
)
def test_hash_tag_follows_the_rule_of_cluster_keyslot(rc, name, tag):
    assert hash_tag(name) == tag
    hashed = name if tag is None else tag
    assert rc.cluster_keyslot(name) == key_slot(hashed.encode())


# --- where a key lives --------------------------------------------------------------------------------


def test_locate_names_the_slot_and_the_primary_that_really_holds_the_key(rc):
    names = [key("lb", "{daily}"), key("where", "a"), key("where", "b"), key("where", "c"), key("x", "y")]
    for name in names:
        rc.set(name, 1)
        where = locate(rc, name)
        assert where == KeyLocation(name, key_slot(name.encode()), where.node, hash_tag(name))
        counts = keys_per_node(rc, match=name)
        assert counts == {node.name: int(node.name == where.node) for node in rc.get_primaries()}
        holder = node_client(rc, where.node)
        try:
            assert holder.get(name) == "1"  # no MOVED: this node owns the slot
        finally:
            holder.close()


def test_one_sorted_set_lives_whole_on_one_shard(rc):
    board = Leaderboard(rc, "arena")
    board.add_many({f"player:{i}": i for i in range(3_000)}, chunk=500, progress=False)
    board.add("player:0", 0, meta={"country": "FR"})
    counts = keys_per_node(rc, match=key("lb", "*"))
    owner = locate(rc, board.key).node
    assert counts[owner] == 2 and sum(counts.values()) == 2  # the board and its metadata, both there
    assert locate(rc, board.meta_key).node == owner


def test_keys_without_tags_spread_over_every_primary(rc):
    pipe = rc.pipeline(transaction=False)
    for i in range(300):
        pipe.set(key("spread", str(i)), i)
    pipe.execute()
    counts = keys_per_node(rc, match=key("spread", "*"))
    assert sum(counts.values()) == 300
    assert len(counts) == 3 and min(counts.values()) > 50  # CRC16 spreads 300 keys about evenly


def test_locate_and_keys_per_node_need_a_cluster_client(redis_url_single):
    single = redis.Redis.from_url(redis_url_single)
    try:
        with pytest.raises(TypeError, match="RedisCluster"):
            locate(single, "workshop:x")
        with pytest.raises(TypeError, match="RedisCluster"):
            keys_per_node(single)
    finally:
        single.close()


def test_locate_refuses_an_empty_or_non_string_key(rc):
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            locate(rc, bad)


@pytest.fixture
def redis_url_single() -> str:
    return os.environ["REDIS_URL"]


def test_a_loaded_script_can_be_queued_on_a_cluster_pipeline_over_every_shard(rc):
    script = scripts.load(rc, "fixed_window")
    assert isinstance(script, scripts.ClusterScript)
    rc.script_flush()  # to every primary: the first queued call must load it everywhere
    names = [key("ratelimit", "{" + f"user-{i}" + "}", "fixed_window") for i in range(9)]
    assert len({locate(rc, name).node for name in names}) == 3
    pipe = rc.pipeline(transaction=False)
    for name in names:
        script(keys=[name], args=[60, 2, 1_000, 1], client=pipe)
    assert [reply[:2] for reply in pipe.execute()] == [[1, 1]] * len(names)
    assert all(rc.script_exists(script.sha))
