"""Timed checks of the services the API depends on, for /ready and /ready/writes.

Each answers "ok" or "down: <why>" within its timeout, never raises. A check must get an
answer from the service itself: a stopped process (SIGSTOP, a hung host) still has its
kernel accept TCP connections into the listen backlog, so "a connection opened" proves
nothing; only a reply does (PING for Redis, the AMQP handshake for RabbitMQ).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

OK = "ok"
NOT_USED = "not used"


async def timed(check: Awaitable[object], timeout: float, *, grace: float = 0.0) -> str:
    """"ok" when ``check`` completes within ``timeout`` seconds, else why not. ``grace``:
    more time for a check bounded by its client's own ``timeout``, to fail its own way."""
    try:
        await asyncio.wait_for(check, timeout + grace)
    except TimeoutError:
        return f"down: no answer within {timeout:g} s"
    except Exception as error:
        if "Timeout" in type(error).__name__:  # the client's own timeout (redis, pika)
            return f"down: no answer within {timeout:g} s ({type(error).__name__})"
        return f"down: {type(error).__name__}"
    return OK


async def postgres(pool: asyncpg.Pool, timeout: float = 2.0) -> str:
    return await timed(pool.fetchval("SELECT 1"), timeout)


async def redis(client: Redis, timeout: float = 2.0) -> str:
    return await timed(client.ping(), timeout)


async def broker(url: str, timeout: float = 1.0) -> str:
    """The broker at ``url`` ("none": not used) answers: a Redis PING, or a RabbitMQ
    connection opened (handshake, credentials, virtual host) and closed."""
    if url == "none":
        return NOT_USED
    if url.startswith(("amqp://", "amqps://")):
        # pika (Dramatiq's RabbitMQ client) blocks: in a thread, bounded by its own
        # timeouts, so a cancelled wait leaves no thread running for long.
        return await timed(asyncio.to_thread(_amqp_handshake, url, timeout), timeout,
                           grace=0.5)
    return await timed(_redis_ping(url, timeout), timeout, grace=0.5)


async def _redis_ping(url: str, timeout: float) -> None:
    # A connection of its own per check: a kept one could be a broken socket that the
    # next PING only finds out about, and a probe runs a few times a minute at most.
    # No retries: redis-py retries a timed-out command three times by default.
    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                            retry=Retry(NoBackoff(), 0), single_connection_client=True)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _amqp_handshake(url: str, timeout: float) -> None:
    import pika  # type: ignore[import-untyped]

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.connection_attempts = 1
    parameters.retry_delay = 0
    pika.BlockingConnection(parameters).close()
