"""Thread snapshots on PostgreSQL (events/snapshots.py, service/thread_loading.py): written
as a thread grows, used by a fresh process, ignored when of another fold version, never
kept from before an erasure, and a cold load of a long thread without one does not hold
the event loop."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from events.catalog import ForumEvent
from events.erasure import erase
from events.members import MemberRegistered, StreamRedacted
from events.postgres import PostgresEventStore
from events.records import member_stream, thread_stream
from events.redaction import Subject
from events.snapshots import PostgresSnapshotStore
from service import commands as c
from service.domain import snapshot, threads
from service.domain.actors import OPERATOR, Actor
from service.handlers import Handlers, RequestMeta
from service.notify import NullNotifier
from service.thread_cache import ThreadCache
from service.thread_loading import ThreadLoader
from tests.builders import NOW, unique_name, unique_slug


class Counting(PostgresEventStore):
    """Which pages of which streams a load read."""

    def __init__(self, pool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(pool)
        self.pages: list[tuple[str, int]] = []

    async def read_stream_page(self, stream_id: str, after_version: int, limit: int
                               ) -> list[tuple[int, ForumEvent]]:
        self.pages.append((stream_id, after_version))
        return await super().read_stream_page(stream_id, after_version, limit)


def handlers_on(pool, store: PostgresEventStore, every: int = 5) -> Handlers:  # type: ignore[no-untyped-def]
    return Handlers(store, NullNotifier(), hash_password=str,
                    snapshots=PostgresSnapshotStore(pool), snapshot_every=every)


async def a_thread(handlers: Handlers, starter: Actor) -> int:
    slug = unique_slug()
    await handlers.create_forum(c.CreateForum(slug=slug, title="S"), OPERATOR, RequestMeta())
    started = await handlers.start_thread(slug, c.StartThread(title="T", body="b"), starter,
                                          RequestMeta())
    return started.thread_id  # type: ignore[union-attr]


async def test_a_snapshot_is_written_used_by_a_fresh_process_and_ignored_when_old(pool):
    store = Counting(pool)
    first = handlers_on(pool, store)
    thread_id = await a_thread(first, Actor("ann", "member"))
    stream = thread_stream(thread_id)
    for i in range(6):
        await first.post_reply(thread_id, c.PostReply(body=f"reply {i}"),
                               Actor("bob", "member"), RequestMeta())
    await first.threads.settle()
    row = await pool.fetchrow("SELECT version, fold_version, data FROM snapshots"
                              " WHERE stream_id = $1", stream)
    assert row is not None and row["fold_version"] == snapshot.FOLD_VERSION
    assert row["version"] >= 5
    events = [r.event for r in await store.read_stream(stream)]
    assert snapshot.decode(bytes(row["data"])) == threads.fold(events[:row["version"]])

    # A fresh process: the snapshot, then only the events after it.
    store.pages.clear()
    answer = await handlers_on(pool, store).post_reply(
        thread_id, c.PostReply(body="from a fresh process"), Actor("cem", "member"),
        RequestMeta())
    assert store.pages[0] == (stream, row["version"])
    assert answer.number == 8  # type: ignore[union-attr]

    # A snapshot of another fold version is not read: the stream is folded from its start,
    # and the next snapshot replaces the old one.
    await pool.execute("UPDATE snapshots SET fold_version = $2 WHERE stream_id = $1",
                       stream, snapshot.FOLD_VERSION - 1)
    store.pages.clear()
    fresh = handlers_on(pool, store)
    answer = await fresh.post_reply(thread_id, c.PostReply(body="and another"),
                                    Actor("cem", "member"), RequestMeta())
    assert store.pages[0] == (stream, 0) and answer.number == 9  # type: ignore[union-attr]
    await fresh.threads.settle()
    assert await pool.fetchval("SELECT fold_version FROM snapshots WHERE stream_id = $1",
                               stream) == snapshot.FOLD_VERSION


async def test_a_save_keeps_the_newest_and_never_a_state_from_before_an_erasure(pool, store):
    snapshots = PostgresSnapshotStore(pool)
    stream = thread_stream(123_456_789)
    assert await snapshots.save(stream, 4, snapshot.FOLD_VERSION, b"four")
    assert not await snapshots.save(stream, 3, snapshot.FOLD_VERSION, b"three")
    assert (await snapshots.load(stream, snapshot.FOLD_VERSION)).data == b"four"  # type: ignore[union-attr]
    assert await snapshots.load(stream, snapshot.FOLD_VERSION + 1) is None
    # An erasure rewrote the stream at version 6: a state folded before it (version 5,
    # saved late by a slow writer) may hold the erased name.
    await store.append(stream, 0, [MemberRegistered(occurred_at=NOW, actor="x", name="x")
                                   for _ in range(5)])
    await store.append(stream, 5, [StreamRedacted(occurred_at=NOW, actor="operator")])
    assert not await snapshots.save(stream, 5, snapshot.FOLD_VERSION, b"five")
    assert await snapshots.save(stream, 6, snapshot.FOLD_VERSION, b"six")


async def test_an_erasure_deletes_the_snapshots_of_the_threads_it_rewrote(pool):
    store = PostgresEventStore(pool)
    handlers = handlers_on(pool, store, every=1)
    name = unique_name("ann")
    await store.append(member_stream(name), 0,
                       [MemberRegistered(occurred_at=NOW, actor=name, name=name)])
    ann, bob = Actor(name, "member"), Actor("bob", "member")
    mine, other = await a_thread(handlers, ann), await a_thread(handlers, bob)
    for thread_id in (mine, other):
        await handlers.post_reply(thread_id, c.PostReply(body="hi"), bob, RequestMeta())
        await handlers.post_reply(thread_id, c.PostReply(body="hi"), bob, RequestMeta())
    await handlers.threads.settle()
    snapshotted = {r[0] for r in await pool.fetch("SELECT stream_id FROM snapshots")}
    assert {thread_stream(mine), thread_stream(other)} <= snapshotted
    await erase(pool, Subject(name, False, "anon-test", True), actor="operator",
                now=datetime.now(UTC))
    snapshotted = {r[0] for r in await pool.fetch("SELECT stream_id FROM snapshots")}
    assert thread_stream(mine) not in snapshotted and thread_stream(other) in snapshotted
    # The process that kept the thread folds it again, and its next snapshot has no name.
    await handlers.post_reply(mine, c.PostReply(body="after"), bob, RequestMeta())
    await handlers.threads.settle()
    data = await pool.fetchval("SELECT data FROM snapshots WHERE stream_id = $1",
                               thread_stream(mine))
    assert data is not None and name.encode() not in bytes(data)
    assert snapshot.decode(bytes(data)).author == "anon-test"


# A thread of 12,000 posts (24,000 events, versions 1 to 24,000) written by SQL.
_SEED = """
INSERT INTO events (position, stream_id, version, type, data)
SELECT $1::bigint * 100000 + v, 'thread-' || $1::bigint, v, t, d FROM (
    SELECT 1 AS v, 'thread_started' AS t, jsonb_build_object('type', 'thread_started',
        'occurred_at', '2011-01-01T00:00:00Z', 'actor', 'ann', 'thread_id', $1::bigint,
        'forum', 'f', 'title', 'Long', 'author', 'ann', 'guest', false) AS d
    UNION ALL
    SELECT 2 * n, 'post_added', jsonb_build_object('type', 'post_added',
        'occurred_at', timestamptz '2011-01-01' + n * interval '1 minute', 'actor',
        'user' || (n % 500), 'thread_id', $1::bigint, 'forum', 'f',
        'post_id', $1::bigint * 100000 + n,
        'number', n, 'author', 'user' || (n % 500), 'guest', true, 'op', n = 1,
        'first_reply', n = 2, 'body', repeat('words ', 40))
    FROM generate_series(1, $2::int) n
    UNION ALL
    SELECT 2 * n + 1, 'thread_bumped', jsonb_build_object('type', 'thread_bumped',
        'occurred_at', timestamptz '2011-01-01' + n * interval '1 minute', 'actor',
        'user' || (n % 500), 'thread_id', $1::bigint, 'forum', 'f', 'reason', 'reply')
    FROM generate_series(1, $2::int - 1) n
) rows
"""


async def test_a_cold_load_of_a_long_thread_without_a_snapshot_does_not_hold_the_loop(pool):
    thread_id, posts = 777, 12_000
    await pool.execute(_SEED, thread_id, posts)
    store = PostgresEventStore(pool)
    loader = ThreadLoader(store, PostgresSnapshotStore(pool), ThreadCache())
    longest = 0.0
    loading = True

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while loading:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticking = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    thread, version = await loader.load(thread_id)
    took = time.perf_counter() - started
    loading = False
    await ticking
    assert thread is not None and thread.count == posts and version == 2 * posts
    # The whole fold takes far longer than any one stretch the loop was held (a page).
    assert longest < 0.1 and longest < took / 5, (longest, took)
    await loader.settle()
    assert await pool.fetchval("SELECT version FROM snapshots WHERE stream_id = $1",
                               thread_stream(thread_id)) == version
