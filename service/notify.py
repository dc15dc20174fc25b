"""Telling the workers that the log has grown.

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


class CoalescingNotifier:
    """Runs a blocking ``send`` in a thread, never more than one at a time."""

    def __init__(self, send: Callable[[], None]) -> None:
        self._send = send
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def notify(self) -> None:
        self._wanted.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await asyncio.to_thread(self._send)
            except Exception as error:  # the broker being away must not fail writes
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    log.warning("nudge_failed", error=repr(error), failures=self.failures)
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
