"""One catch-up pass: its guards, then read the log after them, apply, commit changes and
checkpoints as one, until the head of the log (or a deadline).

Messages never carry events: a nudge only says "catch up from your checkpoint", so
duplicates, reordering and lost messages change nothing. Several projections are fed from
one read of the log; each skips what is at or below its own checkpoint. The commit is a
compare-and-set on the guards, the checkpoints and the pointers naming the namespaces,
atomic with the changes (workers/commit.py): if another worker moved any of them
meanwhile, nothing is applied and the caller reads the guards again and redoes the pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from redis.asyncio import Redis

from common.redis_client import mget
from events import EventStore
from workers.apply import Feed, Target, apply
from workers.commit import Committer, SlotCommitter, as_bytes, committer_for
from workers.erasures import erased_in


@dataclass(frozen=True)
class Progress:
    applied: int  # events read and applied in this pass (0: nothing new)
    position: int  # the lowest checkpoint among the targets after the pass
    conflicted: bool = False  # a guard had moved: read them again and redo the pass
    stopped: bool = False  # the deadline passed before the head of the log was reached
    erased: int = 0  # the position of the last erasure applied (workers/erasures.py)


@dataclass(frozen=True)
class Guards:
    """What a pass is computed from: each target's checkpoint, and every key the commit
    checks (the checkpoints of the targets' partitions, the pointers naming the
    namespaces) with the value it must still hold, ``None`` for a key that must be
    missing."""

    positions: list[int]
    values: dict[str, bytes | None]


def aligned(targets: Sequence[Target], checkpoints: Mapping[str, bytes | str | None]
            ) -> list[Target]:
    """``targets`` split so that each one's partitions are at one checkpoint (partitions
    claimed at different times may be at different places in the log): a pass applies
    an event to a target only above its checkpoint."""
    out: list[Target] = []
    for target in targets:
        at: dict[int, set[int]] = {}
        for partition in target.partitions:
            value = checkpoints[target.ns.checkpoints[partition]]
            at.setdefault(int(value or 0), set()).add(partition)
        if len(at) == 1:
            out.append(target)
        else:
            out += [replace(target, partitions=frozenset(ps)) for ps in at.values()]
    return out


def guards_of(targets: Sequence[Target], checkpoints: Mapping[str, bytes | str | None],
              pointers: Mapping[str, bytes | str | None]) -> Guards:
    """The guards of a pass for ``targets`` (each at one checkpoint: ``aligned``) from
    their partitions' checkpoints and the pointers' values, as read together."""
    values: dict[str, bytes | None] = {}
    positions = []
    for target in targets:
        keys = target.checkpoints
        values.update((key, as_bytes(checkpoints[key])) for key in keys)
        at = {int(checkpoints[key] or 0) for key in keys}
        if len(at) != 1:
            raise ValueError(f"{target.projection.name}: partitions at {sorted(at)}")
        positions.append(at.pop())
    values.update((key, as_bytes(value)) for key, value in pointers.items())
    return Guards(positions, values)


async def read_guards(redis: Redis, targets: Sequence[Target],
                      expect: Mapping[str, bytes | str | None]
                      ) -> tuple[list[Target], Guards] | None:
    """The targets, aligned, and the guards of a pass for them whose pointers must hold
    ``expect``, in one read; None when a pointer has already moved, or a checkpoint is
    missing (every namespace gets its checkpoints when it is made)."""
    keys = [key for t in targets for key in t.checkpoints]
    values = await mget(redis, [*keys, *expect])
    if [as_bytes(v) for v in values[len(keys):]] != [as_bytes(v) for v in expect.values()]:
        return None
    if None in values[: len(keys)]:  # fenced (workers/rebuild.py): no longer to be written
        return None
    checkpoints = dict(zip(keys, values[: len(keys)], strict=True))
    split = aligned(targets, checkpoints)
    return split, guards_of(split, checkpoints, expect)


async def catch_up(
    store: EventStore, redis: Redis, targets: list[Target], *, guards: Guards | None = None,
    expect: Mapping[str, bytes | str | None] | None = None, batch: int = 500,
    deadline: float | None = None, on_batch: Callable[[int], None] | None = None,
) -> Progress:
    """Catch ``targets`` up until a batch comes back short (the head was reached).

    ``guards``: as read by the caller (live catch-up reads them with the pointers); else
    they are read here, with ``expect``: pointer keys (namespace names) that must still
    hold these values when each batch commits, so a swap in between makes it a no-op.
    ``deadline`` (a ``time.monotonic()`` value): no batch is read once it has passed,
    though the first always is.

    Three stages overlap: PostgreSQL reads batch k+1 and Redis applies batch k while this
    process applies. Each commit is guarded by the checkpoints the previous one set, so a
    commit that fails makes every later one fail too: nothing is applied out of order. At
    most one commit is in flight, so they reach Redis in order."""
    if not targets:
        return Progress(0, 0)
    if guards is None:
        read = await read_guards(redis, targets, expect or {})
        if read is None:
            return Progress(0, 0, conflicted=True)
        targets, guards = read
    async with committer_for(redis) as committer:
        return await _stream(store, committer, targets, guards, batch, deadline, on_batch)


async def _stream(
    store: EventStore, committer: Committer | SlotCommitter, targets: list[Target], guards: Guards,
    batch: int, deadline: float | None, on_batch: Callable[[int], None] | None,
) -> Progress:
    positions = list(guards.positions)
    values = dict(guards.values)
    applied = committed = erased = 0
    stopped = False
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
                if deadline is not None and time.monotonic() >= deadline:
                    stopped = True
                else:
                    reading = asyncio.ensure_future(store.read_feed(last, batch))
                    # A new task first runs at the loop's next turn, which applying would
                    # hold back: let it send its query now.
                    await asyncio.sleep(0)
            changes = apply(feed, targets, positions)
            erased = max(erased, erased_in(feed))
            sets = {key: last for t, p in zip(targets, positions, strict=True) if last > p
                    for key in t.checkpoints}
            if writing is not None and not await writing:
                return Progress(committed, min(positions), conflicted=True, erased=erased)
            committed = applied
            writing = asyncio.ensure_future(committer.commit(
                changes, dict(values), sets, more=reading is not None))
            await asyncio.sleep(0)  # the same: send the batch before applying the next
            for key in sets:
                values[key] = str(last).encode()
            positions = [max(p, last) for p in positions]
            applied += len(feed)
            if on_batch is not None:
                on_batch(len(feed))
        if writing is not None:
            done, writing = writing, None
            if not await done:
                return Progress(committed, min(positions), conflicted=True, erased=erased)
    finally:
        for future in (reading, writing):
            if future is not None:
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await future
    return Progress(applied, min(positions), stopped=stopped, erased=erased)
