"""One structured log line per request, carrying its correlation id.

The id comes from ``X-Correlation-Id`` (or ``X-Request-Id``) when the client sends one,
else it is made here; it is bound to the log context for everything the request logs,
echoed in the response, and stored in the metadata of the events the request appends.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("forum.request")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        given = _header(scope, b"x-correlation-id") or _header(scope, b"x-request-id")
        cid = given if given and len(given) <= 128 and given.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = cid  # type: ignore[typeddict-unknown-key]
        status = [500]
        started = time.perf_counter()

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-correlation-id", cid.encode()))
                message["headers"] = headers  # type: ignore[typeddict-unknown-key]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=cid):
            try:
                await app(scope, receive, stamped)
            finally:
                # Writes are logged (an audit trail keyed by correlation id); reads only
                # at debug level, or when they fail.
                method = scope.get("method", "")
                emit = log.info if method not in ("GET", "HEAD") else log.debug
                if status[0] >= 500:
                    emit = log.warning
                emit("request", method=method, path=scope.get("path"), status=status[0],
                     ms=round((time.perf_counter() - started) * 1000, 2))

    return logged
