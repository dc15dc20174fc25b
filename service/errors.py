"""Every failure becomes an RFC 9457 problem+json answer; nothing reaches a client as 500
unless the service itself is broken."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Receive, Scope, Send

from events import ConcurrencyError, StoreUnavailableError
from service.domain import errors as d
from workers.readmodels.errors import (
    BeyondHeadError,
    ReadModelUnavailableError,
    ReadNotFoundError,
)
from workers.readmodels.search import QueryError

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"

_STATUS: list[tuple[type[d.DomainError], int]] = [
    (d.NotFoundError, 404),
    (d.NotAuthenticatedError, 401),
    (d.ForbiddenError, 403),
    (d.TooSoonError, 429),
    (d.ConflictError, 409),
    (d.InvalidInputError, 422),
]


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None,
            errors: list[dict[str, Any]] | None = None) -> Response[bytes]:
    phrase = HTTPStatus(status).phrase
    body = Problem(
        type=f"https://forum.example/problems/{phrase.lower().replace(' ', '-')}",
        title=phrase, status=status, detail=detail, errors=errors,
    )
    return Response(
        content=msgspec.json.encode(body), status_code=status, media_type=PROBLEM,
        headers=headers or {},
    )


def _validation_detail(exc: ValidationException) -> tuple[str, list[dict[str, Any]] | None]:
    extra = exc.extra if isinstance(exc.extra, list) else None
    if extra:
        parts = [f"{e.get('message', '')}" + (f" (at {e['key']})" if e.get("key") else "")
                 for e in extra if isinstance(e, dict)]
        return "invalid request: " + "; ".join(parts), extra
    return f"invalid request: {exc.detail}", None


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, d.DomainError):
        status = next(s for kind, s in _STATUS if isinstance(exc, kind))
        headers = {}
        if isinstance(exc, d.TooSoonError):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, d.NotAuthenticatedError):
            headers["WWW-Authenticate"] = "Bearer"
        return problem(status, exc.detail, headers=headers)
    if isinstance(exc, ValidationException):
        detail, errors = _validation_detail(exc)
        return problem(400, detail, errors=errors)
    if isinstance(exc, HTTPException):
        detail = exc.detail
        if exc.status_code == 413:
            detail = "request body too large"
        elif exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem(exc.status_code, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, RecursionError):  # msgspec decoding a deeply nested request body
        return problem(400, "invalid request: JSON is nested too deeply")
    if isinstance(exc, ConcurrencyError):
        return problem(409, "someone else changed this at the same time; try again")
    if isinstance(exc, StoreUnavailableError):
        return problem(503, "the event store is unavailable; nothing was written",
                       headers={"Retry-After": "2"})
    if isinstance(exc, ReadModelUnavailableError):
        return problem(503, exc.detail, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, ReadNotFoundError):
        return problem(404, exc.detail)
    if isinstance(exc, BeyondHeadError):  # the API's X-Min-Position, a page's ?after=
        return problem(400, exc.detail)
    if isinstance(exc, QueryError):  # a search that cannot be run as asked
        return problem(422, exc.detail)
    if isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.startswith(
        ("asyncpg", "redis")
    ):
        log.warning("dependency_unavailable", error=repr(exc), path=request.url.path)
        return problem(503, "a backing service is unavailable; try again shortly",
                       headers={"Retry-After": "2"})
    log.exception("unhandled_error", path=request.url.path, exc_info=exc)
    return problem(500, "internal error")


async def answer_error(scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
    """Answer ``error`` from inside a middleware, through the route's own exception
    handler (an HTML page for a page, problem+json otherwise), rather than raising it: a
    raised exception would pass the edge's request log and metrics as a 500."""
    request: Request[Any, Any, Any] = scope["litestar_app"].request_class(
        scope=scope, receive=receive, send=send)
    handlers = request.route_handler.resolve_exception_handlers()
    handler = next((handlers[kind] for kind in type(error).__mro__ if kind in handlers),
                   handle)
    response = handler(request, error)
    await response.to_asgi_response(None, request)(scope, receive, send)


EXCEPTION_HANDLERS = {Exception: handle}
