"""An idle worker (nothing new in the log, no rebuild under way) costs a few Redis round
trips per tick: every worker process ticks twice a second, forever.

Round trips are counted on the client's own connections (each write of one or more
commands to Redis, which then waits for their replies, is one), so other tests sharing
the Redis server change nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

from tests.conftest import REDIS_URL
from tests.invariants.test_live_equals_rebuild import World
from workers.checkpoints import positions
from workers.live import Live
from workers.projections import PROJECTIONS

IDLE_TICK_ROUND_TRIPS = 3


class Counted:
    def __init__(self) -> None:
        self.sent = 0


@pytest_asyncio.fixture
async def counted() -> AsyncIterator[tuple[Redis, Counted]]:
    count = Counted()

    class CountingConnection(Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True
                                      ) -> None:
            count.sent += 1
            await super().send_packed_command(command, check_health)

    pool = ConnectionPool.from_url(REDIS_URL, connection_class=CountingConnection)
    client = Redis(connection_pool=pool)
    yield client, count
    await client.aclose()
    await pool.disconnect()


async def caught_up(live: Live) -> None:
    head = await live.store.head()
    for _ in range(50):
        await live.tick()
        done = await positions(live.redis, live.keys, list(PROJECTIONS))
        building = await live.redis.keys(f"{live.keys.prefix}:building:*")
        if not building and all(p is not None and p >= head for p in done.values()):
            return
    raise AssertionError(f"not caught up with {head}: {done}")


async def test_an_idle_tick_costs_at_most_three_redis_round_trips(store, keys, counted):
    redis, count = counted
    live = Live(store, redis, keys)
    await caught_up(live)  # every read model built and swapped in, on an empty log
    await World(store).seed()
    await caught_up(live)  # and the seed projected live
    for _ in range(3):
        count.sent = 0
        assert await live.tick() == 0
        assert count.sent <= IDLE_TICK_ROUND_TRIPS, count.sent


async def test_an_idle_tick_still_sees_what_is_new(store, keys, counted):
    redis, _ = counted
    live = Live(store, redis, keys)
    await caught_up(live)
    await live.tick()
    await World(store).seed()
    # The log's readable head may trail while another test's transaction is open.
    deadline = time.monotonic() + 10
    while not await live.tick():
        assert time.monotonic() < deadline, "the tick never applied the new events"
        await asyncio.sleep(0.02)
