"""Security headers on every response the app sends, pages and JSON alike, errors and
404s of unknown paths included (a ``before_send`` hook sees every response start).

The Content-Security-Policy allows nothing but this site: no inline script or style
(templates keep theirs in service/web/static), no third-party origin, no plugins, no
framing (``frame-ancestors 'none'``, and X-Frame-Options for browsers that predate it),
and forms may only post here. A header a route set itself is left alone.
"""

from __future__ import annotations

from litestar.types import Message, Scope

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


_ENCODED: tuple[tuple[bytes, bytes], ...] = tuple(
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items())
_NAMES = frozenset(name for name, _ in _ENCODED)


async def security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    # The raw header list, not MutableScopeHeaders: this runs on every response, and a
    # mapping view of the headers cost a kept page a tenth of its CPU.
    headers = list(message.get("headers", ()))
    if any(bytes(name).lower() in _NAMES for name, _ in headers):  # a route set one
        present = {bytes(name).lower() for name, _ in headers}
        headers.extend(pair for pair in _ENCODED if pair[0] not in present)
    else:
        headers.extend(_ENCODED)
    message["headers"] = headers
