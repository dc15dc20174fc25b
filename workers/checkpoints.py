"""Where each projection is in the log. A checkpoint is written only inside the MULTI/EXEC
that applies the events up to it (invariant 3), so changes and position never part. Each
partition of a read model has its own (workers/readmodels/keys.py); a projection is as far
as its least advanced partition."""

from __future__ import annotations

from redis.asyncio import Redis

from common.redis_client import mget
from workers.readmodels import Keys
from workers.readmodels.keys import PARTITIONS


async def partitions(redis: Redis, keys: Keys, names: list[str]
                     ) -> dict[str, list[int | None]]:
    """Each live projection's checkpoint in each partition; None where it has no live
    read model (or a rebuild swapped it between the two reads: it is read again next
    time), or that partition's checkpoint is missing."""
    pointers = await mget(redis, [keys.active(name) for name in names])
    live = {name: keys.namespace(name, _text(pointer)).checkpoints
            for name, pointer in zip(names, pointers, strict=True) if pointer is not None}
    flat = [key for checkpoints in live.values() for key in checkpoints]
    values = iter(await mget(redis, flat))
    found = {name: [None if (v := next(values)) is None else int(v) for _ in checkpoints]
             for name, checkpoints in live.items()}
    return {name: found.get(name, [None] * PARTITIONS) for name in names}


async def positions(redis: Redis, keys: Keys, names: list[str]) -> dict[str, int | None]:
    """Each live projection's checkpoint: its lowest partition's; None where it has no
    live read model, or has lost a partition's checkpoint."""
    return {name: None if None in at else min(at)  # type: ignore[type-var]
            for name, at in (await partitions(redis, keys, names)).items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
