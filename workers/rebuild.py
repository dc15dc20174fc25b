"""Blue/green read models: build a projection into a fresh namespace, switch readers to it
atomically once it has caught up with the live one, then drop the old keys.

Used three ways: ``forum replay`` (an operator asks), a projection whose ``version`` changed
(new code deployed), and recovery (Redis lost the projection's pointer or checkpoint).
While a projection has no live namespace, reads that need it answer 503 with Retry-After.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Iterator

from redis.asyncio import Redis
from redis.exceptions import WatchError

from events import EventStore
from workers.projecting import Target
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.runner import Progress, catch_up, stream

BUILD_BATCH = 2000
# Above the containers a build batch has alive at once (~20,000 for 2,000 events).
_BUILD_GC_THRESHOLD = 100_000


def version_of(ns: str) -> int:
    try:
        return int(ns.split(".", 1)[0].removeprefix("v"))
    except ValueError:
        return -1


async def new_namespace(redis: Redis, keys: Keys, name: str) -> str:
    generation = await redis.incr(keys.generation())
    return f"v{PROJECTIONS[name].version}.{generation}"


async def unlink_matching(redis: Redis, pattern: str) -> int:
    """Delete the keys matching ``pattern`` a thousand at a time, without blocking Redis."""
    dropped = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            dropped += await redis.unlink(*batch)
            batch.clear()
    if batch:
        dropped += await redis.unlink(*batch)
    return dropped


async def drop_namespace(redis: Redis, keys: Keys, name: str, ns: str) -> int:
    return await unlink_matching(redis, keys.namespace(name, ns).pattern())


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def needs_build(redis: Redis, keys: Keys, name: str) -> bool:
    """True when the live namespace is missing, lost its checkpoint, or is of an older
    version of the projection."""
    active = _text(await redis.get(keys.active(name)))
    if active is None:
        return True
    if version_of(active) != PROJECTIONS[name].version:
        return True
    return not await redis.exists(keys.namespace(name, active).checkpoint)


async def recover(redis: Redis, keys: Keys, name: str) -> None:
    """A live namespace whose checkpoint vanished cannot be trusted: stop serving it."""
    active = _text(await redis.get(keys.active(name)))
    if active is not None and not await redis.exists(keys.namespace(name, active).checkpoint):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.active(name))
                pipe.multi()
                pipe.delete(keys.active(name))
                await pipe.execute()
            except WatchError:
                return
        await drop_namespace(redis, keys, name, active)


async def start(redis: Redis, keys: Keys, name: str, *, fresh: bool) -> str:
    """The namespace being built for ``name``: a new one when ``fresh`` (any earlier,
    unfinished build is dropped) or when none is under way."""
    current = _text(await redis.get(keys.building(name)))
    if current is not None and not fresh and version_of(current) == PROJECTIONS[name].version:
        return current
    ns = await new_namespace(redis, keys, name)
    await redis.set(keys.building(name), ns)
    if current is not None:
        await drop_namespace(redis, keys, name, current)
    return ns


async def building(redis: Redis, keys: Keys, names: Iterable[str]) -> dict[str, str]:
    out = {}
    for name in names:
        ns = _text(await redis.get(keys.building(name)))
        if ns is not None:
            out[name] = ns
    return out


async def step(store: EventStore, redis: Redis, keys: Keys, builds: dict[str, str],
               batch: int = BUILD_BATCH) -> Progress:
    """One batch into the namespaces under construction."""
    targets = [Target(PROJECTIONS[n], keys.namespace(n, ns)) for n, ns in builds.items()]
    expect = {keys.building(n): ns.encode() for n, ns in builds.items()}
    return await catch_up(store, redis, targets, batch=batch, expect=expect)


async def try_swap(redis: Redis, keys: Keys, name: str, ns: str) -> bool:
    """Point readers at ``ns`` if it is at least as far as the live namespace."""
    new = keys.namespace(name, ns)
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(keys.active(name), keys.building(name), new.checkpoint)
        old = _text(await pipe.get(keys.active(name)))
        if _text(await pipe.get(keys.building(name))) != ns:
            await pipe.reset()
            return False
        new_position = int(await pipe.get(new.checkpoint) or 0)
        if old is not None and version_of(old) == PROJECTIONS[name].version:
            old_checkpoint = keys.namespace(name, old).checkpoint
            await pipe.watch(old_checkpoint)
            if int(await pipe.get(old_checkpoint) or 0) > new_position:
                await pipe.reset()
                return False
        pipe.multi()
        pipe.set(new.checkpoint, new_position)
        pipe.set(keys.active(name), ns)
        pipe.delete(keys.building(name))
        try:
            await pipe.execute()
        except WatchError:
            return False
    if old is not None:
        await drop_namespace(redis, keys, name, old)
    return True


async def run(
    store: EventStore, redis: Redis, keys: Keys, names: list[str], *, fresh: bool = True,
    on_progress: Callable[[int], None] | None = None, batch: int = BUILD_BATCH,
) -> None:
    """Build ``names`` to the head of the log and swap each in. For ``forum replay``."""
    builds = {name: await start(redis, keys, name, fresh=fresh) for name in names}
    await fill(store, redis, keys, builds, on_batch=on_progress, batch=batch)


@contextlib.contextmanager
def collect_per_batch() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a build's way. Each batch allocates
    thousands of containers (events' lists, the batch's dicts and tuples) and frees them
    all when done, none in a cycle. At the default threshold (700) the collector ran
    several times per batch, promoting the live batch until full collections rescanned
    the whole heap: 8-10% of a replay's CPU. With the threshold above a batch's peak it
    hardly runs, and what is alive at the start (modules, pools) is frozen out of its
    sight. Cycles are still collected, later. Restored on the way out."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], _BUILD_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def fill(
    store: EventStore, redis: Redis, keys: Keys, builds: dict[str, str], *,
    on_batch: Callable[[int], None] | None = None, batch: int = BUILD_BATCH,
    deadline: float | None = None,
) -> dict[str, str]:
    """Stream the log into the namespaces under construction and swap each in once it
    has caught up with its live namespace. Returns the builds still under way (only when
    ``deadline``, a ``time.monotonic()`` value, passed)."""
    builds = dict(builds)
    with collect_per_batch():
        while builds and (deadline is None or time.monotonic() < deadline):
            targets = [Target(PROJECTIONS[n], keys.namespace(n, ns))
                       for n, ns in builds.items()]
            expect = {keys.building(n): ns.encode() for n, ns in builds.items()}
            progress = await stream(store, redis, targets, batch=batch, expect=expect,
                                    on_batch=on_batch)
            if progress.conflicted:
                current = await building(redis, keys, builds)
                if current != builds:
                    raise RuntimeError("another rebuild took over these projections")
                continue
            for name, ns in list(builds.items()):
                if await try_swap(redis, keys, name, ns):
                    del builds[name]
    return builds
