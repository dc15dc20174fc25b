"""Keeps the live read models up to date; what the actors and the periodic tick call.

One worker at a time projects (a lease); a worker that finds the lease taken leaves a
"dirty" mark, and the holder checks that mark after letting go, so a nudge that arrives
while another worker is finishing is never lost. The periodic tick also starts and
advances rebuilds of read models that are missing, lost or of an older version.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis

from events import EventStore
from workers import rebuild
from workers.locks import Lease
from workers.projecting import Target
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.runner import stream

log = structlog.get_logger(__name__)

LIVE_BATCH = 500
BUILD_SLICE_SECONDS = 0.5


class Projector:
    def __init__(self, store: EventStore, redis: Redis, keys: Keys, *,
                 batch: int = LIVE_BATCH) -> None:
        self.store = store
        self.redis = redis
        self.keys = keys
        self.batch = batch

    async def _live(self) -> tuple[list[Target], dict[str, bytes | str | None]]:
        names = list(PROJECTIONS)
        pointers = await self.redis.mget(*(self.keys.active(n) for n in names))
        targets, expect = [], {}
        for name, pointer in zip(names, pointers, strict=True):
            expect[self.keys.active(name)] = pointer
            if pointer is None:
                continue
            ns = pointer.decode() if isinstance(pointer, bytes) else str(pointer)
            if rebuild.version_of(ns) == PROJECTIONS[name].version:
                targets.append(Target(PROJECTIONS[name], self.keys.namespace(name, ns)))
        if targets:
            # A live namespace without its checkpoint lost it (Redis evicted or wiped it):
            # fed from 0 it would apply everything twice. The tick rebuilds it instead.
            present = await self.redis.mget(*(t.ns.checkpoint for t in targets))
            targets = [t for t, p in zip(targets, present, strict=True) if p is not None]
        return targets, expect

    async def _drain(self, lease: Lease) -> int:
        applied = 0
        while True:
            targets, expect = await self._live()
            progress = await stream(self.store, self.redis, targets, batch=self.batch,
                                    expect=expect, require=True)
            applied += progress.applied
            if not progress.conflicted:
                return applied
            await lease.renew()

    async def catch_up_live(self) -> int:
        """Project everything new into the live read models; returns events applied."""
        lease = Lease(self.redis, self.keys.lock("live"))
        dirty = self.keys.dirty("live")
        applied = 0
        while True:
            if not await lease.acquire():
                await self.redis.set(dirty, 1, px=60_000)
                if not await lease.acquire():
                    return applied  # the holder will see the mark and go round again
            try:
                await self.redis.delete(dirty)
                applied += await self._drain(lease)
            finally:
                await lease.release()
            if not await self.redis.getdel(dirty):
                break
        if applied:
            await self.redis.hincrby(self.keys.stats(), "projected", applied)
        return applied

    async def advance_builds(self) -> None:
        """Start rebuilds that are needed and push them on for a bounded slice of time."""
        for name in PROJECTIONS:
            if await rebuild.needs_build(self.redis, self.keys, name):
                await rebuild.recover(self.redis, self.keys, name)
                await rebuild.start(self.redis, self.keys, name, fresh=False)
        builds = await rebuild.building(self.redis, self.keys, PROJECTIONS)
        if not builds:
            return
        lease = Lease(self.redis, self.keys.lock("build"), ttl_ms=15_000)
        if not await lease.acquire():
            return  # another worker, or `forum replay`, is building
        try:
            deadline = time.monotonic() + BUILD_SLICE_SECONDS
            while builds and time.monotonic() < deadline:
                progress = await rebuild.step(self.store, self.redis, self.keys, builds)
                if progress.conflicted:
                    builds = await rebuild.building(self.redis, self.keys, PROJECTIONS)
                    continue
                if progress.applied < rebuild.BUILD_BATCH:
                    for name, ns in list(builds.items()):
                        if await rebuild.try_swap(self.redis, self.keys, name, ns):
                            log.info("read_model_swapped", projection=name, namespace=ns)
                            del builds[name]
        finally:
            await lease.release()

    async def tick(self) -> int:
        await self.advance_builds()
        return await self.catch_up_live()
