"""What route handlers are handed: the dependencies of writes (services, the actor, the
request's metadata), and what the reads of the read models take from the request's scope
themselves (``services_of``, ``min_position``), since every dependency and header
parameter costs Litestar work on every read."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.types import Scope

from service.auth import Identity
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, InvalidInputError
from service.handlers import RequestMeta, fingerprint
from service.lifespan import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_POSITION_HEADER = b"x-min-position"


def services_of(scope: Scope) -> Services:
    """The app's services, for the reads of the read models: they take the request's
    ``scope`` and nothing Litestar must resolve, since any dependency costs a signature
    model and an exit stack per request (a tenth of a kept JSON page's CPU). Writes take
    ``services`` and the rest as dependencies."""
    services: Services = scope["litestar_app"].state.services
    return services


def min_position(scope: Scope) -> int | None:
    """A read's ``X-Min-Position``: a position a write answered, for the read to wait for
    (None without one); anything but an integer of at most 19 digits is 400.

    Read from the raw headers of the scope: declared as a header parameter, it made
    Litestar build a mapping of every header of every read (a tenth of a kept JSON page's
    CPU), and as a dependency beside ``services`` Litestar resolved the two in a task
    group of their own (worse). The routes that call this say ``opt=WAITS`` so the OpenAPI
    document names the header (service/api/openapi.py ``finish``)."""
    for name, value in scope["headers"]:
        if name == MIN_POSITION_HEADER:
            digits = value[1:] if value[:1] == b"-" else value
            if not (digits.isdigit() and len(digits) <= 19):
                raise ValidationException(
                    "X-Min-Position is not a position (an integer a write answered)")
            return int(value)
    return None


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
