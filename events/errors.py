"""Errors of the event store."""

from __future__ import annotations


class EventStoreError(Exception):
    pass


class ConcurrencyError(EventStoreError):
    """The stream moved on since the writer read it: its expected version is stale."""

    def __init__(self, stream: str, expected: int, actual: int | None = None) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream!r}: expected version {expected}, found {actual}")


class DuplicateRequestError(EventStoreError):
    """An idempotency key was already used; ``response`` is what the first request got."""

    def __init__(self, key: str, fingerprint: str, response: bytes, position: int) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.response = response
        self.position = position
        super().__init__(f"idempotency key {key!r} already used")


class StoreUnavailableError(EventStoreError):
    """PostgreSQL cannot be reached: writes fail fast rather than hang."""
