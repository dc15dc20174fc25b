"""The one way a process connects to the Redis of the read models: a plain client, or
with ``FORUM_REDIS_CLUSTER=true`` a Redis Cluster client (``FORUM_REDIS_URL`` names any
node; redis-py finds the others and follows the slots as they move).

Both are typed as ``Redis``: the cluster client answers the same commands for keys of one
hash slot, and every script and transaction of this project keeps to one slot (the read
models' partitions, workers/readmodels/keys.py). What differs is said here: ``mget``
across slots (``mget``), and where a slot's node is (``node_client``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from weakref import WeakKeyDictionary

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster


def connect(url: str, *, cluster: bool, **options: Any) -> Redis:
    if cluster:
        return cast(Redis, RedisCluster.from_url(url, **options))
    return Redis.from_url(url, **options)


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


async def mget(redis: Redis, keys: Sequence[str]) -> list[Any]:
    """The values of ``keys`` in order: one MGET, or on a cluster one per slot (not
    atomic across slots)."""
    if not keys:
        return []
    if isinstance(redis, RedisCluster):
        return await redis.mget_nonatomic(list(keys))
    return await redis.mget(list(keys))


_NODE_CLIENTS: WeakKeyDictionary[RedisCluster, dict[str, Redis]] = WeakKeyDictionary()


def node_client(redis: Redis, key: str) -> Redis:
    """A plain client of the node that serves ``key``'s slot (``redis`` itself when it
    is not a cluster): for a transaction or a raw connection on that slot
    (workers/commit.py). It connects as the cluster client connects to that node (its
    connection class and options: TLS with its certificates, credentials, timeouts).
    Kept per cluster client and node."""
    if not isinstance(redis, RedisCluster):
        return redis
    node = redis.get_node_from_key(key)
    if node is None:
        raise ConnectionError(f"no node of the cluster serves {key!r}")
    clients = _NODE_CLIENTS.setdefault(redis, {})
    found = clients.get(node.name)
    if found is None:
        found = clients[node.name] = Redis(connection_pool=ConnectionPool(
            connection_class=node.connection_class, **node.connection_kwargs))
    return found


async def mset(redis: Redis, mapping: dict[str, Any]) -> None:
    """SET every key of ``mapping``: one MSET, or on a cluster one per slot."""
    if not mapping:
        return
    if isinstance(redis, RedisCluster):
        await redis.mset_nonatomic(mapping)
    else:
        await redis.mset(mapping)
