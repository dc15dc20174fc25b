"""JSON routes of threads: read a page, reply, bump, and moderate."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar.types import Scope

from service import commands as c
from service.api import bodies
from service.api import schemas as s
from service.api.common import checked_id, writer, written
from service.api.openapi import (
    CONDITIONAL,
    PUBLIC,
    SIGNED_IN,
    WRITERS,
    Page,
    ThreadId,
    ok,
    problems,
)
from service.deps import min_position, services_of
from service.domain.actors import Actor
from service.domain.errors import NotAuthenticatedError
from service.guests import GuestPass
from service.handlers import RequestMeta
from service.lifespan import Services
from service.limits import Throttle

PerPage = Parameter(query="per_page", default=None, ge=1, le=100, required=False)

# What every moderation route answers.
_MODERATED = {200: ok(s.ThreadChanged, "done"), **problems(401, 403, 404, 409, 413, 422, 429)}


def _moderator(actor: Actor | None) -> Actor:
    if actor is None:
        raise NotAuthenticatedError("moderation needs a moderator's or the operator's token")
    return actor


class ThreadController(Controller):
    path = "/api/threads"
    tags = ["threads"]

    @get("/{thread_id:int}", operation_id="getThread", opt=CONDITIONAL, security=PUBLIC, responses={
        200: ok(s.ThreadPage, "a page of the thread's posts"), **problems(404)})
    async def get_page(self, thread_id: ThreadId, scope: Scope, page: int = Page,
                       per_page: int | None = PerPage) -> Response[bytes]:
        services = services_of(scope)
        return bodies.thread_page(await services.reads.thread_page(
            checked_id(thread_id, "thread"), page, per_page=per_page,
            min_position=min_position(scope)), services.tags)

    @post("/{thread_id:int}/posts", operation_id="postReply", status_code=201,
          security=WRITERS, responses={
              201: ok(s.ReplyPosted, "the reply was posted"),
              202: ok(s.HeldResult, "the reply is held for a moderator's review"),
              **problems(401, 403, 404, 409, 413, 422, 429)})
    async def reply(self, thread_id: ThreadId, data: c.PostReply, services: Services,
                    actor: Actor | None, meta: RequestMeta, throttle: Throttle,
                    guest_pass: GuestPass) -> Response[bytes]:
        checked_id(thread_id, "thread")
        who = await writer(services, actor, data.guest_name, guest_pass)
        await throttle("reply", who)
        result = await services.handlers.post_reply(thread_id, data, who, meta)
        if isinstance(result, c.HeldResult):  # waiting for a moderator: nothing to locate
            return written(result, 202, guest=guest_pass)
        return written(result, 201, {"Location": f"/api/posts/{result.post_id}"}, guest_pass)

    @post("/{thread_id:int}/bump", operation_id="bumpThread", status_code=200,
          security=WRITERS, responses={
              200: ok(s.ThreadChanged, "the thread is back at the top of its section"),
              **problems(401, 403, 404, 409, 413, 422, 429)})
    async def bump(self, thread_id: ThreadId, services: Services, actor: Actor | None,
                   meta: RequestMeta, throttle: Throttle, guest_pass: GuestPass,
                   data: c.BumpThread | None = None) -> Response[bytes]:
        """A guest bumps as the guest identity of its ``X-Guest-Token``: only the one that
        started the thread may (a guest without it, or with another, is refused)."""
        checked_id(thread_id, "thread")
        who = await writer(services, actor, data.guest_name if data else None, guest_pass)
        await throttle("bump", who)
        return written(await services.handlers.bump(thread_id, who, meta), guest=guest_pass)

    @post("/{thread_id:int}/lock", operation_id="lockThread", status_code=200,
          security=SIGNED_IN, responses=_MODERATED)
    async def lock(self, thread_id: ThreadId, services: Services, actor: Actor | None,
                   meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        checked_id(thread_id, "thread")
        await throttle("write", _moderator(actor))
        return written(await services.handlers.set_locked(
            thread_id, _moderator(actor), meta, locked=True))

    @post("/{thread_id:int}/unlock", operation_id="unlockThread", status_code=200,
          security=SIGNED_IN, responses=_MODERATED)
    async def unlock(self, thread_id: ThreadId, services: Services, actor: Actor | None,
                     meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        checked_id(thread_id, "thread")
        await throttle("write", _moderator(actor))
        return written(await services.handlers.set_locked(
            thread_id, _moderator(actor), meta, locked=False))

    @post("/{thread_id:int}/move", operation_id="moveThread", status_code=200,
          security=SIGNED_IN, responses=_MODERATED)
    async def move(self, thread_id: ThreadId, data: c.MoveThread, services: Services,
                   actor: Actor | None, meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        checked_id(thread_id, "thread")
        await throttle("write", _moderator(actor))
        return written(await services.handlers.move(thread_id, data, _moderator(actor), meta))


class UnansweredController(Controller):
    path = "/api/unanswered"
    tags = ["threads"]

    @get("/", operation_id="listUnanswered", opt=CONDITIONAL, security=PUBLIC, responses={
        200: ok(s.UnansweredList, "threads with no replies yet, newest first"),
        **problems(404)})
    async def unanswered(self, scope: Scope, page: int = Page) -> Response[bytes]:
        services = services_of(scope)
        return bodies.unanswered(await services.reads.unanswered(
            page, min_position=min_position(scope)), services.tags)
