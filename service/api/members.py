"""JSON routes of members: register, sign in, profile."""

from __future__ import annotations

from litestar import Controller, Response, get, post, put
from litestar.params import Parameter

from service import commands as c
from service.api.common import json_response, name_path, written
from service.domain.actors import Actor
from service.domain.errors import NotAuthenticatedError
from service.handlers import RequestMeta
from service.lifespan import Services


class MemberController(Controller):
    tags = ["members"]

    @post("/api/users", operation_id="register", status_code=201)
    async def register(self, data: c.Register, services: Services, meta: RequestMeta
                       ) -> Response[bytes]:
        """Register a member. 409 when the name is taken or looks like a member's or a
        reserved name (compared by Unicode confusable skeleton, not only case); 422 when
        it mixes scripts in a confusing way or is empty once invisible characters are
        left out. A name a guest holds may be registered: it is the member's from then on.
        ``Location`` is the profile's URL, the name percent-encoded."""
        result = await services.handlers.register(data, meta)
        return written(result, 201, {"Location": name_path("/api/users/", result.name)})

    @post("/api/sessions", operation_id="signIn", status_code=200)
    async def sign_in(self, data: c.SignIn, services: Services) -> Response[bytes]:
        found = await services.handlers.sign_in(data.name.strip(), data.password)
        token = services.auth.issue(found.name, found.role)
        return json_response({"token": token, "name": found.name, "role": found.role})

    @put("/api/users/{name:str}/role", operation_id="changeRole", status_code=200)
    async def change_role(self, name: str, data: c.ChangeRole, services: Services,
                          actor: Actor | None, meta: RequestMeta) -> Response[bytes]:
        """The operator makes a member a moderator (or a member again). Tokens carry the
        role they were issued with: the member signs in again to use the new one."""
        if actor is None:
            raise NotAuthenticatedError("changing roles needs the operator's token")
        return written(await services.handlers.change_role(name, data, actor, meta))

    @get("/api/users/{name:str}", operation_id="getUser")
    async def profile(self, name: str, services: Services, min_position: int | None =
                      Parameter(header="X-Min-Position", default=None, required=False)
                      ) -> Response[bytes]:
        return await services.views.user(name, min_position)
