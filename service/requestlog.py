"""One structured log line per request, carrying its correlation id.

The id comes from ``X-Correlation-Id`` (or ``X-Request-Id``) when the client sends one,
else it is made here; it is bound to the log context for everything the request logs,
echoed in the response, and stored in the metadata of the events the request appends.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("forum.request")
_PROCESS = os.urandom(6).hex() + "-"
_SEQUENCE = itertools.count(1)


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
        if given and len(given) <= 128 and given.isprintable():
            cid = given
        else:  # unique per process (random prefix) and cheap: this runs on every read
            cid = f"{_PROCESS}{next(_SEQUENCE):x}"
        scope.setdefault("state", {})["correlation_id"] = cid  # type: ignore[typeddict-unknown-key]
        status = [500]
        started = time.perf_counter()
        method = scope.get("method", "")
        reading = method in ("GET", "HEAD")

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-correlation-id", cid.encode()))
                message["headers"] = headers  # type: ignore[typeddict-unknown-key]
            await send(message)

        try:
            if reading:  # reads log nothing on success: skip binding the log context
                await app(scope, receive, stamped)
            else:
                with structlog.contextvars.bound_contextvars(correlation_id=cid):
                    await app(scope, receive, stamped)
        finally:
            # Writes are logged (an audit trail keyed by correlation id); reads only
            # when they fail.
            if status[0] >= 500 or not reading:
                emit = log.warning if status[0] >= 500 else log.info
                emit("request", method=method, path=scope.get("path"), status=status[0],
                     ms=round((time.perf_counter() - started) * 1000, 2),
                     correlation_id=cid)

    return logged
