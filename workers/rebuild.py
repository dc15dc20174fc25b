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

import structlog
from redis.asyncio import Redis
from redis.exceptions import WatchError

from common.redis_client import is_cluster, mget, mset
from events import EventStore
from workers import erasures
from workers.apply import Target
from workers.catch_up import catch_up
from workers.projections import PROJECTIONS
from workers.readmodels import Keys, Namespace
from workers.readmodels.keys import version_of

log = structlog.get_logger(__name__)

BUILD_BATCH = 2000
# Above the containers a build batch has alive at once (~20,000 for 2,000 events).
_BUILD_GC_THRESHOLD = 100_000


async def new_namespace(redis: Redis, keys: Keys, name: str, born: int = 0) -> str:
    generation = await redis.incr(keys.generation())
    return f"v{PROJECTIONS[name].version}.{generation}.{born}"


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


async def fence(redis: Redis, ns: Namespace) -> None:
    """Make ``ns`` live nowhere: delete its checkpoints. Every commit to a namespace is
    guarded by its partitions' checkpoints (and never by a missing one), and every read
    checks them, so from here on nothing writes to it and no read trusts it, on one
    Redis or a cluster (where no transaction can also hold the pointer)."""
    await redis.delete(*ns.checkpoints)


async def drop_namespace(redis: Redis, keys: Keys, name: str, ns: str) -> int:
    namespace = keys.namespace(name, ns)
    await fence(redis, namespace)  # first: no commit lands behind the scan below
    return await unlink_matching(redis, namespace.pattern())


def as_text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def recover(redis: Redis, keys: Keys, name: str) -> None:
    """A live namespace whose checkpoint vanished cannot be trusted: stop serving it."""
    active = as_text(await redis.get(keys.active(name)))
    checkpoints = keys.namespace(name, active).checkpoints if active is not None else ()
    if active is not None and await redis.exists(*checkpoints) < len(checkpoints):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.active(name))
                pipe.multi()
                pipe.delete(keys.active(name))
                await pipe.execute()
            except WatchError:
                return
        await drop_namespace(redis, keys, name, active)


async def start(redis: Redis, keys: Keys, name: str, *, fresh: bool, born: int = 0) -> str:
    """The namespace being built for ``name``: a new one when ``fresh`` (any earlier,
    unfinished build is dropped) or when none is under way. ``born``: the log's head,
    read before the build reads its first event (0 if unknown: any erasure restarts it)."""
    current = as_text(await redis.get(keys.building(name)))
    if current is not None and not fresh and version_of(current) == PROJECTIONS[name].version:
        return current
    ns = await new_namespace(redis, keys, name, born)
    # Its checkpoints before the pointer: a build's pass never commits guarded by a
    # missing checkpoint, which means the build was fenced (replaced or dropped).
    await mset(redis, dict.fromkeys(keys.namespace(name, ns).checkpoints, 0))
    await redis.set(keys.building(name), ns)
    if current is not None:
        await drop_namespace(redis, keys, name, current)
    return ns


async def building(redis: Redis, keys: Keys, names: Iterable[str]) -> dict[str, str]:
    """The namespaces under construction, by projection (one read)."""
    names = list(names)
    values = await mget(redis, [keys.building(n) for n in names])
    return {n: ns for n, v in zip(names, values, strict=True) if (ns := as_text(v)) is not None}


async def try_swap(redis: Redis, keys: Keys, name: str, ns: str) -> bool:
    """Point readers at ``ns`` if it is at least as far as the live namespace, and fence
    the old one (then drop it)."""
    if is_cluster(redis):
        return await _swap_on_cluster(redis, keys, name, ns)
    new = keys.namespace(name, ns)
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(keys.active(name), keys.building(name), *new.checkpoints)
        old = as_text(await pipe.get(keys.active(name)))
        if as_text(await pipe.get(keys.building(name))) != ns:
            await pipe.reset()
            return False
        positions = await pipe.mget(*new.checkpoints)
        if None in positions:  # fenced: another build replaced this one
            await pipe.reset()
            return False
        new_position = min(int(p or 0) for p in positions)
        if old is not None and version_of(old) == PROJECTIONS[name].version:
            old_checkpoints = keys.namespace(name, old).checkpoints
            await pipe.watch(*old_checkpoints)
            if max(int(p or 0) for p in await pipe.mget(*old_checkpoints)) > new_position:
                await pipe.reset()
                return False
        pipe.multi()
        pipe.set(keys.active(name), ns)
        pipe.delete(keys.building(name))
        if old is not None:
            pipe.delete(*keys.namespace(name, old).checkpoints)
        try:
            await pipe.execute()
        except WatchError:
            return False
    if old is not None:
        await drop_namespace(redis, keys, name, old)
    return True


_COMPARE_AND_SET = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""


async def _swap_on_cluster(redis: Redis, keys: Keys, name: str, ns: str) -> bool:
    """``try_swap`` where no transaction can hold the pointers and the checkpoints (other
    hash slots): the swap runs under the build lease (its callers hold it), the pointers
    move by compare-and-set, and the old namespace is fenced right after. The old one
    may move on between the comparison and the fence; readers then see the new one a
    few events behind it until the live projector catches it up (reads waiting for a
    position wait for it)."""
    new = keys.namespace(name, ns)
    old = as_text(await redis.get(keys.active(name)))
    if as_text(await redis.get(keys.building(name))) != ns:
        return False
    positions = await mget(redis, new.checkpoints)
    if None in positions:  # fenced: another build replaced this one
        return False
    new_position = min(int(p) for p in positions)
    if old is not None and version_of(old) == PROJECTIONS[name].version:
        behind = await mget(redis, keys.namespace(name, old).checkpoints)
        if max(int(p or 0) for p in behind) > new_position:
            return False
    swap = redis.register_script(_COMPARE_AND_SET)
    if not await swap(keys=[keys.active(name)], args=[old or "", ns]):
        return False
    if old is not None:
        await fence(redis, keys.namespace(name, old))
    await swap(keys=[keys.building(name)], args=[ns, ""])
    if old is not None:
        await drop_namespace(redis, keys, name, old)
    return True


@contextlib.contextmanager
def collect_per_batch() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a build's way. Each batch allocates
    thousands of containers (events' lists, the batch's dicts and tuples) and frees them
    all when done, none in a cycle. At the default threshold (700) the collector ran
    several times per batch, promoting the live batch until full collections rescanned
    the whole heap (bench/results/2026-11-25-replay.md). With the threshold above a
    batch's peak it hardly runs, and what is alive at the start (modules, pools) is frozen
    out of its sight. Cycles are still collected, later. Restored on the way out."""
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
    has caught up with its live namespace. ``deadline`` (a ``time.monotonic()`` value):
    stop there, and return the builds still under way (the tick's slice); without one,
    go on until every build is swapped in (``forum replay``)."""
    builds = dict(builds)
    with collect_per_batch():
        while builds and (deadline is None or time.monotonic() < deadline):
            targets = [Target(PROJECTIONS[n], keys.namespace(n, ns, pages=False))
                       for n, ns in builds.items()]
            # On a cluster the pointers are in other slots than the checkpoints: the
            # fence (a replaced build's checkpoints deleted) is the guard there.
            expect = {} if is_cluster(redis) else {
                keys.building(n): ns.encode() for n, ns in builds.items()}
            progress = await catch_up(store, redis, targets, batch=batch, expect=expect,
                                      deadline=deadline, on_batch=on_batch)
            stale = erasures.stale_after(builds, progress.erased) if progress.erased else []
            if stale:  # an erasure rewrote what these builds may have read already
                born = await store.head()
                for name in stale:
                    builds[name] = await start(redis, keys, name, fresh=True, born=born)
                log.info("rebuild_restarted_after_erasure", projections=stale)
                continue
            if progress.conflicted:
                if await building(redis, keys, builds) != builds:
                    raise RuntimeError("another rebuild took over these projections")
                continue
            if progress.stopped:
                break
            for name, ns in list(builds.items()):
                if await try_swap(redis, keys, name, ns):
                    log.info("read_model_swapped", projection=name, namespace=ns)
                    del builds[name]
    return builds
