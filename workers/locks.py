"""A lease in Redis: one holder at a time, expiring by itself if the holder dies.

Short leases renewed while held: a holder that dies (SIGKILL, a lost host) frees its
lease within its TTL, so another worker takes over in about that long, while a holder
that works for longer than the TTL keeps it by renewing. Holding a lease is only about
not doing the same work twice: what a holder writes is guarded by compare-and-set on the
checkpoints (workers/commit.py), so a lease lost under a stalled holder costs work, never
correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class Lease:
    def __init__(self, redis: Redis, key: str, ttl_ms: int = 10_000) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = secrets.token_hex(8)

    async def acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        return bool(await self.redis.eval(RENEW, 1, self.key, self.token,  # type: ignore[misc]
                                          self.ttl_ms))

    async def release(self) -> None:
        await self.redis.eval(RELEASE, 1, self.key, self.token)  # type: ignore[misc]

    def renewed(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Renew the (held) lease every quarter of its TTL while the block runs."""
        return renewing(self.ttl_ms, self.renew)


@contextlib.asynccontextmanager
async def renewing(ttl_ms: int, renew: Callable[[], Awaitable[object]]
                   ) -> AsyncIterator[None]:
    """Call ``renew`` every quarter of ``ttl_ms`` while the block runs."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(ttl_ms / 4000)
            await renew()

    task = asyncio.ensure_future(keep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
