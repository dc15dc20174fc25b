"""Refusals of the domain. The HTTP layer maps each kind to a status (service/errors.py)."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse. ``detail`` is shown to the client as it is."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class InvalidInputError(DomainError):
    """Well-formed but unacceptable content (422)."""


class QuoteNotFoundError(InvalidInputError):
    pass


class NotFoundError(DomainError):
    pass


class ConflictError(DomainError):
    """The request clashes with the current state (409)."""


class ThreadLockedError(ConflictError):
    pass


class NameTakenError(ConflictError):
    pass


class ReservedNameError(NameTakenError, InvalidInputError):
    """A name that is, or looks like, a reserved one (operator, admin, ...). A conflict
    (409) for clients, like any name that is in use; also an invalid name to the code that
    only asks whether a name is acceptable."""


class AlreadyExistsError(ConflictError):
    pass


class ForbiddenError(DomainError):
    pass


class NotAuthenticatedError(DomainError):
    pass


class TooSoonError(DomainError):
    """A rate rule: try again later (429)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
