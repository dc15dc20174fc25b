"""Dependencies handed to route handlers."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State

from service.domain.actors import Actor
from service.domain.errors import InvalidInputError
from service.handlers import RequestMeta, fingerprint
from service.lifespan import Services


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


async def provide_actor(request: Request[Any, Any, Any], state: State) -> Actor | None:
    """The signed-in actor, or None (a guest must then name themself in the body)."""
    services: Services = state.services
    return services.auth.actor(request.headers.get("authorization"))


def correlation_id(request: Request[Any, Any, Any]) -> str:
    """Set by service/requestlog.py for every request."""
    state = request.scope.setdefault("state", {})  # type: ignore[typeddict-item]
    cid: str = state.setdefault("correlation_id", uuid.uuid4().hex)
    return cid


async def provide_meta(request: Request[Any, Any, Any]) -> RequestMeta:
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidInputError("Idempotency-Key must be 1-255 printable characters")
    body = await request.body() if key is not None else b""
    return RequestMeta(
        idempotency_key=key,
        fingerprint=fingerprint(
            request.method, request.url.path, request.headers.get("authorization", ""), body,
            # Another guest replaying a guest's key gets a refusal, not that guest's answer.
            *request.headers.getall("x-guest-token", []),
        ),
        correlation_id=correlation_id(request),
    )
