"""A byte-exact snapshot of the live read models, to compare live projection with a rebuild.

``dump`` reads every key of the five projections' ACTIVE namespaces under a key prefix
(``{prefix}:active:{name}`` names the namespace, its keys are ``{prefix}:{name}:{ns}:...``)
and returns them with the namespace part replaced by ``*``, so two builds of the same log
compare equal key by key, byte by byte.

``rebuild_dump`` builds all projections from the log into a separate, fresh prefix with
``rebuild_all``, dumps that and deletes the prefix again.

Thread pages are a cache (docs/design.md, "Thread pages as a cache"): a build writes none,
and a live page may have been started by a build, so before dumping, ``fill_pages`` makes
every missing or partial page as a read would (workers/page_rebuild.py); a whole page is
left as the projector made it. So the dumps still compare byte for byte, and a page the
projector wrote live is compared with the same page rebuilt from the thread's events.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from events import EventStore
from workers import rebuild
from workers.checkpoints import positions
from workers.page_rebuild import rebuild_page
from workers.readmodels import PROJECTION_NAMES, Keys

NS_PLACEHOLDER = "*"


async def dump(redis: Redis, keys: Keys) -> dict[str, object]:
    """Every key of the active namespaces, by placeholder name, with its value by type:
    string → bytes, list → list of bytes, hash → dict, set → sorted list,
    zset → list of (member, score)."""
    out: dict[str, object] = {}
    for name in PROJECTION_NAMES:
        pointer = await redis.get(keys.active(name))
        out[f"active:{name}"] = pointer is not None
        if pointer is None:
            continue
        ns = pointer.decode()
        base = keys.namespace(name, ns).base
        found: list[bytes] = [key async for key in redis.scan_iter(
            match=keys.namespace(name, ns).pattern(), count=1000)]
        found.sort()
        async with redis.pipeline(transaction=False) as pipe:
            for key in found:
                pipe.type(key)
            types = await pipe.execute()
        async with redis.pipeline(transaction=False) as pipe:
            for key, kind in zip(found, types, strict=True):
                kind = kind.decode() if isinstance(kind, bytes) else kind
                if kind == "string":
                    pipe.get(key)
                elif kind == "list":
                    pipe.lrange(key, 0, -1)
                elif kind == "hash":
                    pipe.hgetall(key)
                elif kind == "zset":
                    pipe.zrange(key, 0, -1, withscores=True)
                elif kind == "set":
                    pipe.smembers(key)
                else:  # vanished between SCAN and TYPE, or an unexpected type
                    pipe.type(key)
            values = await pipe.execute()
        for key, kind, value in zip(found, types, values, strict=True):
            kind = kind.decode() if isinstance(kind, bytes) else kind
            rest = key.decode()[len(base):]
            placeholder = f"{name}:{NS_PLACEHOLDER}{rest}"
            if kind == "set":
                value = sorted(value)
            elif kind == "zset":
                value = [(member, score) for member, score in value]
            out[placeholder] = (kind, value)
    return out


async def fill_pages(store: EventStore, redis: Redis, keys: Keys) -> int:
    """Rebuild every thread page that is missing or partial, as reads do; how many."""
    pointer = await redis.get(keys.active("thread_page"))
    if not isinstance(pointer, bytes):
        return 0
    ns = keys.namespace("thread_page", pointer.decode())
    marker = ":t:"  # a thread's summary: {base}:{TAG}:t:{id}
    ids = {int(rest) for key in [k.decode() async for k in redis.scan_iter(
        match=f"{ns.base}:*{marker}*", count=1000)]
        if (rest := key.rpartition(marker)[2]).isdigit()}
    return sum([await rebuild_page(redis, keys, store, tid) for tid in sorted(ids)])


async def drop_prefix(redis: Redis, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await redis.unlink(*batch)
            batch.clear()
    if batch:
        await redis.unlink(*batch)


async def rebuild_all(store: EventStore, redis: Redis, keys: Keys,
                      batch: int = rebuild.BUILD_BATCH) -> None:
    """Build every projection to the head of the log and swap each in, as ``forum
    replay`` does in one process."""
    builds = {name: await rebuild.start(redis, keys, name, fresh=True)
              for name in PROJECTION_NAMES}
    await rebuild.fill(store, redis, keys, builds, batch=batch)


async def rebuild_dump(store: EventStore, redis: Redis, like: Keys,
                       batch: int = rebuild.BUILD_BATCH) -> dict[str, object]:
    """Build every projection from the whole log into a fresh prefix next to ``like``'s,
    dump it, and delete that prefix again."""
    other = Keys(f"{like.prefix}-rebuild-{uuid.uuid4().hex[:8]}")
    try:
        await rebuild_all(store, redis, other, batch=batch)
        await fill_pages(store, redis, other)
        return await dump(redis, other)
    finally:
        await drop_prefix(redis, other.prefix)


async def last_written(store: EventStore) -> int:
    """The position of the newest event in the log, committed or not yet readable.

    ``store.head()`` answers only below the oldest transaction running anywhere in the
    (shared) cluster, so a head read a moment ago may already be short of what this test
    wrote. Tests own their database: every event in it is theirs and committed."""
    pool = store._pool  # type: ignore[attr-defined]
    return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))


async def settle(store: EventStore, redis: Redis, keys: Keys, *, batch: int = 500,
                 timeout: float = 30.0) -> int:
    """Project live until every read model has reached the last event written, and return
    its position."""
    from workers.live import Live

    live = Live(store, redis, keys, batch=batch)
    last = await last_written(store)
    deadline = time.monotonic() + timeout
    while True:
        await live.catch_up()
        done = await positions(redis, keys, list(PROJECTION_NAMES))
        if all(p is not None and p >= last for p in done.values()):
            return last
        assert time.monotonic() < deadline, f"projections stuck at {done}, last {last}"
        await asyncio.sleep(0.02)


def differences(live: dict[str, object], rebuilt: dict[str, object], limit: int = 10
                ) -> list[str]:
    """Human-readable differences between two dumps (empty when equal)."""
    out: list[str] = []
    for key in sorted(live.keys() | rebuilt.keys()):
        if key not in rebuilt:
            out.append(f"only live: {key} = {_short(live[key])}")
        elif key not in live:
            out.append(f"only rebuild: {key} = {_short(rebuilt[key])}")
        elif live[key] != rebuilt[key]:
            out.append(f"differs: {key}\n  live:    {_short(live[key])}\n"
                       f"  rebuild: {_short(rebuilt[key])}")
        if len(out) >= limit:
            out.append("…")
            break
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 600 else text[:600] + "…"


async def assert_equals_rebuild(store: EventStore, redis: Redis, keys: Keys) -> dict[str, object]:
    """Dump the live read models, rebuild from the log, and require the same bytes."""
    await fill_pages(store, redis, keys)
    live = await dump(redis, keys)
    rebuilt = await rebuild_dump(store, redis, keys)
    problems = differences(live, rebuilt)
    assert not problems, "live read models differ from a rebuild:\n" + "\n".join(problems)
    assert all(live[f"active:{name}"] for name in PROJECTION_NAMES), live
    return live
