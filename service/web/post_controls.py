"""The controls of a thread page for what the JSON API can do beyond posting: a post's
edit form, delete (with a confirming page), like and unlike, its revision history; a
moderator's lock, unlock and move.

Plain forms (no JavaScript) carrying the page's CSRF token; each calls the same handler
as its JSON route (service/api/posts.py, service/api/threads.py) under the same rate
limit, and redirects (303) back to the post, or the thread, with ``?after=`` so the page
waits for the change to be projected. Authority is the handler's, decided on the
thread's current state: the pages only show a control where the same rule
(service/domain/threads.py ``may_change``, ``may_like``) would let the viewer use it. A
refusal is an HTML page with the reason (an edit: the form again, with the text kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote as urlquote

from litestar import Controller, Response, get, post
from litestar.response import Redirect

from service import commands as c
from service.api.common import checked_id
from service.domain import errors as d
from service.domain.actors import Actor
from service.domain.threads import may_change
from service.handling import page_of
from service.lifespan import Services
from service.limits import Throttle
from service.web.posts import Viewer
from service.web.rendering import (
    After,
    AnyRequest,
    _form,
    _meta,
    _position,
    _reason,
    _refusal_status,
    _section_titles,
    page_actor,
    page_error,
    render,
    resolve_page_actor,
)
from workers.readmodels.errors import ReadNotFoundError
from workers.readmodels.reads import SLUG
from workers.readmodels.values import PostHead, ThreadPage


async def page_viewer(request: AnyRequest, services: Services, view: ThreadPage
                      ) -> Viewer | None:
    """Who views ``view``, for the controls on its posts: None for a guest; a member
    with the posts of the page they like (one read of the thread's likers)."""
    actor = page_actor(request)
    if actor is None:
        return None
    if actor.guest or actor.role == "operator" or not view.posts:  # nothing to like
        return Viewer(actor)
    start = (view.page - 1) * view.per_page
    numbers = [start + i + 1 for i in range(len(view.posts))]
    return Viewer(actor, await services.reads.liked(view.thread.id, numbers, actor.name))


def _signed_in(request: AnyRequest, what: str) -> Actor:
    actor = page_actor(request)
    if actor is None:
        raise d.NotAuthenticatedError(f"sign in to {what}")
    return actor


async def _post(services: Services, post_id: int) -> PostHead:
    """The post as readers see it now (a deleted one is not found: nothing to change)."""
    try:
        head = (await services.reads.post(checked_id(post_id, "post"))).post.head()
    except ReadNotFoundError as missing:
        raise d.NotFoundError("there is no such post") from missing
    if head.deleted:
        raise d.NotFoundError("this post was deleted")
    return head


def _back(services: Services, thread_id: int, number: int, post_id: int,
          position: int | None) -> Response[Any]:
    """303 to the post on its page, once the change (if any) is projected."""
    page = page_of(number, services.settings.per_page)
    after = f"&after={position}" if position else ""
    return Redirect(f"/threads/{thread_id}?page={page}{after}#p{post_id}", status_code=303)


async def _thread_of(services: Services, post_id: int) -> tuple[int, int]:
    where = await services.store.locate_post(checked_id(post_id, "post"))
    if where is None:
        raise d.NotFoundError("there is no such post")
    return where.thread_id, where.number


class PostControlPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    # -- edit ----------------------------------------------------------------------

    @get("/posts/{post_id:int}/edit")
    async def edit_form(self, request: AnyRequest, services: Services, post_id: int
                        ) -> Response[Any]:
        actor = page_actor(request)
        if actor is None:  # sign in, and come back here
            return Redirect(f"/login?next={urlquote(request.url.path, safe='')}",
                            status_code=303)
        head = await _post(services, post_id)
        if not may_change(actor, head.author.name, head.author.guest):
            raise d.ForbiddenError("only the post's author or a moderator may edit it")
        return _edit_page(request, head, {"body": head.body})

    @post("/posts/{post_id:int}/edit", status_code=303)
    async def edit(self, request: AnyRequest, services: Services, post_id: int,
                   throttle: Throttle) -> Response[Any]:
        actor = _signed_in(request, "edit posts")
        form = await _form(request)
        thread_id, number = await _thread_of(services, post_id)
        try:
            await throttle("edit", actor)
            result = await services.handlers.edit_post(
                thread_id, post_id, c.EditPost(body=form.get("body", "")), actor,
                _meta(request))
        except d.NotFoundError:
            raise
        except d.DomainError as refused:
            head = await _post(services, post_id)
            return _edit_page(request, head, form, _reason(refused),
                              _refusal_status(refused))
        return _back(services, thread_id, number, post_id, result.position)

    # -- delete --------------------------------------------------------------------

    @get("/posts/{post_id:int}/delete")
    async def delete_form(self, request: AnyRequest, services: Services, post_id: int
                          ) -> Response[Any]:
        actor = page_actor(request)
        if actor is None:
            return Redirect(f"/login?next={urlquote(request.url.path, safe='')}",
                            status_code=303)
        head = await _post(services, post_id)
        if not may_change(actor, head.author.name, head.author.guest):
            raise d.ForbiddenError("only the post's author or a moderator may delete it")
        return render(request, "post_delete.html.j2", {
            "page_title": "Delete this post?", "post": head,
            "back": _post_href(services, head)})

    @post("/posts/{post_id:int}/delete", status_code=303)
    async def delete(self, request: AnyRequest, services: Services, post_id: int,
                     throttle: Throttle) -> Response[Any]:
        actor = _signed_in(request, "delete posts")
        thread_id, number = await _thread_of(services, post_id)
        await throttle("edit", actor)  # as the API: deletions count as edits
        result = await services.handlers.delete_post(thread_id, post_id, actor,
                                                     _meta(request))
        return _back(services, thread_id, number, post_id, result.position)

    # -- like ----------------------------------------------------------------------

    @post("/posts/{post_id:int}/like", status_code=303)
    async def like(self, request: AnyRequest, services: Services, post_id: int,
                   throttle: Throttle) -> Response[Any]:
        return await self._like(request, services, post_id, throttle, liked=True)

    @post("/posts/{post_id:int}/unlike", status_code=303)
    async def unlike(self, request: AnyRequest, services: Services, post_id: int,
                     throttle: Throttle) -> Response[Any]:
        return await self._like(request, services, post_id, throttle, liked=False)

    @staticmethod
    async def _like(request: AnyRequest, services: Services, post_id: int,
                    throttle: Throttle, *, liked: bool) -> Response[Any]:
        actor = _signed_in(request, "like posts")
        thread_id, number = await _thread_of(services, post_id)
        await throttle("like", actor)
        try:
            result = await services.handlers.like(thread_id, post_id, actor, _meta(request),
                                                  liked=liked)
        except d.ThreadLockedError:
            raise
        except d.ConflictError:  # a second click: it is already as asked
            return _back(services, thread_id, number, post_id, None)
        return _back(services, thread_id, number, post_id, result.position)

    # -- history -------------------------------------------------------------------

    @get("/posts/{post_id:int}/revisions")
    async def revisions(self, request: AnyRequest, services: Services, post_id: int,
                        after: After = None) -> Response[Any]:
        try:
            history = await services.reads.revisions(checked_id(post_id, "post"),
                                                     min_position=_position(after))
        except ReadNotFoundError as missing:
            raise d.NotFoundError("there is no history of this post to show") from missing
        post = history.post
        return render(request, "revisions.html.j2", {
            "page_title": f"History of post #{post.number}", "post": post,
            "history": history, "back": _post_href(services, post),
        }, shared=("revisions", post_id, history.seen, history.spaces), at=history.position,
            forms=False)


def _post_href(services: Services, post: PostHead) -> str:
    page = page_of(post.number, services.settings.per_page)
    return f"/threads/{post.thread_id}?page={page}#p{post.id}"


def _edit_page(request: AnyRequest, post: PostHead, form: Mapping[str, str],
               error: str | None = None, status: int = 200) -> Response[bytes]:
    return render(request, "post_edit.html.j2", {
        "page_title": f"Edit post #{post.number}", "post": post,
        "form": {"body": "", **form}, "error": error,
    }, status)


# -- a moderator's controls of a thread -----------------------------------------------


def _moderator(request: AnyRequest) -> Actor:
    actor = _signed_in(request, "moderate threads")
    if not actor.moderates:
        raise d.ForbiddenError("only moderators may lock, unlock or move threads")
    return actor


class ThreadControlPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @post("/threads/{thread_id:int}/lock", status_code=303)
    async def lock(self, request: AnyRequest, services: Services, thread_id: int,
                   throttle: Throttle) -> Response[Any]:
        return await self._locked(request, services, thread_id, throttle, locked=True)

    @post("/threads/{thread_id:int}/unlock", status_code=303)
    async def unlock(self, request: AnyRequest, services: Services, thread_id: int,
                     throttle: Throttle) -> Response[Any]:
        return await self._locked(request, services, thread_id, throttle, locked=False)

    @staticmethod
    async def _locked(request: AnyRequest, services: Services, thread_id: int,
                      throttle: Throttle, *, locked: bool) -> Response[Any]:
        actor = _moderator(request)
        checked_id(thread_id, "thread")
        await throttle("write", actor)
        try:
            result = await services.handlers.set_locked(thread_id, actor, _meta(request),
                                                        locked=locked)
        except d.ThreadLockedError:
            raise
        except d.ConflictError:  # already so (another moderator, a second click)
            return Redirect(f"/threads/{thread_id}", status_code=303)
        return Redirect(f"/threads/{thread_id}?after={result.position}#reply",
                        status_code=303)

    @post("/threads/{thread_id:int}/move", status_code=303)
    async def move(self, request: AnyRequest, services: Services, thread_id: int,
                   throttle: Throttle) -> Response[Any]:
        actor = _moderator(request)
        checked_id(thread_id, "thread")
        forum = (await _form(request)).get("forum", "").strip()
        if not SLUG.fullmatch(forum) or forum not in await _section_titles(services):
            raise d.InvalidInputError("choose one of the board's sections to move it to")
        await throttle("write", actor)
        result = await services.handlers.move(thread_id, c.MoveThread(forum=forum), actor,
                                              _meta(request))
        return Redirect(f"/threads/{thread_id}?after={result.position}", status_code=303)
