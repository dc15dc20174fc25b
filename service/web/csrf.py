"""Cross-site request forgery protection for the HTML forms.

Every request that changes state (any method but GET, HEAD and OPTIONS) to a page route
must pass two checks, or it is refused with 403 (the page's HTML error page; a route
outside the pages answers problem+json):

1. **Origin.** A browser names the page a form was sent from in ``Origin`` (or, failing
   that, ``Referer``). When either is present it must be this site (the request's own
   ``Host``); ``Origin: null`` (a sandboxed or privacy-stripped context) is refused too.
   Neither header at all is allowed through to the token check: some clients send none.
   A reverse proxy in front must pass the browser's ``Host`` on (nginx:
   ``proxy_set_header Host $host;``), or every form is refused as foreign.
2. **Token.** Litestar's double-submit token (``litestar.middleware.csrf``): a GET of a
   page that holds a form sets the ``forum_csrf`` cookie (HttpOnly, SameSite=Lax) to a
   random value signed with an HMAC, and every form carries the same value in the hidden
   ``_csrf_token`` field. A page without a form sets no cookie: it is then the same for
   every anonymous visitor, and a shared cache may keep it (service/web/rendering.py).
   A POST must carry both, identical and correctly signed. Another site can make a
   browser send the cookie but cannot read it, so it cannot fill in the field. Sign-in
   and registration are protected too (login CSRF: a forged sign-in into the attacker's
   account).

**Adding a form:** put ``{{ m.csrf() }}`` inside the ``<form method="post">`` (the macro
in templates/macros.html.j2; ``m`` is imported by base.html.j2). ``render()`` puts the
token in every page's context as ``csrf_token``. New POST routes under a page controller
are protected without anything else to do; only the paths in ``EXEMPT`` are not.

**Exempt:** the JSON API (``/api``, which authenticates by headers, never by cookies, so
a forged request carries no one's authority), ``/health``, ``/ready``, ``/metrics`` and
``/static`` (a public, cached response must never carry a Set-Cookie).

**The secret** is the same in every API process, so a form served by one process posts to
any other: it is derived (HMAC-SHA256 with its own label) from the ``tokens`` secret that
migration 0002 stores in PostgreSQL (``service_keys``), loaded once when the app starts
(``load_secret``). Rotating that row invalidates every form open at the time (a reload
fixes it) as well as every sign-in token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware.csrf import (
    CSRF_SECRET_LENGTH,
    CSRFMiddleware,
    generate_csrf_hash,
    generate_csrf_token,
)
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from service.errors import handle

COOKIE = "forum_csrf"
FIELD = "_csrf_token"  # the form field Litestar's middleware reads
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Anchored: Litestar's own ``exclude`` patterns are searched anywhere in the path, so
# ``/api`` would also exempt ``/forums/api-design/threads``.
EXEMPT = re.compile(r"^/(?:api|health|ready|metrics|static)(?:/|$)")
_LABEL = b"forum csrf v1"

REFUSED_FORM = ("This form has expired or did not come from this site. Reload the page "
                "and send it again.")
REFUSED_ORIGIN = "This form was sent from another site; it was not accepted."


def derive_secret(tokens_secret: str) -> str:
    """The CSRF key: its own HMAC of the stored secret, so that neither key reveals the
    other and a CSRF token can never pass for a sign-in token."""
    return hmac.new(tokens_secret.encode(), _LABEL, hashlib.sha256).hexdigest()


@asynccontextmanager
async def load_secret(app: Litestar) -> AsyncIterator[None]:
    """A lifespan step (after the services are up): the shared secret onto app.state."""
    app.state.csrf_secret = derive_secret(await app.state.services.store.secret("tokens"))
    yield


def _config(secret: str) -> CSRFConfig:
    return CSRFConfig(secret=secret, cookie_name=COOKIE, cookie_httponly=True,
                      cookie_samesite="lax", safe_methods={"GET", "HEAD", "OPTIONS"})


def _default_port(scheme: str) -> str:
    return {"http": "80", "https": "443"}.get(scheme, "")


def _host(netloc: str, scheme: str) -> str:
    """``host[:port]``, lower-cased, without the scheme's default port."""
    netloc = netloc.strip().lower()
    port = _default_port(scheme)
    return netloc[: -len(port) - 1] if port and netloc.endswith(f":{port}") else netloc


def foreign_origin(headers: Any, scheme: str) -> bool:
    """True when ``Origin`` (or, without it, ``Referer``) names a site other than the
    ``Host`` the request was sent to. The scheme is not compared: behind a proxy that ends
    TLS the app sees http while the browser says https."""
    own = _host(headers.get("host", ""), scheme)
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            return True
        named = origin
    else:
        named = headers.get("referer")
        if not named:
            return False
    try:
        parts = urlsplit(named.strip())
    except ValueError:
        return True
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return True
    return not own or _host(parts.netloc, parts.scheme) != own


class FormGuard(CSRFMiddleware):
    """Litestar's CSRF middleware with the shared secret from app.state, an Origin check,
    anchored exemptions, and a fresh cookie in place of one this site did not sign (an old
    secret, or a value another site planted), so that a visitor is never stuck with a
    token that cannot pass."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, _config(""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or EXEMPT.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.config.secret:
            self.config.secret = scope["litestar_app"].state.csrf_secret
        if scope["method"] not in SAFE_METHODS:
            await self._guard(scope, receive, send)
            return
        # A valid cookie's token is the page's; without one, a page that holds a form
        # issues a token and sets the cookie itself (form_token), one without sets none.
        request = scope["litestar_app"].request_class(scope=scope)
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and self._decode_csrf_token(cookie) is not None:
            ScopeState.from_scope(scope).csrf_token = cookie
        await self.app(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = scope["litestar_app"].request_class(scope=scope, receive=receive, send=send)
        if foreign_origin(request.headers, scope.get("scheme", "http")):
            await _refuse(request, REFUSED_ORIGIN)
            return
        try:
            await super().__call__(scope, receive, send)
        except PermissionDeniedException as refused:
            if refused.detail != "CSRF token verification failed":
                raise
            await _refuse(request, REFUSED_FORM)


async def _refuse(request: Request[Any, Any, Any], detail: str) -> None:
    """Answer 403 here, through the route's own exception handler (an HTML page for a
    page, problem+json otherwise), rather than raising: an exception would pass through
    the request log and the metrics as a 500."""
    refused = PermissionDeniedException(detail=detail)
    handlers = request.route_handler.resolve_exception_handlers()
    handler = next((handlers[kind] for kind in type(refused).__mro__ if kind in handlers),
                   handle)
    response = handler(request, refused)
    await response.to_asgi_response(None, request)(request.scope, request.receive,
                                                   request.send)


def form_token(scope: Scope, cookies: dict[str, str], secret: str | None
               ) -> tuple[str, Cookie | None]:
    """The token a page's forms carry, and the cookie to set with it when the request had
    none (or one this site did not sign)."""
    token = ScopeState.from_scope(scope).csrf_token
    if isinstance(token, str):
        return token, None
    if not secret:
        return "", None
    guard = _config(secret)
    existing = cookies.get(COOKIE)
    if existing and _signed(existing, secret):
        return existing, None
    token = generate_csrf_token(secret)
    return token, Cookie(key=COOKIE, value=token, path=guard.cookie_path,
                         httponly=guard.cookie_httponly, samesite=guard.cookie_samesite)


def _signed(token: str, secret: str) -> bool:
    body, mac = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return (len(body) == CSRF_SECRET_LENGTH
            and hmac.compare_digest(mac, generate_csrf_hash(body, secret)))
