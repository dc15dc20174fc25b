"""What the store hands back: an event with its place in the log."""

from __future__ import annotations

from datetime import datetime

import msgspec

from events.catalog import ForumEvent


class Metadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    correlation_id: str | None = None
    idempotency_key: str | None = None


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    stream_id: str
    version: int
    recorded_at: datetime
    event: ForumEvent
    metadata: Metadata = Metadata()


class IdempotentResult(msgspec.Struct, frozen=True, kw_only=True):
    """Stored with an append made under an ``Idempotency-Key``; a replay answers with it."""

    key: str
    fingerprint: str
    response: bytes
    position: int


class PostLocation(msgspec.Struct, frozen=True):
    """Where a post was added: its thread and its number there. Both never change
    (moving a thread moves it between sections, not its posts)."""

    thread_id: int
    number: int


def forum_stream(slug: str) -> str:
    return f"forum-{slug}"


def thread_stream(thread_id: int) -> str:
    return f"thread-{thread_id}"


def member_stream(name: str) -> str:
    return f"member-{name.casefold()}"
