"""What every HTML page shares: the Jinja environment and its filters, rendering, the
signed-in actor from the ``forum_token`` cookie, form parsing, and the error pages.

``render()`` gives every template ``csrf_token``, the token each state-changing form must
carry: write ``{{ m.csrf() }}`` inside the form (see service/web/csrf.py). A page shown to
a visitor without a session cookie, the same for all of them (a ``shared`` identity),
carries the public token and sets no cookie; every other page that holds a form carries
the visitor's own token, setting its cookie when the visitor has none.

Caching (docs/design.md, "Conditional GETs and caches"): every page answered 200 to a GET
has an ETag, and a request naming it gets 304. A page with a ``shared`` identity (what it
shows, the read-model state included) is tagged from that identity and the viewer before
it is rendered, so a 304 renders nothing; any other page is tagged by its bytes. A page
with a ``shared`` identity seen by a visitor without a session cookie is the same for
every such visitor (no cookie set, the public form token) and may be kept by a shared
cache for ``public_max_age`` seconds (``Vary: Cookie``); every other page, members'
above all, is ``private``."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Hashable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote as urlquote

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from events import StoreUnavailableError
from service.api.common import MAX_ID
from service.auth import Identity
from service.conditional import body_tag, not_modified
from service.deps import SAFE_METHODS, check_may_write, correlation_id
from service.domain import errors as d
from service.domain.actors import Actor
from service.handlers import RequestMeta
from service.lifespan import Services
from service.web.csrf import SESSION_COOKIE, PublicTokens, form_token
from service.web.kept import TOKEN_SLOT, Rendered
from service.web.times import day, stamp
from service.web.wording import for_people
from workers.readmodels.errors import ReadModelUnavailableError

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
COOKIE = SESSION_COOKIE
PRIVATE = "private, no-cache"  # the viewer's browser may keep it, asking again each time

Page = Annotated[int, Parameter(query="page", ge=1, le=1_000_000)]
After = Annotated[str | None, Parameter(query="after", required=False)]

# -- templates --------------------------------------------------------------------------


def page_links(page: int, pages: int) -> list[int | None]:
    """The page numbers a pager shows; None is a gap."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    links: list[int | None] = []
    for number in shown:
        if links and isinstance(links[-1], int) and number - links[-1] > 1:
            links.append(None)
        links.append(number)
    return links


@cache
def environment() -> Environment:
    # auto_reload off: templates change with a deploy, not while a process runs (it cost a
    # stat() per template per page).
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      auto_reload=False)
    env.filters["day"] = day
    env.filters["stamp"] = stamp
    env.filters["urlquote"] = lambda value: urlquote(str(value), safe="")
    env.globals["page_links"] = page_links
    # Static files are cached for an hour; their URLs change whenever their content does.
    for name, static in (("css_version", "forum.css"), ("js_version", "forum.js")):
        content = (HERE / "static" / static).read_bytes()
        env.globals[name] = hashlib.sha256(content).hexdigest()[:10]
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


# -- plumbing ---------------------------------------------------------------------------

AnyRequest = Request[Any, Any, Any]


def _services(request: AnyRequest) -> Services | None:
    return getattr(request.app.state, "services", None)


_IDENTITY = "forum_page_identity"


async def resolve_page_actor(request: AnyRequest) -> None:
    """Before every page: who the cookie names, as they stand now (one round trip; see
    service/sessions.py). A missing, expired or revoked cookie means a guest."""
    token = request.cookies.get(COOKIE)
    services = _services(request)
    identity = None
    if token and services is not None:
        try:
            identity = await services.auth.identify(f"Bearer {token}")
        except d.NotAuthenticatedError:
            identity = None
        except StoreUnavailableError:
            # PostgreSQL away: pages still read from Redis, as a guest sees them; a form
            # post cannot be authorised (nor written) and fails as any write does (503).
            if request.method not in SAFE_METHODS:
                raise
            identity = None
    request.state[_IDENTITY] = identity


def _page_identity(request: AnyRequest) -> Identity | None:
    identity: Identity | None = request.state.get(_IDENTITY)
    return identity


async def act_as(request: AnyRequest, services: Services, token: str) -> None:
    """This request's pages from now on are the member's who has just signed in with
    ``token`` (a sign-in that answers with a page rather than a redirect)."""
    request.state[_IDENTITY] = await services.auth.identify(f"Bearer {token}")


def page_actor(request: AnyRequest) -> Actor | None:
    """The member the cookie names; None (a guest) without one or with a bad one. A
    suspended member's form posts are refused here (403), as the API refuses them.
    Page controllers set ``before_request = staticmethod(resolve_page_actor)``."""
    if _IDENTITY not in request.state:  # never a member silently taken for a guest
        raise RuntimeError("this page's controller does not resolve the cookie")
    identity = _page_identity(request)
    if identity is None:
        return None
    check_may_write(request.method, identity)
    return identity.actor


Context = Mapping[str, Any]


def _token_tag(token: str) -> str:
    """What of a page's form token goes into its ETag: a digest, never the token."""
    return hmac.new(b"forum etag", token.encode(), hashlib.sha256).hexdigest()[:16]


@lru_cache(maxsize=4)
def _public_tag(token: str) -> str:
    """The public token's tag: the same token for an hour, so digested once."""
    return _token_tag(token)


def render(request: AnyRequest, name: str, context: Context | Callable[[], Context],
           status: int = 200, headers: Mapping[str, str] | None = None, *,
           shared: Hashable | None = None, at: int = 0, forms: bool = True
           ) -> Response[bytes]:
    """The page ``name`` rendered with ``context`` (or what the callable makes, when it is
    rendered at all). ``shared``: the identity of what the page shows when it is the same
    for everyone who views it alike (e.g. the thread, page and read-model position it
    reflects): such a page is rendered once and kept (service/web/kept.py), each viewer's
    form token is put in its place, and its ETag is made from ``shared`` and the viewer
    (``at``: the read-model position, shown in the tag). Seen without a session cookie,
    it carries the public form token and is public. ``forms=False``: the page holds no
    form for a visitor without a session, so its tag need not name the form token (which
    changes every hour)."""
    identity = _page_identity(request)
    actor = identity.actor if identity else None
    services = _services(request)
    secret = getattr(request.app.state, "csrf_secret", None)
    public_tokens: PublicTokens | None = getattr(request.app.state, "csrf_public", None)
    me = actor.name if actor else None
    moderates = actor is not None and actor.moderates
    here = request.url.path
    if request.method == "GET" and request.url.query:
        here += f"?{request.url.query}"

    def page(csrf_token: str) -> str:
        values = context() if callable(context) else context
        forum = values.get("forum_slug")
        return environment().get_template(name).render({
            "csrf_token": csrf_token, "me": me, "moderates": moderates,
            "here": here,  # where "Login" returns to; a refused post's page names its form's
            "archive_href": f"/forums/{urlquote(forum, safe='')}/archive" if forum
            else "/archives",
            "per_page": services.settings.per_page if services else 25,
            **values,
        })

    answered = {"Cache-Control": PRIVATE, **(headers or {})}
    issued: list[tuple[str, Cookie | None]] = []

    def viewer_token() -> str:
        """The viewer's form token: its cookie's, or a new one (set with the page)."""
        if not issued:
            issued.append(form_token(request.scope, request.cookies, secret))
        return issued[0][0]

    def with_token(made: Rendered) -> bytes:
        """The viewer's form token in the page's forms; a page without a form is left as
        it is, and sets no cookie."""
        return made.with_token(viewer_token()) if made.has_form else made.formless

    asked = request.headers.get("if-none-match")
    if request.method != "GET" or status != 200 or services is None:
        html = with_token(Rendered.of(page(TOKEN_SLOT)))
    elif shared is None:  # tagged by its bytes: rendered anyway
        html = with_token(Rendered.of(page(TOKEN_SLOT)))
        answered["ETag"] = body_tag(html)
        if (unchanged := not_modified(asked, answered)) is not None:
            return unchanged
    else:
        # The same for every visitor without a session: a session cookie, even one no
        # longer valid, gets the visitor's own token (a public one cannot post with it).
        public_token = (public_tokens.current() if actor is None and public_tokens
                        and COOKIE not in request.cookies else None)
        if public_token is not None:
            token_tag = _public_tag(public_token) if forms else None
            if services.settings.public_max_age > 0:
                answered.update({"Cache-Control": "public, max-age="
                                 f"{services.settings.public_max_age}", "Vary": "Cookie"})
        else:
            token_tag = _token_tag(viewer_token()) if actor is not None or forms else None
        answered["ETag"] = services.tags.tag(at, "html", name, shared, here, me, moderates,
                                             token_tag)
        if (unchanged := not_modified(asked, answered)) is not None:
            return unchanged
        kept = services.pages.page((name, shared, here, me, moderates), page)
        if public_token is not None:
            if not forms and kept.has_form:  # its tag does not follow the token
                log.error("page_with_form_declared_without", template=name)
                answered = {"Cache-Control": PRIVATE, **(headers or {})}
            html = kept.with_token(public_token)
        else:
            html = with_token(kept)
    cookie = issued[0][1] if issued else None  # a token was issued only for a form page
    return Response(content=html, status_code=status, media_type=MediaType.HTML,
                    headers=answered, cookies=[cookie] if cookie else None)


_NUMBER = re.compile(r"[0-9]{1,19}")


def _position(after: str | None) -> int | None:
    """``after`` is a token handed out by a write (and ``quote`` a post id); anything else
    is ignored rather than refused."""
    if after is None or not _NUMBER.fullmatch(after.strip()):
        return None
    value = int(after.strip())
    return value if 0 < value <= MAX_ID else None


async def _form(request: AnyRequest) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _meta(request: AnyRequest) -> RequestMeta:
    return RequestMeta(correlation_id=correlation_id(request))


def _refusal_status(error: d.DomainError) -> int:
    """A refused form: the same statuses as the API, but a missing guest name or wrong
    password is a bad form (400), not an HTTP authentication challenge."""
    for kind, status in ((d.NotAuthenticatedError, 400), (d.ForbiddenError, 403),
                         (d.TooSoonError, 429), (d.ConflictError, 409)):
        if isinstance(error, kind):
            return status
    return 422


def _reason(error: d.DomainError) -> str:
    """The refusal as a person reads it (service/web/wording.py)."""
    return for_people(error)


def _safe_next(target: str | None) -> str:
    """Only a path of this site: no other host, no header tricks."""
    if (target and len(target) <= 2000 and target.startswith("/")
            and not target.startswith(("//", "/\\")) and target.isascii() and target.isprintable()
            and not any(ch.isspace() for ch in target)):
        return target
    return "/"


async def _section_titles(services: Services) -> dict[str, str]:
    return (await _titles(services))[0]


async def _titles(services: Services
                  ) -> tuple[dict[str, str], tuple[tuple[int, ...], tuple[str, ...]] | None]:
    """The sections' titles by slug, and the state they were read at (None: unavailable,
    and none shown) for a page's identity."""
    try:
        view = await services.reads.forums()
    except ReadModelUnavailableError:
        return {}, None
    return {f.slug: f.title for f in view.forums}, (view.seen, view.spaces)


def page_error(request: AnyRequest, exc: Exception) -> Response[bytes]:
    """Any failure on a page becomes a small HTML page in plain words: see
    service/web/error_pages.py (imported here, when it is needed, as it renders with this
    module)."""
    from service.web.error_pages import page_error as answer

    return answer(request, exc)


def _login_cookie(request: AnyRequest, token: str) -> Cookie:
    services = _services(request)
    ttl = services.settings.session_ttl if services else 0
    return Cookie(key=COOKIE, value=token, httponly=True, samesite="lax", path="/",
                  max_age=ttl, secure=request.url.scheme == "https")

