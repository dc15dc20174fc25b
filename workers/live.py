"""Keeping the live read models current: what the actors and the periodic tick call.

The read models are split into partitions (workers/readmodels/keys.py), each with its own
checkpoint and lease (workers/partitions.py): a pass claims the partitions that are behind
and free, up to its share, and catches them up. A projector that finds partitions behind
that it could not claim bumps a "dirty" counter; every holder reads it before its pass
and again after letting go, and goes round again if it moved, so a nudge that arrives
while others are finishing is never lost. The tick also starts and advances rebuilds of
read models that are missing, lost or of an older version.

Everything a tick needs to know is one read of Redis (every projection's pointers, and the
checkpoints of the namespaces they named last time) beside one of the log's head: an idle
worker, with nothing new in the log and no rebuild under way, stops there. The same read
is the guards of the catch-up pass that follows.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from common.redis_client import is_cluster, mget
from events import EventStore
from workers import erasures, rebuild
from workers.apply import Target
from workers.catch_up import aligned, catch_up, guards_of
from workers.locks import Lease
from workers.partitions import Claims
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.readmodels.keys import PARTITIONS, version_of

log = structlog.get_logger(__name__)

LIVE_BATCH = 500
# A partition's lease: a dead holder's is free again this soon (renewed while held).
LIVE_LEASE_MS = 2_000
BUILD_SLICE_SECONDS = 0.5
_EVERY = range(PARTITIONS)


@dataclass(frozen=True)
class State:
    """The read models as one read of Redis found them."""

    targets: list[Target]  # the live namespaces of the current version, with checkpoints
    checkpoints: dict[str, bytes | str | None]  # every partition's of theirs
    pointers: dict[str, bytes | str | None]  # every projection's live pointer
    stale: list[str] = field(default_factory=list)  # missing, lost or of an older version
    builds: dict[str, str] = field(default_factory=dict)  # namespaces under construction

    def behind(self, head: int) -> list[int]:
        """The partitions some live read model has not caught up in."""
        return [p for p in _EVERY
                if any(int(self.checkpoints[t.ns.checkpoints[p]] or 0) < head
                       for t in self.targets)]


class Live:
    def __init__(self, store: EventStore, redis: Redis, keys: Keys, *,
                 batch: int = LIVE_BATCH, name: str | None = None) -> None:
        self.store = store
        self.redis = redis
        self.keys = keys
        self.batch = batch
        self.claims = Claims(redis, keys, ttl_ms=LIVE_LEASE_MS, name=name)
        self._cluster = is_cluster(redis)
        self._names = list(PROJECTIONS)
        self._pointers = [keys.active(n) for n in self._names]
        self._building = [keys.building(n) for n in self._names]
        # The live pointers as last read: which checkpoints to read with them.
        self._seen: list[bytes | str | None] = [None] * len(self._names)

    async def read(self) -> State:
        """One MGET of the pointers and of the checkpoints of the namespaces they named
        last time; again only if a pointer has moved since."""
        while True:
            seen = self._seen
            named = [(n, ns) for n, ns in zip(self._names, map(rebuild.as_text, seen), strict=True)
                     if ns is not None and version_of(ns) == PROJECTIONS[n].version]
            candidates = [Target(PROJECTIONS[n], self.keys.namespace(n, ns)) for n, ns in named]
            checkpoint_keys = [key for t in candidates for key in t.ns.checkpoints]
            values = await mget(self.redis, [*self._pointers, *self._building,
                                             *checkpoint_keys])
            count = len(self._names)
            pointers, building = values[:count], values[count: 2 * count]
            if pointers != seen:
                self._seen = pointers
                continue
            checkpoints = dict(zip(checkpoint_keys, values[2 * count:], strict=True))
            # A live namespace missing a checkpoint lost it (Redis evicted or wiped it):
            # fed from 0 it would apply everything twice. It is rebuilt instead.
            targets = [t for t in candidates
                       if all(checkpoints[key] is not None for key in t.ns.checkpoints)]
            live = {t.projection.name for t in targets}
            return State(
                targets=targets, checkpoints=checkpoints,
                # What commits check beside the checkpoints; on a cluster the pointers
                # are in other slots, and the fence is the guard (workers/rebuild.py).
                pointers={} if self._cluster else dict(zip(self._pointers, pointers,
                                                           strict=True)),
                stale=[n for n in self._names if n not in live],
                builds={n: ns for n, b in zip(self._names, building, strict=True)
                        if (ns := rebuild.as_text(b)) is not None},
            )

    async def tick(self) -> int:
        """Say this projector is alive, start and advance rebuilds, then catch the live
        read models up; returns the events applied live."""
        state, head, _ = await asyncio.gather(self.read(), self.store.head(),
                                              self.claims.say_alive())
        if state.stale or state.builds:
            await self.advance_builds(state)
            state = await self.read()
        if not state.behind(head):
            return 0
        return await self.catch_up(state)

    async def catch_up(self, state: State | None = None) -> int:
        """Apply everything new to the live read models in the partitions this
        projector can claim; returns events applied. ``state``: as just read (the
        tick's), else read here."""
        dirty = self.keys.dirty("live")
        applied = erased = 0
        while True:
            if state is None:
                mark, head, fresh = await asyncio.gather(
                    self.redis.get(dirty), self.store.head(), self.read())
                state = fresh
            else:
                mark, head = await asyncio.gather(self.redis.get(dirty), self.store.head())
            behind = state.behind(head)
            if not behind:
                break
            held = await self.claims.claim(behind)
            if len(held) < len(behind):  # the others' holders go round again
                await self.redis.incr(dirty)
                await self.redis.pexpire(dirty, 60_000)
                mark = await self.redis.get(dirty)
            if not held:
                break
            try:
                async with self.claims.renewed(held):
                    drained, last_erasure = await self._drain(held, state)
                applied += drained
                erased = max(erased, last_erasure)
            finally:
                await self.claims.release(held)
            state = None
            if len(held) == len(behind) and await self.redis.get(dirty) == mark:
                break
        if applied:
            await self.redis.hincrby(self.keys.stats(), "projected", applied)
        if erased:
            await self.rebuild_erased(erased)
        return applied

    async def _drain(self, held: list[int], state: State | None) -> tuple[int, int]:
        """Events applied to the partitions ``held``, and the position of the last
        erasure among them (0: none)."""
        applied = erased = 0
        partitions = frozenset(held)
        while True:
            if state is None:
                state = await self.read()
            targets = aligned([Target(t.projection, t.ns, partitions) for t in state.targets],
                              state.checkpoints)
            progress = await catch_up(self.store, self.redis, targets,
                                      guards=guards_of(targets, state.checkpoints,
                                                       state.pointers),
                                      batch=self.batch)
            applied += progress.applied
            erased = max(erased, progress.erased)
            if not progress.conflicted:
                return applied, erased
            await self.claims.renew(held)
            state = None

    async def rebuild_erased(self, erased: int) -> None:
        """Start rebuilding every live read model made before the erasure at ``erased``
        (workers/erasures.py), unless a build started after it is already under way; the
        ticks carry the builds on and swap them in."""
        pointers = await mget(self.redis, self._pointers)
        live = {n: ns for n, p in zip(self._names, pointers, strict=True)
                if (ns := rebuild.as_text(p)) is not None}
        builds = await rebuild.building(self.redis, self.keys, self._names)
        stale = [n for n in erasures.stale_after(live, erased)
                 if n not in builds or erasures.born_of(builds[n]) < erased]
        if not stale:
            return
        born = await self.store.head()
        for name in stale:
            await rebuild.start(self.redis, self.keys, name, fresh=True, born=born)
        log.info("read_models_rebuilt_after_erasure", projections=stale, position=erased)

    async def advance_builds(self, state: State) -> None:
        """Start the rebuilds ``state`` calls for and push them on for a bounded slice
        of time."""
        for name in state.stale:
            if name in state.builds:
                continue  # start() would carry on with it
            await rebuild.recover(self.redis, self.keys, name)
            await rebuild.start(self.redis, self.keys, name, fresh=False,
                                born=await self.store.head())
        lease = Lease(self.redis, self.keys.lock("build"), ttl_ms=15_000)
        if not await lease.acquire():
            return  # another worker, or `forum replay`, is building
        try:
            # Read under the lease: what was read before may have been finished meanwhile.
            builds = await rebuild.building(self.redis, self.keys, self._names)
            await rebuild.fill(self.store, self.redis, self.keys, builds,
                               deadline=time.monotonic() + BUILD_SLICE_SECONDS)
        finally:
            await lease.release()
