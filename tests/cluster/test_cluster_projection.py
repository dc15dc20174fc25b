"""The write side on a real three-master Redis Cluster (tests/rediscluster.py): live
projection, a replay and a wipe of Redis leave the cluster holding, key for key and byte
for byte, what the same log projected the same way into a plain Redis holds; every commit
is a transaction on one partition's slot (workers/commit.py ``SlotCommitter``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from common.redis_client import connect
from events.postgres import PostgresEventStore
from tests.integration.test_evicted_pages import seed
from tests.readmodel_dump import differences, drop_prefix, dump, last_written, rebuild_all
from tests.rediscluster import RedisCluster
from workers.checkpoints import partitions
from workers.live import Live
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.readmodels.keys import PARTITIONS


@pytest_asyncio.fixture
async def cluster(redis_cluster: RedisCluster) -> AsyncIterator[Redis]:
    client = connect(redis_cluster.url, cluster=True)
    yield client
    await client.aclose()


async def project(store: PostgresEventStore, redis: Redis, keys: Keys) -> None:
    """Tick as a worker does until every partition of every read model is at the last
    event written."""
    live = Live(store, redis, keys)
    last = await last_written(store)
    deadline = time.monotonic() + 60
    while True:
        await live.tick()
        found = await partitions(redis, keys, list(PROJECTIONS))
        if all(p is not None and p >= last for at in found.values() for p in at):
            return
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def keys_per_master(nodes: RedisCluster, keys: Keys) -> list[int]:
    counts = []
    for port in nodes.ports:
        node = Redis(port=port)
        counts.append(len([k async for k in node.scan_iter(match=f"{keys.prefix}:*")]))
        await node.aclose()
    return counts


async def assert_alike(cluster: Redis, cluster_keys: Keys, plain: Redis, plain_keys: Keys
                       ) -> dict[str, object]:
    on_cluster, on_plain = await dump(cluster, cluster_keys), await dump(plain, plain_keys)
    assert on_cluster == on_plain, differences(on_cluster, on_plain)
    return on_cluster


async def test_live_projection_replay_and_wipe_on_a_cluster_equal_a_plain_redis(
        store: PostgresEventStore, redis: Redis, cluster: Redis, key_prefix: str,
        redis_cluster: RedisCluster) -> None:
    on_cluster, on_plain = Keys(f"{key_prefix}-c{uuid.uuid4().hex[:6]}"), Keys(key_prefix)
    try:
        await seed(store, 6, 6)
        for client, keys in ((cluster, on_cluster), (redis, on_plain)):
            await project(store, client, keys)  # built, swapped in, then live
        # Projected live: pages written, each partition committed on its own slot.
        await seed(store, 10, 7, slug="more")
        for client, keys in ((cluster, on_cluster), (redis, on_plain)):
            await project(store, client, keys)
        live = await assert_alike(cluster, on_cluster, redis, on_plain)
        assert sum(1 for k in live if ":t:" in k and k.endswith(":posts")) == 10
        checkpoints = [k for k in live if k.endswith(":checkpoint")]
        assert len(checkpoints) == len(PROJECTIONS) * PARTITIONS
        held = await keys_per_master(redis_cluster, on_cluster)
        assert len(held) == 3 and min(held) > 50, held  # the partitions are spread

        for client, keys in ((cluster, on_cluster), (redis, on_plain)):  # forum replay
            await rebuild_all(store, client, keys)
        await assert_alike(cluster, on_cluster, redis, on_plain)

        await drop_prefix(cluster, on_cluster.prefix)  # Redis lost everything
        await seed(store, 2, 4, slug="after-the-wipe")
        await project(store, cluster, on_cluster)
        await drop_prefix(redis, on_plain.prefix)
        await project(store, redis, on_plain)
        await assert_alike(cluster, on_cluster, redis, on_plain)
    finally:
        await drop_prefix(cluster, on_cluster.prefix)
