"""The Redis Cluster harness works, and what a cluster asks of code that runs on it.

Each test writes under its own prefix, so a session's tests never meet each other's keys.
The rules shown here are the ones the forum's Redis code must respect on a cluster:
a multi-key command, a script and a MULTI/EXEC take keys of one hash slot only (a hash tag,
``{...}``, puts keys in one slot), while a pipeline without MULTI may mix slots.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.exceptions import (
    ClusterCrossSlotError,
    CrossSlotTransactionError,
    MovedError,
    RedisClusterException,
    WatchError,
)

from tests.conftest import unique
from tests.rediscluster import CLI, SERVER, RedisCluster, available

INCR_BOTH = "return {redis.call('incr', KEYS[1]), redis.call('incr', KEYS[2])}"


@pytest_asyncio.fixture
async def cluster(redis_cluster: RedisCluster) -> AsyncIterator[ClusterClient]:
    client = ClusterClient.from_url(redis_cluster.url)
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return unique("clustertest-")


def node_of(client: ClusterClient, key: str) -> ClusterNode:
    node = client.get_node_from_key(key)
    assert node is not None, key
    return node


def one_key_per_master(client: ClusterClient, prefix: str) -> dict[int, str]:
    """A key for each master (by port), found by trying names until every master has one."""
    found: dict[int, str] = {}
    for i in range(1000):
        key = f"{prefix}:{i}"
        found.setdefault(int(node_of(client, key).port), key)
        if len(found) == len(client.get_primaries()):
            return found
    raise AssertionError(f"no key for every master: {found}")


def text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


def plain(node: ClusterNode) -> Redis:
    """A standalone client on one node: no redirection, no slot checks of its own."""
    return Redis(host=node.host, port=int(node.port))


async def test_the_cluster_has_three_masters_on_the_harness_ports(
        redis_cluster: RedisCluster, cluster: ClusterClient) -> None:
    assert sorted(node.port for node in cluster.get_primaries()) == sorted(redis_cluster.ports)
    assert 6379 not in redis_cluster.ports
    # With several target nodes the reply is a dict of the replies, by node name.
    info: Any = await cluster.cluster_info(target_nodes=ClusterClient.ALL_NODES)
    assert {node: i["cluster_state"] for node, i in info.items()} == {
        name: "ok" for name in redis_cluster.nodes}


async def test_a_key_on_every_master_is_written_and_read_on_the_node_of_its_slot(
        cluster: ClusterClient, prefix: str) -> None:
    for port, key in one_key_per_master(cluster, prefix).items():
        node = node_of(cluster, key)
        slot = await cluster.execute_command("CLUSTER KEYSLOT", key, target_nodes=node)
        assert slot == cluster.keyslot(key)
        assert await cluster.set(key, f"on {port}")
        assert await cluster.get(key) == f"on {port}".encode()
        direct = plain(node)
        try:  # the value lives on that node: read there without a redirection
            assert await direct.get(key) == f"on {port}".encode()
        finally:
            await direct.aclose()


async def test_a_pipeline_without_multi_spans_slots_and_masters(
        cluster: ClusterClient, prefix: str) -> None:
    keys = list(one_key_per_master(cluster, prefix).values())
    pipe = cluster.pipeline()
    for key in keys:
        pipe.set(key, key)
        pipe.incr(f"{key}:n")
    for key in keys:
        pipe.get(key)
    replies = await pipe.execute()
    assert replies == [True, 1] * len(keys) + [key.encode() for key in keys]


async def test_a_script_on_keys_of_one_hash_tag_runs(
        cluster: ClusterClient, prefix: str) -> None:
    first, second = f"{{{prefix}}}:a", f"{{{prefix}}}:b"
    assert cluster.keyslot(first) == cluster.keyslot(second)
    script = cluster.register_script(INCR_BOTH)
    assert await script(keys=[first, second]) == [1, 1]
    assert await cluster.eval(INCR_BOTH, 2, first, second) == [2, 2]


async def test_a_script_on_keys_of_two_slots_is_refused(
        cluster: ClusterClient, prefix: str) -> None:
    first, second = list(one_key_per_master(cluster, prefix).values())[:2]
    script = cluster.register_script(INCR_BOTH)
    # redis-py refuses before sending: it must pick one node for the script.
    with pytest.raises(RedisClusterException, match="same key slot"):
        await script(keys=[first, second])
    # Sent anyway, to the node of one of the keys, the server refuses it: CROSSSLOT.
    with pytest.raises(ClusterCrossSlotError):
        await cluster.execute_command("EVAL", INCR_BOTH, 2, first, second,
                                      target_nodes=node_of(cluster, first))
    assert await cluster.exists(first, second) == 0


async def test_mget_takes_one_slot_and_mget_nonatomic_any(
        cluster: ClusterClient, prefix: str) -> None:
    keys = list(one_key_per_master(cluster, prefix).values())
    for key in keys:
        await cluster.set(key, key)
    with pytest.raises(RedisClusterException, match="same key slot"):
        await cluster.mget(keys)
    missing = f"{prefix}:missing"
    assert await cluster.mget_nonatomic([*keys, missing]) == [*(k.encode() for k in keys), None]
    tagged = [f"{{{prefix}}}:{i}" for i in range(3)]
    assert await cluster.mget(tagged) == [None, None, None]


async def test_a_watched_transaction_runs_on_one_slot_only(
        redis_cluster: RedisCluster, cluster: ClusterClient, prefix: str) -> None:
    counter, mark = f"{{{prefix}}}:counter", f"{{{prefix}}}:mark"
    async with cluster.pipeline(transaction=True) as pipe:
        await pipe.watch(counter)  # type: ignore[no-untyped-call]
        value = int(await pipe.get(counter) or 0)
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set(counter, value + 1)
        pipe.set(mark, "x")
        assert await pipe.execute() == [True, True]
    assert await cluster.get(counter) == b"1"

    other = ClusterClient.from_url(redis_cluster.url)
    try:
        async with cluster.pipeline(transaction=True) as pipe:
            await pipe.watch(counter)  # type: ignore[no-untyped-call]
            await other.set(counter, 100)  # another client writes between WATCH and EXEC
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(counter, 2)
            with pytest.raises(WatchError):
                await pipe.execute()
    finally:
        await other.aclose()
    assert await cluster.get(counter) == b"100"

    first, second = list(one_key_per_master(cluster, prefix).values())[:2]
    async with cluster.pipeline(transaction=True) as pipe:
        pipe.set(first, 1)
        pipe.set(second, 1)
        with pytest.raises(CrossSlotTransactionError):
            await pipe.execute()


async def test_scan_iter_reads_every_master_but_keys_only_one_node(
        cluster: ClusterClient, prefix: str) -> None:
    keys = sorted(one_key_per_master(cluster, prefix).values())
    for key in keys:
        await cluster.set(key, 1)
    scanned = [text(k) async for k in cluster.scan_iter(match=f"{prefix}:*")]
    assert sorted(scanned) == keys
    # KEYS goes to the default node alone unless it is told to ask every master.
    assert len(await cluster.keys(f"{prefix}:*")) == 1
    every = await cluster.keys(f"{prefix}:*", target_nodes=ClusterClient.PRIMARIES)
    assert sorted(text(k) for k in every) == keys


async def test_a_plain_client_on_the_owning_node_runs_multi_exec_for_one_slot(
        cluster: ClusterClient, prefix: str) -> None:
    counter, mark = f"{{{prefix}}}:counter", f"{{{prefix}}}:mark"
    node = node_of(cluster, counter)
    direct = plain(node)
    try:
        async with direct.pipeline(transaction=True) as pipe:
            await pipe.watch(counter)
            value = int(await pipe.get(counter) or 0)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(counter, value + 1)
            pipe.set(mark, "y")
            assert await pipe.execute() == [True, True]
        # The same node, another slot: MULTI/EXEC is still one slot only.
        elsewhere = next(k for k in (f"{prefix}:{i}" for i in range(1000))
                         if node_of(cluster, k) is node
                         and cluster.keyslot(k) != cluster.keyslot(counter))
        async with direct.pipeline(transaction=True) as pipe:
            pipe.set(counter, 5)
            pipe.set(elsewhere, 5)
            with pytest.raises(ClusterCrossSlotError):
                await pipe.execute()
        # A key another node owns is answered with MOVED: a plain client does not follow.
        foreign = next(k for k in (f"{prefix}:{i}" for i in range(1000))
                       if node_of(cluster, k) is not node)
        with pytest.raises(MovedError):
            await direct.get(foreign)
    finally:
        await direct.aclose()
    assert await cluster.get(counter) == b"1"


@pytest.mark.skipif(not available(), reason=f"a Redis Cluster needs {SERVER} and {CLI}")
def test_a_stopped_cluster_leaves_no_process_and_no_directory() -> None:
    with RedisCluster() as own:
        pids = [proc.pid for proc in own.processes]
        directory = own.dir
        assert len(pids) == 3 and directory.is_dir()
    assert not directory.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
