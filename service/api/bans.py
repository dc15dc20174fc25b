"""JSON routes of address bans (moderators and the operator): make, list, lift."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter

from service import bans
from service.api.common import checked_id, json_response, moderator
from service.api.openapi import SIGNED_IN, ok, problems
from service.domain import bans as decide
from service.domain.actors import Actor
from service.domain.errors import NotFoundError
from service.lifespan import Services


class BanRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    cidr: str
    reason: str
    until: datetime | None = None


class BanList(msgspec.Struct, kw_only=True):
    bans: list[bans.Ban]
    page: int
    pages: int




class BanController(Controller):
    path = "/api/bans"
    tags = ["moderation"]
    # Lifting or making a ban works from a banned address too: moderators must never be
    # locked out of undoing their own mistake.
    opt = {"ban_exempt": True}

    @post("/", operation_id="createBan", status_code=201, security=SIGNED_IN, responses={
        201: ok(bans.Ban, "the ban, in force at once"),
        **problems(401, 403, 413, 422)})
    async def create(self, data: BanRequest, services: Services, actor: Actor | None
                     ) -> Response[bytes]:
        who = moderator(actor, "ban addresses")
        network, until, reason = decide.ban(data.cidr, data.until, data.reason,
                                            datetime.now(UTC))
        made = await bans.add(services.pool, network, until, reason, who.name)
        services.bans.forget()
        return json_response(made, 201, {"Location": f"/api/bans/{made.id}"})

    @get("/", operation_id="listBans", security=SIGNED_IN, responses={
        200: ok(BanList, "bans in force, newest first"), **problems(401, 403, 404)})
    async def list(self, services: Services, actor: Actor | None,
                   page: int = Parameter(query="page", default=1, ge=1, le=1_000_000)
                   ) -> Response[bytes]:
        moderator(actor, "ban addresses")
        found, pages = await bans.active(services.pool, page)
        if page > pages:
            raise NotFoundError(f"no page {page}; there are {pages}")
        return json_response(BanList(bans=found, page=page, pages=pages))

    @delete("/{ban_id:int}", operation_id="deleteBan", status_code=200, security=SIGNED_IN,
            responses={200: ok(bans.Ban, "the ban lifted"), **problems(401, 403, 404)})
    async def lift(self, ban_id: int, services: Services, actor: Actor | None
                   ) -> Response[bytes]:
        moderator(actor, "ban addresses")
        lifted = await bans.remove(services.pool, checked_id(ban_id, "ban"))
        services.bans.forget()
        if lifted is None:
            raise NotFoundError("no such ban")
        return json_response(lifted)
