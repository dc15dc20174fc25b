"""HTML pages for people: the board read and written through plain forms, no JavaScript
needed.

Pages read the same reads as the JSON API (workers/readmodels/reads.py) and write through
the same Handlers. Who is signed in comes from the ``forum_token`` cookie (a bearer token
set by ``/login``); a missing or invalid cookie means a guest. A form post that the rules
refuse re-renders its page with the reason and the text kept (4xx); a post that succeeds
redirects (303) to the new post with ``?after=<position>`` so the next page view waits for
the projections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

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
from service.web.accounts import MemberPages
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
    _meta,
    _position,
    _reason,
    _refusal_status,
    _section_titles,
    _titles,
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
                    ) -> Response[str]:
        view = await services.reads.forums(min_position=_position(after))
        return render(request, "index.html.j2", {"page_title": "Board index",
                                                 "forums": view.forums},
                      shared=("index", view.seen, view.spaces), at=view.position, forms=False)

    @get("/unanswered")
    async def unanswered(self, request: AnyRequest, services: Services, page: Page = 1,
                         after: After = None) -> Response[str]:
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
                       held: Mapping[str, Any] | None = None) -> Response[str]:
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
            return await self._section(request, services, slug, 1, None, form, _reason(refused),
                                       _refusal_status(refused))
        if isinstance(result, c.HeldResult):  # shown to its author only, here and now
            shown = await self._section(request, services, slug, 1, None, held=held_preview(
                result.held_id, form.get("body", ""), form.get("title", "")), status=202)
            for cookie in _guest_cookies(request, guest, who.guest):  # to see it later
                shown.set_cookie(cookie)
            return shown
        return Redirect(f"/threads/{result.thread_id}?after={result.position}"
                        f"#p{result.post_id}", status_code=303,
                        cookies=_guest_cookies(request, guest, who.guest))

    @get("/forums/{slug:str}/archive")
    async def archive(self, request: AnyRequest, services: Services, slug: str,
                      after: After = None) -> Response[str]:
        years = await services.reads.archive_years(slug, min_position=_position(after))
        return render(request, "archive.html.j2", {
            "page_title": f"{years.forum.title}: archive", "forum_slug": slug,
            "archive": years,
        }, shared=("archive", slug, years.seen, years.spaces), at=years.position, forms=False)

    @get("/forums/{slug:str}/archive/{year:int}")
    async def archive_year(self, request: AnyRequest, services: Services, slug: str,
                           year: int, page: Page = 1, after: After = None) -> Response[str]:
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
        body = ""
        quote_id = _position(quote)
        if quote_id is not None:
            try:
                target = (await services.reads.post(quote_id)).post.head()
            except ReadNotFoundError:
                target = None
            if target and target.thread_id == thread_id and not target.deleted:
                body = quoted(target.author.name, target.id, target.body)
        return await self._thread(request, services, thread_id, page, _position(after),
                                  {"body": body})

    async def _thread(self, request: AnyRequest, services: Services, thread_id: int,
                      page: int, min_position: int | None, form: Mapping[str, str],
                      error: str | None = None, status: int = 200,
                      held: Mapping[str, Any] | None = None) -> Response[str]:
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
        }, status, at=view.position,
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
            page = _position(form.get("page")) or 1
            try:
                return await self._thread(request, services, thread_id, page, None, form,
                                          _reason(refused), _refusal_status(refused))
            except ReadNotFoundError:
                return await self._thread(request, services, thread_id, 1, None, form,
                                          _reason(refused), _refusal_status(refused))
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
