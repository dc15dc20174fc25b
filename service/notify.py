"""Telling the workers that the log has grown: a wake on Redis pub/sub that each worker
process listens to (workers/wake.py), else a ``catch_up`` message through the broker.

A nudge is only a hint: workers read the log from their own checkpoints, and a periodic
catch-up finds whatever a lost nudge did not announce. So nudges are coalesced (at most one
in flight per process) and a broker that is down costs nothing but a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)


class Notifier(Protocol):
    def notify(self) -> None: ...

    async def close(self) -> None: ...


class NullNotifier:
    def __init__(self) -> None:
        self.count = 0

    def notify(self) -> None:
        self.count += 1

    async def close(self) -> None:
        return None


class _Coalesced:
    """Notifications coalesced: ``_send_once`` runs in a task of its own, never two at
    once; notifications while it runs make one more run after it."""

    def __init__(self) -> None:
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wanted.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self._send_once()

    async def _send_once(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class CoalescingNotifier(_Coalesced):
    """Runs a blocking ``send`` in a thread, never more than one at a time."""

    def __init__(self, send: Callable[[], None]) -> None:
        super().__init__()
        self._send = send
        self.failures = 0

    async def _send_once(self) -> None:
        try:
            await asyncio.to_thread(self._send)
        except Exception as error:  # the broker being away must not fail writes
            self.failures += 1
            if self.failures == 1 or self.failures % 100 == 0:
                log.warning("nudge_failed", error=repr(error), failures=self.failures)
            await asyncio.sleep(0.5)


class WakingNotifier(_Coalesced):
    """PUBLISH on the workers' wake channel: one round trip on the event loop, no thread,
    no message for the broker to store and a worker to fetch. When nobody listens (no
    worker running, or workers of a release without the listener) or Redis refuses, the
    broker's message goes instead (``fallback``). Coalesced like it: at most one in
    flight; notifications meanwhile make one more."""

    def __init__(self, redis: Redis, channel: str, fallback: Notifier,
                 on_sent: Callable[[str], None] = lambda via: None) -> None:
        super().__init__()
        self._redis = redis
        self._on_sent = on_sent
        self._channel = channel
        self._fallback = fallback

    async def _send_once(self) -> None:
        try:
            listeners = await self._redis.publish(self._channel, b"")
        except Exception as error:  # Redis away: the broker may still carry it
            log.debug("wake_failed", error=repr(error))
            listeners = 0
        if not listeners:
            self._fallback.notify()
        self._on_sent("wake" if listeners else "broker")

    async def close(self) -> None:
        await super().close()
        await self._fallback.close()
