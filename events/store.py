"""The event store contract, shared by the PostgreSQL store and the in-memory one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from events.catalog import ForumEvent
from events.records import IdempotentResult, Metadata, PostLocation, RecordedEvent

# An append may hold at most this many events: the low bits of a position number them.
MAX_EVENTS_PER_APPEND = (1 << 20) - 1


class EventStore(Protocol):
    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[ForumEvent],
        *,
        metadata: Metadata | None = None,
        idempotency: IdempotentResult | None = None,
        password_hash: str | None = None,
    ) -> int:
        """Append after ``expected_version`` (0: a new stream) and return the position of
        the last event. Raises ConcurrencyError if the stream is not at that version, and
        DuplicateRequestError if ``idempotency.key`` was used already (nothing appended).
        ``password_hash`` becomes the stream's credential (a member's), written if and
        only if the events are: never into the log itself."""
        ...

    async def password_hash(self, stream_id: str) -> str | None:
        """The credential stored for a member's stream, None if there is none."""
        ...

    async def read_stream(self, stream_id: str, after_version: int = 0
                          ) -> list[RecordedEvent]:
        """The stream's events in version order; only those after ``after_version``."""
        ...

    async def read_stream_page(self, stream_id: str, after_version: int, limit: int
                               ) -> list[tuple[int, ForumEvent]]:
        """At most ``limit`` of the stream's events after ``after_version``, in version
        order, each with its version: all a writer folding the stream needs, read and
        decoded in one go (a long stream is read page by page)."""
        ...

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        """Events of the global log after ``after``, in order. Never skips: an event that
        is not returned now can only have a position above the last one returned."""
        ...

    async def read_feed(self, after: int, limit: int) -> list[tuple[int, ForumEvent]]:
        """``read_all`` for projections: each event with its position, all they use."""
        ...

    async def head(self) -> int:
        """The position of the newest event a reader can see (0 for an empty log)."""
        ...

    async def last_position(self) -> int:
        """The position of the newest committed event, whether readers can see it yet or
        not (0 for an empty log): no write ever answered a position above it."""
        ...

    async def has_position(self, position: int) -> bool:
        """Whether ``position`` is at or below ``last_position()``; asks the database only
        for a position beyond the highest this store has already seen."""
        ...

    async def find_idempotent(self, key: str) -> IdempotentResult | None: ...

    async def next_ids(self, kind: str, count: int = 1) -> list[int]:
        """Fresh ids for ``thread`` or ``post``."""
        ...

    async def locate_post(self, post_id: int) -> PostLocation | None:
        """The thread a post was added to, and its number there."""
        ...

    async def added_post(self, post_id: int) -> ForumEvent | None:
        """The ``PostAdded`` that published a post: its first version, which a revision
        history shows (its edits are in the read models)."""
        ...

    async def locate_held(self, held_id: int) -> int | None:
        """The thread a post held for review belongs to (events/held.py)."""
        ...
