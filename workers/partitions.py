"""Which live projector works on which partitions (workers/readmodels/keys.py): each
partition has a short lease, renewed while held, so a projector that dies (SIGKILL, a lost
host) frees its partitions within the lease's time and the others take them over.

A pass claims the partitions that are behind and free, up to a fair share of them: the
partitions divided by the projectors alive (each says so every tick in a sorted set, by
time), so several projectors busy at once work on different partitions. What it does
not claim is left for the others, or for its own next pass. Holding a partition is only
about not doing the same work twice: every commit is a compare-and-set on the
partitions' checkpoints (workers/commit.py), so a lease lost under a stalled holder costs
work, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from redis.asyncio import Redis

from common.redis_client import mget
from workers.locks import Lease, renewing
from workers.readmodels import Keys
from workers.readmodels.keys import PARTITIONS

# A projector that has not said it is alive for this long no longer counts in the share.
ALIVE_MS: Final = 3_000


def projector_name() -> str:
    """What ``forum status`` shows as a partition's owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def share(alive: int) -> int:
    """How many partitions one of ``alive`` projectors claims at most."""
    return math.ceil(PARTITIONS / max(1, alive))


class Claims:
    def __init__(self, redis: Redis, keys: Keys, *, ttl_ms: int, name: str | None = None
                 ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.name = name or projector_name()
        self.alive = 1
        leases = [Lease(redis, keys.partition_lease(p), ttl_ms) for p in range(PARTITIONS)]
        for lease in leases:  # one holder name for all: what ``forum status`` shows
            lease.token = f"{self.name}/{leases[0].token}"
        self._leases = leases
        # What this projector's passes hold now: the tick and the actors' threads run
        # passes at once, and the share is the projector's, not each pass's.
        self._held: set[int] = set()

    async def say_alive(self) -> int:
        """Count this projector among those alive; returns how many are."""
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers(), {self.name: now})
            pipe.zremrangebyscore(self.keys.workers(), "-inf", now - ALIVE_MS)
            pipe.zcard(self.keys.workers())
            *_, alive = await pipe.execute()
        self.alive = int(alive)
        return self.alive

    async def claim(self, wanted: Iterable[int]) -> list[int]:
        """Claim what is free of ``wanted``, in order, up to this projector's share (less
        what its other passes hold)."""
        held: list[int] = []
        candidates = [p for p in wanted if p not in self._held]
        while candidates and (room := share(self.alive) - len(self._held)) > 0:
            asked, candidates = candidates[:room], candidates[room:]
            # Counted as held while asked for: a pass claiming meanwhile sees less room.
            self._held.update(asked)
            got = [False] * len(asked)
            try:
                got = await self._each(asked, Lease.acquire_on)
            finally:
                self._held.difference_update(
                    p for p, ok in zip(asked, got, strict=True) if not ok)
            held += [p for p, ok in zip(asked, got, strict=True) if ok]
        return sorted(held)

    async def renew(self, held: Iterable[int]) -> None:
        await self._each(list(held), Lease.renew_on)

    async def release(self, held: Iterable[int]) -> None:
        held = list(held)
        try:
            await self._each(held, Lease.release_on)
        finally:  # only once let go: until then they still count against the share
            self._held.difference_update(held)

    async def _each(self, partitions: list[int], command: Callable[[Lease, Any], object]
                    ) -> list[bool]:
        """``command`` on each partition's lease, in one pipeline: one round trip (on a
        cluster one per node, at once), where a pass claiming and letting go of 16
        partitions one by one cost the projector a third more CPU than its work."""
        if not partitions:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in partitions:
                command(self._leases[p], pipe)
            return [bool(reply) for reply in await pipe.execute()]

    def renewed(self, held: list[int]) -> contextlib.AbstractAsyncContextManager[None]:
        """Renew the leases on ``held`` every quarter of their time while the block runs,
        and say this projector is alive (a long pass must not drop out of the count)."""
        return renewing(self.ttl_ms,
                        lambda: asyncio.gather(self.renew(held), self.say_alive()))


async def owners(redis: Redis, keys: Keys) -> list[str | None]:
    """Each partition's holder now (None: no pass is working on it)."""
    values = await mget(redis, [keys.partition_lease(p) for p in range(PARTITIONS)])
    return [None if v is None else (v.decode() if isinstance(v, bytes) else v).split("/")[0]
            for v in values]
