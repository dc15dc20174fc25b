"""The API process's folded threads, bounded in bytes (ARCHITECTURE invariant 10).

Each kept state carries an estimate of what it takes in memory (``footprint``): a few
array lengths and counters, not a walk over its objects, so it is taken after every load.
Least recently used states go first until the total is under the bound. One thread may
take at most ``1/share`` of the bound: a state larger than that is not kept at all (its
snapshot makes its next load cheap), so one huge thread cannot push out every hot one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from service.domain.threads import Thread

DEFAULT_BYTES: Final = 64 * 1024 * 1024
DEFAULT_SHARE: Final = 8  # one thread may take an eighth of the bound
_BASE: Final = 1500  # a Thread and its containers, a cache entry
_HELD: Final = 700  # a held post besides its body


def footprint(thread: Thread) -> int:
    """About the bytes ``thread`` takes (measured: tests/unit/test_thread_cache.py)."""
    held = sum(_HELD + len(h.body) + 100 * len(h.quotes) for h in thread.held.values()) \
        if thread.held else 0
    return _BASE + thread.posts.nbytes() + held + 70 * len(thread.decided)


@dataclass
class Kept:
    thread: Thread
    version: int  # of the stream, that ``thread`` reflects
    snapshot_version: int  # of the newest snapshot known to exist (0: none)
    size: int = 0


class ThreadCache:
    def __init__(self, max_bytes: int = DEFAULT_BYTES, share: int = DEFAULT_SHARE) -> None:
        self.max_bytes = max_bytes
        self.max_each = max_bytes // max(1, share)
        self.total = 0
        self._kept: OrderedDict[int, Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._kept

    def get(self, thread_id: int) -> Kept | None:
        kept = self._kept.get(thread_id)
        if kept is not None:
            self._kept.move_to_end(thread_id)
        return kept

    def peek(self, thread_id: int) -> Kept | None:
        """The kept state without making it recently used."""
        return self._kept.get(thread_id)

    def keep(self, thread_id: int, kept: Kept) -> bool:
        """Keep ``kept`` (replacing what was kept of the thread), its size estimated now,
        and evict the least recently used others while over the bound. False when the
        state alone is over its share: then nothing of the thread is kept."""
        self.drop(thread_id)
        kept.size = footprint(kept.thread)
        if kept.size > self.max_each:
            return False
        self._kept[thread_id] = kept
        self.total += kept.size
        while self.total > self.max_bytes:
            _, evicted = self._kept.popitem(last=False)
            self.total -= evicted.size
        return True

    def grown(self, thread_id: int) -> None:
        """``thread_id``'s kept state was advanced in place: estimate it again."""
        kept = self._kept.get(thread_id)
        if kept is not None:
            self.keep(thread_id, kept)

    def drop(self, thread_id: int) -> None:
        kept = self._kept.pop(thread_id, None)
        if kept is not None:
            self.total -= kept.size
