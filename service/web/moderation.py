"""The moderation page: the queue of posts held for review, with Approve and Reject.

Moderators and the operator only (a 403 page for anyone else). The buttons are plain POST
forms that redirect back (303) to the page, which then waits for the decision to be
projected (``?after=``) so the decided post is gone from the list.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.response import Redirect

from service.api.common import checked_id
from service.domain import errors as d
from service.domain.actors import Actor
from service.lifespan import Services
from service.web.rendering import (
    After,
    AnyRequest,
    Page,
    _decode,
    _meta,
    _position,
    page_actor,
    page_error,
    render,
    resolve_page_actor,
)
from workers.bbcode import render as render_bbcode


def _moderator(request: AnyRequest) -> Actor:
    actor = page_actor(request)
    if actor is None or not actor.moderates:
        raise d.ForbiddenError("only moderators and the operator may see the moderation page")
    return actor


class ModerationPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/moderation")
    async def queue(self, request: AnyRequest, services: Services, page: Page = 1,
                    after: After = None) -> Response[str]:
        _moderator(request)
        listing = _decode(await services.views.held(None, page, _position(after)))
        for item in listing["held"]:
            item["html"] = render_bbcode(item["body"])
        return render(request, "moderation.html.j2", {
            "page_title": "Moderation", "listing": listing,
        })

    @post("/moderation/held/{held_id:int}/approve", status_code=303)
    async def approve(self, request: AnyRequest, services: Services, held_id: int
                      ) -> Response[Any]:
        return await self._decide(request, services, held_id, approve=True)

    @post("/moderation/held/{held_id:int}/reject", status_code=303)
    async def reject(self, request: AnyRequest, services: Services, held_id: int
                     ) -> Response[Any]:
        return await self._decide(request, services, held_id, approve=False)

    @staticmethod
    async def _decide(request: AnyRequest, services: Services, held_id: int, *,
                      approve: bool) -> Response[Any]:
        actor = _moderator(request)
        checked_id(held_id, "held post")
        try:
            result = await services.handlers.decide_held(held_id, actor, _meta(request),
                                                         approve=approve)
        except d.ConflictError:  # decided meanwhile (another moderator, a second click)
            return Redirect("/moderation", status_code=303)
        return Redirect(f"/moderation?after={result.position}", status_code=303)
