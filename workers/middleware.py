"""Worker resources, the periodic catch-up and the wake listener. [dramatiq]

On boot each worker process opens its PostgreSQL pool and Redis client on the AsyncIO
middleware's event loop, listens for the API's wakes (workers/wake.py: a catch-up as soon
as the log grows) and starts a tick that catches up every ``TICK`` seconds: wakes and
nudges are only hints, the tick is what guarantees progress (a lost wake or nudge, a broker
that is down, a message the Redis broker holds until a dead worker's heartbeat times out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread

from common.redis_client import connect
from events.offset import say_if_ahead
from events.postgres import PostgresEventStore, create_pool
from workers.live import Live
from workers.readmodels import Keys
from workers.search.follow import Search
from workers.settings import WorkerSettings
from workers.wake import listen

log = structlog.get_logger(__name__)

TICK = 0.5
SEARCH_WAKE_EVERY = 0.1
# Seconds an orphaned worker process is given to stop before it exits regardless.
ORPHAN_GRACE = 5.0


class Resources(dramatiq.Middleware):
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.live: Live | None = None
        self.search: Search | None = None
        self._closers: list[Any] = []
        self._redis: Any = None
        self._search_due = 0.0  # time.monotonic() from which a wake catches search up
        self._tickers: list[Any] = []
        self._stopping = False
        self._parent = os.getppid()

    async def _open(self) -> None:
        pool = await create_pool(self.settings.database_url, min_size=1, max_size=8)
        redis = connect(self.settings.redis_url, cluster=self.settings.redis_cluster,
                        socket_connect_timeout=2,
                               socket_timeout=30)
        self._redis = redis
        self._closers = [pool.close, redis.aclose]
        store = PostgresEventStore(pool)
        self.live = Live(store, redis, Keys(self.settings.key_prefix))
        self.search = Search(store, pool)
        await say_if_ahead(log, store)

    async def _tick_forever(self, name: str, tick: Callable[[], Awaitable[int]]) -> None:
        """``tick`` every ``TICK`` seconds. The read models in Redis and the search model
        in PostgreSQL tick apart: either goes on while the other's store is away."""
        failures = 0
        while not self._stopping:
            if os.getppid() != self._parent:
                # Dramatiq's main process died (SIGKILL): nobody will ever tell this
                # orphan to stop, and the process manager starts a new main process.
                log.warning("parent_process_gone", parent=self._parent)
                os.kill(os.getpid(), signal.SIGTERM)
                # Dramatiq's stop then waits for the messages in hand (its shutdown
                # timeout: 10 minutes by default) and may block on the logging pipe to the
                # dead main process (seen with dramatiq 2.2). Nothing this process holds
                # needs that: a nudge is redone by the next tick of the new workers, and
                # leases expire. So it exits regardless after a short grace.
                threading.Timer(ORPHAN_GRACE, os._exit, args=(1,)).start()
                return
            try:
                await tick()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep ticking: PostgreSQL or Redis may come back
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("tick_failed", ticking=name, error=repr(error),
                                failures=failures)
            await asyncio.sleep(TICK)

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Open before the worker threads start: messages already waiting in the queue are
        # processed as soon as they do, and the actor needs ``live`` by then.
        thread = get_event_loop_thread()
        assert thread is not None, "the AsyncIO middleware must come before Resources"
        thread.run_coroutine(self._open())

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._parent = os.getppid()
        thread = get_event_loop_thread()
        assert thread is not None, "the AsyncIO middleware must come before Resources"
        assert self.live is not None and self.search is not None
        self._tickers = [
            asyncio.run_coroutine_threadsafe(self._tick_forever(name, tick), thread.loop)
            for name, tick in (("read models", self.live.tick), ("search", self.search.tick))]
        if not self.settings.redis_cluster:  # see workers/wake.py
            self._tickers.append(asyncio.run_coroutine_threadsafe(listen(
                self._redis, Keys(self.settings.key_prefix).wake(), self._woken,
                lambda: self._stopping), thread.loop))

    async def _woken(self) -> None:
        """The read models at once; the search model at most every ``SEARCH_WAKE_EVERY``
        (each catch-up of it is a PostgreSQL transaction: a sixth of the worker's CPU at
        200 writes/s when run on every wake, for an index nobody reads within 100 ms of a
        write; the tick still brings it up to date after the last wake)."""
        assert self.live is not None and self.search is not None
        now = time.monotonic()
        if now < self._search_due:
            await self.live.catch_up()
            return
        self._search_due = now + SEARCH_WAKE_EVERY
        await self.catch_up()

    async def catch_up(self) -> None:
        """Catch every live read model, and the search model, up with the log. Either goes
        on when the other fails. The ``catch_up`` actor (workers/actors.py) and a wake."""
        assert self.live is not None and self.search is not None
        for outcome in await asyncio.gather(self.live.catch_up(), self.search.catch_up(),
                                            return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stopping = True
        thread = get_event_loop_thread()
        if thread is None:
            return
        for ticker in self._tickers:
            ticker.cancel()
        for close in self._closers:
            with contextlib.suppress(Exception):
                thread.run_coroutine(close())
