"""Where each projection is in the log. A checkpoint is written only inside the MULTI/EXEC
that applies the events up to it (invariant 3), so changes and position never part."""

from __future__ import annotations

from redis.asyncio import Redis

from workers.readmodels import CHECKPOINTS, Keys


async def positions(redis: Redis, keys: Keys, names: list[str]) -> dict[str, int | None]:
    """Each live projection's checkpoint; None where it has no live read model."""
    values = await redis.eval(CHECKPOINTS, 0, keys.prefix, *names)  # type: ignore[misc]
    return {
        name: (None if value is None else int(value))
        for name, value in zip(names, values, strict=False)
    } | {name: None for name in names[len(values):]}
