"""JSON routes of hold for review: the queue, and a moderator's approve and reject.

Who sees what: moderators and the operator see every pending post; anyone else with an
identity (a member's token, a guest's identity) sees only their own pending posts, matched
by ``Actor.key``; nobody else sees any.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get, post
from litestar.types import Scope

from service import commands as c
from service.api import bodies
from service.api.common import checked_id, written
from service.api.openapi import CONDITIONAL, SIGNED_IN, WRITERS, Page, ok, problems
from service.deps import min_position
from service.domain.actors import Actor
from service.domain.errors import NotAuthenticatedError
from service.guests import GuestPass, guest_id
from service.handlers import RequestMeta
from service.lifespan import Services
from service.limits import Throttle
from workers.readmodels.values import HeldItem


class HeldPage(msgspec.Struct):
    held: list[HeldItem]
    page: int
    pages: int



def _identified(actor: Actor | None) -> Actor:
    if actor is None:
        raise NotAuthenticatedError("sign in (or give your guest token) to see held posts")
    return actor


class HeldController(Controller):
    path = "/api/held"
    tags = ["moderation"]

    @get("/", operation_id="listHeld", opt=CONDITIONAL, security=WRITERS, responses={
        200: ok(HeldPage, "held posts, oldest first (a moderator's: all; anyone else's: own)"),
        **problems(401, 404)})
    async def queue(self, services: Services, actor: Actor | None, guest_pass: GuestPass,
                    scope: Scope, page: int = Page
                    ) -> Response[bytes]:
        """A guest sees its own held posts by sending its ``X-Guest-Token``."""
        if actor is None and guest_pass.sent is not None:
            actor = Actor("", "guest", guest_id=guest_id(guest_pass.sent))
        who = _identified(actor)
        return bodies.held(await services.reads.held(
            None if who.moderates else who.key, page, min_position=min_position(scope)))

    @post("/{held_id:int}/approve", operation_id="approveHeld", status_code=200,
          security=SIGNED_IN, responses={
              200: ok(c.ApprovedResult, "published with the thread's next number"),
              **problems(401, 403, 404, 409, 429)})
    async def approve(self, held_id: int, services: Services, actor: Actor | None,
                      meta: RequestMeta, throttle: Throttle) -> Response[bytes]:
        checked_id(held_id, "held post")
        await throttle("write", _identified(actor))  # moderators are never limited
        result = await services.handlers.decide_held(held_id, _identified(actor), meta,
                                                     approve=True)
        return written(result, 200, {"Location": f"/api/posts/{held_id}"})

    @post("/{held_id:int}/reject", operation_id="rejectHeld", status_code=200,
          security=SIGNED_IN, responses={
              200: ok(c.RejectedResult, "never shown"), **problems(401, 403, 404, 409, 429)})
    async def reject(self, held_id: int, services: Services, actor: Actor | None,
                     meta: RequestMeta, throttle: Throttle) -> Response[bytes]:
        checked_id(held_id, "held post")
        await throttle("write", _identified(actor))  # moderators are never limited
        return written(await services.handlers.decide_held(
            held_id, _identified(actor), meta, approve=False))
