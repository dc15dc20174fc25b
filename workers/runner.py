"""Catch-up: read the log after the checkpoint, apply, commit changes and checkpoint as one.

Messages never carry events: a nudge only says "catch up from your checkpoint", so
duplicates, reordering and lost messages change nothing. Several projections are fed from
one read of the log; each skips what is at or below its own checkpoint. The commit is a
compare-and-set on the checkpoints (and the pointers naming the namespaces), atomic with
the changes (workers/commit.py): if another worker moved any of them meanwhile, nothing is
applied and the batch is redone from the new state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from events import EventStore
from workers.commit import Committer, as_bytes, commit
from workers.projecting import Feed, Target, project


@dataclass(frozen=True)
class Progress:
    applied: int  # events read and applied in this pass (0: nothing new)
    position: int  # the lowest checkpoint among the targets after the pass
    conflicted: bool = False


async def checkpoints(redis: Redis, targets: list[Target],
                      expect: Mapping[str, bytes | str | None] | None = None,
                      *, require: bool = False,
                      ) -> tuple[list[int], dict[str, bytes | str | None]] | None:
    """The targets' checkpoints, and the guards a commit of a batch computed from them
    must hold; None when a pointer in ``expect`` has already moved, or (``require``) when
    a target has no checkpoint: a live namespace that lost it must not be fed from 0."""
    expect = dict(expect or {})
    keys = [t.ns.checkpoint for t in targets]
    values = await redis.mget(*keys, *expect)
    current = values[: len(keys)]
    if list(values[len(keys):]) != [as_bytes(v) for v in expect.values()]:
        return None
    if require and None in current:
        return None
    guards: dict[str, bytes | str | None] = dict(zip(keys, current, strict=True))
    guards.update(expect)
    return [int(v or 0) for v in current], guards


async def catch_up(
    store: EventStore, redis: Redis, targets: list[Target], *, batch: int = 500,
    expect: Mapping[str, bytes | str | None] | None = None,
) -> Progress:
    """One batch for ``targets``. ``expect``: pointer keys (namespace names) that must
    still hold these values when the batch commits; a swap in between makes it a no-op."""
    if not targets:
        return Progress(0, 0)
    state = await checkpoints(redis, targets, expect)
    if state is None:
        return Progress(0, 0, conflicted=True)
    positions, guards = state
    start = min(positions)
    feed = await store.read_feed(start, batch)
    if not feed:
        return Progress(0, start)
    last = feed[-1][0]
    sets = {t.ns.checkpoint: last for t, p in zip(targets, positions, strict=True) if last > p}
    if not await commit(redis, project(feed, targets, positions), guards, sets):
        return Progress(0, start, conflicted=True)
    return Progress(len(feed), last)


async def stream(
    store: EventStore, redis: Redis, targets: list[Target], *, batch: int = 500,
    expect: Mapping[str, bytes | str | None] | None = None,
    on_batch: Callable[[int], None] | None = None, require: bool = False,
) -> Progress:
    """Catch up until a batch comes back short (the head was reached). ``require``: every
    target must have its checkpoint (live namespaces), else the pass is a conflict.

    Three stages overlap: PostgreSQL reads batch k+1 and Redis applies batch k while this
    process projects. Each commit is guarded by the checkpoints the previous one set, so a
    commit that fails makes every later one fail too: nothing is applied out of order. At
    most one commit is in flight, so they reach Redis in order."""
    if not targets:
        return Progress(0, 0)
    state = await checkpoints(redis, targets, expect, require=require)
    if state is None:
        return Progress(0, 0, conflicted=True)
    positions, guards = state
    async with Committer(redis) as committer:
        return await _stream(store, committer, targets, positions, guards, batch, on_batch)


async def _stream(
    store: EventStore, committer: Committer, targets: list[Target], positions: list[int],
    guards: dict[str, bytes | str | None], batch: int,
    on_batch: Callable[[int], None] | None,
) -> Progress:
    applied = committed = 0
    reading: asyncio.Future[Feed] | None = asyncio.ensure_future(
        store.read_feed(min(positions), batch)
    )
    writing: asyncio.Future[bool] | None = None
    try:
        while reading is not None:
            feed = await reading
            reading = None
            if not feed:
                break
            last = feed[-1][0]
            if len(feed) == batch:
                reading = asyncio.ensure_future(store.read_feed(last, batch))
                # A new task first runs at the loop's next turn, which projecting would
                # hold back: let it send its query now.
                await asyncio.sleep(0)
            changes = project(feed, targets, positions)
            sets = {t.ns.checkpoint: last
                    for t, p in zip(targets, positions, strict=True) if last > p}
            if writing is not None and not await writing:
                return Progress(committed, min(positions), conflicted=True)
            committed = applied
            writing = asyncio.ensure_future(committer.commit(
                changes, dict(guards), sets, more=reading is not None))
            await asyncio.sleep(0)  # the same: send the batch before projecting the next
            for key in sets:
                guards[key] = str(last).encode()
            positions = [max(p, last) for p in positions]
            applied += len(feed)
            if on_batch is not None:
                on_batch(len(feed))
        if writing is not None:
            done, writing = writing, None
            if not await done:
                return Progress(committed, min(positions), conflicted=True)
    finally:
        for future in (reading, writing):
            if future is not None:
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await future
    return Progress(applied, min(positions))
