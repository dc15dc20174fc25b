"""A Redis Cluster that speaks only TLS (``rediss://``, the CA named in the URL), as hosted
clusters with encryption in transit do: the projection's transactions go through a plain
client of the node that owns the slot (common/redis_client.py ``node_client``), which
must speak TLS as the cluster client does, and the read models come out as on a plain
Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection

from common.redis_client import connect, node_client
from events.postgres import PostgresEventStore
from tests.cluster.test_cluster_projection import assert_alike, project
from tests.integration.test_evicted_pages import seed
from tests.readmodel_dump import drop_prefix
from tests.rediscluster import CLI, SERVER, RedisCluster, available
from workers.readmodels import Keys


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[RedisCluster]:
    if not available(tls=True):
        pytest.skip(f"a TLS Redis Cluster needs {SERVER}, {CLI} and openssl")
    with RedisCluster(tls=True) as cluster:
        yield cluster


@pytest_asyncio.fixture
async def cluster(tls_cluster: RedisCluster) -> AsyncIterator[Redis]:
    client = connect(tls_cluster.url, cluster=True)
    yield client
    await client.aclose()


async def test_the_client_of_a_slots_node_speaks_tls_like_the_cluster_client(
        cluster: Redis, tls_cluster: RedisCluster) -> None:
    key = f"{{forumtest-tls-{uuid.uuid4().hex[:8]}}}"  # one slot for both keys
    await cluster.initialize()  # type: ignore[attr-defined]  # learns the slots, over TLS
    node = node_client(cluster, key)
    assert node.connection_pool.connection_class is SSLConnection
    async with node.pipeline(transaction=True) as pipe:  # MULTI/EXEC on the slot's node
        pipe.set(key, b"v").incr(key + "-n")
        assert await pipe.execute() == [True, 1]
    assert await cluster.get(key) == b"v"
    await cluster.delete(key, key + "-n")
    node_of_harness = tls_cluster.client(tls_cluster.ports[0])  # blocking, over TLS too
    assert node_of_harness.ping()
    node_of_harness.close()


async def test_projection_on_a_tls_cluster_equals_a_plain_redis(
        store: PostgresEventStore, redis: Redis, cluster: Redis, key_prefix: str) -> None:
    on_cluster, on_plain = Keys(f"{key_prefix}-t{uuid.uuid4().hex[:6]}"), Keys(key_prefix)
    try:
        await seed(store, 4, 5)
        for client, keys in ((cluster, on_cluster), (redis, on_plain)):
            await project(store, client, keys)
        await assert_alike(cluster, on_cluster, redis, on_plain)
    finally:
        await drop_prefix(cluster, on_cluster.prefix)
