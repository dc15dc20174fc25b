"""JSON routes of suspensions: moderators and the operator suspend members, lift
suspensions, and list who is suspended now. The rules are in service/domain/members.py;
enforcement (no sign-in, no writes) in service/handlers.py and service/deps.py."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter

from service import commands as c
from service import suspensions
from service.api.common import json_response, moderator, written
from service.api.openapi import SIGNED_IN, ok, problems
from service.domain.actors import Actor
from service.handlers import RequestMeta
from service.lifespan import Services


class SuspensionList(msgspec.Struct):
    suspensions: list[suspensions.Suspension]
    page: int
    pages: int



class SuspensionController(Controller):
    tags = ["moderation"]

    @post("/api/users/{name:str}/suspension", operation_id="suspendMember", status_code=200,
          security=SIGNED_IN, responses={
              200: ok(c.SuspensionResult, "the member is suspended"),
              **problems(401, 403, 404, 409, 413, 422)})
    async def suspend(self, name: str, data: c.Suspend, services: Services,
                      actor: Actor | None, meta: RequestMeta) -> Response[bytes]:
        """No sign-in and no writes until ``until`` (absent: until lifted). Suspending a
        suspended member replaces their suspension."""
        who = moderator(actor, "suspend members")
        return written(await services.handlers.suspend(name, data, who, meta))

    @delete("/api/users/{name:str}/suspension", operation_id="liftSuspension",
            status_code=200, security=SIGNED_IN, responses={
                200: ok(c.SuspensionResult, "the suspension is lifted"),
                **problems(401, 403, 404, 409)})
    async def lift(self, name: str, services: Services, actor: Actor | None,
                   meta: RequestMeta) -> Response[bytes]:
        who = moderator(actor, "suspend members")
        return written(await services.handlers.lift_suspension(name, who, meta))

    @get("/api/suspensions", operation_id="listSuspensions",
         security=SIGNED_IN, responses={
             200: ok(SuspensionList, "members suspended now"), **problems(401, 403, 404)})
    async def current(self, services: Services, actor: Actor | None,
                   page: int = Parameter(query="page", default=1, ge=1, le=1_000_000)
                   ) -> Response[bytes]:
        moderator(actor, "suspend members")
        found = await suspensions.current(services.pool, datetime.now(UTC))
        per_page = services.settings.per_page
        pages = max(1, -(-len(found) // per_page))
        shown = found[(page - 1) * per_page:page * per_page]
        return json_response(SuspensionList(suspensions=shown, page=page, pages=pages),
                             headers={"Cache-Control": "private, no-store"})
