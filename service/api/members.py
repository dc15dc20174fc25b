"""JSON routes of members: register, sign in and out, roles, profile."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.types import Scope

from events.records import member_stream
from service import commands as c
from service.api import bodies
from service.api import schemas as sc
from service.api.common import json_response, name_path, written
from service.api.data_rights import identity_of
from service.api.openapi import (
    CONDITIONAL,
    OPERATOR_ONLY,
    PUBLIC,
    SIGNED_IN,
    Name,
    ok,
    problems,
)
from service.deps import min_position, services_of
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, NotAuthenticatedError, NotFoundError
from service.handlers import RequestMeta
from service.lifespan import Services
from service.limits import Throttle


class MemberController(Controller):
    tags = ["members"]

    @post("/api/users", operation_id="register", status_code=201, security=PUBLIC, responses={
        201: ok(sc.MemberRegistered, "the member was registered"),
        **problems(403, 409, 413, 422, 429)})
    async def register(self, data: c.Register, services: Services, meta: RequestMeta,
                       throttle: Throttle) -> Response[bytes]:
        """Register a member. 409 when the name is taken or looks like a member's or a
        reserved name (compared by Unicode confusable skeleton, not only case); 422 when
        it mixes scripts in a confusing way or is empty once invisible characters are
        left out. A name a guest holds may be registered: it is the member's from then on.
        ``Location`` is the profile's URL, the name percent-encoded."""
        await throttle("register", None)
        result = await services.handlers.register(data, meta)
        return written(result, 201, {"Location": name_path("/api/users/", result.name)})

    @post("/api/sessions", operation_id="signIn", status_code=200, security=PUBLIC, responses={
        200: ok(sc.SessionIssued, "a session token: send it as 'Authorization: Bearer …'"),
        **problems(401, 403, 413, 422, 429)})
    async def sign_in(self, data: c.SignIn, services: Services, throttle: Throttle
                      ) -> Response[bytes]:
        """A new session: its token is answered once and lasts the session TTL."""
        await throttle.sign_in(data.name)
        try:
            found = await services.handlers.sign_in(data.name.strip(), data.password)
        except NotAuthenticatedError:
            await throttle.sign_in_failed(data.name)
            raise
        await throttle.signed_in(data.name)
        token = await services.auth.open_session(found.name)
        return json_response(sc.SessionIssued(token=token, name=found.name, role=found.role))

    @delete("/api/sessions", operation_id="signOut", status_code=204, security=SIGNED_IN,
            responses={204: ok(None, "the session is revoked"), **problems(401, 403)},
            opt={"ban_exempt": True})
    async def sign_out(self, request: Request[Any, Any, Any], services: Services) -> None:
        """Revokes the session whose token this request is sent with (a suspended member
        may still sign out)."""
        identity = await services.auth.identify(request.headers.get("authorization"))
        if identity is None:
            raise NotAuthenticatedError("send the token to sign out as 'Authorization: Bearer'")
        if identity.session is None:
            raise ForbiddenError("the operator's token is configuration, not a session")
        await services.auth.sessions.revoke_hash(identity.session.token_hash)

    @delete("/api/users/{name:str}/sessions", operation_id="revokeSessions", status_code=200,
            security=SIGNED_IN, responses={
                200: ok(sc.SessionsRevoked, "the member is signed out everywhere"),
                **problems(401, 403, 404)})
    async def revoke_sessions(self, name: Name, request: Request[Any, Any, Any],
                              services: Services) -> Response[bytes]:
        """Signs the member out everywhere: the member themself or the operator."""
        identity = await services.auth.identify(request.headers.get("authorization"))
        if identity is None:
            raise NotAuthenticatedError("revoking sessions needs the member's or the "
                                        "operator's token")
        stream = member_stream(name.strip())
        own = identity.session is not None and identity.session.member == stream
        if not own and identity.actor.role != "operator":
            raise ForbiddenError("only the member or the operator may revoke their sessions")
        if not own and not await services.store.read_stream(stream):
            raise NotFoundError("no such member")
        revoked = await services.auth.sessions.revoke_all(stream)
        return json_response(sc.SessionsRevoked(name=name.strip(), revoked=revoked))

    @delete("/api/users/{name:str}", operation_id="eraseMember", status_code=200,
            security=SIGNED_IN, responses={
                200: ok(c.ErasureResult, "the member's personal data is erased"),
                **problems(401, 403, 404, 413, 422, 429)},
            opt={"ban_exempt": True})
    async def erase(self, name: Name, data: c.EraseMember, request: Request[Any, Any, Any],
                    services: Services, throttle: Throttle) -> Response[bytes]:
        """Erase a member: the member themself (their token and their ``password``) or
        the operator. Their name becomes a pseudonym wherever it is shown (posts, quote
        attributions, lists, counters); with ``content: "erase"`` their posts' bodies go
        too (the posts keep their numbers). Sessions and credentials are deleted. Cannot
        be undone. The answer names only the pseudonym."""
        identity = await identity_of(request, services, "erasing a member")
        own = identity.actor.role != "operator"
        if own:  # a password is checked: limited like sign-in attempts
            await throttle.sign_in(identity.actor.name)
        else:
            await throttle("write", identity.actor)
        try:
            erased = await services.rights.erase_member(name.strip(), data.content,
                                                        identity.actor, data.password)
        except NotAuthenticatedError:
            await throttle.sign_in_failed(identity.actor.name)
            raise
        return json_response(c.ErasureResult(
            pseudonym=erased.pseudonym, content=data.content,
            events_rewritten=erased.events_rewritten, position=erased.position))

    @put("/api/users/{name:str}/role", operation_id="changeRole", status_code=200,
         security=OPERATOR_ONLY, responses={
             200: ok(sc.RoleChanged, "the member's role was changed"),
             **problems(401, 403, 404, 409, 413, 422, 429)})
    async def change_role(self, name: Name, data: c.ChangeRole, services: Services,
                          actor: Actor | None, meta: RequestMeta, throttle: Throttle
                          ) -> Response[bytes]:
        """The operator makes a member a moderator (or a member again). Authority is
        current: the member's tokens carry the new role from their next request on."""
        if actor is None:
            raise NotAuthenticatedError("changing roles needs the operator's token")
        await throttle("write", actor)
        return written(await services.handlers.change_role(name, data, actor, meta))

    @get("/api/users/{name:str}", operation_id="getUser", opt=CONDITIONAL, security=PUBLIC,
         responses={200: ok(sc.UserProfile, "a member's or a guest's profile"),
                    **problems(404)})
    async def profile(self, name: Name, scope: Scope) -> Response[bytes]:
        services = services_of(scope)
        return bodies.user(await services.reads.user(name, min_position=min_position(scope)),
                           services.tags)
