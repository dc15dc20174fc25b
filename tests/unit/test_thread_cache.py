"""The API process's folded threads are bounded in bytes (service/thread_cache.py), one
thread takes at most its share, and loads use snapshots and yield between pages
(service/thread_loading.py). Over the in-memory stores; the PostgreSQL side is
tests/integration/test_snapshots.py."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from datetime import timedelta

from events.catalog import ForumEvent
from events.memory import InMemoryEventStore
from events.records import thread_stream
from events.snapshots import InMemorySnapshotStore
from service import commands as c
from service.domain import review, snapshot, threads
from service.domain.actors import OPERATOR, Actor
from service.domain.threads import Thread
from service.handlers import Handlers, RequestMeta
from service.notify import NullNotifier
from service.thread_cache import Kept, ThreadCache, footprint
from service.thread_loading import ThreadLoader
from tests.builders import NOW, unique_slug


def history(posts: int, *, thread_id: int = 1, first_post: int = 10_000) -> list[ForumEvent]:
    """A thread of ``posts`` posts by 300 authors, some liked, edited, held, deleted."""
    events = threads.start_thread(thread_id=thread_id, post_id=first_post, forum="f",
                                  title="t", body="b", actor=Actor("starter", "member"),
                                  now=NOW)
    state = threads.fold(events)
    for i in range(1, posts):
        at = NOW + timedelta(seconds=i)
        author = Actor(f"writer{i % 300}", "guest" if i % 3 else "member")
        new: list[ForumEvent] = threads.post_reply(
            state, post_id=first_post + i, body="x" * 300, actor=author, now=at)
        if i % 7 == 0:
            new += threads.like(_after(state, new), post_id=first_post + i - 1,
                                actor=Actor(f"fan{i % 50}", "member"), now=at, liked=True)
        if i % 11 == 0:
            new += threads.delete_post(_after(state, new), post_id=first_post + i - 2,
                                       actor=OPERATOR, now=at)
        if i % 13 == 0:
            new += threads.edit_post(_after(state, new), post_id=first_post + i,
                                     body="y", actor=OPERATOR, now=at)
        if i % 97 == 0:
            new += review.hold_reply(_after(state, new), post_id=first_post + posts + i,
                                     body="www.spam.example " * 20, actor=author, now=at,
                                     reason="links")
        for event in new:
            state = threads.evolve(state, event)
        events += new
    return events


def _after(state: Thread | None, new: list[ForumEvent]) -> Thread:
    """``state`` with ``new`` folded in, without changing ``state``."""
    copy = snapshot.decode(snapshot.encode(state)) if state is not None else None
    for event in new:
        copy = threads.evolve(copy, event)
    assert copy is not None
    return copy


def test_the_estimate_is_near_what_a_thread_takes_in_memory():
    for posts in (10, 1_000, 5_000):
        events = history(posts)
        folded = threads.fold(events)
        assert folded is not None
        data = snapshot.encode(folded)
        estimate = footprint(folded)
        # Folded, or decoded from a snapshot (whose likers' names are not shared).
        for build in (lambda e=events: threads.fold(e), lambda d=data: snapshot.decode(d)):
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                state = build()
                taken = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert state == folded
            # Never much under (the bound must hold), not so far over that it wastes it.
            assert 0.8 * taken <= estimate <= 2.5 * taken, (posts, taken, estimate)


def kept(posts: int, thread_id: int) -> Kept:
    state = threads.fold(history(posts, thread_id=thread_id))
    assert state is not None
    return Kept(state, 1, 0)


def test_the_cache_stays_under_its_bound_least_recently_used_out():
    one = footprint(kept(200, 1).thread)
    cache = ThreadCache(max_bytes=one * 5 + one // 2, share=2)
    for thread_id in range(1, 6):
        assert cache.keep(thread_id, kept(200, thread_id))
    assert len(cache) == 5 and cache.total <= cache.max_bytes
    assert cache.get(1) is not None  # 1 is now the most recently used, 2 the least
    cache.keep(6, kept(200, 6))
    assert 2 not in cache and 1 in cache and 6 in cache
    assert cache.total <= cache.max_bytes
    assert cache.total == sum(cache.peek(t).size for t in (1, 3, 4, 5, 6))  # type: ignore[union-attr]


def test_a_thread_over_its_share_is_not_kept_and_pushes_nothing_out():
    small = footprint(kept(100, 1).thread)
    cache = ThreadCache(max_bytes=small * 8, share=4)
    for thread_id in range(1, 5):
        cache.keep(thread_id, kept(100, thread_id))
    big = kept(3_000, 9)
    assert footprint(big.thread) > cache.max_each
    assert not cache.keep(9, big)
    assert 9 not in cache and len(cache) == 4


def test_a_kept_state_that_grows_past_its_share_is_let_go():
    cache = ThreadCache(max_bytes=footprint(kept(500, 1).thread) * 2, share=2)
    entry = kept(300, 1)
    assert cache.keep(1, entry)
    entry.thread = kept(2_000, 1).thread
    cache.grown(1)
    assert 1 not in cache and cache.total == 0


# -- through the handlers --------------------------------------------------------------

def meta() -> RequestMeta:
    return RequestMeta()


async def a_thread(handlers: Handlers) -> int:
    slug = unique_slug()
    await handlers.create_forum(c.CreateForum(slug=slug, title="S"), OPERATOR, meta())
    started = await handlers.start_thread(slug, c.StartThread(title="T", body="b"),
                                          Actor("ann", "member"), meta())
    return started.thread_id  # type: ignore[union-attr]


async def test_writes_to_many_threads_keep_the_cache_under_its_bound():
    bound = 60_000
    handlers = Handlers(InMemoryEventStore(), NullNotifier(), hash_password=str,
                        thread_cache_bytes=bound)
    ids = [await a_thread(handlers) for _ in range(40)]
    for _ in range(3):
        for thread_id in ids:
            await handlers.post_reply(thread_id, c.PostReply(body="hi"),
                                      Actor("bob", "member"), meta())
            assert handlers.threads.cache.total <= bound
    assert 0 < len(handlers.threads.cache) < 40


class CountingStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.pages: list[tuple[str, int]] = []

    async def read_stream_page(self, stream_id: str, after_version: int, limit: int
                               ) -> list[tuple[int, ForumEvent]]:
        self.pages.append((stream_id, after_version))
        return await super().read_stream_page(stream_id, after_version, limit)


async def test_a_snapshot_is_written_as_the_stream_grows_and_a_fresh_process_starts_from_it():
    store, snapshots = CountingStore(), InMemorySnapshotStore()
    first = Handlers(store, NullNotifier(), hash_password=str, snapshots=snapshots,
                     snapshot_every=10)
    thread_id = await a_thread(first)
    stream = thread_stream(thread_id)
    for _ in range(12):
        await first.post_reply(thread_id, c.PostReply(body="hi"), Actor("bob", "member"),
                               meta())
    await first.threads.settle()
    version, _, data = snapshots.rows[stream]
    assert version >= 10 and snapshot.decode(data) == threads.fold(
        [r.event for r in await store.read_stream(stream)][:version])
    # Another process: reads the snapshot and only the events after it.
    second = Handlers(store, NullNotifier(), hash_password=str, snapshots=snapshots,
                      snapshot_every=10)
    store.pages.clear()
    result = await second.post_reply(thread_id, c.PostReply(body="again"),
                                     Actor("cem", "member"), meta())
    assert store.pages[0] == (stream, version)
    assert result.number == 14  # type: ignore[union-attr]


async def test_a_snapshot_of_another_fold_version_is_ignored():
    store, snapshots = CountingStore(), InMemorySnapshotStore()
    handlers = Handlers(store, NullNotifier(), hash_password=str, snapshots=snapshots)
    thread_id = await a_thread(handlers)
    stream = thread_stream(thread_id)
    snapshots.rows[stream] = (1, snapshot.FOLD_VERSION - 1, b"not the current shape")
    fresh = Handlers(store, NullNotifier(), hash_password=str, snapshots=snapshots)
    store.pages.clear()
    result = await fresh.post_reply(thread_id, c.PostReply(body="hi"),
                                    Actor("bob", "member"), meta())
    assert store.pages[0] == (stream, 0) and result.number == 2  # type: ignore[union-attr]


async def test_a_cold_load_lets_others_run_between_pages():
    store = InMemoryEventStore()
    events = history(600)
    await store.append(thread_stream(1), 0, events)
    loader = ThreadLoader(store, InMemorySnapshotStore(), ThreadCache(), page=100)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    thread, version = await loader.load(1)
    running.cancel()
    assert version == len(events) and thread == threads.fold(events)
    assert ticks >= len(events) // 100
