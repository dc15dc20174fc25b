"""Why a read has no answer. The service says each in HTTP (service/errors.py)."""

from __future__ import annotations


class ReadError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ReadNotFoundError(ReadError):
    """Nothing there: no such thread, section, post or page."""


class ReadModelUnavailableError(ReadError):
    """A read model is missing (being rebuilt) or behind the position a client asked for."""

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class BeyondHeadError(ReadError):
    """A position to wait for that no write answered: it is past the log's head."""
