"""JSON routes of address bans (moderators and the operator): make, list, lift."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from service import bans
from service.api.common import checked_id, json_response
from service.domain import bans as decide
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, NotAuthenticatedError, NotFoundError
from service.errors import Problem
from service.lifespan import Services


class BanRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    cidr: str
    reason: str
    until: datetime | None = None


class BanList(msgspec.Struct, kw_only=True):
    bans: list[bans.Ban]
    page: int
    pages: int


def _moderator(actor: Actor | None) -> Actor:
    if actor is None:
        raise NotAuthenticatedError("bans need a moderator's or the operator's token")
    if not actor.moderates:
        raise ForbiddenError("only the operator or a moderator may ban addresses")
    return actor


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type="application/problem+json",
                        generate_examples=False)


_REFUSALS = {401: _problem("no credentials"), 403: _problem("not a moderator")}


class BanController(Controller):
    path = "/api/bans"
    tags = ["moderation"]
    # Lifting or making a ban works from a banned address too: moderators must never be
    # locked out of undoing their own mistake.
    opt = {"ban_exempt": True}

    @post("/", operation_id="createBan", status_code=201, responses={
        201: ResponseSpec(bans.Ban, description="the ban, in force at once"),
        422: _problem("not a CIDR, no reason, or an end in the past"), **_REFUSALS})
    async def create(self, data: BanRequest, services: Services, actor: Actor | None
                     ) -> Response[bytes]:
        who = _moderator(actor)
        network, until, reason = decide.ban(data.cidr, data.until, data.reason,
                                            datetime.now(UTC))
        made = await bans.add(services.pool, network, until, reason, who.name)
        return json_response(made, 201, {"Location": f"/api/bans/{made.id}"})

    @get("/", operation_id="listBans", responses={
        200: ResponseSpec(BanList, description="bans in force, newest first"),
        404: _problem("a page past the last"), **_REFUSALS})
    async def list(self, services: Services, actor: Actor | None,
                   page: int = Parameter(query="page", default=1, ge=1, le=1_000_000)
                   ) -> Response[bytes]:
        _moderator(actor)
        found, pages = await bans.active(services.pool, page)
        if page > pages:
            raise NotFoundError(f"no page {page}; there are {pages}")
        return json_response(BanList(bans=found, page=page, pages=pages))

    @delete("/{ban_id:int}", operation_id="deleteBan", status_code=200, responses={
        200: ResponseSpec(bans.Ban, description="the ban lifted"),
        404: _problem("no such ban"), **_REFUSALS})
    async def lift(self, ban_id: int, services: Services, actor: Actor | None
                   ) -> Response[bytes]:
        _moderator(actor)
        lifted = await bans.remove(services.pool, checked_id(ban_id, "ban"))
        if lifted is None:
            raise NotFoundError("no such ban")
        return json_response(lifted)
