"""Small pieces shared by the JSON controllers."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Response

from service.domain.actors import Actor
from service.domain.errors import InvalidInputError, NotFoundError
from service.lifespan import Services

MAX_ID = (1 << 63) - 1


def checked_id(value: int, what: str) -> int:
    """Ids beyond what the store can hold name nothing: 404, not a database error."""
    if not 0 < value <= MAX_ID:
        raise NotFoundError(f"no such {what}")
    return value


async def writer(services: Services, actor: Actor | None, guest_name: str | None) -> Actor:
    """The signed-in actor, or the guest the body names."""
    if actor is not None:
        if guest_name is not None:
            raise InvalidInputError("guest_name is only for guests; you are signed in")
        return actor
    return await services.handlers.guest(guest_name)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(value), status_code=status, media_type=MediaType.JSON,
        headers=headers or {},
    )


def written(value: Any, status: int = 200, headers: dict[str, str] | None = None
            ) -> Response[bytes]:
    """A write's answer: its body plus the log position it reached, for read-your-writes."""
    merged = {"X-Position": str(value.position), **(headers or {})}
    return json_response(value, status, merged)

