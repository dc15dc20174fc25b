"""Writers of one stream in this process take turns.

Every write decides on the stream's current state and appends with the version it
decided on (optimistic concurrency: events/postgres.py refuses a stale version). Two
requests of one process replying to the same thread at once would both load, both
decide, and one would lose, reload and decide again: under load the losers' repeated
reads and decisions are work that produces nothing, they make every request slower,
which makes more of them overlap and lose (bench/lag.py at 200 replies/s on 50 threads
went from POST p50 3 ms to seconds, and 66 replies were refused as "the thread is busy"
after eight lost races). Here they queue instead: one decision per append. Optimistic
concurrency still decides between processes and hosts; this only stops a process from
racing itself.

Written here because an asyncio lock per key that is forgotten once nobody holds or
awaits it is a dozen lines; no library we use has one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Turns:
    """``async with turns.of(key):`` one holder per key at a time, in arrival order
    (asyncio.Lock is fair). A key's lock exists only while someone holds or awaits it,
    so the table holds at most as many keys as there are writes in flight."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def of(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:  # also when cancelled while waiting: the count must come down
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
