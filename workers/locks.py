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
from typing import Any

from redis.asyncio import Redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
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

    # Each command on ``commands``: this lease's client, or a pipeline that sends the
    # commands of many leases at once (workers/partitions.py).
    def acquire_on(self, commands: Any) -> Any:
        return commands.set(self.key, self.token, nx=True, px=self.ttl_ms)

    def renew_on(self, commands: Any) -> Any:
        return commands.execute_command("EVAL", _RENEW, 1, self.key, self.token, self.ttl_ms)

    def release_on(self, commands: Any) -> Any:
        return commands.execute_command("EVAL", _RELEASE, 1, self.key, self.token)

    async def acquire(self) -> bool:
        return bool(await self.acquire_on(self.redis))

    async def renew(self) -> bool:
        return bool(await self.renew_on(self.redis))

    async def release(self) -> None:
        await self.release_on(self.redis)

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
