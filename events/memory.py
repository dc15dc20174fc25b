"""An in-memory event store with the same contract, for unit tests of handlers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from events.catalog import ForumEvent
from events.errors import ConcurrencyError, DuplicateRequestError
from events.held import PostHeld, ThreadHeld
from events.records import IdempotentResult, Metadata, PostLocation, RecordedEvent
from events.threads import PostAdded


class InMemoryEventStore:
    def __init__(self) -> None:
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._idempotency: dict[str, IdempotentResult] = {}
        self._ids: dict[str, itertools.count[int]] = {}
        self._credentials: dict[str, str] = {}

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
        if not events:
            raise ValueError("nothing to append")
        if idempotency is not None and idempotency.key in self._idempotency:
            first = self._idempotency[idempotency.key]
            raise DuplicateRequestError(first.key, first.fingerprint, first.response,
                                        first.position)
        stream = self._streams.setdefault(stream_id, [])
        if len(stream) != expected_version:
            raise ConcurrencyError(stream_id, expected_version, len(stream))
        now = datetime.now(UTC)
        for event in events:
            record = RecordedEvent(
                position=len(self._log) + 1,
                stream_id=stream_id,
                version=len(stream) + 1,
                recorded_at=now,
                event=event,
                metadata=metadata or Metadata(),
            )
            self._log.append(record)
            stream.append(record)
        position = len(self._log)
        if idempotency is not None:
            self._idempotency[idempotency.key] = IdempotentResult(
                key=idempotency.key, fingerprint=idempotency.fingerprint,
                response=idempotency.response, position=position,
            )
        if password_hash is not None:
            self._credentials[stream_id] = password_hash
        return position

    async def password_hash(self, stream_id: str) -> str | None:
        return self._credentials.get(stream_id)

    async def read_stream(self, stream_id: str, after_version: int = 0
                          ) -> list[RecordedEvent]:
        return [r for r in self._streams.get(stream_id, []) if r.version > after_version]

    async def read_stream_page(self, stream_id: str, after_version: int, limit: int
                               ) -> list[tuple[int, ForumEvent]]:
        return [(r.version, r.event) for r in self._streams.get(stream_id, [])
                if r.version > after_version][:limit]

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        return self._log[after : after + limit]

    async def read_feed(self, after: int, limit: int) -> list[tuple[int, ForumEvent]]:
        return [(r.position, r.event) for r in self._log[after : after + limit]]

    async def head(self) -> int:
        return len(self._log)

    async def last_position(self) -> int:
        return len(self._log)

    async def has_position(self, position: int) -> bool:
        return position <= len(self._log)

    async def find_idempotent(self, key: str) -> IdempotentResult | None:
        return self._idempotency.get(key)

    async def locate_post(self, post_id: int) -> PostLocation | None:
        for record in self._log:
            if isinstance(record.event, PostAdded) and record.event.post_id == post_id:
                return PostLocation(record.event.thread_id, record.event.number)
        return None

    async def added_post(self, post_id: int) -> ForumEvent | None:
        for record in self._log:
            if isinstance(record.event, PostAdded) and record.event.post_id == post_id:
                return record.event
        return None

    async def locate_held(self, held_id: int) -> int | None:
        for record in self._log:
            if isinstance(record.event, PostHeld | ThreadHeld) \
                    and record.event.held_id == held_id:
                return record.event.thread_id
        return None

    async def next_ids(self, kind: str, count: int = 1) -> list[int]:
        counter = self._ids.setdefault(kind, itertools.count(1))
        return [next(counter) for _ in range(count)]
