"""The log: the event contract and the event store. Knows nothing of HTTP or Redis."""

from events.base import Event
from events.catalog import EVENT_TYPES, ForumEvent, type_name
from events.codec import decode, encode
from events.errors import (
    ConcurrencyError,
    DuplicateRequestError,
    EventStoreError,
    StoreUnavailableError,
)
from events.records import IdempotentResult, Metadata, RecordedEvent
from events.store import EventStore

__all__ = [
    "EVENT_TYPES",
    "ConcurrencyError",
    "DuplicateRequestError",
    "Event",
    "EventStore",
    "EventStoreError",
    "ForumEvent",
    "IdempotentResult",
    "Metadata",
    "RecordedEvent",
    "StoreUnavailableError",
    "decode",
    "encode",
    "type_name",
]
