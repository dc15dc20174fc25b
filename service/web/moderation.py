"""The moderation page: the queue of posts held for review (Approve, Reject), the members
suspended now (Suspend, Lift) and the address bans in force (Ban, Remove).

Moderators and the operator only (a 403 page for anyone else). The buttons are plain POST
forms that redirect back (303) to the page, which then waits for the decision to be
projected (``?after=``) so the decided post is gone from the list. A refused suspension or
ban re-renders the page with the reason and what was typed. The forms call the same
handlers and queries as the JSON routes (api/held.py, api/suspensions.py, api/bans.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.response import Redirect

from common.bbcode import render as render_bbcode
from service import bans, suspensions
from service import commands as c
from service.api.common import checked_id
from service.domain import bans as ban_rules
from service.domain import errors as d
from service.domain.actors import Actor
from service.lifespan import Services
from service.web.rendering import (
    After,
    AnyRequest,
    Page,
    _form,
    _meta,
    _position,
    _reason,
    _refusal_status,
    page_actor,
    page_error,
    render,
    resolve_page_actor,
)


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
                    after: After = None) -> Response[bytes]:
        _moderator(request)
        return await _page(request, services, page, _position(after))

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

    # -- suspensions and bans ----------------------------------------------------------

    @post("/moderation/suspensions", status_code=303)
    async def suspend(self, request: AnyRequest, services: Services) -> Response[Any]:
        actor = _moderator(request)
        form = await _form(request)
        try:
            until = _until(form.get("days", ""))
            result = await services.handlers.suspend(
                form.get("name", ""), c.Suspend(reason=form.get("reason", ""), until=until),
                actor, _meta(request))
        except d.DomainError as refused:
            return await _page(request, services, 1, None, suspend_form=form, error=refused)
        return Redirect(f"/moderation?after={result.position}#suspensions", status_code=303)

    @post("/moderation/suspensions/{name:str}/lift", status_code=303)
    async def lift(self, request: AnyRequest, services: Services, name: str
                   ) -> Response[Any]:
        actor = _moderator(request)
        try:
            result = await services.handlers.lift_suspension(name, actor, _meta(request))
        except d.ConflictError:  # lifted meanwhile
            return Redirect("/moderation#suspensions", status_code=303)
        return Redirect(f"/moderation?after={result.position}#suspensions", status_code=303)

    @post("/moderation/bans", status_code=303, opt={"ban_exempt": True})
    async def ban(self, request: AnyRequest, services: Services) -> Response[Any]:
        actor = _moderator(request)
        form = await _form(request)
        try:
            network, until, reason = ban_rules.ban(
                form.get("cidr", ""), _until(form.get("days", "")), form.get("reason", ""),
                datetime.now(UTC))
        except d.DomainError as refused:
            return await _page(request, services, 1, None, ban_form=form, error=refused)
        await bans.add(services.pool, network, until, reason, actor.name)
        services.bans.forget()
        return Redirect("/moderation#bans", status_code=303)

    @post("/moderation/bans/{ban_id:int}/remove", status_code=303, opt={"ban_exempt": True})
    async def unban(self, request: AnyRequest, services: Services, ban_id: int
                    ) -> Response[Any]:
        _moderator(request)
        await bans.remove(services.pool, checked_id(ban_id, "ban"))
        services.bans.forget()
        return Redirect("/moderation#bans", status_code=303)


MAX_DAYS = 36_500


def _until(days: str) -> datetime | None:
    """The form's "for N days" (blank: until lifted) as an end time."""
    days = days.strip()
    if not days:
        return None
    if (not days.isascii() or not days.isdigit() or len(days) > len(str(MAX_DAYS))
            or not 1 <= int(days) <= MAX_DAYS):  # the length first: int() of 5,000 digits raises
        raise d.InvalidInputError(f"days must be a whole number from 1 to {MAX_DAYS}, "
                                  "or blank for no end")
    return datetime.now(UTC) + timedelta(days=int(days))


async def _page(request: AnyRequest, services: Services, page: int, after: int | None, *,
                suspend_form: Mapping[str, str] | None = None,
                ban_form: Mapping[str, str] | None = None,
                error: d.DomainError | None = None) -> Response[bytes]:
    queue = await services.reads.held(None, page, min_position=after)
    listing = {"page": queue.page, "pages": queue.pages, "held": [
        {**msgspec.structs.asdict(item), "html": render_bbcode(item.body)}
        for item in queue.held()]}
    suspended = await suspensions.current(services.pool, datetime.now(UTC))
    banned, _ = await bans.active(services.pool, 1)
    return render(request, "moderation.html.j2", {
        "page_title": "Moderation", "listing": listing, "suspensions": suspended,
        "bans": banned, "error": _reason(error) if error else None,
        "suspend_form": {"name": "", "reason": "", "days": "", **(suspend_form or {})},
        "ban_form": {"cidr": "", "reason": "", "days": "", **(ban_form or {})},
    }, _refusal_status(error) if error else 200)
