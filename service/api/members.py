"""JSON routes of members: register, sign in, profile."""

from __future__ import annotations

from litestar import Controller, Response, get, post, put
from litestar.params import Parameter

from service import commands as c
from service.api.common import json_response, written
from service.domain.actors import Actor
from service.domain.errors import NotAuthenticatedError
from service.handlers import RequestMeta
from service.lifespan import Services
from service.limits import Throttle


class MemberController(Controller):
    tags = ["members"]

    @post("/api/users", operation_id="register", status_code=201)
    async def register(self, data: c.Register, services: Services, meta: RequestMeta,
                       throttle: Throttle) -> Response[bytes]:
        await throttle("register", None)
        result = await services.handlers.register(data, meta)
        return written(result, 201, {"Location": f"/api/users/{result.name}"})

    @post("/api/sessions", operation_id="signIn", status_code=200)
    async def sign_in(self, data: c.SignIn, services: Services, throttle: Throttle
                      ) -> Response[bytes]:
        await throttle.sign_in(data.name)
        try:
            found = await services.handlers.sign_in(data.name.strip(), data.password)
        except NotAuthenticatedError:
            await throttle.sign_in_failed(data.name)
            raise
        await throttle.signed_in(data.name)
        token = services.auth.issue(found.name, found.role)
        return json_response({"token": token, "name": found.name, "role": found.role})

    @put("/api/users/{name:str}/role", operation_id="changeRole", status_code=200)
    async def change_role(self, name: str, data: c.ChangeRole, services: Services,
                          actor: Actor | None, meta: RequestMeta, throttle: Throttle
                          ) -> Response[bytes]:
        """The operator makes a member a moderator (or a member again). Tokens carry the
        role they were issued with: the member signs in again to use the new one."""
        if actor is None:
            raise NotAuthenticatedError("changing roles needs the operator's token")
        await throttle("write", actor)
        return written(await services.handlers.change_role(name, data, actor, meta))

    @get("/api/users/{name:str}", operation_id="getUser")
    async def profile(self, name: str, services: Services, min_position: int | None =
                      Parameter(header="X-Min-Position", default=None, required=False)
                      ) -> Response[bytes]:
        return await services.views.user(name, min_position)
