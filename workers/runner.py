"""Catch-up: read the log after the checkpoint, apply, commit changes and checkpoint as one.

Messages never carry events: a nudge only says "catch up from your checkpoint", so
duplicates, reordering and lost messages change nothing. Several projections are fed from
one read of the log; each skips what is at or below its own checkpoint. The commit WATCHes
the checkpoints (and the pointers naming the namespaces): if another worker moved any of
them meanwhile, the commit is refused whole and the batch is redone from the new state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import WatchError

from events import EventStore
from workers.projections.base import Projection
from workers.readmodels import Namespace


@dataclass(frozen=True)
class Target:
    projection: Projection
    ns: Namespace


@dataclass(frozen=True)
class Progress:
    applied: int  # events read and applied in this pass (0: nothing new)
    position: int  # the lowest checkpoint among the targets after the pass
    conflicted: bool = False


async def catch_up(
    store: EventStore, redis: Redis, targets: list[Target], *, batch: int = 500,
    watch: tuple[str, ...] = (), expect: Mapping[str, bytes | str | None] | None = None,
) -> Progress:
    """One batch for ``targets``. ``watch``/``expect``: pointer keys that must still hold
    these values at commit (a swap in between makes this pass a no-op)."""
    if not targets:
        return Progress(0, 0)
    checkpoint_keys = [t.ns.checkpoint for t in targets]
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(*checkpoint_keys, *watch)
        if expect:
            current = await pipe.mget(*expect)
            if list(current) != list(expect.values()):
                await pipe.reset()
                return Progress(0, 0, conflicted=True)
        values = await pipe.mget(*checkpoint_keys)
        checkpoints = [int(v or 0) for v in values]
        start = min(checkpoints)
        records = await store.read_all(start, batch)
        if not records:
            await pipe.reset()
            return Progress(0, start)
        pipe.multi()
        for record in records:
            for target, checkpoint in zip(targets, checkpoints, strict=True):
                if record.position > checkpoint:
                    target.projection.apply(record, target.ns, pipe)
        last = records[-1].position
        for key, checkpoint in zip(checkpoint_keys, checkpoints, strict=True):
            if last > checkpoint:
                pipe.set(key, last)
        try:
            await pipe.execute()
        except WatchError:
            return Progress(0, start, conflicted=True)
    return Progress(len(records), last)
