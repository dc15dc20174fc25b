"""HTML pages for people: the board read and written through plain forms, no JavaScript
needed.

Pages read the same reads as the JSON API (workers/readmodels/reads.py) and write through
the same Handlers. Who is signed in comes from the ``forum_token`` cookie (a bearer token
set by ``/login``); a missing or invalid cookie means a guest. A form post that the rules
refuse re-renders its page with the reason and the text kept (4xx), with, for a guest whom
signing in would help, a sign-in form that carries the draft and answers the form again,
filled in, as the member (docs/design.md, "Form pages and the draft a refusal keeps"); a
post that succeeds redirects (303) to the new post with ``?after=<position>`` so the next
page view waits for the projections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote as urlquote

from litestar import Controller, Response, get, post
from litestar.datastructures import CacheControlHeader, Cookie
from litestar.params import Parameter
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from common.bbcode import render as render_bbcode
from service import commands as c
from service.api.common import checked_id, writer
from service.domain import errors as d
from service.domain.actors import Actor
from service.domain.quoting import quoted
from service.domain.text import clean_body
from service.guests import GUEST_COOKIE, GUEST_COOKIE_MAX_AGE, GuestPass, cookie_pass, guest_id
from service.lifespan import Services
from service.limits import Throttle
from service.web import feeds
from service.web.accounts import MemberPages, SignInRefused, attempt_sign_in
from service.web.archives import ArchivePages
from service.web.moderation import ModerationPages
from service.web.permalinks import Permalinks
from service.web.post_controls import PostControlPages, ThreadControlPages, page_viewer
from service.web.posts import posts_html
from service.web.profiles import ProfilePages
from service.web.rendering import (
    HERE,
    After,
    AnyRequest,
    Page,
    _form,
    _login_cookie,
    _meta,
    _position,
    _reason,
    _refusal_status,
    _section_titles,
    _titles,
    act_as,
    page_actor,
    page_error,
    render,
    resolve_page_actor,
)
from service.web.search import SearchPages
from service.web.site_files import SiteFiles
from workers.readmodels.errors import ReadModelUnavailableError, ReadNotFoundError

# -- the board ----------------------------------------------------------------------------


def _thread_id(segment: str) -> int:
    """A thread's id as its page's path holds it; anything else names no thread (404)."""
    number = _position(segment)
    if number is None or not segment.isdigit():
        raise d.NotFoundError("no such thread")
    return checked_id(number, "thread")


def _guest_cookies(request: AnyRequest, guest: GuestPass, guest_wrote: bool) -> list[Cookie]:
    """A guest's form post keeps its identity in the ``forum_guest`` cookie (a new one on
    its first write), so its next posts are the same guest's: OP mark, starter's bump."""
    if not guest_wrote:
        return []
    return [Cookie(key=GUEST_COOKIE, value=guest.sent or guest.issued or "", httponly=True,
                   samesite="lax", path="/", max_age=GUEST_COOKIE_MAX_AGE,
                   secure=request.url.scheme == "https")]


def held_preview(held_id: int, body: str, title: str = "") -> dict[str, Any]:
    """What the author of a held post is shown of it, on the page that took it: nobody
    else sees it until a moderator approves it (the page answers 202, not a redirect: the
    page the redirect led to would not show it)."""
    return {"id": held_id, "title": title.strip(), "html": render_bbcode(clean_body(body))}


def _sign_in_helps(actor: Actor | None, refused: d.DomainError) -> bool:
    """Whether a refused post's page offers to sign in and keep the draft: a guest whose
    name is a member's (or held, or looks like one), who gave none, or who wrote too often
    for a guest."""
    return actor is None and isinstance(
        refused, (d.NameTakenError, d.NotAuthenticatedError, d.TooSoonError))


PageAsked = Annotated[int | None, Parameter(query="page", ge=1, le=1_000_000, required=False)]
Quote = Annotated[str | None, Parameter(query="quote", required=False)]


async def _my_held(request: AnyRequest, services: Services, thread_id: int,
                   shown: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The viewer's own replies to this thread still waiting for review (a viewer with an
    identity only; their author is the only one who sees them until approved)."""
    actor = page_actor(request)
    guest = cookie_pass(request.cookies.get(GUEST_COOKIE))
    if actor is None and guest.sent is not None:  # a guest, by its forum_guest cookie
        actor = Actor("", "guest", guest_id=guest_id(guest.sent))
    if actor is None or actor.moderates:  # moderators have the moderation page
        return []
    try:
        mine = (await services.reads.held(actor.key, 1, per_page=100)).held()
    except (ReadModelUnavailableError, ReadNotFoundError):
        return []
    skip = shown["id"] if shown else None
    return [{"id": item.id, "html": render_bbcode(item.body)} for item in mine
            if item.thread_id == thread_id and item.id != skip]


class BoardPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/")
    async def index(self, request: AnyRequest, services: Services, after: After = None
                    ) -> Response[bytes]:
        view = await services.reads.forums(min_position=_position(after))
        return render(request, "index.html.j2", {"page_title": "Board index",
                                                 "forums": view.forums},
                      shared=("index", view.seen, view.spaces), at=view.position, forms=False)

    @get("/unanswered")
    async def unanswered(self, request: AnyRequest, services: Services, page: Page = 1,
                         after: After = None) -> Response[bytes]:
        listing = await services.reads.unanswered(page, min_position=_position(after))
        titles, titled = await _titles(services)
        return render(request, "unanswered.html.j2", {
            "page_title": "Unanswered threads", "listing": listing, "titles": titles,
        }, shared=("unanswered", page, listing.seen, listing.spaces, titled),
            at=listing.position, forms=False)

    @get("/feeds/latest.atom")
    async def latest_feed(self, request: AnyRequest, services: Services) -> Response[bytes]:
        return await feeds.latest(request, services)

    @get("/forums/{slug:str}")
    async def section(self, request: AnyRequest, services: Services, slug: str,
                      page: Page = 1, after: After = None) -> Response[Any]:
        """The section's page; ``/forums/{slug}.atom``: its feed (a route cannot end in
        a suffix after a parameter)."""
        feed = feeds.feed_name(slug)
        if feed is not None:
            return await feeds.section(request, services, feed)
        return await self._section(request, services, slug, page, _position(after))

    async def _section(self, request: AnyRequest, services: Services, slug: str, page: int,
                       min_position: int | None, form: Mapping[str, str] | None = None,
                       error: str | None = None, status: int = 200,
                       held: Mapping[str, Any] | None = None) -> Response[bytes]:
        view = await services.reads.section_threads(slug, page, min_position=min_position)
        plain = not (form or error or held)
        return render(request, "section.html.j2", {
            "page_title": view.forum.title, "forum_slug": slug, "forum": view.forum,
            "listing": view.listing,
            "form": {"title": "", "body": "", "guest_name": "", **(form or {})},
            "error": error, "held": held,
        }, status, shared=("section", slug, page, view.seen, view.spaces) if plain else None,
            at=view.position)

    @post("/forums/{slug:str}/threads", status_code=303)
    async def start_thread(self, request: AnyRequest, services: Services, slug: str,
                           throttle: Throttle) -> Response[Any]:
        form = await _form(request)
        actor = page_actor(request)
        guest_name = None if actor else (form.get("guest_name", "").strip() or None)
        guest = cookie_pass(request.cookies.get(GUEST_COOKIE))
        try:
            who = await writer(services, actor, guest_name, guest)
            await throttle("thread", who)
            result = await services.handlers.start_thread(
                slug, c.StartThread(title=form.get("title", ""), body=form.get("body", "")),
                who, _meta(request),
            )
        except d.NotFoundError:
            raise
        except d.DomainError as refused:
            return await self._new_thread(request, services, slug, None, form,
                                          _reason(refused), _refusal_status(refused),
                                          sign_in=_sign_in_helps(actor, refused))
        if isinstance(result, c.HeldResult):  # shown to its author only, here and now
            shown = await self._section(request, services, slug, 1, None, held=held_preview(
                result.held_id, form.get("body", ""), form.get("title", "")), status=202)
            for cookie in _guest_cookies(request, guest, who.guest):  # to see it later
                shown.set_cookie(cookie)
            return shown
        return Redirect(f"/threads/{result.thread_id}?after={result.position}"
                        f"#p{result.post_id}", status_code=303,
                        cookies=_guest_cookies(request, guest, who.guest))

    @get("/forums/{slug:str}/new")
    async def new_thread_form(self, request: AnyRequest, services: Services, slug: str,
                              after: After = None) -> Response[bytes]:
        """The new-thread form on a page of its own (where signing in returns to)."""
        return await self._new_thread(request, services, slug, _position(after), {})

    async def _new_thread(self, request: AnyRequest, services: Services, slug: str,
                          min_position: int | None, form: Mapping[str, str],
                          error: str | None = None, status: int = 200, *,
                          sign_in: bool = False, headers: Mapping[str, str] | None = None
                          ) -> Response[bytes]:
        """The new-thread page: empty, or a refused draft with the reason (``sign_in``:
        and the form that signs in keeping the draft)."""
        view = await services.reads.section_threads(slug, 1, min_position=min_position)
        plain = not (any(form.values()) or error)
        return render(request, "new_thread.html.j2", {
            "page_title": f"New thread: {view.forum.title}", "forum_slug": slug,
            "forum": view.forum, "error": error,
            "form": {"title": "", "body": "", "guest_name": "", **form},
            "sign_in": f"/forums/{urlquote(slug, safe='')}/sign-in#new" if sign_in else None,
            **({} if request.method == "GET"
               else {"here": f"/forums/{urlquote(slug, safe='')}/new"}),
        }, status, headers, shared=("new", slug, view.seen, view.spaces) if plain else None,
            at=view.position)

    @post("/forums/{slug:str}/sign-in", status_code=200, opt={"sign_in": True})
    async def sign_in_to_start(self, request: AnyRequest, services: Services, slug: str,
                               throttle: Throttle) -> Response[bytes]:
        """A refused guest's thread: sign in, then the new-thread form again with the
        draft, as the member (or, refused, the draft and why)."""
        form = await _form(request)
        draft = {"title": form.get("title", ""), "body": form.get("body", "")}
        name = form.get("name", "").strip()
        await services.reads.section_threads(slug, 1)  # no such section: 404, no session
        signed_in = await attempt_sign_in(services, throttle, name, form.get("password", ""))
        if isinstance(signed_in, SignInRefused):
            return await self._new_thread(request, services, slug, None,
                                          {**draft, "guest_name": name}, signed_in.reason,
                                          signed_in.status, sign_in=True,
                                          headers=signed_in.headers)
        await act_as(request, services, signed_in)
        shown = await self._new_thread(request, services, slug, None, draft)
        shown.set_cookie(_login_cookie(request, signed_in))
        return shown

    @get("/forums/{slug:str}/archive")
    async def archive(self, request: AnyRequest, services: Services, slug: str,
                      after: After = None) -> Response[bytes]:
        years = await services.reads.archive_years(slug, min_position=_position(after))
        return render(request, "archive.html.j2", {
            "page_title": f"{years.forum.title}: archive", "forum_slug": slug,
            "archive": years,
        }, shared=("archive", slug, years.seen, years.spaces), at=years.position, forms=False)

    @get("/forums/{slug:str}/archive/{year:int}")
    async def archive_year(self, request: AnyRequest, services: Services, slug: str,
                           year: int, page: Page = 1, after: After = None) -> Response[bytes]:
        listing = await services.reads.archive_year(slug, year, page,
                                                    min_position=_position(after))
        titles, titled = await _titles(services)
        return render(request, "archive_year.html.j2", {
            "page_title": f"{titles.get(slug, slug)}: {year}", "forum_slug": slug,
            "section_title": titles.get(slug, slug), "listing": listing, "year": year,
        }, shared=("archive_year", slug, year, page, listing.seen, listing.spaces, titled),
            at=listing.position, forms=False)

    # -- threads ---------------------------------------------------------------------

    @get("/threads/{thread:str}")
    async def thread(self, request: AnyRequest, services: Services, thread: str,
                     page: Page = 1, after: After = None,
                     quote: Annotated[str | None, Parameter(query="quote", required=False)]
                     = None) -> Response[Any]:
        """The thread's page; ``/threads/{id}.atom``: its feed."""
        feed = feeds.feed_name(thread)
        thread_id = _thread_id(thread if feed is None else feed)
        if feed is not None:
            return await feeds.thread(request, services, thread_id)
        body, _ = await self._quoted(services, thread_id, quote)
        return await self._thread(request, services, thread_id, page, _position(after),
                                  {"body": body})

    @staticmethod
    async def _quoted(services: Services, thread_id: int, quote: str | None
                      ) -> tuple[str, int | None]:
        """The reply box's start when ``quote`` names a post of this thread: the post in
        a [quote], and the page it is on; else nothing."""
        quote_id = _position(quote)
        if quote_id is None:
            return "", None
        try:
            found = await services.reads.post(quote_id)
        except ReadNotFoundError:
            return "", None
        target = found.post.head()
        if target.thread_id != thread_id or target.deleted:
            return "", None
        return quoted(target.author.name, target.id, target.body), found.page

    @get("/threads/{thread:str}/reply")
    async def reply_form(self, request: AnyRequest, services: Services, thread: str,
                         page: PageAsked = None, after: After = None, quote: Quote = None
                         ) -> Response[bytes]:
        """The thread's reply box: the thread page with the box (prefilled with
        ``quote``), on ``page``, else the quoted post's page, else the last page, where
        the reply will go. A locked thread's page says it is locked."""
        thread_id = _thread_id(thread)
        min_position = _position(after)
        body, quoted_on = await self._quoted(services, thread_id, quote)
        if page is None:
            page = quoted_on or (await services.reads.thread_page(
                thread_id, 1, min_position=min_position)).pages
        return await self._thread(request, services, thread_id, page, min_position,
                                  {"body": body})

    async def _thread(self, request: AnyRequest, services: Services, thread_id: int,
                      page: int, min_position: int | None, form: Mapping[str, str],
                      error: str | None = None, status: int = 200,
                      held: Mapping[str, Any] | None = None, *, sign_in: bool = False,
                      headers: Mapping[str, str] | None = None) -> Response[bytes]:
        """A page of the thread; with a refused reply's draft and why (``sign_in``: and
        the form that signs in keeping the draft)."""
        view = await services.reads.thread_page(thread_id, page, min_position=min_position)
        slug = view.thread.forum
        sections = await _section_titles(services)
        title = sections.get(slug, slug)
        mine = await _my_held(request, services, thread_id, held)
        viewer = await page_viewer(request, services, view)  # the posts' controls
        liked = tuple(sorted(viewer.liked)) if viewer else ()
        plain = not (any(form.values()) or error or held or mine)
        return render(request, "thread.html.j2", lambda: {
            "page_title": view.thread.title, "forum_slug": slug, "section_title": title,
            "view": view, "posts_html": posts_html(view, viewer),
            "form": {"body": "", "guest_name": "", **form}, "error": error, "held": held,
            "my_held": mine, "sections": sections,
            "sign_in": f"/threads/{thread_id}/sign-in#reply" if sign_in else None,
            # After a form was sent, "Login" returns to the form's page, not the POST's.
            **({} if request.method == "GET"
               else {"here": f"/threads/{thread_id}/reply?page={view.page}"}),
        }, status, headers, at=view.position,
            shared=("thread", thread_id, page, view.seen, view.spaces, title, liked)
            if plain else None)

    @post("/threads/{thread_id:int}/reply", status_code=303)
    async def reply(self, request: AnyRequest, services: Services, thread_id: int,
                    throttle: Throttle) -> Response[Any]:
        checked_id(thread_id, "thread")
        form = await _form(request)
        actor = page_actor(request)
        guest_name = None if actor else (form.get("guest_name", "").strip() or None)
        guest = cookie_pass(request.cookies.get(GUEST_COOKIE))
        try:
            who = await writer(services, actor, guest_name, guest)
            await throttle("reply", who)
            result = await services.handlers.post_reply(
                thread_id, c.PostReply(body=form.get("body", "")), who, _meta(request)
            )
        except d.NotFoundError:
            raise
        except d.DomainError as refused:
            return await self._thread_again(
                request, services, thread_id, form, _reason(refused), _refusal_status(refused),
                sign_in=_sign_in_helps(actor, refused))
        if isinstance(result, c.HeldResult):  # shown to its author only, here and now
            page = _position(form.get("page")) or 1
            shown = await self._thread(request, services, thread_id, page, None, {},
                                       held=held_preview(result.held_id, form.get("body", "")),
                                       status=202)
            for cookie in _guest_cookies(request, guest, who.guest):  # to see it later
                shown.set_cookie(cookie)
            return shown
        return Redirect(f"/threads/{thread_id}?page={result.page}&after={result.position}"
                        f"#p{result.post_id}", status_code=303,
                        cookies=_guest_cookies(request, guest, who.guest))

    async def _thread_again(self, request: AnyRequest, services: Services, thread_id: int,
                            form: Mapping[str, str], error: str | None = None,
                            status: int = 200, *, sign_in: bool = False,
                            headers: Mapping[str, str] | None = None) -> Response[bytes]:
        """The page the reply form was sent from (its ``page`` field; the first page if
        that is gone) with the draft."""
        page = _position(form.get("page")) or 1
        draft = {key: form.get(key, "") for key in ("body", "guest_name")}
        try:
            return await self._thread(request, services, thread_id, page, None, draft, error,
                                      status, sign_in=sign_in, headers=headers)
        except ReadNotFoundError:
            return await self._thread(request, services, thread_id, 1, None, draft, error,
                                      status, sign_in=sign_in, headers=headers)

    @post("/threads/{thread_id:int}/sign-in", status_code=200, opt={"sign_in": True})
    async def sign_in_to_reply(self, request: AnyRequest, services: Services, thread_id: int,
                               throttle: Throttle) -> Response[bytes]:
        """A refused guest's reply: sign in, then the thread with the draft in the reply
        box, as the member (or, refused, the draft and why). A page, not a redirect: the
        draft may be long, and it is never put in an address."""
        checked_id(thread_id, "thread")
        form = await _form(request)
        name = form.get("name", "").strip()
        await services.reads.thread_page(thread_id, 1)  # no such thread: 404, no session
        signed_in = await attempt_sign_in(services, throttle, name, form.get("password", ""))
        if isinstance(signed_in, SignInRefused):
            return await self._thread_again(
                request, services, thread_id, {**form, "guest_name": name}, signed_in.reason,
                signed_in.status, sign_in=True, headers=signed_in.headers)
        await act_as(request, services, signed_in)
        shown = await self._thread_again(request, services, thread_id,
                                         {"body": form.get("body", ""),
                                          "page": form.get("page", "")})
        shown.set_cookie(_login_cookie(request, signed_in))
        return shown


PAGE_CONTROLLERS: list[ControllerRouterHandler] = [
    BoardPages,
    MemberPages,
    ModerationPages,
    PostControlPages,
    ThreadControlPages,
    SearchPages,
    ArchivePages,  # issue 18: the archives page, permalinks, profiles, favicon and robots
    Permalinks,
    ProfilePages,
    SiteFiles,
    create_static_files_router(
        path="/static", directories=[HERE / "static"], name="forum-static",
        cache_control=CacheControlHeader(max_age=3600, public=True),
    ),
]
