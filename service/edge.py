"""The edge: the one ASGI layer every routed request passes, for what every request needs
before and after its handler. One pass over the request's headers, one wrapper around
``send``:

- the client address into ``scope["client"]`` (and a trusted proxy's scheme), decided by
  service/addresses.py;
- the correlation id into the scope's state, echoed as ``X-Correlation-Id``, bound to the
  log context of writes, and the request logged when it writes or fails
  (service/requestlog.py);
- the request's duration, by method, route and status (service/metrics.py);
- an unsafe request from a banned address refused before anything reads its body
  (service/bans.py), unless its route says ``opt={"ban_exempt": True}``;
- a 200 to a GET whose ``ETag`` the request's ``If-None-Match`` names, sent as a 304
  (service/conditional.py).

Why one layer and not five: every ASGI middleware is a coroutine frame per request and a
wrapper per message sent, and a Litestar guard copies the route handler on every call,
GETs included. As five middlewares and an app-wide guard they took about half the CPU of a
kept JSON page (bench/results/2026-12-03-read-edge.md). The decisions stay in their own
modules; this one only puts them in order. The security headers stay a ``before_send``
hook (service/headers.py): that also sees what fails before a route is found.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.addresses import Network, resolved_client
from service.bans import UNSAFE, refusal
from service.conditional import BODY_HEADERS, matches
from service.domain.errors import ForbiddenError
from service.errors import answer_error
from service.metrics import Metrics
from service.requestlog import correlation_id, log_request

_READS = frozenset({"GET", "HEAD"})


class Edge:
    """The layer (see the module's docstring); ``trusted``: ``FORUM_TRUSTED_PROXIES``."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network], metrics: Metrics) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        forwarded: list[bytes] = []
        proto = given = request_id = asked = None
        for key, value in scope["headers"]:  # names are lower case (ASGI)
            if key == b"x-forwarded-for":
                forwarded.append(value)
            elif key == b"x-forwarded-proto" and proto is None:  # the first of each
                proto = value
            elif key == b"x-correlation-id" and given is None:
                given = value
            elif key == b"x-request-id" and request_id is None:
                request_id = value
            elif key == b"if-none-match" and asked is None:
                asked = value.decode("latin-1")
        client = scope.get("client")
        address, scheme = resolved_client(client[0] if client else None, forwarded, proto,
                                          self.trusted)
        if client is None or address != client[0]:
            scope["client"] = (address, 0)
        if scheme is not None:
            scope["scheme"] = scheme
        cid = correlation_id(given, request_id)
        scope["state"]["correlation_id"] = cid  # type: ignore[typeddict-unknown-key]
        method: str = scope["method"]  # type: ignore[typeddict-item]
        reading = method in _READS
        conditional = reading and asked is not None
        status = 500
        swallowing = False

        async def edged(message: Message) -> None:
            nonlocal status, swallowing
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                status = message["status"]
                if conditional and status == 200 and _tag_named(headers, asked):
                    swallowing = True
                    status = 304
                    headers = [(k, v) for k, v in headers
                               if bytes(k).lower() not in BODY_HEADERS]
                    message = {"type": "http.response.start", "status": 304,
                               "headers": headers}
                headers.append((b"x-correlation-id", cid.encode()))
                message["headers"] = headers  # type: ignore[typeddict-unknown-key]
            elif swallowing:  # the body of a 200 sent as a 304
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            if reading:  # reads log nothing on success: no log context to bind
                await self.app(scope, receive, edged)
            else:
                with structlog.contextvars.bound_contextvars(correlation_id=cid):
                    if method in UNSAFE and await self._refused(
                            address, scope, receive, edged):
                        return
                    await self.app(scope, receive, edged)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(method, scope.get("path_template") or "unmatched", status,
                                 elapsed)
            if status >= 500 or not reading:
                log_request(method, scope["path"], status, elapsed, cid)

    async def _refused(self, address: str, scope: Scope, receive: Receive, send: Send
                       ) -> bool:
        """Whether the request came from a banned address (then it has been answered)."""
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get("ban_exempt"):
            return False
        services = getattr(scope["litestar_app"].state, "services", None)
        if services is None:  # not started (a test app without a lifespan): nothing to ban
            return False
        found = await services.bans.covering(address)
        if found is None:
            return False
        await answer_error(scope, receive, send, ForbiddenError(refusal(found)))
        return True


def _tag_named(headers: list[Any], asked: str | None) -> bool:
    etag = next((bytes(v).decode("latin-1") for k, v in headers
                 if bytes(k).lower() == b"etag"), None)
    return etag is not None and matches(asked, etag)
