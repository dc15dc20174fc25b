"""Small pieces shared by the JSON controllers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from litestar import MediaType, Response

from service.domain.actors import Actor
from service.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
)
from service.guests import GuestPass
from service.lifespan import Services

MAX_ID = (1 << 63) - 1


def checked_id(value: int, what: str) -> int:
    """Ids beyond what the store can hold name nothing: 404, not a database error."""
    if not 0 < value <= MAX_ID:
        raise NotFoundError(f"no such {what}")
    return value


def moderator(actor: Actor | None, doing: str) -> Actor:
    """The actor, when a moderator or the operator: 401 without credentials, else 403.
    ``doing`` completes "only moderators and the operator may …"."""
    if actor is None:
        raise NotAuthenticatedError(f"{doing} needs a moderator's or the operator's token")
    if not actor.moderates:
        raise ForbiddenError(f"only moderators and the operator may {doing}")
    return actor


async def writer(services: Services, actor: Actor | None, guest_name: str | None,
                 guest: GuestPass | None = None) -> Actor:
    """The signed-in actor, or the guest the body names.

    A guest is ``Actor(role="guest", guest_id=...)``: the identity of the guest token the
    request came with, or of a new one issued now (``guest`` then carries it, and the
    answer hands it out: see ``written``). A guest name held by another guest identity,
    or looking like a member's or a reserved name, is refused with 409 (see
    ``Handlers.guest`` for when a guest holds its name)."""
    if actor is not None:
        if guest_name is not None:
            raise InvalidInputError("guest_name is only for guests; you are signed in")
        return actor
    if guest_name is None:  # refused by the handler before any token is issued
        return await services.handlers.guest(guest_name)
    guest = guest or GuestPass()
    return await services.handlers.guest(
        guest_name, guest.identity(services.handlers.guest_key), returning=guest.sent is not None
    )


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(value), status_code=status, media_type=MediaType.JSON,
        headers=headers or {},
    )


def written(value: Any, status: int = 200, headers: dict[str, str] | None = None,
            guest: GuestPass | None = None) -> Response[bytes]:
    """A write's answer: its body plus the log position it reached, for read-your-writes.

    A guest's write that was issued a new identity also answers ``guest_token``: send it
    as ``X-Guest-Token`` to write as the same guest again. A request that sent a token gets
    none back (it holds it already). The token is added here, not kept in the result, so
    that an idempotent replay's stored answer never holds a secret."""
    merged = {"X-Position": str(value.position), **(headers or {})}
    if guest is not None and guest.issued is not None:
        body = msgspec.to_builtins(value)
        body["guest_token"] = guest.issued
        return json_response(body, status, {**merged, "Cache-Control": "no-store"})
    return json_response(value, status, merged)


def name_path(prefix: str, name: str) -> str:
    """A URL path ending in a name, percent-encoded (names may hold any script, spaces)."""
    return prefix + quote(name, safe="")
