"""HTML pages for people: the board read and written through plain forms, no JavaScript
needed.

Pages read the same Views as the JSON API and write through the same Handlers. Who is
signed in comes from the ``forum_token`` cookie (a bearer token set by ``/login``); a
missing or invalid cookie means a guest. A form post that the rules refuse re-renders its
page with the reason and the text kept (4xx); a post that succeeds redirects (303) to the
new post with ``?after=<position>`` so the next page view waits for the projections.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote as urlquote

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, Cookie
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from events.records import member_stream
from service import commands as c
from service.api.common import MAX_ID, checked_id, writer
from service.auth import TOKEN_TTL, verify_password
from service.deps import correlation_id
from service.domain import errors as d
from service.domain.actors import Actor
from service.domain.members import member
from service.errors import ReadModelUnavailableError, handle
from service.handlers import RequestMeta
from service.lifespan import Services

HERE = Path(__file__).parent
COOKIE = "forum_token"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Page = Annotated[int, Parameter(query="page", ge=1, le=1_000_000)]
After = Annotated[str | None, Parameter(query="after", required=False)]

# -- templates --------------------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def day(value: str | None) -> str:
    """``2011-06-08T12:00:00Z`` → ``8 Jun 2011``."""
    when = _when(value)
    return f"{when.day} {MONTHS[when.month - 1]} {when.year}" if when else ""


def stamp(value: str | None) -> str:
    """The full time, for a tooltip: ``8 Jun 2011 12:00 UTC``."""
    when = _when(value)
    return f"{day(value)} {when:%H:%M} UTC" if when else ""


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
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["day"] = day
    env.filters["stamp"] = stamp
    env.filters["urlquote"] = lambda value: urlquote(str(value), safe="")
    env.globals["page_links"] = page_links
    # The stylesheet is cached for an hour; its URL changes whenever its content does.
    css = (HERE / "static" / "forum.css").read_bytes()
    env.globals["css_version"] = hashlib.sha256(css).hexdigest()[:10]
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


# -- plumbing ---------------------------------------------------------------------------

AnyRequest = Request[Any, Any, Any]


def _services(request: AnyRequest) -> Services | None:
    return getattr(request.app.state, "services", None)


def page_actor(request: AnyRequest) -> Actor | None:
    """The member the cookie names; None (a guest) without one or with a bad one."""
    token = request.cookies.get(COOKIE)
    services = _services(request)
    if not token or services is None:
        return None
    try:
        return services.auth.actor(f"Bearer {token}")
    except d.NotAuthenticatedError:
        return None


def render(request: AnyRequest, name: str, context: Mapping[str, Any], status: int = 200,
           headers: Mapping[str, str] | None = None) -> Response[str]:
    actor = page_actor(request)
    services = _services(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    forum = context.get("forum_slug")
    html = environment().get_template(name).render(
        me=actor.name if actor else None,
        here=here if request.method == "GET" else request.url.path,
        archive_href=f"/forums/{urlquote(forum, safe='')}/archive" if forum else "/#archives",
        per_page=services.settings.per_page if services else 25,
        **context,
    )
    return Response(content=html, status_code=status, media_type=MediaType.HTML,
                    headers={"Cache-Control": "private, no-cache", **(headers or {})})


_NUMBER = re.compile(r"[0-9]{1,19}")


def _position(after: str | None) -> int | None:
    """``after`` is a token handed out by a write (and ``quote`` a post id); anything else
    is ignored rather than refused."""
    if after is None or not _NUMBER.fullmatch(after.strip()):
        return None
    value = int(after.strip())
    return value if 0 < value <= MAX_ID else None


def _decode(response: Response[bytes]) -> Any:
    return msgspec.json.decode(response.content)


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
    """The refusal as a person reads it: fields by their labels, not their JSON names."""
    return error.detail.replace("guest_name", "guest name")


def _safe_next(target: str | None) -> str:
    """Only a path of this site: no other host, no header tricks."""
    if (target and len(target) <= 2000 and target.startswith("/")
            and not target.startswith(("//", "/\\")) and target.isascii() and target.isprintable()
            and not any(ch.isspace() for ch in target)):
        return target
    return "/"


async def _section_titles(services: Services) -> dict[str, str]:
    try:
        forums = _decode(await services.views.forums(None))["forums"]
    except ReadModelUnavailableError:
        return {}
    return {f["slug"]: f["title"] for f in forums}


def page_error(request: AnyRequest, exc: Exception) -> Response[str]:
    """Any failure on a page becomes a small HTML page with the API's status and reason."""
    status: int
    if isinstance(exc, ValidationException):
        status, detail, headers = 400, "That address has a value this page does not accept.", {}
    else:
        problem = handle(request, exc)
        status = problem.status_code or 500
        detail = msgspec.json.decode(problem.content).get("detail", "")
        headers = {k: v for k, v in problem.headers.items() if k.lower() == "retry-after"}
    detail = detail[:1].upper() + detail[1:]
    titles = {404: "Not found", 503: "Please try again in a moment"}
    if status == 404 and isinstance(exc, HTTPException):
        detail = "There is nothing at this address."
    return render(request, "error.html.j2", {
        "page_title": titles.get(status, "Something went wrong"), "status": status,
        "detail": detail,
        "retry_after": headers.get("Retry-After") if request.method == "GET" else None,
    }, status, headers)


def _login_cookie(request: AnyRequest, token: str) -> Cookie:
    return Cookie(key=COOKIE, value=token, httponly=True, samesite="lax", path="/",
                  max_age=TOKEN_TTL, secure=request.url.scheme == "https")


# -- the board ----------------------------------------------------------------------------

_QUOTE_BLOCK = re.compile(r"\[quote(?:=[^\]]*)?\](?:(?!\[quote)[\s\S])*?\[/quote\]\s*",
                          re.IGNORECASE)


def quoted(name: str, post_id: int, body: str) -> str:
    """The reply box's text for quoting a post; its own quotes are left out."""
    for _ in range(20):
        stripped = _QUOTE_BLOCK.sub("", body)
        if stripped == body:
            break
        body = stripped
    return f"[quote={name} post={post_id}]{body.strip()}[/quote]\n"


class BoardPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}

    @get("/")
    async def index(self, request: AnyRequest, services: Services, after: After = None
                    ) -> Response[str]:
        forums = _decode(await services.views.forums(_position(after)))["forums"]
        return render(request, "index.html.j2", {"page_title": "Board index",
                                                 "forums": forums})

    @get("/unanswered")
    async def unanswered(self, request: AnyRequest, services: Services, page: Page = 1,
                         after: After = None) -> Response[str]:
        listing = _decode(await services.views.unanswered(page, _position(after)))
        return render(request, "unanswered.html.j2", {
            "page_title": "Unanswered threads", "listing": listing,
            "titles": await _section_titles(services),
        })

    @get("/forums/{slug:str}")
    async def section(self, request: AnyRequest, services: Services, slug: str,
                      page: Page = 1, after: After = None) -> Response[str]:
        return await self._section(request, services, slug, page, _position(after))

    async def _section(self, request: AnyRequest, services: Services, slug: str, page: int,
                       min_position: int | None, form: Mapping[str, str] | None = None,
                       error: str | None = None, status: int = 200) -> Response[str]:
        listing = _decode(await services.views.section_threads(slug, page, min_position))
        return render(request, "section.html.j2", {
            "page_title": listing["forum"]["title"], "forum_slug": slug, "listing": listing,
            "form": {"title": "", "body": "", "guest_name": "", **(form or {})},
            "error": error,
        }, status)

    @post("/forums/{slug:str}/threads", status_code=303)
    async def start_thread(self, request: AnyRequest, services: Services, slug: str
                           ) -> Response[Any]:
        form = await _form(request)
        actor = page_actor(request)
        guest_name = None if actor else (form.get("guest_name", "").strip() or None)
        try:
            who = await writer(services, actor, guest_name)
            result = await services.handlers.start_thread(
                slug, c.StartThread(title=form.get("title", ""), body=form.get("body", "")),
                who, _meta(request),
            )
        except d.NotFoundError:
            raise
        except d.DomainError as refused:
            return await self._section(request, services, slug, 1, None, form, _reason(refused),
                                       _refusal_status(refused))
        return Redirect(f"/threads/{result.thread_id}?after={result.position}"
                        f"#p{result.post_id}", status_code=303)

    @get("/forums/{slug:str}/archive")
    async def archive(self, request: AnyRequest, services: Services, slug: str,
                      after: After = None) -> Response[str]:
        years = _decode(await services.views.archive_years(slug, _position(after)))
        return render(request, "archive.html.j2", {
            "page_title": f"{years['forum']['title']}: archive", "forum_slug": slug,
            "archive": years,
        })

    @get("/forums/{slug:str}/archive/{year:int}")
    async def archive_year(self, request: AnyRequest, services: Services, slug: str,
                           year: int, page: Page = 1, after: After = None) -> Response[str]:
        listing = _decode(await services.views.archive_year(slug, year, page,
                                                            _position(after)))
        titles = await _section_titles(services)
        return render(request, "archive_year.html.j2", {
            "page_title": f"{titles.get(slug, slug)}: {year}", "forum_slug": slug,
            "section_title": titles.get(slug, slug), "listing": listing,
        })

    # -- threads ---------------------------------------------------------------------

    @get("/threads/{thread_id:int}")
    async def thread(self, request: AnyRequest, services: Services, thread_id: int,
                     page: Page = 1, after: After = None,
                     quote: Annotated[str | None, Parameter(query="quote", required=False)]
                     = None) -> Response[str]:
        checked_id(thread_id, "thread")
        body = ""
        quote_id = _position(quote)
        if quote_id is not None:
            try:
                target = _decode(await services.views.post(quote_id, None))
            except d.NotFoundError:
                target = None
            if target and target["thread_id"] == thread_id and not target["deleted"]:
                body = quoted(target["author"]["name"], target["id"], target["body"])
        return await self._thread(request, services, thread_id, page, _position(after),
                                  {"body": body})

    async def _thread(self, request: AnyRequest, services: Services, thread_id: int,
                      page: int, min_position: int | None, form: Mapping[str, str],
                      error: str | None = None, status: int = 200) -> Response[str]:
        view = _decode(await services.views.thread_page(thread_id, page, None, min_position))
        slug = view["thread"]["forum"]
        titles = await _section_titles(services)
        return render(request, "thread.html.j2", {
            "page_title": view["thread"]["title"], "forum_slug": slug,
            "section_title": titles.get(slug, slug), "view": view,
            "form": {"body": "", "guest_name": "", **form}, "error": error,
        }, status)

    @post("/threads/{thread_id:int}/reply", status_code=303)
    async def reply(self, request: AnyRequest, services: Services, thread_id: int
                    ) -> Response[Any]:
        checked_id(thread_id, "thread")
        form = await _form(request)
        actor = page_actor(request)
        guest_name = None if actor else (form.get("guest_name", "").strip() or None)
        try:
            who = await writer(services, actor, guest_name)
            result = await services.handlers.post_reply(
                thread_id, c.PostReply(body=form.get("body", "")), who, _meta(request)
            )
        except d.NotFoundError:
            raise
        except d.DomainError as refused:
            page = _position(form.get("page")) or 1
            try:
                return await self._thread(request, services, thread_id, page, None, form,
                                          _reason(refused), _refusal_status(refused))
            except d.NotFoundError:
                return await self._thread(request, services, thread_id, 1, None, form,
                                          _reason(refused), _refusal_status(refused))
        return Redirect(f"/threads/{thread_id}?page={result.page}&after={result.position}"
                        f"#p{result.post_id}", status_code=303)


# -- members ------------------------------------------------------------------------------

class MemberPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}

    @get("/login")
    async def login_form(self, request: AnyRequest,
                         next_: Annotated[str | None, Parameter(query="next", required=False)]
                         = None) -> Response[str]:
        return render(request, "login.html.j2", {
            "page_title": "Login", "form": {"name": "", "next": _safe_next(next_)},
            "error": None,
        })

    @post("/login", status_code=303)
    async def login(self, request: AnyRequest, services: Services) -> Response[Any]:
        form = await _form(request)
        name, password = form.get("name", "").strip(), form.get("password", "")
        found = None
        if 0 < len(name) <= 64 and len(password) <= 1024:
            records = await services.store.read_stream(member_stream(name))
            found = member([r.event for r in records])
        if not verify_password(found.password_hash if found else None, password[:1024]):
            return render(request, "login.html.j2", {
                "page_title": "Login", "error": "Wrong name or password.",
                "form": {"name": name, "next": _safe_next(form.get("next"))},
            }, 400)
        assert found is not None
        token = services.auth.issue(found.name, found.role)
        return Redirect(_safe_next(form.get("next")), status_code=303,
                        cookies=[_login_cookie(request, token)])

    @post("/logout", status_code=303)
    async def logout(self) -> Response[Any]:
        return Redirect("/", status_code=303,
                        cookies=[Cookie(key=COOKIE, value="", path="/", max_age=0,
                                        httponly=True, samesite="lax")])

    @get("/register")
    async def register_form(self, request: AnyRequest) -> Response[str]:
        return render(request, "register.html.j2", {
            "page_title": "Register", "form": {"name": ""}, "error": None,
        })

    @post("/register", status_code=303)
    async def register(self, request: AnyRequest, services: Services) -> Response[Any]:
        form = await _form(request)
        name, password = form.get("name", ""), form.get("password", "")
        try:
            result = await services.handlers.register(
                c.Register(name=name, password=password), _meta(request)
            )
        except d.DomainError as refused:
            return render(request, "register.html.j2", {
                "page_title": "Register", "form": {"name": name}, "error": _reason(refused),
            }, _refusal_status(refused))
        token = services.auth.issue(result.name, "member")
        return Redirect("/", status_code=303,
                        cookies=[_login_cookie(request, token)])


PAGE_CONTROLLERS: list[ControllerRouterHandler] = [
    BoardPages,
    MemberPages,
    create_static_files_router(
        path="/static", directories=[HERE / "static"], name="forum-static",
        cache_control=CacheControlHeader(max_age=3600, public=True),
    ),
]
