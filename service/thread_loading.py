"""A thread's state for a decision: kept in memory, or a snapshot and the events after it.

**Kept.** Folded threads are kept (service/thread_cache.py, bounded in bytes) and brought
up to date by reading only the events after the kept version, so a write to a long thread
does not re-read and re-fold it. A kept state only ever advances by committed events, in
version order, without an await in between; decisions only read it. A request that
decides on a state that a concurrent request advanced past the version it was handed
appends with a stale expected version, fails, and retries: optimistic concurrency still
decides. A tail of a page or more is not folded into the kept state (that would take
awaits): the thread is loaded cold instead.

**Cold.** The newest snapshot of the current ``FOLD_VERSION`` (service/domain/snapshot.py,
events/snapshots.py) and the events after it, read a page at a time: the event loop does
one page's decoding and folding between two awaits (``PAGE``: a few milliseconds), so a
first load of a thread of 50,000 posts with no snapshot costs others a few milliseconds
at a time, not a second. Folding in a worker thread instead would not help: decoding and
folding are Python holding the GIL, and the state would be built where the loop cannot
see it. Concurrent cold loads of one thread share one fold.

**Snapshots** are written after a load that left the state ``snapshot_every`` events or
more past the newest snapshot known: encoded at once (the state must not move while it is
read; a copy of the arrays, a millisecond or two for 50,000 posts), saved in the
background, off the request's path. A failed save only means a longer next cold load.

**Erasures.** An erasure rewrites events of the streams naming the person and appends a
``StreamRedacted`` to each (events/erasure.py): a kept state that meets one in its tail is
dropped and the thread loaded afresh. A cold load that meets one after reading a snapshot
or an earlier page (either may have been read before the erasure) starts again from the
stream's first event; one already folded in the same read of the stream's start is not
news.
"""

from __future__ import annotations

import asyncio
from typing import Final

import msgspec
import structlog

from events import EventStore, ForumEvent
from events.members import StreamRedacted
from events.records import thread_stream
from events.snapshots import SnapshotStore
from service.domain import snapshot
from service.domain.threads import Thread, evolve
from service.thread_cache import Kept, ThreadCache

log = structlog.get_logger(__name__)

PAGE: Final = 250  # events decoded and folded between two awaits (~1-3 ms)
SNAPSHOT_EVERY: Final = 500  # events folded past the newest snapshot before another


class ThreadLoader:
    def __init__(self, store: EventStore, snapshots: SnapshotStore, cache: ThreadCache, *,
                 snapshot_every: int = SNAPSHOT_EVERY, page: int = PAGE) -> None:
        self.store = store
        self.snapshots = snapshots
        self.cache = cache
        self.snapshot_every = max(1, snapshot_every)
        self.page = max(2, page)
        self._loading: dict[int, asyncio.Future[tuple[Thread | None, int]]] = {}
        self._saving: dict[int, asyncio.Task[None]] = {}

    async def load(self, thread_id: int) -> tuple[Thread | None, int]:
        """The thread folded from its stream (None: no such stream), and its version."""
        kept = self.cache.get(thread_id)
        if kept is not None:
            page = await self.store.read_stream_page(thread_stream(thread_id), kept.version,
                                                     self.page)
            if len(page) < self.page and not any(e.__class__ is StreamRedacted
                                                 for _, e in page):
                current = self.cache.peek(thread_id)  # advanced meanwhile? dropped?
                if current is not None:
                    return self._advanced(thread_id, current, page)
            else:  # a long tail, or an erasure rewrote the stream: fold it afresh
                self.cache.drop(thread_id)
        return await self._shared_cold(thread_id)

    def _advanced(self, thread_id: int, kept: Kept, page: list[tuple[int, ForumEvent]]
                  ) -> tuple[Thread | None, int]:
        """``kept`` advanced by what of ``page`` follows it. No await."""
        before = kept.version
        for version, event in page:
            if version == kept.version + 1:
                thread = evolve(kept.thread, event)
                assert thread is not None
                kept.thread, kept.version = thread, version
        if kept.version != before:
            self.cache.grown(thread_id)
            self._snapshot_if_due(thread_id, kept)
        return kept.thread, kept.version

    async def _shared_cold(self, thread_id: int) -> tuple[Thread | None, int]:
        loading = self._loading.get(thread_id)
        if loading is None:
            loading = asyncio.ensure_future(self._cold(thread_id))
            self._loading[thread_id] = loading

            def done(future: asyncio.Future[tuple[Thread | None, int]]) -> None:
                if self._loading.get(thread_id) is future:
                    del self._loading[thread_id]
                if not future.cancelled():
                    future.exception()  # retrieved: every waiter may have gone

            loading.add_done_callback(done)
        # A waiter cancelled (its client went away) does not cancel the others' load.
        return await asyncio.shield(loading)

    async def _cold(self, thread_id: int) -> tuple[Thread | None, int]:
        stream = thread_stream(thread_id)
        thread, version, snapshot_version = await self._snapshot(thread_id)
        reflected = 0  # a StreamRedacted up to this version is folded in already
        while True:
            start = version
            page = await self.store.read_stream_page(stream, version, self.page)
            for at, event in page:
                if event.__class__ is StreamRedacted and at > reflected:
                    reflected = at
                    if start > 0:  # what came before was read before: maybe erased since
                        log.info("thread_refolded_after_erasure", thread_id=thread_id)
                        thread, version, snapshot_version = None, 0, 0
                        break
                thread, version = evolve(thread, event), at
            else:
                if len(page) < self.page:
                    break
            await asyncio.sleep(0)  # others' turn, whatever the store's read awaited
        if thread is None:
            return None, version
        kept = Kept(thread, version, snapshot_version)
        current = self.cache.peek(thread_id)
        if current is None or current.version < version:
            self.cache.keep(thread_id, kept)
        self._snapshot_if_due(thread_id, kept)
        return thread, version

    async def _snapshot(self, thread_id: int) -> tuple[Thread | None, int, int]:
        """The newest usable snapshot: the state, its version, its version again."""
        found = await self.snapshots.load(thread_stream(thread_id), snapshot.FOLD_VERSION)
        if found is None:
            return None, 0, 0
        try:
            return snapshot.decode(found.data), found.version, found.version
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            # Written by this FOLD_VERSION, yet unreadable: fold the stream instead.
            log.warning("thread_snapshot_unreadable", thread_id=thread_id, error=repr(error))
            return None, 0, 0

    def _snapshot_if_due(self, thread_id: int, kept: Kept) -> None:
        if kept.version - kept.snapshot_version < self.snapshot_every \
                or thread_id in self._saving:
            return
        data = snapshot.encode(kept.thread)
        kept.snapshot_version = kept.version
        task = asyncio.ensure_future(self._save(thread_id, kept.version, data))
        self._saving[thread_id] = task
        task.add_done_callback(lambda _: self._saving.pop(thread_id, None))

    async def _save(self, thread_id: int, version: int, data: bytes) -> None:
        try:
            await self.snapshots.save(thread_stream(thread_id), version,
                                      snapshot.FOLD_VERSION, data)
        except Exception as error:  # a snapshot is only a shortcut: never worth a failure
            log.warning("thread_snapshot_not_saved", thread_id=thread_id, error=repr(error))

    async def settle(self) -> None:
        """Wait for the snapshots being saved (tests; before the pool closes)."""
        while self._saving:
            await asyncio.gather(*self._saving.values(), return_exceptions=True)
