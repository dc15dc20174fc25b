"""A replay's helper process, on its own: it builds its share exactly like one process
would, and it stops at its next batch when the ``forum replay`` that started it is gone."""

from __future__ import annotations

import multiprocessing

import msgspec
import pytest
from redis.asyncio import Redis

from service.settings import Settings
from tests.conftest import free_port
from tests.invariants.test_replay_while_writing import bulk
from workers import rebuild, rebuild_jobs
from workers.rebuild_jobs import _child_fill

pytestmark = pytest.mark.asyncio

SHARE = ["thread_list", "member_stats"]


async def test_a_helper_builds_its_share_and_swaps_it_in(  # type: ignore[no-untyped-def]
    settings: Settings, store, redis: Redis, keys,
):
    await bulk(store, threads_=20, replies=30)
    builds = {name: await rebuild.start(redis, keys, name, fresh=True) for name in SHARE}
    receiving, sending = multiprocessing.Pipe(duplex=False)
    await _child_fill(settings, builds, sending)
    told = 0
    while receiving.poll():
        told += receiving.recv()
    assert told == len(await store.read_feed(0, 1_000_000))  # every event, reported
    for name, ns in builds.items():
        assert await redis.get(keys.active(name)) == ns.encode()
        assert not await redis.exists(keys.building(name))


async def test_a_helper_whose_replay_is_gone_stops_without_swapping(  # type: ignore[no-untyped-def]
    settings: Settings, store, redis: Redis, keys,
):
    await bulk(store, threads_=40, replies=60)  # several batches
    builds = {name: await rebuild.start(redis, keys, name, fresh=True) for name in SHARE}
    receiving, sending = multiprocessing.Pipe(duplex=False)
    receiving.close()  # what the parent's death does to the pipe
    with pytest.raises(BrokenPipeError):
        await _child_fill(settings, builds, sending)
    for name, ns in builds.items():
        assert await redis.get(keys.active(name)) is None
        assert await redis.get(keys.building(name)) == ns.encode()


async def test_a_helper_that_fails_fails_the_replay_and_swaps_nothing_of_its_share(  # type: ignore[no-untyped-def]
    settings: Settings, store, redis: Redis, keys,
):
    await bulk(store, threads_=10, replies=10)
    names = ["thread_page", *SHARE]
    builds = {name: await rebuild.start(redis, keys, name, fresh=True) for name in names}
    unreachable = msgspec.structs.replace(
        settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/forum")
    with pytest.raises(RuntimeError, match=r"a rebuild process for .*failed"):
        await rebuild_jobs.fill(unreachable, store, redis, keys, builds, jobs=2)
    for name in SHARE:  # the helper's share: it never reached PostgreSQL
        assert await redis.get(keys.active(name)) is None
