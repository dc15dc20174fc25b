"""Waking the projectors at once when the log grows: a Redis pub/sub channel.

The API could only nudge through the broker (a ``catch_up`` message), and Dramatiq's Redis
broker does not block on its queue: an idle consumer polls it every ``idle_poll_ms``
(25 ms), so a reply waited half that on average before a worker even looked, and every
write cost a message fetched, run and acknowledged by Lua scripts (a quarter of the worker's
CPU at 100 writes/s). Each worker process listens here instead; the API publishes (one
round trip on its own event loop, service/notify.py ``WakingNotifier``) and falls back to
the broker's message only when no worker listens. A wake is a hint like a nudge: one that
is lost is found by the tick (workers/middleware.py).

Not on a Redis Cluster: redis-py's asyncio cluster client has no pub/sub, and a cluster
needs the RabbitMQ broker, which pushes its messages without polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

LISTEN_TIMEOUT = 1.0  # seconds one wait for a wake may take (then ``stopping`` is asked)
RESUBSCRIBE_AFTER = 1.0  # seconds after a lost connection before subscribing again


async def listen(redis: Redis, channel: str, run: Callable[[], Awaitable[Any]],
                 stopping: Callable[[], bool]) -> None:
    """``run`` after each wake on ``channel``, one at a time: wakes that arrive while it
    runs are answered by a single further run (it reads the log from the checkpoints, so
    one run covers every write before it started). Until ``stopping()``."""
    failures = 0
    while not stopping():
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as subscription:
                await subscription.subscribe(channel)
                failures = 0
                while not stopping():
                    if await subscription.get_message(timeout=LISTEN_TIMEOUT) is None:
                        continue
                    while await subscription.get_message(timeout=0) is not None:
                        pass  # already waiting: the same run answers them
                    try:
                        await run()
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:  # the tick goes on; so does listening
                        log.warning("wake_run_failed", error=repr(error))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # Redis away: listen again once it may be back
            failures += 1
            if failures == 1 or failures % 60 == 0:
                log.warning("wake_listen_failed", error=repr(error), failures=failures)
            await asyncio.sleep(RESUBSCRIBE_AFTER)
