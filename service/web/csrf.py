"""Cross-site request forgery protection for the HTML forms.

Every request that changes state (any method but GET, HEAD and OPTIONS) to a page route
must pass two checks, or it is refused with 403 (the page's HTML error page; a route
outside the pages answers problem+json):

1. **Origin.** A browser names the page a form was sent from in ``Origin`` (or, failing
   that, ``Referer``). When either is present it must be this site (the request's own
   ``Host``); ``Origin: null`` (a sandboxed or privacy-stripped context) is refused too.
   Neither header at all is allowed through to the token check for a per-visitor token
   (some clients send none); a *public* token needs one (below).
   A reverse proxy in front must pass the browser's ``Host`` on (nginx:
   ``proxy_set_header Host $host;``), or every form is refused as foreign.
2. **Token**, one of two kinds:

   - **Per visitor** (Litestar's double-submit token, ``litestar.middleware.csrf``): the
     ``forum_csrf`` cookie (HttpOnly, SameSite=Lax) holds a random value signed with an
     HMAC, and the form carries the same value in the hidden ``_csrf_token`` field. A
     POST must carry both, identical and correctly signed. Another site can make a
     browser send the cookie but cannot read it, so it cannot fill in the field. Members'
     pages, sign-in and registration (login CSRF: a forged sign-in into the attacker's
     account) and every page that is not the same for everyone (a refused form, a
     prefilled quote) carry it; such a page sets the cookie when the visitor has none.
   - **Public**: a page that is the same for every visitor without a session (an
     anonymous thread or section page) carries one token for everybody, so that a shared
     cache may keep it (service/web/rendering.py): ``p`` and an HMAC, under its own
     label, of the current hour (``PublicTokens``; the previous hour's is accepted too,
     so a page loaded at 10:59 can be sent until 12:00). No cookie is set. Anyone can
     read this token, so it proves nothing about who sent the form; what makes it safe
     is what it is allowed to do. A POST carrying it passes only (a) with no session
     cookie (``forum_token``) at all: it can only write as a guest, with no one's
     authority to forge; (b) with ``Origin`` or ``Referer`` *present* and naming this
     site: a browser always sends ``Origin`` on a cross-site POST (and an old one that
     sends neither is refused, not trusted), so a form planted on another site is
     refused; and (c) not to a sign-in or registration route (``opt={"sign_in": True}``),
     which keep per-visitor tokens. A visitor who signed in after loading an anonymous
     page is asked to reload it (the page's form cannot act for the member).

**Adding a form:** put ``{{ m.csrf() }}`` inside the ``<form method="post">`` (the macro
in templates/macros.html.j2; ``m`` is imported by base.html.j2). ``render()`` puts the
right token in every page's context as ``csrf_token``. New POST routes under a page
controller are protected without anything else to do; only the paths in ``EXEMPT`` are
not. A route that signs someone in says so with ``opt={"sign_in": True}``.

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
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import urlsplit

from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware.csrf import (
    CSRF_SECRET_LENGTH,
    CSRFMiddleware,
    generate_csrf_hash,
    generate_csrf_token,
)
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from service.errors import answer_error

COOKIE = "forum_csrf"
SESSION_COOKIE = "forum_token"  # a member's page session (service/web/rendering.py)
FIELD = "_csrf_token"  # the form field Litestar's middleware reads
HEADER = "x-csrftoken"  # or the header (Litestar's default name)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Anchored: Litestar's own ``exclude`` patterns are searched anywhere in the path, so
# ``/api`` would also exempt ``/forums/api-design/threads``.
EXEMPT = re.compile(r"^/(?:api|health|ready|metrics|static)(?:/|$)")
_LABEL = b"forum csrf v1"
_PUBLIC_LABEL = b"forum public form v1:"
PUBLIC_PREFIX: Final = "p"  # a per-visitor token is 128 hex digits: never starts so
PUBLIC_PERIOD: Final = 3600  # seconds a public token is issued for (accepted for two)

REFUSED_FORM = ("This form has expired or did not come from this site. Reload the page "
                "and send it again.")
REFUSED_ORIGIN = "This form was sent from another site; it was not accepted."
REFUSED_UNNAMED = ("Your browser did not say which site this form was sent from, so it "
                   "was not accepted. Reload the page and send it again.")
REFUSED_SIGNED_IN = ("You signed in after this page was loaded. Reload the page and send "
                     "the form again.")
_FORM_TYPES = frozenset({RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART})


def derive_secret(tokens_secret: str) -> str:
    """The CSRF key: its own HMAC of the stored secret, so that neither key reveals the
    other and a CSRF token can never pass for a sign-in token."""
    return hmac.new(tokens_secret.encode(), _LABEL, hashlib.sha256).hexdigest()


class PublicTokens:
    """The form token of the pages that are the same for every anonymous visitor: one
    per ``period`` (an HMAC of its number), made once per period, not per page."""

    def __init__(self, secret: str, period: int = PUBLIC_PERIOD,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode()
        self.period = period
        self.clock = clock
        self._bucket: int | None = None
        self._tokens: tuple[bytes, bytes] = (b"", b"")

    def _of(self, bucket: int) -> bytes:
        mac = hmac.new(self._key, _PUBLIC_LABEL + str(bucket).encode(), hashlib.sha256)
        return PUBLIC_PREFIX.encode() + mac.hexdigest().encode()

    def _now(self) -> tuple[bytes, bytes]:
        """This period's token and the last one's."""
        bucket = int(self.clock() // self.period)
        if bucket != self._bucket:
            self._tokens = (self._of(bucket), self._of(bucket - 1))
            self._bucket = bucket
        return self._tokens

    def current(self) -> str:
        return self._now()[0].decode()

    def valid(self, token: str) -> bool:
        """This period's or the last one's (a page loaded just before the hour turned)."""
        if not token.isascii():
            return False
        sent = token.encode()
        return any([hmac.compare_digest(sent, mine) for mine in self._now()])


@asynccontextmanager
async def load_secret(app: Litestar) -> AsyncIterator[None]:
    """A lifespan step (after the services are up): the shared secret onto app.state, and
    the public tokens made from it."""
    app.state.csrf_secret = derive_secret(await app.state.services.store.secret("tokens"))
    app.state.csrf_public = PublicTokens(app.state.csrf_secret)
    yield


def _config(secret: str) -> CSRFConfig:
    return CSRFConfig(secret=secret, cookie_name=COOKIE, cookie_httponly=True,
                      cookie_samesite="lax", safe_methods={"GET", "HEAD", "OPTIONS"},
                      header_name=HEADER)


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


def names_a_site(headers: Any) -> bool:
    """Whether the request says where it was sent from at all (``Origin`` or a non-empty
    ``Referer``); ``foreign_origin`` says whether that is elsewhere."""
    return bool(headers.get("origin") or headers.get("referer"))


def verdict(sent: str | None, cookie: str | None, *, secret: str, public: PublicTokens,
            session: bool, site_named: bool, sign_in: bool) -> str | None:
    """Whether a state-changing request with a same-site (or unnamed) origin passes: None,
    or why not, as the visitor reads it. ``sent``: the token in the form (or header);
    ``cookie``: the ``forum_csrf`` cookie; ``session``: a session cookie came along;
    ``site_named``: ``Origin`` or ``Referer`` was sent; ``sign_in``: the route signs in."""
    if not sent or not sent.isascii():
        return REFUSED_FORM
    if sent.startswith(PUBLIC_PREFIX):
        if sign_in or not public.valid(sent):
            return REFUSED_FORM
        if session:
            return REFUSED_SIGNED_IN
        return None if site_named else REFUSED_UNNAMED
    if (cookie is not None and cookie.isascii() and _signed(sent, secret)
            and hmac.compare_digest(sent.encode(), cookie.encode())):
        return None
    return REFUSED_FORM


class FormGuard(CSRFMiddleware):
    """Litestar's CSRF middleware with the shared secret from app.state, public tokens for
    anonymous pages, an Origin check, anchored exemptions, and a fresh cookie in place of
    one this site did not sign (an old secret, or a value another site planted), so that
    a visitor is never stuck with a token that cannot pass."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, _config(""))
        self.public: PublicTokens | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or EXEMPT.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.config.secret:
            state = scope["litestar_app"].state
            self.config.secret = state.csrf_secret
            self.public = getattr(state, "csrf_public", None) or PublicTokens(state.csrf_secret)
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
        headers = request.headers
        if foreign_origin(headers, scope.get("scheme", "http")):
            await _refuse(request, REFUSED_ORIGIN)
            return
        sent = headers.get(HEADER)
        if not sent and request.content_type[0] in _FORM_TYPES:
            value = (await request.form()).get(FIELD)  # kept for the handler to read again
            sent = value if isinstance(value, str) else None
        cookies = request.cookies
        assert self.public is not None  # set with the secret, above
        refused = verdict(sent, cookies.get(COOKIE), secret=self.config.secret,
                          public=self.public, session=SESSION_COOKIE in cookies,
                          site_named=names_a_site(headers),
                          sign_in=bool(request.route_handler.opt.get("sign_in")))
        if refused is not None:
            await _refuse(request, refused)
            return
        if sent is not None and not sent.startswith(PUBLIC_PREFIX):
            # The page this post answers with (a refused form) keeps the visitor's token;
            # after a public one it issues the visitor a token of its own (form_token).
            ScopeState.from_scope(scope).csrf_token = sent
        await self.app(scope, receive, send)


async def _refuse(request: Request[Any, Any, Any], detail: str) -> None:
    await answer_error(request.scope, request.receive, request.send,
                       PermissionDeniedException(detail=detail))


def form_token(scope: Scope, cookies: dict[str, str], secret: str | None
               ) -> tuple[str, Cookie | None]:
    """The per-visitor token a page's forms carry, and the cookie to set with it when the
    request had none (or one this site did not sign)."""
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
    if not token.isascii():
        return False
    body, mac = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return (len(body) == CSRF_SECRET_LENGTH
            and hmac.compare_digest(mac, generate_csrf_hash(body, secret)))
