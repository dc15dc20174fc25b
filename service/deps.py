"""Dependencies handed to route handlers."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State

from service.auth import Identity
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, InvalidInputError
from service.handlers import RequestMeta, fingerprint
from service.lifespan import Services


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_may_write(method: str, identity: Identity) -> None:
    """The one place a suspension stops writes, for the API and the pages: a suspended
    member may read, but every unsafe request of theirs is 403 with the reason and end."""
    if method not in SAFE_METHODS and (detail := identity.suspended_detail()) is not None:
        raise ForbiddenError(detail)


async def provide_actor(request: Request[Any, Any, Any], state: State) -> Actor | None:
    """The signed-in actor as they stand now, or None (a guest must then name themself in
    the body). Bad, expired or revoked credentials are 401."""
    services: Services = state.services
    identity = await services.auth.identify(request.headers.get("authorization"))
    if identity is None:
        return None
    check_may_write(request.method, identity)
    return identity.actor


def correlation_id(request: Request[Any, Any, Any]) -> str:
    """Set by service/requestlog.py for every request."""
    state = request.scope.setdefault("state", {})  # type: ignore[typeddict-item]
    cid: str = state.setdefault("correlation_id", uuid.uuid4().hex)
    return cid


async def provide_meta(request: Request[Any, Any, Any], state: State) -> RequestMeta:
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidInputError("Idempotency-Key must be 1-255 printable characters")
    body = await request.body() if key is not None else b""
    return RequestMeta(
        idempotency_key=key,
        fingerprint=fingerprint(
            state.services.handlers.fingerprint_key, request.method, request.url.path,
            request.headers.get("authorization", ""), body,
            # Another guest replaying a guest's key gets a refusal, not that guest's answer.
            *request.headers.getall("x-guest-token", []),
        ),
        correlation_id=correlation_id(request),
    )
