"""JSON routes of members: register, sign in, profile."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Controller, Response, get, post, put

from service import commands as c
from service.api import schemas as sc
from service.api.common import json_response, written
from service.api.openapi import OPERATOR_ONLY, PUBLIC, MinPosition, Name, ok, problems
from service.domain.actors import Actor
from service.domain.errors import NotAuthenticatedError
from service.handlers import RequestMeta
from service.lifespan import Services


class MemberController(Controller):
    tags = ["members"]

    @post("/api/users", operation_id="register", status_code=201, security=PUBLIC, responses={
        201: ok(sc.MemberRegistered, "the member was registered"),
        **problems(403, 409, 413, 422, 429)})
    async def register(self, data: c.Register, services: Services, meta: RequestMeta
                       ) -> Response[bytes]:
        result = await services.handlers.register(data, meta)
        # Names may be any script; a header is Latin-1, so the path is percent-encoded.
        return written(result, 201, {"Location": f"/api/users/{quote(result.name, safe='')}"})

    @post("/api/sessions", operation_id="signIn", status_code=200, security=PUBLIC, responses={
        200: ok(sc.SessionIssued, "a session token: send it as 'Authorization: Bearer …'"),
        **problems(401, 403, 413, 422, 429)})
    async def sign_in(self, data: c.SignIn, services: Services) -> Response[bytes]:
        found = await services.handlers.sign_in(data.name.strip(), data.password)
        token = services.auth.issue(found.name, found.role)
        return json_response({"token": token, "name": found.name, "role": found.role})

    @put("/api/users/{name:str}/role", operation_id="changeRole", status_code=200,
         security=OPERATOR_ONLY, responses={
             200: ok(sc.RoleChanged, "the member's role was changed"),
             **problems(401, 403, 404, 409, 413, 422, 429)})
    async def change_role(self, name: Name, data: c.ChangeRole, services: Services,
                          actor: Actor | None, meta: RequestMeta) -> Response[bytes]:
        """The operator makes a member a moderator (or a member again). Tokens carry the
        role they were issued with: the member signs in again to use the new one."""
        if actor is None:
            raise NotAuthenticatedError("changing roles needs the operator's token")
        return written(await services.handlers.change_role(name, data, actor, meta))

    @get("/api/users/{name:str}", operation_id="getUser", security=PUBLIC, responses={
        200: ok(sc.UserProfile, "a member's or a guest's profile"), **problems(404)})
    async def profile(self, name: Name, services: Services,
                      min_position: int | None = MinPosition) -> Response[bytes]:
        return await services.views.user(name, min_position)
