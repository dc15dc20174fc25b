"""A projector's fair share of the partitions (workers/partitions.py) is the projector's:
its periodic tick and its actors' threads run catch-up passes at once, all through the
same ``Claims``, and together they hold no more than the share."""

from __future__ import annotations

import asyncio

from workers.live import LIVE_LEASE_MS
from workers.partitions import Claims, owners, share
from workers.readmodels.keys import PARTITIONS


async def test_passes_at_once_hold_no_more_than_their_projectors_share(redis, keys):  # type: ignore[no-untyped-def]
    claims = Claims(redis, keys, ttl_ms=LIVE_LEASE_MS, name="one")
    other = Claims(redis, keys, ttl_ms=LIVE_LEASE_MS, name="two")
    claims.alive = other.alive = 3
    every = range(PARTITIONS)
    first, second = await asyncio.gather(claims.claim(every), claims.claim(every))
    assert len(first) + len(second) == share(3)
    assert not set(first) & set(second)
    # Another projector has a share of its own, from what is free.
    theirs = await other.claim(every)
    assert len(theirs) == share(3)
    assert not set(theirs) & (set(first) | set(second))
    # What a pass lets go of makes room again.
    await claims.release(first)
    again = await claims.claim(every)
    assert len(again) == len(first)
    held = await owners(redis, keys)
    assert held.count("one") == share(3) and held.count("two") == share(3)
    await claims.release([*second, *again])
    await other.release(theirs)
    assert await owners(redis, keys) == [None] * PARTITIONS
