"""Where each projection is in the log. A checkpoint is written only inside the MULTI/EXEC
that applies the events up to it (invariant 3), so changes and position never part."""

from __future__ import annotations

from redis.asyncio import Redis

from workers.readmodels import Keys


async def positions(redis: Redis, keys: Keys, names: list[str]) -> dict[str, int | None]:
    """Each live projection's checkpoint; None where it has no live read model (or a
    rebuild swapped it between the two reads: it is read again next time)."""
    pointers = await redis.mget([keys.active(name) for name in names])
    live = {name: keys.namespace(name, _text(pointer)).checkpoint
            for name, pointer in zip(names, pointers, strict=True) if pointer is not None}
    values = await redis.mget(list(live.values())) if live else []
    found = {name: int(value) for name, value in zip(live, values, strict=True)
             if value is not None}
    return {name: found.get(name) for name in names}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
