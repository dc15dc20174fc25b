"""Invariant 2: a reader of the global log never skips an event, whatever order appends
commit in, and never sees one that was rolled back.

Appenders stall inside their transaction (the same INSERT the store uses, on a connection of
their own) so that later positions commit first: exactly the situation in which a reader
trusting "highest position seen" silently loses the late commit.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid

import asyncpg

from events.postgres import PostgresEventStore
from events.records import RecordedEvent, thread_stream
from tests.builders import new_id, post_added

WRITERS = 32
APPENDS_PER_WRITER = 6
CATCH_UP_SECONDS = 20


class _RollbackError(Exception):
    """Raised inside a transaction to roll it back."""


def _marker(record: RecordedEvent) -> str:
    return record.event.body.split("/")[0]  # type: ignore[union-attr]


async def _events_table(pool: asyncpg.Pool) -> list[tuple[int, str, int]]:
    rows = await pool.fetch("SELECT position, stream_id, version FROM events ORDER BY position")
    return [(r[0], r[1], r[2]) for r in rows]


async def _read_everything(store: PostgresEventStore, limit: int = 100) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    after = 0
    while batch := await store.read_all(after, limit):
        out.extend(batch)
        after = batch[-1].position
    return out


async def _wait_until_readable(store: PostgresEventStore, count: int) -> list[RecordedEvent]:
    """The horizon is cluster-wide: a transaction of another database can hold it a while."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        records = await store.read_all(0, 1000)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.01)


async def test_reader_polling_during_stalled_and_aborted_appends_sees_every_commit_once(
        store, pool):
    rng = random.Random()
    committed: dict[str, int] = {}  # marker -> number of events
    aborted: set[str] = set()
    late_commits = 0
    writers_done = asyncio.Event()

    async def stalled_append(stream: str, version: int, events: list) -> bool:  # type: ignore[type-arg]
        """Append inside a transaction held open for a while; maybe roll it back."""
        nonlocal late_commits
        rollback = rng.random() < 0.3
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    position = await PostgresEventStore(conn).append(stream, version, events)
                    await asyncio.sleep(rng.uniform(0.0, 0.3))
                    if rollback:
                        raise _RollbackError
                    # Did a later position commit while this one was pending?
                    newest = await conn.fetchval("SELECT max(position) FROM events")
                    if newest > position:
                        late_commits += 1
            except _RollbackError:
                return False
        return True

    async def writer(index: int) -> None:
        thread_id = new_id()
        stream, version = thread_stream(thread_id), 0
        for n in range(APPENDS_PER_WRITER):
            marker = f"w{index}a{n}-{uuid.uuid4().hex[:8]}"
            size = rng.randint(1, 3)
            events = [post_added(thread_id, version + i + 1, body=f"{marker}/{i}")
                      for i in range(size)]
            if rng.random() < 0.5:
                ok = await stalled_append(stream, version, events)
            else:
                await store.append(stream, version, events)
                ok = True
            if ok:
                committed[marker] = size
                version += size
            else:
                aborted.add(marker)
            await asyncio.sleep(rng.uniform(0.0, 0.02))

    seen: list[RecordedEvent] = []

    async def reader() -> None:
        checkpoint = 0
        deadline: float | None = None
        while True:
            batch = await store.read_all(checkpoint, rng.choice([1, 3, 10, 50]))
            if batch:
                seen.extend(batch)
                checkpoint = batch[-1].position
                continue
            if writers_done.is_set():
                newest = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
                if checkpoint >= newest:
                    return
                deadline = deadline or time.monotonic() + CATCH_UP_SECONDS
                assert time.monotonic() < deadline, "the reader never caught up"
            await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(i) for i in range(WRITERS)))
    writers_done.set()
    await reading

    table = await _events_table(pool)
    positions = [r.position for r in seen]
    # Strictly increasing: nothing twice, nothing out of order.
    assert all(a < b for a, b in itertools.pairwise(positions))
    # Exactly the committed events, each once.
    assert [(r.position, r.stream_id, r.version) for r in seen] == table
    markers: dict[str, int] = {}
    for record in seen:
        markers[_marker(record)] = markers.get(_marker(record), 0) + 1
    assert markers == committed
    assert not aborted & set(markers)
    # A second full read gives the identical order.
    again = await _read_everything(store)
    assert [(r.position, r.stream_id, r.version, r.event) for r in again] == [
        (r.position, r.stream_id, r.version, r.event) for r in seen]
    # The run did exercise what it is about.
    assert aborted, "no append was rolled back"
    assert late_commits > 0, "no append committed behind a later position"


async def test_a_naive_reader_trusting_the_highest_position_would_skip_a_late_commit(
        store, pool):
    """Why the store reads below the horizon: the naive query loses the slow writer's event."""
    slow_thread, fast_thread = new_id(), new_id()
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        try:
            slow_position = await PostgresEventStore(slow).append(
                thread_stream(slow_thread), 0, [post_added(slow_thread, 1, body="slow")])
            fast_position = await store.append(
                thread_stream(fast_thread), 0, [post_added(fast_thread, 1, body="fast")])
            assert fast_position > slow_position  # taken later, committed first

            naive = await pool.fetch(
                "SELECT position FROM events WHERE position > $1 ORDER BY position", 0)
            naive_checkpoint = naive[-1]["position"]
            assert naive_checkpoint == fast_position
            # The store's reader does not move past the open transaction.
            assert await store.read_all(0, 100) == []
            assert await store.head() < slow_position
        finally:
            await tx.commit()

    naive_next = await pool.fetch(
        "SELECT position FROM events WHERE position > $1 ORDER BY position", naive_checkpoint)
    assert naive_next == []  # the naive reader never sees the slow event
    records = await _wait_until_readable(store, 2)
    assert [r.position for r in records] == [slow_position, fast_position]
    assert [r.event.body for r in records] == ["slow", "fast"]  # type: ignore[union-attr]
    assert await store.head() == fast_position


async def test_a_rolled_back_append_leaves_a_hole_the_reader_does_not_wait_for(store, pool):
    aborted_thread, kept_thread = new_id(), new_id()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        aborted_position = await PostgresEventStore(conn).append(
            thread_stream(aborted_thread), 0, [post_added(aborted_thread, 1, body="never")])
        kept_position = await store.append(
            thread_stream(kept_thread), 0, [post_added(kept_thread, 1, body="kept")])
        await tx.rollback()
    assert aborted_position < kept_position
    records = await _wait_until_readable(store, 1)
    assert [(r.position, r.event.body) for r in records] == [  # type: ignore[union-attr]
        (kept_position, "kept")]
    assert await store.read_stream(thread_stream(aborted_thread)) == []
    # The aborted stream is still writable from version 0.
    await store.append(thread_stream(aborted_thread), 0, [post_added(aborted_thread, 1)])
