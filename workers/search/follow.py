"""Keeping the search model current, and building it anew.

The worker's nudge and its periodic tick call ``Search.catch_up``: read the log after the
live generation's checkpoint, page by page, and commit each page with the checkpoint
(workers/search/sink.py). The tick then pushes a build on for a slice of time when one is
under way or called for: no live generation yet, a live one of an older version, or one
made before an erasure it has since read (``Model.stale``). ``forum replay search``
(``replay``) starts a build and fills it to the end. A build that reads an erasure above
its own birth starts again, as the Redis builds do (workers/erasures.py).

One catch-up and one build at a time, each under a PostgreSQL advisory lock held by the
connection that commits (session locks, released before the connection goes back to the
pool); the compare-and-set on the checkpoint makes a second writer harmless anyway.
Nothing here touches Redis: search keeps working, and catching up, when Redis is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import structlog

from events import EventStore
from workers.erasures import erased_in
from workers.search.changes import changes
from workers.search.sink import (
    Model,
    commit,
    drop_build,
    models,
    needs_build,
    start_build,
    swap,
)

log = structlog.get_logger(__name__)

LIVE_BATCH = 500
# A page per transaction, and each holds the log's read horizon while it runs: 43 ms (p50),
# 99 ms (p99) for this many events (bench/results/2026-12-02-search.md), so not more.
BUILD_BATCH = 500
BUILD_SLICE_SECONDS = 0.5
_LIVE_LOCK = 0x7365_6172_6368_01  # "search" 1
_BUILD_LOCK = 0x7365_6172_6368_02


class BuildBusyError(Exception):
    """Another process holds the build lock (a worker's build, another replay)."""


@asynccontextmanager
async def _locked(pool: asyncpg.Pool, key: int, wait: float = 0.0
                  ) -> AsyncIterator[asyncpg.Connection | None]:
    """A connection holding the advisory lock ``key``, or None if it was not had within
    ``wait`` seconds."""
    async with pool.acquire() as conn:
        deadline = time.monotonic() + wait
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            if time.monotonic() >= deadline:
                yield None
                return
            await asyncio.sleep(0.5)
        try:
            yield conn
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
            except BaseException:
                # The pool keeps sessions as they are: a lock left on a pooled connection
                # would stop every later catch-up. Closing the session releases it.
                conn.terminate()
                raise


async def _catch_up(conn: asyncpg.Connection, store: EventStore, batch: int) -> int:
    applied = 0
    while True:
        live, _ = await models(conn)
        if live is None or not live.current:
            return applied  # built by other code: replaced by a build, never written
        feed = await store.read_feed(live.checkpoint, batch)
        if not feed:
            return applied
        if await commit(conn, live, feed[-1][0], erased_in(feed), changes(feed)):
            applied += len(feed)
            if len(feed) < batch:
                return applied


async def fill(conn: asyncpg.Connection, store: EventStore, *, deadline: float | None = None,
               batch: int = BUILD_BATCH, on_batch: Callable[[int], None] | None = None
               ) -> bool:
    """Push the build on: start one when the live generation needs it, start a stale one
    again, read the log into it and swap it in once it has caught up. True when no build
    is left (swapped in, or none needed); False when ``deadline`` (a ``time.monotonic()``
    value) passed first. ``conn`` holds the build lock."""
    while True:
        live, build = await models(conn)
        if build is None or build.stale:
            if build is None and not needs_build(live):
                return True
            if build is not None:
                log.info("search_build_restarted_after_erasure", generation=build.generation)
            build = await start_build(conn, born=await store.head())
        feed = await store.read_feed(build.checkpoint, batch)
        committed = bool(feed) and await commit(conn, build, feed[-1][0], erased_in(feed),
                                                 changes(feed))
        if committed and on_batch is not None:
            on_batch(len(feed))
        if len(feed) < batch:  # at the head of the log
            if await swap(conn, build):
                log.info("search_model_swapped", generation=build.generation)
                return True
            if not feed:
                await asyncio.sleep(0.05)  # the live one is ahead, or its readers are slow
        if deadline is not None and time.monotonic() >= deadline:
            return False


class Search:
    """The search model for a worker process: what its tick and its nudge call."""

    def __init__(self, store: EventStore, pool: asyncpg.Pool, *, batch: int = LIVE_BATCH,
                 build_batch: int = BUILD_BATCH) -> None:
        self.store = store
        self.pool = pool
        self.batch = batch
        self.build_batch = build_batch

    async def tick(self) -> int:
        """Catch the live generation up, then push a build on for a slice of time when
        one is under way or called for; returns the events applied live. Idle, this is
        two queries: the models' state and the log's head."""
        (live, build), head = await asyncio.gather(models(self.pool), self.store.head())
        applied = 0
        if live is not None and live.current and live.checkpoint < head:
            applied = await self.catch_up()
            if applied:  # it may have read an erasure
                live, build = await models(self.pool)
        if build is not None or needs_build(live):
            await self.advance(time.monotonic() + BUILD_SLICE_SECONDS)
        return applied

    async def catch_up(self) -> int:
        """Apply everything new to the live generation; returns events applied (0 as well
        when another process is at it)."""
        async with _locked(self.pool, _LIVE_LOCK) as conn:
            if conn is None:
                return 0
            return await _catch_up(conn, self.store, self.batch)

    async def advance(self, deadline: float) -> bool:
        """A slice of building, if no other process is building."""
        async with _locked(self.pool, _BUILD_LOCK) as conn:
            if conn is None:
                return False
            return await fill(conn, self.store, deadline=deadline, batch=self.build_batch)


async def replay(store: EventStore, pool: asyncpg.Pool, *, wait: float = 60.0,
                 on_batch: Callable[[int], None] | None = None,
                 batch: int = BUILD_BATCH) -> Model:
    """``forum replay search``: a fresh generation built from the whole log and swapped
    in, while the live one keeps serving; returns the generation that went live.
    Interrupted, the unfinished build is dropped and nothing changes for readers."""
    async with _locked(pool, _BUILD_LOCK, wait) as conn:
        if conn is None:
            raise BuildBusyError("another process is building the search model")
        await start_build(conn, born=await store.head())
        try:
            await fill(conn, store, batch=batch, on_batch=on_batch)
        except BaseException:
            await asyncio.shield(drop_build(conn))
            raise
        live, _ = await models(conn)
        assert live is not None
        return live
