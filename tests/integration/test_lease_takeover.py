"""The live projector's leases on partitions (workers/partitions.py, workers/live.py): a
holder that dies frees them within their short TTL, so another worker carries projection
on within about two seconds; a holder that drains for longer than the TTL keeps them by
renewing."""

from __future__ import annotations

import asyncio
import time

from events.records import forum_stream
from events.sections import ForumCreated
from tests.builders import NOW, unique_slug
from workers.checkpoints import positions
from workers.live import LIVE_LEASE_MS, Live
from workers.partitions import Claims, owners
from workers.projections import PROJECTIONS
from workers.readmodels.keys import PARTITIONS


async def created(store, slug: str) -> int:  # type: ignore[no-untyped-def]
    return int(await store.append(forum_stream(slug), 0, [
        ForumCreated(occurred_at=NOW, actor="operator", slug=slug, title="S")]))


async def reached(live: Live, position: int) -> bool:
    done = await positions(live.redis, live.keys, list(PROJECTIONS))
    return all(p is not None and p >= position for p in done.values())


async def test_a_dead_holders_lease_is_taken_over_within_its_short_ttl(store, redis, keys,
                                                                         project):
    await created(store, unique_slug())
    await project()
    # A worker claimed every partition and was SIGKILLed: the leases stay until their TTL
    # runs out.
    dead = Claims(redis, keys, ttl_ms=LIVE_LEASE_MS, name="dead")
    assert await dead.claim(range(PARTITIONS)) == list(range(PARTITIONS))
    position = await created(store, unique_slug())
    other = Live(store, redis, keys)
    started = time.monotonic()
    while not await reached(other, position):
        assert time.monotonic() - started < LIVE_LEASE_MS / 1000 + 1.5, "no takeover"
        await other.tick()  # what a surviving worker's periodic tick does
        await asyncio.sleep(0.1)
    assert time.monotonic() - started >= 0.5  # it did wait for the dead holder's lease


class SlowStore:
    """A store whose pages of the log take 0.8 s each to read: a long drain."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self._store = store

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._store, name)

    async def read_feed(self, after: int, limit: int):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.8)
        return await self._store.read_feed(after, limit)


async def test_a_holder_draining_longer_than_the_ttl_keeps_its_lease(store, redis, keys,
                                                                     project):
    await project()
    for _ in range(4):
        position = await created(store, unique_slug())
    while await store.head() < position:  # another test's transaction holds the horizon
        await asyncio.sleep(0.05)
    slow = Live(SlowStore(store), redis, keys, batch=1)  # four pages: over 3 s
    draining = asyncio.ensure_future(slow.catch_up())
    holders = [slow.claims.name] * PARTITIONS
    for _ in range(40):  # it reads where the log and the partitions are, then claims
        if await owners(redis, keys) == holders:
            break
        await asyncio.sleep(0.05)
    assert await owners(redis, keys) == holders
    for _ in range(int(LIVE_LEASE_MS / 1000 * 1.5 / 0.25)):  # past the TTL, twice over
        await asyncio.sleep(0.25)
        assert await owners(redis, keys) == holders, "a lease lapsed mid-drain"
    assert await draining >= 4
    assert await reached(slow, position)
    assert await owners(redis, keys) == [None] * PARTITIONS  # released when done
